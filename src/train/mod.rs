//! Training: embedding networks ([`model`]), optimisers ([`optim`]), the training loop
//! ([`trainer`]) with checkpoints ([`checkpoint`]) and a JSONL log ([`log`]), and the
//! `lifted train` command ([`run`]) that packs what a run needs.

pub mod allocator;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod embed;
pub mod log;
pub mod model;
pub mod optim;
pub mod run;
pub mod trainer;

use std::path::PathBuf;

pub use config::{Protocol, TrainConfig};
pub use run::{TrainRequest, run};
pub use trainer::TrainSummary;

/// Errors from training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The dataset could not be opened.
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    /// Preparing the sample failed.
    #[error(transparent)]
    Prepare(#[from] crate::prepare::PrepareError),
    /// Packing failed.
    #[error(transparent)]
    Pack(#[from] crate::pack::PackError),
    /// The shards could not be read.
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// The loader failed.
    #[error(transparent)]
    Loader(#[from] crate::loader::LoaderError),
    /// The sampler's settings do not work.
    #[error(transparent)]
    Sampler(#[from] crate::loader::SamplerError),
    /// The loss could not be computed.
    #[error(transparent)]
    Loss(#[from] crate::loss::LossError),
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint's `state.json` is not one lifted wrote.
    #[error("{path} is not a lifted checkpoint state")]
    BadState {
        /// The file.
        path: PathBuf,
        /// What the JSON reader found.
        #[source]
        source: serde_json::Error,
    },
    /// A run's `config.json` is not one lifted wrote.
    #[error("{path} is not a lifted run config")]
    BadRunConfig {
        /// The file.
        path: PathBuf,
        /// What the JSON reader found.
        #[source]
        source: serde_json::Error,
    },
    /// A run folder to resume has no checkpoint.
    #[error("{0} has no checkpoint to resume from; start a new run there instead")]
    NothingToResume(PathBuf),
    /// The run's settings cannot be written as JSON.
    #[error(
        "the run's settings cannot be written as JSON; a path in them (the data dir, split folder \
         or weights file) is probably not valid UTF-8: rename it"
    )]
    UnwritableConfig(#[source] serde_json::Error),
    /// A device name that is neither `cpu` nor `cuda:N`.
    #[error("device `{0}`: use cpu or cuda:N")]
    UnknownDevice(String),
    /// A CUDA device that cannot be used.
    #[error(
        "device `{device}` cannot be used; CUDA needs a GPU and a lifted built with the `cuda` \
         feature (see docs/gpu.md)"
    )]
    Cuda {
        /// The device asked for.
        device: String,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// A checkpoint trained on another split than the data's.
    #[error(
        "the checkpoint was trained on split {checkpoint}, but the data now has split {data}; \
         resume with the same split"
    )]
    SplitChanged {
        /// The checkpoint's split hash.
        checkpoint: String,
        /// The data's split hash.
        data: String,
    },
    /// The loss or the embeddings became NaN or infinite.
    #[error(
        "the {what} became {value} at epoch {epoch}, step {step}; training stopped (the last checkpoint is the last good state). \
         Consider a lower learning rate, or normalising the embeddings"
    )]
    NonFinite {
        /// `loss`, or `embeddings` (whose non-finite values a hinge can hide from the loss).
        what: &'static str,
        /// Epoch.
        epoch: u64,
        /// Step within the epoch.
        step: u64,
        /// The loss, or the sum of the embeddings.
        value: f64,
    },
    /// The initial weights could not be found, fetched or loaded (boxed: a download error is
    /// large, and every training result carries this type).
    #[error(transparent)]
    Pretrained(Box<crate::weights::WeightsError>),
    /// A checkpoint's weights could not be read.
    #[error("cannot load {path}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: candle_core::Error,
    },
    /// The run folder is already used.
    #[error(
        "{0} already holds a run (it has a checkpoint); resume it, or choose another run folder"
    )]
    RunExists(PathBuf),
}

impl From<crate::weights::WeightsError> for TrainError {
    fn from(error: crate::weights::WeightsError) -> Self {
        TrainError::Pretrained(Box::new(error))
    }
}
