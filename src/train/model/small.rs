//! The small network for the bundled sample: four blocks of 3×3 convolution, batch norm and
//! ReLU (width w, 2w, 4w, 4w), a 2×2 max pool after each of the first three, then global
//! average pooling. With w = 32 it has about 240k parameters before the embedding head.
//!
//! It runs channels-last and computes each convolution as one matrix product over the nine
//! shifted copies of its padded input (im2col built from tensor views), so that both the
//! forward and the backward pass are matrix products: candle's CPU backward of `conv2d` goes
//! through a slow transposed convolution. Parameters keep PyTorch's layout and names
//! (`blocks.i.conv.weight` is [C_out, C_in, 3, 3]; `blocks.i.bn.*`).

use candle_core::{D, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::layers::BnMode;

/// Batch norm over the last (channel) dimension of an `[…, C]` tensor.
#[derive(Debug, Clone)]
struct ChannelNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    mode: BnMode,
}

/// Batch-norm ε and momentum (PyTorch's defaults).
const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

impl ChannelNorm {
    fn new(channels: usize, mode: BnMode, vb: VarBuilder) -> Result<ChannelNorm> {
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        Ok(ChannelNorm {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            mode,
        })
    }

    /// `x` is [M, C].
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (mean, var) = if train && self.mode == BnMode::Train {
            let m = x.dim(0)? as f64;
            let mean = x.mean_keepdim(0)?;
            let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
            let running_mean = ((self.running_mean.as_tensor() * (1.0 - MOMENTUM))?
                + (mean.flatten_all()?.detach() * MOMENTUM)?)?;
            let running_var = ((self.running_var.as_tensor() * (1.0 - MOMENTUM))?
                + (var.flatten_all()?.detach() * (MOMENTUM * m / (m - 1.0)))?)?;
            self.running_mean.set(&running_mean)?;
            self.running_var.set(&running_var)?;
            (mean, var)
        } else {
            (
                self.running_mean.as_detached_tensor().unsqueeze(0)?,
                self.running_var.as_detached_tensor().unsqueeze(0)?,
            )
        };
        let scale = (var + EPS)?
            .sqrt()?
            .recip()?
            .mul(&self.weight.unsqueeze(0)?)?;
        let shift = self.bias.unsqueeze(0)?.sub(&mean.mul(&scale)?)?;
        x.broadcast_mul(&scale)?.broadcast_add(&shift)
    }
}

/// A 3×3 convolution (padding 1, no bias) as one matrix product.
#[derive(Debug, Clone)]
struct Conv3x3 {
    /// [C_out, C_in, 3, 3], PyTorch's layout.
    weight: Tensor,
}

impl Conv3x3 {
    fn new(cin: usize, cout: usize, vb: VarBuilder) -> Result<Conv3x3> {
        let bound = 1.0 / ((cin * 9) as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Ok(Conv3x3 {
            weight: vb.get_with_hints((cout, cin, 3, 3), "weight", init)?,
        })
    }

    /// `x` is [N, H, W, C_in] → [N, H, W, C_out].
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let padded = x.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
        let mut shifted = Vec::with_capacity(9);
        for dy in 0..3 {
            for dx in 0..3 {
                shifted.push(padded.narrow(1, dy, h)?.narrow(2, dx, w)?);
            }
        }
        let columns = Tensor::cat(&shifted, D::Minus1)?.reshape((n * h * w, 9 * c))?;
        let cout = self.weight.dim(0)?;
        // [C_out, C_in, 3, 3] → [3, 3, C_in, C_out] → [9·C_in, C_out], matching the column order.
        let kernel = self.weight.permute((2, 3, 1, 0))?.reshape((9 * c, cout))?;
        columns.matmul(&kernel)?.reshape((n, h, w, cout))
    }
}

/// The small trunk.
#[derive(Debug, Clone)]
pub struct SmallCnn {
    blocks: Vec<(Conv3x3, ChannelNorm)>,
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
                Conv3x3::new(cin, cout, p.pp("conv"))?,
                ChannelNorm::new(cout, bn, p.pp("bn"))?,
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
        let mut x = x.permute((0, 2, 3, 1))?.contiguous()?; // NHWC
        for (i, (conv, norm)) in self.blocks.iter().enumerate() {
            let y = conv.forward(&x)?;
            let (n, h, w, c) = y.dims4()?;
            x = norm
                .forward(&y.reshape((n * h * w, c))?, train)?
                .relu()?
                .reshape((n, h, w, c))?;
            if i + 1 < self.blocks.len() {
                // 2×2 max pool, channels-last.
                x = x.reshape((n, h / 2, 2, w / 2, 2, c))?.max(4)?.max(2)?;
            }
        }
        x.mean(2)?.mean(1)
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.features
    }
}
