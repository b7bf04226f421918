//! `lifted`: deep metric learning via lifted structured feature embedding (Oh Song et al.,
//! CVPR 2016), end to end.
//!
//! The stages:
//! 1. [`prepare::prepare`] downloads and verifies a dataset ([`fetch`]), extracts it safely
//!    ([`archive`]), reads its annotations into a [`catalog`], and writes its class-disjoint
//!    [`split`]s.
//! 2. [`pack::pack`] turns one part of a split into memory-mapped [`shard`]s
//!    (format: `docs/FORMAT.md`), decoding with [`imageio`].
//! 3. [`loader::Loader`] streams class-balanced P×K batches (or every sample once), decoded and
//!    augmented by worker threads (rules: `docs/loader.md`).
//! 4. [`train::run`] trains an embedding network with [`loss::lifted_structured_loss`] (or a
//!    baseline) and evaluates it.
//! 5. [`eval::evaluate`] scores embeddings (Recall@K, MAP@R, NMI, F1, …; `docs/metrics.md`),
//!    and [`plot`] draws retrieval grids, t-SNE maps and training curves.
//!
//! The `lifted` binary is a thin command line over these functions.
//!
//! Reading packed samples from another Rust program:
//!
//! ```no_run
//! use lifted::shard::ShardSet;
//!
//! let set = ShardSet::open("data/cub200/shards/canonical-train-jpeg256".as_ref())?;
//! for class in set.classes().iter().take(2) {
//!     for index in class.indices().take(3) {
//!         let sample = set.sample(index)?; // bytes borrowed from the mapping, CRC checked
//!         let image = sample.decode().expect("a verified shard decodes");
//!         println!("class {} {}x{} from {}", sample.class_id, image.width, image.height, set.source_path(&sample));
//!     }
//! }
//! # Ok::<(), lifted::shard::ShardError>(())
//! ```
//!
//! Preparing a dataset:
//!
//! ```no_run
//! use lifted::dataset::DatasetRef;
//! use lifted::prepare::{prepare, PrepareOptions};
//!
//! let options = PrepareOptions {
//!     data_dir: "data".into(),
//!     manifest: None,
//!     archives: vec![],
//!     allow_unverified: false,
//!     skip_bad_images: false,
//!     name: None,
//!     fetch: Default::default(),
//!     progress: lifted::Progress::hidden(),
//! };
//! let summary = prepare(&DatasetRef::parse("sample"), &options)?;
//! println!("{summary}");
//! # Ok::<(), lifted::prepare::PrepareError>(())
//! ```

#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod archive;
pub mod catalog;
#[cfg(any(feature = "download", feature = "shards"))]
mod chain;
pub mod dataset;
#[cfg(feature = "eval")]
pub mod eval;
pub mod fetch;
mod fsutil;
pub mod imageio;
pub mod limits;
#[cfg(feature = "shards")]
pub mod loader;
#[cfg(feature = "train")]
pub mod loss;
pub mod manifest;
#[cfg(feature = "shards")]
pub mod pack;
#[cfg(feature = "plot")]
pub mod plot;
pub mod prepare;
mod progress;
#[cfg(feature = "shards")]
mod rng;
#[cfg(feature = "eval")]
pub mod runlog;
mod sample;
#[cfg(feature = "shards")]
pub mod shard;
pub mod split;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "train")]
pub mod weights;

pub use progress::Progress;
