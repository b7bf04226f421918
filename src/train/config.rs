//! Everything a training run depends on, saved as `config.json` in the run folder so that a
//! run can be resumed and reported exactly.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::{Architecture, BnMode, ModelConfig};
use super::optim::{OptimConfig, OptimizerKind, Schedule};
use crate::eval::{EvalOptions, Metric};
use crate::loader::{Augment, Normalize, SamplerConfig};
use crate::loss::LossKind;
use crate::shard::{CropMode, Encoding, Preprocess, ResizeMode};
use crate::weights::{ResolvedWeights, WeightsSpec};

/// A training run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The named recipe the settings started from (`None` in runs made before recipes had
    /// names); the fields below are what the run uses, flags included.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Prepared dataset name.
    pub dataset: String,
    /// Data dir.
    pub data_dir: PathBuf,
    /// A split folder other than the dataset's default.
    pub split_dir: Option<PathBuf>,
    /// Network.
    pub model: ModelConfig,
    /// Initial weights of the trunk: a published file by name (fetched into the data dir) or a
    /// file; `None` for random weights.
    pub weights: Option<WeightsSpec>,
    /// A weight manifest to use instead of the built-in one (for mirrors and tests).
    #[serde(default)]
    pub weights_manifest: Option<PathBuf>,
    /// The weight file the run started from and its SHA-256 (filled in when the run starts).
    #[serde(default)]
    pub pretrained: Option<ResolvedWeights>,
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
    /// Read the loss and the NaN/inf check back from the device every this many steps (and at
    /// every epoch's end), so that the device is not waited for at every step. A bad step is
    /// still named exactly; the steps after it, up to the read, are wasted.
    #[serde(default = "default_check_every")]
    pub check_every: u64,
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

/// A named training recipe: every setting a run has before flags change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Oh Song et al., CVPR 2016: GoogLeNet from its ImageNet weights,
    /// dropout 0.4 before a 512-d embedding; each image's long side to 256 on a white 256×256
    /// square (JPEG q90), random 227 crops with flips, ImageNet's mean and std; 32 classes × 4
    /// images per batch (128, the paper's batch); SGD lr 1e-4, momentum 0.9, weight decay 2e-4,
    /// ×10 on the embedding layer, constant rate; 100 epochs; evaluation on centre 227 crops
    /// of the test split, which selects nothing.
    Paper,
    /// The bundled glyph sample's measured recipe: a small CNN from random weights, glyphs
    /// packed raw at 32 px, random resized crops without flips (a mirrored `b` is a `d`), mean
    /// and std 0.5, AdamW 1e-3, 90 epochs.
    Sample,
}

impl Protocol {
    /// The recipe `lifted train DATASET` uses without `--protocol`: `sample` for the bundled
    /// sample, `paper` for every other dataset.
    pub fn for_dataset(dataset: &str) -> Protocol {
        if dataset == "sample" {
            Protocol::Sample
        } else {
            Protocol::Paper
        }
    }

    /// The network the recipe trains unless `--model` says otherwise.
    pub fn network(self) -> Architecture {
        match self {
            Protocol::Paper => Architecture::GoogLeNet,
            Protocol::Sample => Architecture::Small,
        }
    }

    /// Its name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Paper => "paper",
            Protocol::Sample => "sample",
        }
    }
}

impl TrainConfig {
    /// The settings of `protocol` for `arch` on `dataset`.
    ///
    /// The data recipe follows the protocol: `sample` packs raw at 32 pixels, crops and
    /// rescales a little without flips and normalises with mean and std 0.5; `paper` is the
    /// paper's photo recipe (the long side to 256 on a white 256×256 square, JPEG q90, random
    /// 227 crops with flips, ImageNet's mean and std), whatever the network. The optimisation
    /// follows the network: the ImageNet networks start from their published ImageNet weights
    /// (fetched if missing) and get the paper's SGD (1e-4, momentum 0.9, weight decay 2e-4, 10×
    /// head, frozen batch norm, 100 epochs; GoogLeNet with the paper's dropout 0.4 before the
    /// embedding), the small network random weights and the sample's measured AdamW 1e-3
    /// (batch norm trained, 90 epochs).
    pub fn defaults(
        protocol: Protocol,
        dataset: &str,
        data_dir: PathBuf,
        arch: Architecture,
    ) -> TrainConfig {
        let small = arch == Architecture::Small;
        let glyphs = protocol == Protocol::Sample;
        TrainConfig {
            protocol: Some(protocol),
            dataset: dataset.to_string(),
            data_dir,
            split_dir: None,
            model: ModelConfig {
                arch,
                embedding: if small { 64 } else { 512 },
                bn: if small { BnMode::Train } else { BnMode::Frozen },
                width: 16,
                dropout: if arch == Architecture::GoogLeNet {
                    0.4
                } else {
                    0.0
                },
            },
            weights: imagenet_weights(arch).map(|name| WeightsSpec::Named(name.to_string())),
            weights_manifest: None,
            pretrained: None,
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
            check_every: default_check_every(),
            pack: if glyphs {
                Preprocess::raw(32)
            } else {
                Preprocess {
                    size: 256,
                    resize: ResizeMode::PadSquare,
                    crop: CropMode::None,
                    encoding: Encoding::Jpeg,
                    quality: Some(90),
                }
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

/// The published ImageNet weights a network starts from by default (none for the small CNN).
pub fn imagenet_weights(arch: Architecture) -> Option<&'static str> {
    match arch {
        Architecture::Small => None,
        Architecture::ResNet18 => Some("resnet18"),
        Architecture::ResNet50 => Some("resnet50"),
        Architecture::GoogLeNet => Some("googlenet"),
        Architecture::BnInception => Some("bninception"),
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
        let weights = match (&self.pretrained, &self.weights) {
            (Some(r), _) => format!(
                "weights {} (SHA-256 {})",
                r.name
                    .clone()
                    .unwrap_or_else(|| r.path.display().to_string()),
                &r.sha256[..r.sha256.len().min(16)]
            ),
            (None, Some(WeightsSpec::Named(name))) => format!("weights {name}"),
            (None, Some(WeightsSpec::File(path))) => format!("weights {}", path.display()),
            (None, None) => "random weights".to_string(),
        };
        let protocol = match self.protocol {
            Some(p) => format!("Protocol {} with ", p.name()),
            None => String::new(),
        };
        format!(
            "{protocol}{network} from {weights}, embedding {}, dropout {}, batch norm {bn}; {:?} loss \
             (margin {}); {} classes × {} images per batch; {optimizer}, head ×{}, {:?} \
             schedule; {} epochs. Data: {}; {augment}; mean {:?} std {:?}; evaluation on centre \
             {} crops.",
            m.embedding,
            m.dropout,
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

/// [`TrainConfig::check_every`]'s default, also for runs written before it existed.
fn default_check_every() -> u64 {
    16
}
