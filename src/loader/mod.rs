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
//! use lifted::loader::{Augment, Loader, LoaderConfig, Pixels, PkSampler, SamplerConfig};
//! use lifted::shard::ShardSet;
//!
//! let set = Arc::new(ShardSet::open("data/cub200/shards/canonical-train-jpeg256".as_ref())?);
//! let classes = set.classes().iter().map(|c| (c.class_id, c.indices().collect())).collect();
//! let sampler = PkSampler::new(classes, SamplerConfig { classes_per_batch: 32, per_class: 4, ..Default::default() })?;
//! let loader = Loader::new(set, LoaderConfig::default())?;
//! for epoch in 0..2 {
//!     for batch in loader.epoch(&sampler, epoch, 0, Augment::RandomCrop { size: 227, flip: true }) {
//!         let batch = batch?;
//!         // [128, 3, 227, 227] normalised f32 (`batch.images(&device)` makes a candle tensor
//!         // with the `train` feature).
//!         let Pixels::F32(pixels) = batch.pixels() else { unreachable!("the default layout") };
//!         println!("{:?} {} {:?}", batch.shape, pixels.len(), &batch.labels[..4]);
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

/// Why one sample could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// Its stored JPEG does not decode.
    #[error("its JPEG does not decode")]
    Decode(#[source] crate::imageio::DecodeError),
    /// Scaling it up to the crop would make it larger than the decoder's pixel limit.
    #[error(
        "a {width}x{height} sample would be scaled up to {scaled_width}x{scaled_height} for a \
         {size}-pixel crop, more than {max} pixels",
        max = crate::imageio::MAX_PIXELS
    )]
    TooLarge {
        /// Stored width.
        width: u32,
        /// Stored height.
        height: u32,
        /// Width after scaling.
        scaled_width: u32,
        /// Height after scaling.
        scaled_height: u32,
        /// The crop side.
        size: u32,
    },
    /// The resizer failed (its own error is the source).
    #[error("resizing failed")]
    Resize(#[source] Box<dyn std::error::Error + Send + Sync>),
}

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
    #[error("sample {index} ({path}) cannot be loaded")]
    Sample {
        /// The sample's global index.
        index: usize,
        /// Its source path.
        path: String,
        /// Why.
        #[source]
        source: SampleError,
    },
    /// The sampler's settings do not work.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// A number of threads outside 1 to [`MAX_THREADS`](crate::limits::MAX_THREADS).
    #[error("threads must be 1 to {max}, not {0}", max = crate::limits::MAX_THREADS)]
    Threads(usize),
    /// A prefetch depth outside 1 to 64.
    #[error("prefetch must be 1 to 64 batches, not {0}")]
    Prefetch(usize),
    /// Normalisation with a mean that is not finite or a standard deviation that is not
    /// positive.
    #[error(
        "normalisation needs finite means and positive standard deviations, not mean {mean:?}, \
         std {std:?}"
    )]
    Normalize {
        /// The means.
        mean: [f32; 3],
        /// The standard deviations.
        std: [f32; 3],
    },
    /// An output side outside 1 to [`MAX_SIZE`](crate::shard::MAX_SIZE).
    #[error("the output side must be 1 to {max} pixels, not {0}", max = crate::shard::MAX_SIZE)]
    OutputSize(u32),
    /// A RandomResizedCrop range that is empty or out of bounds.
    #[error(
        "RandomResizedCrop needs 0 < scale.0 <= scale.1 <= 1 and 0 < ratio.0 <= ratio.1, not \
         scale {scale:?}, ratio {ratio:?}"
    )]
    CropRange {
        /// The area share range.
        scale: (f32, f32),
        /// The aspect ratio range.
        ratio: (f32, f32),
    },
    /// A batch whose pixels would exceed [`MAX_BATCH_BYTES`].
    #[error(
        "a batch of {samples} samples of {size}x{size} takes {bytes} bytes, more than the \
         {MAX_BATCH_BYTES} bytes a batch may take; use fewer samples per batch or a smaller size"
    )]
    BatchTooLarge {
        /// Samples in the largest batch.
        samples: u64,
        /// The output side.
        size: u64,
        /// The bytes it would take.
        bytes: u64,
    },
    /// A loader thread could not be started.
    #[error("cannot start a loader thread")]
    Spawn(#[source] std::io::Error),
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
