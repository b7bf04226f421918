//! Everything a training run depends on, saved as `config.json` in the run folder so that a
//! run can be resumed and reported exactly.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::{Architecture, BnMode, ModelConfig};
use super::optim::{OptimConfig, OptimizerKind, Schedule};
use crate::eval::{EvalOptions, Metric};
use crate::loader::{Augment, Normalize, SamplerConfig};
use crate::loss::LossKind;
use crate::shard::Preprocess;

/// A training run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Prepared dataset name.
    pub dataset: String,
    /// Data dir.
    pub data_dir: PathBuf,
    /// A split folder other than the dataset's default.
    pub split_dir: Option<PathBuf>,
    /// Network.
    pub model: ModelConfig,
    /// Initial weights (safetensors, torchvision names).
    pub weights: Option<PathBuf>,
    /// Loss.
    pub loss: LossKind,
    /// Loss margin α.
    pub margin: f64,
    /// L2-normalise embeddings before the loss.
    pub normalize_embeddings: bool,
    /// P×K sampling.
    pub sampler: SamplerConfig,
    /// Optimiser (its schedule's `every` and `total` count epochs here).
    pub optim: OptimConfig,
    /// Epochs (one epoch = one pass over the classes, see the loader's sampler).
    pub epochs: u64,
    /// Evaluate on the test split every this many epochs (0: only before and after).
    pub eval_every: u64,
    /// Write a checkpoint every this many epochs (and always at the end).
    pub checkpoint_every: u64,
    /// How the split is packed for training and evaluation.
    pub pack: Preprocess,
    /// Training augmentation.
    pub augment: Augment,
    /// Evaluation centre crop.
    pub eval_crop: u32,
    /// Input normalisation.
    pub normalize: Normalize,
    /// Loader threads.
    pub threads: usize,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Evaluation settings.
    pub eval: EvalOptions,
}

impl TrainConfig {
    /// The defaults for `model` on `dataset`: the paper's recipe (256 → random 227 crop and flip,
    /// SGD 1e-4 with momentum 0.9, weight decay 2e-4, 10× head) for the ImageNet networks, and the
    /// sample's measured recipe (32-pixel glyphs, small crops and rescaling, no flips, AdamW 1e-3)
    /// for the small one.
    pub fn defaults(dataset: &str, data_dir: PathBuf, arch: Architecture) -> TrainConfig {
        let small = arch == Architecture::Small;
        TrainConfig {
            dataset: dataset.to_string(),
            data_dir,
            split_dir: None,
            model: ModelConfig {
                arch,
                embedding: if small { 64 } else { 512 },
                bn: if small { BnMode::Train } else { BnMode::Frozen },
                width: 16,
                dropout: 0.0,
            },
            weights: None,
            loss: LossKind::Lifted,
            margin: 1.0,
            normalize_embeddings: false,
            sampler: SamplerConfig::default(),
            optim: if small {
                OptimConfig {
                    kind: OptimizerKind::AdamW,
                    lr: 1e-3,
                    momentum: 0.9,
                    weight_decay: 1e-4,
                    head_lr_mult: 1.0,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    schedule: Schedule::Constant,
                }
            } else {
                OptimConfig {
                    kind: OptimizerKind::Sgd,
                    lr: 1e-4,
                    momentum: 0.9,
                    weight_decay: 2e-4,
                    head_lr_mult: 10.0,
                    betas: (0.9, 0.999),
                    eps: 1e-8,
                    schedule: Schedule::Constant,
                }
            },
            epochs: if small { 90 } else { 100 },
            eval_every: 0,
            checkpoint_every: 10,
            pack: if small {
                Preprocess::raw(32)
            } else {
                Preprocess::jpeg(256, 90)
            },
            augment: if small {
                Augment::RandomResizedCrop {
                    size: 32,
                    scale: (0.7, 1.0),
                    ratio: (0.85, 1.18),
                    flip: false,
                }
            } else {
                Augment::RandomCrop {
                    size: 227,
                    flip: true,
                }
            },
            eval_crop: if small { 32 } else { 227 },
            normalize: if small {
                Normalize {
                    mean: [0.5; 3],
                    std: [0.5; 3],
                }
            } else {
                Normalize::IMAGENET
            },
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: "cpu".to_string(),
            eval: EvalOptions {
                metric: Metric::Euclidean,
                ..EvalOptions::for_dataset(dataset)
            },
        }
    }
}
