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
/// Windows are built from strided slices and element-wise maxima, first along the rows and then
/// along the columns, because candle's `max_pool2d` has no gradient for overlapping windows
/// (every ImageNet network's 3×3 stride-2 pools) and, in candle 0.11, scales the gradient of
/// the others by 1/k². The values are exactly the maxima; where several inputs of a window
/// tie, its gradient is shared among them (PyTorch gives it to the first), which only matters
/// for ties above zero.
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` is not 4-D or is
/// smaller than one window.
pub fn max_pool(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    ceil_mode: bool,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h.min(w) + 2 * padding < kernel {
        candle_core::bail!(
            "a {h}x{w} feature map is smaller than the {kernel}x{kernel} pool; use larger images"
        );
    }
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
    let window = Window {
        kernel,
        stride,
        reduce: |a, b| a.maximum(b),
    };
    let rows = window.apply(&x, 2, oh)?;
    window.apply(&rows, 3, ow)
}

/// Average pooling over `kernel`×`kernel` windows at stride 1 with `padding` zeros counted in
/// the average (PyTorch's `AvgPool2d(kernel, 1, padding)`, `count_include_pad=True`), the
/// output as large as the input when `kernel = 2·padding + 1`. Built from slices and sums
/// because candle's `avg_pool2d` has no gradient for overlapping windows.
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` is not 4-D or is
/// smaller than one window.
pub fn average_pool(x: &Tensor, kernel: usize, padding: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if h.min(w) + 2 * padding < kernel {
        candle_core::bail!(
            "a {h}x{w} feature map is smaller than the {kernel}x{kernel} pool; use larger images"
        );
    }
    let x = x.pad_with_zeros(D::Minus2, padding, padding)?;
    let x = x.pad_with_zeros(D::Minus1, padding, padding)?;
    let window = Window {
        kernel,
        stride: 1,
        reduce: |a, b| a + b,
    };
    let rows = window.apply(&x, 2, h + 2 * padding + 1 - kernel)?;
    window.apply(&rows, 3, w + 2 * padding + 1 - kernel)? / (kernel * kernel) as f64
}

/// Windows of `kernel` elements along one dimension, `stride` apart, each reduced to one value
/// by folding `reduce` over its elements.
struct Window {
    kernel: usize,
    stride: usize,
    reduce: fn(&Tensor, &Tensor) -> Result<Tensor>,
}

impl Window {
    /// The first `count` windows of `x` along `dim`, reduced.
    fn apply(&self, x: &Tensor, dim: usize, count: usize) -> Result<Tensor> {
        let mut folded = every_nth(x, dim, 0, self.stride, count)?;
        for offset in 1..self.kernel {
            folded = (self.reduce)(&folded, &every_nth(x, dim, offset, self.stride, count)?)?;
        }
        Ok(folded)
    }
}

