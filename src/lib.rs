//! `lifted`: deep metric learning via lifted structured feature embedding (Oh Song et al.,
//! CVPR 2016), end to end.
//!
//! The pipeline's first stage is here: [`prepare::prepare`] downloads and verifies a dataset
//! ([`fetch`]), extracts it safely ([`archive`]), reads its annotations into a [`catalog`],
//! and writes its class-disjoint [`split`]s. The `lifted` binary is a thin command line over
//! these functions.
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
//!     progress: lifted::progress::Progress::hidden(),
//! };
//! let summary = prepare(&DatasetRef::parse("sample"), &options)?;
//! println!("{summary}");
//! # Ok::<(), lifted::prepare::PrepareError>(())
//! ```

#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod archive;
pub mod catalog;
pub mod dataset;
pub mod fetch;
pub mod fsutil;
pub mod imageio;
pub mod manifest;
pub mod prepare;
pub mod progress;
pub mod sample;
pub mod split;
