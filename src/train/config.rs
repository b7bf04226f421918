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
    /// The defaults for `arch` on `dataset`.
    ///
    /// The data recipe follows the data: the bundled glyph sample (`sample`) is packed raw at
    /// 32 pixels, cropped and rescaled a little without flips (a mirrored `b` is a `d`) and
    /// normalised with mean and std 0.5; every other dataset gets the paper's photo recipe
    /// (JPEG at 256, random 227 crops with flips, ImageNet's mean and std), whatever the
    /// network. The optimisation follows the network: the ImageNet networks get the paper's
    /// SGD (1e-4, momentum 0.9, weight decay 2e-4, 10× head, frozen batch norm, 100 epochs), the
    /// small network the sample's measured AdamW 1e-3 (batch norm trained, 90 epochs).
    pub fn defaults(dataset: &str, data_dir: PathBuf, arch: Architecture) -> TrainConfig {
        let small = arch == Architecture::Small;
        let glyphs = dataset == "sample";
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
            pack: if glyphs {
                Preprocess::raw(32)
            } else {
                Preprocess::jpeg(256, 90)
            },
            augment: if glyphs {
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
            eval_crop: if glyphs { 32 } else { 227 },
            normalize: if glyphs {
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

impl TrainConfig {
    /// The settings that decide a run, in one paragraph (printed with the run's summary).
    pub fn describe(&self) -> String {
        let m = &self.model;
        let network = match m.arch {
            Architecture::Small => format!("small CNN (width {})", m.width),
            other => format!("{other:?}").to_lowercase(),
        };
        let bn = match m.bn {
            BnMode::Frozen => "frozen",
            BnMode::Train => "trained",
        };
        let o = &self.optim;
        let optimizer = match o.kind {
            OptimizerKind::Sgd => format!(
                "SGD lr {} momentum {} weight decay {}",
                o.lr, o.momentum, o.weight_decay
            ),
            OptimizerKind::AdamW => format!("AdamW lr {} weight decay {}", o.lr, o.weight_decay),
        };
        let augment = match self.augment {
            crate::loader::Augment::RandomCrop { size, flip } => {
                format!(
                    "random {size} crops{}",
                    if flip { " with flips" } else { ", no flips" }
                )
            }
            crate::loader::Augment::RandomResizedCrop {
                size,
                scale,
                ratio,
                flip,
            } => format!(
                "RandomResizedCrop {size} (scale {}-{}, ratio {:.2}-{:.2}){}",
                scale.0,
                scale.1,
                ratio.0,
                ratio.1,
                if flip { " with flips" } else { ", no flips" }
            ),
            crate::loader::Augment::CenterCrop { size } => format!("centre {size} crops"),
        };
        format!(
            "{network}, embedding {}, batch norm {bn}; {:?} loss (margin {}); {} classes × {} \
             images per batch; {optimizer}, head ×{}, {:?} schedule; {} epochs. Data: {}; {augment}; \
             mean {:?} std {:?}; evaluation on centre {} crops.",
            m.embedding,
            self.loss,
            self.margin,
            self.sampler.classes_per_batch,
            self.sampler.per_class,
            o.head_lr_mult,
            o.schedule,
            self.epochs,
            self.pack,
            self.normalize.mean,
            self.normalize.std,
            self.eval_crop
        )
    }
}
