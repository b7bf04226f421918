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
    /// What was asked for cannot be drawn.
    #[error("{0}")]
    Input(String),
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
