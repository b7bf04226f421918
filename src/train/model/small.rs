//! The small network for the bundled sample: four blocks of 3×3 convolution, batch norm and
//! ReLU (width w, 2w, 4w, 4w), a 2×2 max pool after each of the first three, then global
//! average pooling. With w = 32 it has about 240k parameters before the embedding head.
//!
//! Its layers are the ImageNet networks' ([`super::conv`], [`super::layers`]). Parameters have
//! PyTorch's layout and names (`blocks.i.conv.weight` is [C_out, C_in, 3, 3]; `blocks.i.bn.*`).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::conv::Conv;
use super::layers::{BnMode, Norm, conv_norm, max_pool};

/// Batch-norm ε (PyTorch's default).
const EPS: f64 = 1e-5;

/// A 3×3 convolution, padding 1, no bias, with PyTorch's default initial weights
/// (uniform in ±1/√(9·C_in)).
fn conv3x3(cin: usize, cout: usize, vb: VarBuilder) -> Result<Conv> {
    let bound = 1.0 / ((cin * 9) as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((cout, cin, 3, 3), "weight", init)?;
    Ok(Conv::from_parts(weight, None, 1, 1))
}

/// The small trunk.
#[derive(Debug, Clone)]
pub struct SmallCnn {
    blocks: Vec<(Conv, Norm)>,
    features: usize,
}

impl SmallCnn {
    /// Builds the trunk with base width `width`.
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn new(vb: &VarBuilder, width: usize, bn: BnMode) -> Result<SmallCnn> {
        let widths = [width, 2 * width, 4 * width, 4 * width];
        let mut cin = 3;
        let mut blocks = Vec::new();
        for (i, &cout) in widths.iter().enumerate() {
            let p = vb.pp(format!("blocks.{i}"));
            blocks.push((
                conv3x3(cin, cout, p.pp("conv"))?,
                Norm::new(cout, EPS, bn, p.pp("bn"))?,
            ));
            cin = cout;
        }
        Ok(SmallCnn {
            blocks,
            features: cin,
        })
    }

    /// Pooled features: [N, 3, H, W] → [N, 4w].
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` is not a batch of
    /// 3-channel images.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, (conv, norm)) in self.blocks.iter().enumerate() {
            x = conv_norm(conv, norm, &x, train, true)?;
            if i + 1 < self.blocks.len() {
                x = max_pool(&x, 2, 2, 0, false)?;
            }
        }
        x.mean(3)?.mean(2)
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }
}
