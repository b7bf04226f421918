//! The loader: class-balanced P×K batches (or every sample once, for evaluation), decoded,
//! augmented and normalised by worker threads from memory-mapped shards.
//!
//! - [`sampler`]: which samples form each batch ([`PkSampler`], the evaluation order);
//! - [`augment`]: crops and flips;
//! - [`normalize`]: bytes to normalised floats;
//! - [`pipeline`]: the worker threads ([`Loader`], [`Batches`]);
//! - [`batch`]: what comes out ([`Batch`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use lifted::loader::{Augment, Loader, LoaderConfig, PkSampler, SamplerConfig};
//! use lifted::shard::ShardSet;
//!
//! let set = Arc::new(ShardSet::open("data/cub200/shards/canonical-train-jpeg256".as_ref())?);
//! let classes = set.classes().iter().map(|c| (c.class_id, c.indices().collect())).collect();
//! let sampler = PkSampler::new(classes, SamplerConfig { classes_per_batch: 32, per_class: 4, ..Default::default() })?;
//! let loader = Loader::new(set, LoaderConfig::default())?;
//! for epoch in 0..2 {
//!     for batch in loader.epoch(&sampler, epoch, 0, Augment::RandomCrop { size: 227, flip: true }) {
//!         let batch = batch?;
//!         let images = batch.images(&candle_core::Device::Cpu)?; // [128, 3, 227, 227] f32
//!         println!("{:?} {:?}", images.shape(), &batch.labels[..4]);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod augment;
pub mod batch;
pub mod grid;
pub mod normalize;
pub mod pipeline;
pub mod sampler;
pub mod stream;

pub use augment::Augment;
pub use batch::{Batch, Layout, Pixels};
pub use normalize::Normalize;
pub use pipeline::{Batches, Loader, LoaderConfig, MAX_BATCH_BYTES};
pub use sampler::{PkSampler, SamplerConfig, SamplerError, SmallClasses};

use crate::shard::ShardError;

/// Errors the loader reports, in place of the batch they concern.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoaderError {
    /// A sample could not be read from its shard.
    #[error("sample {index} cannot be read")]
    Shard {
        /// The sample's global index.
        index: usize,
        /// The shard error.
        #[source]
        source: ShardError,
    },
    /// A sample could not be decoded or augmented.
    #[error("sample {index} ({path}) cannot be loaded: {reason}")]
    Sample {
        /// The sample's global index.
        index: usize,
        /// Its source path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The sampler's settings do not work.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// Settings that cannot work.
    #[error("{0}")]
    Config(String),
    /// A worker thread panicked while building the batch (a bug in lifted; please report it).
    #[error("a loader thread panicked while building this batch: {message}")]
    WorkerPanicked {
        /// The panic's message.
        message: String,
    },
    /// The loader was stopped before the batch was built.
    #[error("the loader stopped before this batch was built")]
    Stopped,
}
