//! Building blocks shared by the networks: convolution + batch norm with torchvision's names,
//! batch norm that can be frozen, and pooling with PyTorch's padding and ceil-mode rules.

use candle_core::{D, Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, VarBuilder};

/// Whether batch-norm layers learn during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BnMode {
    /// Batch statistics in training, running averages updated (PyTorch's train mode).
    Train,
    /// Running averages always, never updated, affine parameters not trained (as the MLRC and
    /// Proxy-Anchor's CUB/CARS recipes do).
    Frozen,
}

/// A batch-norm layer that follows [`BnMode`].
#[derive(Debug, Clone)]
pub struct Norm {
    bn: BatchNorm,
    mode: BnMode,
}

impl Norm {
    /// A batch-norm layer over `channels` with `eps`, under `vb` (`weight`, `bias`,
    /// `running_mean`, `running_var`).
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn new(channels: usize, eps: f64, mode: BnMode, vb: VarBuilder) -> Result<Norm> {
        let config = BatchNormConfig {
            eps,
            ..Default::default()
        };
        Ok(Norm {
            bn: candle_nn::batch_norm(channels, config, vb)?,
            mode,
        })
    }

    /// Applies it; `train` is whether the network is training.
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` does not have the layer's
    /// channels.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.bn.forward_t(x, train && self.mode == BnMode::Train)
    }
}

/// A convolution without bias followed by batch norm (torchvision's `BasicConv2d` names it
/// `conv` + `bn`; ResNet names them separately, so both paths are given).
#[derive(Debug, Clone)]
pub struct ConvBn {
    conv: Conv2d,
    norm: Norm,
}

impl ConvBn {
    /// `conv` at `vb.pp(conv_name)`, batch norm at `vb.pp(bn_name)`.
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: &VarBuilder,
        conv_name: &str,
        bn_name: &str,
        (cin, cout, kernel): (usize, usize, usize),
        stride: usize,
        padding: usize,
        eps: f64,
        mode: BnMode,
    ) -> Result<ConvBn> {
        let config = Conv2dConfig {
            stride,
            padding,
            ..Default::default()
        };
        Ok(ConvBn {
            conv: candle_nn::conv2d_no_bias(cin, cout, kernel, config, vb.pp(conv_name))?,
            norm: Norm::new(cout, eps, mode, vb.pp(bn_name))?,
        })
    }

    /// Convolution then batch norm (no activation).
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` is not 4-D or does not
    /// have the convolution's input channels.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.norm.forward(&self.conv.forward(x)?, train)
    }
}

/// Max pooling with PyTorch's `padding` and `ceil_mode`. Inputs must be non-negative (they
/// follow a ReLU everywhere it is used), so zero padding equals PyTorch's −∞ padding.
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` is not 4-D.
pub fn max_pool(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    ceil_mode: bool,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let out = |size: usize| {
        let span = size + 2 * padding - kernel;
        let mut o = if ceil_mode {
            span.div_ceil(stride) + 1
        } else {
            span / stride + 1
        };
        // PyTorch: the last window must start inside the input or the left padding.
        if ceil_mode && (o - 1) * stride >= size + padding {
            o -= 1;
        }
        o
    };
    let (oh, ow) = (out(h), out(w));
    let need = |o: usize, size: usize| ((o - 1) * stride + kernel).saturating_sub(size + padding);
    let x = x.pad_with_zeros(D::Minus2, padding, need(oh, h))?;
    let x = x.pad_with_zeros(D::Minus1, padding, need(ow, w))?;
    x.max_pool2d_with_stride(kernel, stride)
}

/// Global average pooling: [N, C, H, W] → [N, C].
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` has fewer than 2 dimensions.
pub fn global_average(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}
