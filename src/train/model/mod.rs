//! Embedding networks: a trunk that pools an image into features, and a linear embedding head.
//!
//! Trunks: [`small`] (for the bundled sample), [`resnet`] (ResNet-18/50) and [`googlenet`] (the
//! paper's network), with torchvision's parameter names, and [`bninception`] with Cadene's, so
//! that ImageNet weights load by name ([`crate::weights`]). The head is `embedding.weight`/`embedding.bias`
//! (D × F); the paper trains it with a 10× learning rate ([`ParameterGroups`]).

mod batch_norm_cpu;
pub mod bninception;
pub mod conv;
mod cpu_slice;
pub mod googlenet;
pub mod init;
pub mod layers;
mod max_pool_cpu;
pub mod resnet;
pub mod small;

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use layers::BnMode;

/// The trunks `lifted train` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// [`small::SmallCnn`].
    Small,
    /// [`resnet::ResNet::resnet18`].
    ResNet18,
    /// [`resnet::ResNet::resnet50`].
    ResNet50,
    /// [`googlenet::GoogLeNet`].
    GoogLeNet,
    /// [`bninception::BnInception`].
    #[serde(rename = "bninception")]
    BnInception,
}

/// Largest embedding size a network is built with.
pub const MAX_EMBEDDING: usize = 8192;

/// Network settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The trunk.
    pub arch: Architecture,
    /// Embedding size D.
    pub embedding: usize,
    /// Batch-norm mode.
    pub bn: BnMode,
    /// Base width of the small trunk.
    pub width: usize,
    /// Dropout before the embedding head while training (the paper uses 0.4).
    pub dropout: f32,
}

#[derive(Debug, Clone)]
enum Trunk {
    Small(small::SmallCnn),
    ResNet(Box<resnet::ResNet>),
    GoogLeNet(Box<googlenet::GoogLeNet>),
    BnInception(Box<bninception::BnInception>),
}

/// A trunk and its embedding head.
#[derive(Debug, Clone)]
pub struct EmbeddingNet {
    trunk: Trunk,
    head: Linear,
    config: ModelConfig,
}

