//! Pictures, for when looking beats reading:
//!
//! - [`grid`]: retrieval results, each query followed by its nearest neighbours, framed green
//!   when they share its class and red when not (`lifted eval --grid`);
//! - [`tsne`]: a 2-D t-SNE map of the embeddings coloured by class, as the paper shows
//!   (`lifted eval --tsne`);
//! - [`curves`]: a run's training curves from its JSONL log (`lifted plot`).

pub mod curves;
pub mod grid;
pub mod palette;
pub mod tsne;

use std::path::PathBuf;

/// Errors from drawing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The grid's inputs disagree in length.
    #[error(
        "the grid needs one embedding and label per sample: {samples} samples, {neighbour_lists} \
         neighbour lists, {labels} labels"
    )]
    GridInputs {
        /// Samples in the shard set.
        samples: usize,
        /// Neighbour lists.
        neighbour_lists: usize,
        /// Labels.
        labels: usize,
    },
    /// Too little to draw a grid.
    #[error("the grid needs at least 2 samples, 1 query and 1 neighbour")]
    GridTooSmall,
    /// A sample of the shards cannot be decoded.
    #[error("sample {index} ({path}) cannot be decoded")]
    Undecodable {
        /// The sample's index.
        index: usize,
        /// Its source image.
        path: String,
        /// The decoder's error.
        #[source]
        source: crate::imageio::DecodeError,
    },
    /// As many labels as embeddings are needed.
    #[error("{embeddings} embeddings but {labels} labels")]
    CountMismatch {
        /// Embeddings.
        embeddings: usize,
        /// Labels.
        labels: usize,
    },
    /// Too few points for a t-SNE map.
    #[error("a t-SNE map needs at least 5 points, got {0}")]
    TooFewPoints(usize),
    /// The t-SNE thread could not be started.
    #[error("cannot start the t-SNE thread")]
    Thread(#[source] rayon::ThreadPoolBuildError),
    /// A run's log has nothing to draw.
    #[error("{0} holds no training steps or evaluations yet")]
    EmptyLog(PathBuf),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PNG could not be written.
    #[error("cannot write {path}")]
    Image {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: image::ImageError,
    },
    /// Drawing failed.
    #[error("drawing {path} failed: {message}")]
    Draw {
        /// The file.
        path: PathBuf,
        /// What the drawing library said.
        message: String,
    },
    /// A sample could not be read from its shard.
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}
