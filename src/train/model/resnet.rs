//! ResNet-18 and ResNet-50 with torchvision's layout and parameter names (`conv1`, `bn1`,
//! `layer1.0.conv1`, …, `downsample.0`/`.1`; ResNet v1.5: the stride is on the 3×3 convolution
//! of a bottleneck), so torchvision weights load by name. The final `fc` is not built: the
//! network returns the pooled features.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{BnMode, ConvBn, global_average, max_pool};

/// Batch-norm epsilon of torchvision's ResNets.
const EPS: f64 = 1e-5;

#[derive(Debug, Clone)]
enum Block {
    Basic {
        c1: ConvBn,
        c2: ConvBn,
        down: Option<ConvBn>,
    },
    Bottleneck {
        c1: ConvBn,
        c2: ConvBn,
        c3: ConvBn,
        down: Option<ConvBn>,
    },
}

impl Block {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (out, down) = match self {
            Block::Basic { c1, c2, down } => {
                (c2.forward(&c1.forward_relu(x, train)?, train)?, down)
            }
            Block::Bottleneck { c1, c2, c3, down } => {
                let y = c1.forward_relu(x, train)?;
                let y = c2.forward_relu(&y, train)?;
                (c3.forward(&y, train)?, down)
            }
        };
        let identity = match down {
            Some(d) => d.forward(x, train)?,
            None => x.clone(),
        };
        (out + identity)?.relu()
    }
}

/// A ResNet trunk.
#[derive(Debug, Clone)]
pub struct ResNet {
    stem: ConvBn,
    layers: Vec<Block>,
    features: usize,
}

impl ResNet {
    /// ResNet-18 (basic blocks 2-2-2-2, 512 features).
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn resnet18(vb: &VarBuilder, bn: BnMode) -> Result<ResNet> {
        ResNet::build(vb, bn, [2, 2, 2, 2], false)
    }

    /// ResNet-50 (bottlenecks 3-4-6-3, 2048 features).
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn resnet50(vb: &VarBuilder, bn: BnMode) -> Result<ResNet> {
        ResNet::build(vb, bn, [3, 4, 6, 3], true)
    }

    fn build(vb: &VarBuilder, bn: BnMode, counts: [usize; 4], bottleneck: bool) -> Result<ResNet> {
        let stem = ConvBn::new(vb, "conv1", "bn1", (3, 64, 7), 2, 3, EPS, bn)?;
        let expansion = if bottleneck { 4 } else { 1 };
        let mut layers = Vec::new();
        let mut cin = 64;
        for (stage, &count) in counts.iter().enumerate() {
            let width = 64 << stage;
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let p = vb.pp(format!("layer{}", stage + 1)).pp(i.to_string());
                let cout = width * expansion;
                let down = if stride != 1 || cin != cout {
                    Some(ConvBn::new(
                        &p,
                        "downsample.0",
                        "downsample.1",
                        (cin, cout, 1),
                        stride,
                        0,
                        EPS,
                        bn,
                    )?)
                } else {
                    None
                };
                let block = if bottleneck {
                    Block::Bottleneck {
                        c1: ConvBn::new(&p, "conv1", "bn1", (cin, width, 1), 1, 0, EPS, bn)?,
                        c2: ConvBn::new(&p, "conv2", "bn2", (width, width, 3), stride, 1, EPS, bn)?,
                        c3: ConvBn::new(&p, "conv3", "bn3", (width, cout, 1), 1, 0, EPS, bn)?,
                        down,
                    }
                } else {
                    Block::Basic {
                        c1: ConvBn::new(&p, "conv1", "bn1", (cin, width, 3), stride, 1, EPS, bn)?,
                        c2: ConvBn::new(&p, "conv2", "bn2", (width, width, 3), 1, 1, EPS, bn)?,
                        down,
                    }
                };
                layers.push(block);
                cin = cout;
            }
        }
        Ok(ResNet {
            stem,
            layers,
            features: cin,
        })
    }

    /// Pooled features: [N, 3, H, W] → [N, F].
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` is not a batch of
    /// 3-channel images.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = max_pool(&self.stem.forward_relu(x, train)?, 3, 2, 1, false)?;
        for block in &self.layers {
            x = block.forward(&x, train)?;
        }
        global_average(&x)
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }
}