impl EmbeddingNet {
    /// Builds the network with its variables in `vb` (trunk at the root, head at `embedding`).
    ///
    /// # Errors
    /// candle's error with a message when `config.embedding` is not 1 to [`MAX_EMBEDDING`],
    /// `config.width` is not 1 to 1024, or `config.dropout` is not at least 0 and below 1;
    /// otherwise candle's errors from creating the variables in `vb`.
    pub fn new(config: ModelConfig, vb: &VarBuilder) -> Result<EmbeddingNet> {
        if config.embedding == 0 || config.embedding > MAX_EMBEDDING {
            candle_core::bail!(
                "the embedding size must be 1 to {MAX_EMBEDDING}, not {}",
                config.embedding
            );
        }
        if config.width == 0 || config.width > 1024 {
            candle_core::bail!(
                "the small network's width must be 1 to 1024, not {}",
                config.width
            );
        }
        if !(0.0..1.0).contains(&config.dropout) {
            candle_core::bail!(
                "dropout must be at least 0 and below 1, not {}",
                config.dropout
            );
        }
        let (trunk, features) = match config.arch {
            Architecture::Small => {
                let t = small::SmallCnn::new(vb, config.width, config.bn)?;
                let f = t.features();
                (Trunk::Small(t), f)
            }
            Architecture::ResNet18 | Architecture::ResNet50 => {
                let t = if config.arch == Architecture::ResNet18 {
                    resnet::ResNet::resnet18(vb, config.bn)?
                } else {
                    resnet::ResNet::resnet50(vb, config.bn)?
                };
                let f = t.features();
                (Trunk::ResNet(Box::new(t)), f)
            }
            Architecture::GoogLeNet => (
                Trunk::GoogLeNet(Box::new(googlenet::GoogLeNet::new(vb, config.bn)?)),
                1024,
            ),
            Architecture::BnInception => (
                Trunk::BnInception(Box::new(bninception::BnInception::new(vb, config.bn)?)),
                1024,
            ),
        };
        let head = candle_nn::linear(features, config.embedding, vb.pp("embedding"))?;
        Ok(EmbeddingNet {
            trunk,
            head,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The trunk's pooled features: [N, 3, H, W] → [N, F].
    ///
    /// # Errors
    /// candle's errors from the trunk's tensor operations, for instance when `x` is not a batch of
    /// 3-channel images.
    pub fn features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match &self.trunk {
            Trunk::Small(t) => t.forward(x, train),
            Trunk::ResNet(t) => t.forward(x, train),
            Trunk::GoogLeNet(t) => t.forward(x, train),
            Trunk::BnInception(t) => t.forward(x, train),
        }
    }

    /// Embeddings: [N, 3, H, W] → [N, D]. With `train`, batch norm (unless frozen) uses the
    /// batch's statistics and updates its running ones; dropout is applied only by
    /// [`EmbeddingNet::forward_train`].
    ///
    /// # Errors
    /// candle's errors from the tensor operations, as for [`EmbeddingNet::features`].
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.head.forward(&self.features(x, train)?)
    }

    /// A training pass: [`EmbeddingNet::forward`] with `train`, plus dropout before the head
    /// with its mask drawn from `rng` (so that a resumed run draws the same masks).
    ///
    /// # Errors
    /// candle's errors from the tensor operations, as for [`EmbeddingNet::features`].
    pub fn forward_train(&self, x: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let f = self.features(x, true)?;
        let p = self.config.dropout;
        if p <= 0.0 {
            return self.head.forward(&f);
        }
        if p >= 1.0 {
            candle_core::bail!("dropout {p} must be below 1");
        }
        let scale = 1.0 / (1.0 - p);
        let mask: Vec<f32> = (0..f.elem_count())
            .map(|_| if rng.random::<f32>() < p { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, f.shape(), f.device())?.to_dtype(f.dtype())?;
        self.head.forward(&(f * mask)?)
    }
}

/// The variables an optimiser updates, in two groups.
#[derive(Debug, Clone)]
pub struct ParameterGroups {
    /// Trunk parameters (named `…`).
    pub trunk: Vec<(String, candle_core::Var)>,
    /// Embedding-head parameters (named `embedding.…`).
    pub head: Vec<(String, candle_core::Var)>,
}

/// Splits a network's variables into trunk and head, leaving out batch-norm running statistics
/// (updated by the forward pass, not by gradients) and, when batch norm is frozen, its affine
/// parameters.
pub fn parameter_groups(varmap: &VarMap, bn: BnMode) -> ParameterGroups {
    let data = varmap
        .data()
        .lock()
        .expect("the variable map is not poisoned");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut groups = ParameterGroups {
        trunk: Vec::new(),
        head: Vec::new(),
    };
    for name in names {
        let is_running = name.ends_with("running_mean") || name.ends_with("running_var");
        let is_bn_affine = (name.ends_with(".weight") || name.ends_with(".bias")) && is_norm(name);
        if is_running || (bn == BnMode::Frozen && is_bn_affine) {
            continue;
        }
        let var = data[name].clone();
        if name.starts_with("embedding.") {
            groups.head.push((name.clone(), var));
        } else {
            groups.trunk.push((name.clone(), var));
        }
    }
    groups
}

/// Whether a variable belongs to a batch-norm layer (by torchvision's and our names).
fn is_norm(name: &str) -> bool {
    let layer = name.rsplit_once('.').map_or("", |(l, _)| l);
    let last = layer.rsplit('.').next().unwrap_or("");
    // torchvision's `bn`, `bn1`…, `downsample.1`; Cadene's `<conv>_bn`.
    last.starts_with("bn")
        || last.ends_with("_bn")
        || last == "downsample.1"
        || layer.ends_with("downsample.1")
}