/// Elements `start`, `start + stride`, … (`count` of them) along `dim`: the first column of a
/// `[count, stride]` view, zero-padded at the end where the last row is short.
fn every_nth(x: &Tensor, dim: usize, start: usize, stride: usize, count: usize) -> Result<Tensor> {
    if stride == 1 {
        return x.narrow(dim, start, count);
    }
    let span = count * stride;
    let short = (start + span).saturating_sub(x.dim(dim)?);
    let x = x.pad_with_zeros(dim, 0, short)?.narrow(dim, start, span)?;
    let mut shape = x.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    x.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Global average pooling: [N, C, H, W] → [N, C].
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` has fewer than 2 dimensions.
pub fn global_average(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::max_pool;

    /// The gradient of the sum of `y` with respect to `x`, flattened.
    fn gradient(y: Tensor, x: &Var) -> Vec<f32> {
        let grads = y.sum_all().unwrap().backward().unwrap();
        let grad = grads.get(x.as_tensor()).unwrap();
        grad.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// PyTorch's max pooling, written out: each output the maximum of its window (positions in
    /// the padding skipped), and the gradient of the sum of `weights × output` with respect to
    /// the input, given to each window's first maximum.
    fn reference(
        x: &[f32],
        (h, w): (usize, usize),
        (kernel, stride, padding): (usize, usize, usize),
        (oh, ow): (usize, usize),
        weights: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let mut out = vec![0f32; oh * ow];
        let mut grad = vec![0f32; h * w];
        for i in 0..oh {
            for j in 0..ow {
                let mut best: Option<(f32, usize)> = None;
                for dy in 0..kernel {
                    for dx in 0..kernel {
                        let (y, x_) = (i * stride + dy, j * stride + dx);
                        if y < padding || x_ < padding || y - padding >= h || x_ - padding >= w {
                            continue;
                        }
                        let at = (y - padding) * w + (x_ - padding);
                        if best.is_none_or(|(v, _)| x[at] > v) {
                            best = Some((x[at], at));
                        }
                    }
                }
                let (value, at) = best.unwrap();
                out[i * ow + j] = value;
                grad[at] += weights[i * ow + j];
            }
        }
        (out, grad)
    }

    #[test]
    fn overlapping_pools_match_pytorch_in_value_and_gradient() {
        // Distinct positive inputs, so each window has one maximum, as in real feature maps.
        let (h, w) = (13, 10);
        let values: Vec<f32> = (0..h * w)
            .map(|i| 0.1 + ((i * 7919) % 1009) as f32 / 97.0)
            .collect();
        for (kernel, stride, padding, ceil) in [
            (3, 2, 0, true),
            (3, 2, 1, false),
            (3, 1, 1, true),
            (2, 2, 0, true),
            (3, 3, 0, false),
        ] {
            let x = Var::from_slice(&values, (1, 1, h, w), &Device::Cpu).unwrap();
            let y = max_pool(x.as_tensor(), kernel, stride, padding, ceil).unwrap();
            let (_, _, oh, ow) = y.dims4().unwrap();
            let weights: Vec<f32> = (0..oh * ow).map(|i| 1.0 + i as f32).collect();
            let (want_out, want_grad) = reference(
                &values,
                (h, w),
                (kernel, stride, padding),
                (oh, ow),
                &weights,
            );
            let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got, want_out, "values, {kernel}x{kernel} stride {stride}");
            let weights = Tensor::from_slice(&weights, (1, 1, oh, ow), &Device::Cpu).unwrap();
            let grad = gradient((y * weights).unwrap(), &x);
            assert_eq!(
                grad, want_grad,
                "gradient, {kernel}x{kernel} stride {stride}"
            );
        }
    }

    #[test]
    fn the_same_size_average_pool_counts_the_padding_and_spreads_the_gradient() {
        let (h, w) = (5, 4);
        let values: Vec<f32> = (0..h * w).map(|i| i as f32).collect();
        let x = Var::from_slice(&values, (1, 1, h, w), &Device::Cpu).unwrap();
        let y = super::average_pool(x.as_tensor(), 3, 1).unwrap();
        assert_eq!(y.dims(), [1, 1, h, w]);
        let at = |i: isize, j: isize| {
            if i < 0 || j < 0 || i >= h as isize || j >= w as isize {
                0.0
            } else {
                values[i as usize * w + j as usize]
            }
        };
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..h as isize {
            for j in 0..w as isize {
                let sum: f32 = (-1..=1)
                    .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
                    .map(|(dy, dx)| at(i + dy, j + dx))
                    .sum();
                let value = got[i as usize * w + j as usize];
                assert!((value - sum / 9.0).abs() < 1e-5, "({i}, {j}): {value}");
            }
        }
        // d(sum of outputs)/dx = (number of windows holding x) / 9.
        let grad = gradient(y, &x);
        let windows = |i: usize, size: usize| if i == 0 || i + 1 == size { 2.0 } else { 3.0 };
        for i in 0..h {
            for j in 0..w {
                let want = windows(i, h) * windows(j, w) / 9.0;
                assert!((grad[i * w + j] - want).abs() < 1e-6, "({i}, {j})");
            }
        }
    }
}
