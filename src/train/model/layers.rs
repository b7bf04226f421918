//! Building blocks shared by the networks: convolution + batch norm with torchvision's names,
//! batch norm that can be frozen, and pooling with PyTorch's padding and ceil-mode rules.

use candle_core::{D, DType, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::batch_norm_cpu::{BatchNormOnCpu, ChannelStats};

use super::conv::Conv;
use super::max_pool_cpu::MaxPoolOnCpu;

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

/// A batch-norm layer that follows [`BnMode`], with PyTorch's names (`weight`, `bias`,
/// `running_mean`, `running_var`), initial values and momentum (0.1, the running variance
/// updated with the unbiased batch variance).
#[derive(Debug, Clone)]
pub struct Norm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    mode: BnMode,
}

/// PyTorch's batch-norm momentum.
const MOMENTUM: f64 = 0.1;

impl Norm {
    /// A batch-norm layer over `channels` with `eps`, under `vb`.
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn new(channels: usize, eps: f64, mode: BnMode, vb: VarBuilder) -> Result<Norm> {
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
        Ok(Norm {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            // The store's own variables, so that updates reach checkpoints.
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps,
            mode,
        })
    }

    /// Applies it to `x` `[B, C, H, W]`; `train` is whether the network is training.
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` does not have the layer's
    /// channels.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_relu(x, train, false)
    }

    /// [`Norm::forward`], then a ReLU if `relu`.
    ///
    /// # Errors
    /// As [`Norm::forward`].
    pub fn forward_relu(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        let y = match self.fixed_affine(train)? {
            Some((scale, shift)) => x
                .broadcast_mul(&scale.reshape((1, (), 1, 1))?)?
                .broadcast_add(&shift.reshape((1, (), 1, 1))?)?,
            None if x.device().is_cpu() && x.dtype() == DType::F32 => {
                return self.on_batch_on_cpu(x, relu);
            }
            None => self.on_batch(x)?,
        };
        if relu { y.relu() } else { Ok(y) }
    }

    fn uses_batch_statistics(&self, train: bool) -> bool {
        train && self.mode == BnMode::Train
    }

    /// Moves the running averages towards the batch's `mean` and biased `variance` over
    /// `count` values per channel.
    fn update_running(&self, mean: &Tensor, variance: &Tensor, count: usize) -> Result<()> {
        let unbiased = count as f64 / (count.max(2) - 1) as f64;
        let running_mean =
            ((self.running_mean.as_tensor() * (1.0 - MOMENTUM))? + (mean.detach() * MOMENTUM)?)?;
        let running_var = ((self.running_var.as_tensor() * (1.0 - MOMENTUM))?
            + (variance.detach() * (MOMENTUM * unbiased))?)?;
        self.running_mean.set(&running_mean)?;
        self.running_var.set(&running_var)
    }

    /// Batch statistics with candle's tensor operations (devices other than the CPU).
    fn on_batch(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let mean = x.mean_keepdim(3)?.mean_keepdim(2)?.mean_keepdim(0)?;
        let centred = x.broadcast_sub(&mean)?;
        let variance = centred
            .sqr()?
            .mean_keepdim(3)?
            .mean_keepdim(2)?
            .mean_keepdim(0)?;
        self.update_running(&mean.flatten_all()?, &variance.flatten_all()?, b * h * w)?;
        let scale = (variance + self.eps)?
            .sqrt()?
            .recip()?
            .broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?;
        centred
            .broadcast_mul(&scale)?
            .broadcast_add(&self.bias.reshape((1, c, 1, 1))?)
    }

    /// Batch statistics with [`batch_norm_cpu`]'s kernels.
    fn on_batch_on_cpu(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let x = x.contiguous()?;
        let stats = x.apply_op1_no_bwd(&ChannelStats)?;
        self.update_running(&stats.get(0)?, &stats.get(1)?, b * h * w)?;
        let stats: Vec<Vec<f32>> = stats.to_vec2()?;
        let op = BatchNormOnCpu {
            mean: stats[0].clone().into(),
            inv_std: stats[1]
                .iter()
                .map(|&v| (1.0 / (f64::from(v) + self.eps).sqrt()) as f32)
                .collect(),
            relu,
        };
        x.apply_op3(&self.weight, &self.bias, op)
    }

    /// When the layer uses its running statistics (frozen, or not training): the per-channel
    /// `(scale, shift)` with which it maps `x` to `x·scale + shift`, detached.
    ///
    /// # Errors
    /// candle's errors from the tensor operations.
    pub fn fixed_affine(&self, train: bool) -> Result<Option<(Tensor, Tensor)>> {
        if self.uses_batch_statistics(train) {
            return Ok(None);
        }
        let scale = (self.running_var.as_detached_tensor() + self.eps)?
            .sqrt()?
            .recip()?;
        let scale = (scale * self.weight.detach())?;
        let shift = (self.bias.detach() - (self.running_mean.as_detached_tensor() * &scale)?)?;
        Ok(Some((scale, shift)))
    }
}

/// A convolution without bias followed by batch norm (torchvision's `BasicConv2d` names it
/// `conv` + `bn`; ResNet names them separately, so both paths are given).
#[derive(Debug, Clone)]
pub struct ConvBn {
    conv: Conv,
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
        Ok(ConvBn {
            conv: Conv::new(
                vb.pp(conv_name),
                (cin, cout, kernel),
                stride,
                padding,
                false,
            )?,
            norm: Norm::new(cout, eps, mode, vb.pp(bn_name))?,
        })
    }

    /// Convolution then batch norm (no activation).
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` is not 4-D or does not
    /// have the convolution's input channels.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        conv_norm(&self.conv, &self.norm, x, train, false)
    }

    /// Convolution, batch norm, then ReLU.
    ///
    /// # Errors
    /// As [`ConvBn::forward`].
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        conv_norm(&self.conv, &self.norm, x, train, true)
    }
}

/// `conv`, then `norm`, then a ReLU if `relu`. A batch norm on its running statistics is folded
/// into the convolution ([`Conv::forward_scaled`]): one pass over the output instead of five.
///
/// # Errors
/// candle's errors from the tensor operations.
pub fn conv_norm(conv: &Conv, norm: &Norm, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
    match norm.fixed_affine(train)? {
        Some((scale, shift)) => conv.forward_scaled(x, (&scale, &shift), relu),
        None => norm.forward_relu(&conv.forward(x, false)?, train, relu),
    }
}

/// Max pooling with PyTorch's `padding` and `ceil_mode`.
///
/// candle's `max_pool2d` has no gradient for overlapping windows (every ImageNet network's 3×3
/// stride-2 pools) and, in candle 0.11, scales the gradient of the others by 1/k². On the CPU
/// this is one pass ([`MaxPoolOnCpu`]), exactly PyTorch's values and gradients. On other
/// devices, windows are built from strided slices and element-wise maxima, first along the rows
/// and then along the columns, with zero padding: inputs must then be non-negative (they follow
/// a ReLU everywhere it is used), and where several inputs of a window tie, its gradient is
/// shared among them (PyTorch gives it to the first), which only matters for ties above zero.
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
    if h.min(w) + 2 * padding < kernel || h.min(w) == 0 {
        candle_core::bail!(
            "a {h}x{w} feature map is smaller than the {kernel}x{kernel} pool; use larger images"
        );
    }
    // As PyTorch: otherwise a window could hold only padding.
    if stride == 0 || 2 * padding > kernel {
        candle_core::bail!(
            "a {kernel}x{kernel} pool needs a positive stride and padding at most half its size, \
             not stride {stride} and padding {padding}"
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
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        let op = MaxPoolOnCpu {
            kernel,
            stride,
            padding,
            out: (oh, ow),
        };
        return x.contiguous()?.apply_op1(op);
    }
    max_pool_from_slices(x, (kernel, stride, padding), (oh, ow))
}

/// [`max_pool`] built from strided slices and element-wise maxima, for devices other than the
/// CPU; `out` is the output's size.
fn max_pool_from_slices(
    x: &Tensor,
    (kernel, stride, padding): (usize, usize, usize),
    (oh, ow): (usize, usize),
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
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

    use super::{max_pool, max_pool_from_slices};

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
            let sliced =
                max_pool_from_slices(x.as_tensor(), (kernel, stride, padding), (oh, ow)).unwrap();
            let weights: Vec<f32> = (0..oh * ow).map(|i| 1.0 + i as f32).collect();
            let (want_out, want_grad) = reference(
                &values,
                (h, w),
                (kernel, stride, padding),
                (oh, ow),
                &weights,
            );
            for (path, y) in [("cpu", y), ("slices", sliced)] {
                let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
                assert_eq!(
                    got, want_out,
                    "{path} values, {kernel}x{kernel} stride {stride}"
                );
                let weights = Tensor::from_slice(&weights, (1, 1, oh, ow), &Device::Cpu).unwrap();
                let grad = gradient((y * weights).unwrap(), &x);
                assert_eq!(
                    grad, want_grad,
                    "{path} gradient, {kernel}x{kernel} stride {stride}"
                );
            }
        }
    }

    #[test]
    fn pools_that_would_read_only_padding_or_an_empty_map_are_refused() {
        let x = Tensor::zeros((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = max_pool(&x, 2, 2, 2, false).unwrap_err().to_string();
        assert!(error.contains("at most half"), "{error}");
        let error = max_pool(&x, 2, 0, 0, false).unwrap_err().to_string();
        assert!(error.contains("positive stride"), "{error}");
        let empty = Tensor::zeros((1, 1, 0, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let error = max_pool(&empty, 1, 1, 1, false).unwrap_err().to_string();
        assert!(error.contains("smaller than"), "{error}");
    }

    #[test]
    fn on_the_cpu_negative_inputs_and_ties_pool_as_in_pytorch() {
        // Negative values (padding must not win) and many ties (the first maximum takes the
        // gradient), over two planes.
        let (h, w) = (7, 6);
        let values: Vec<f32> = (0..2 * h * w).map(|i| -((i % 5) as f32) - 0.5).collect();
        for (kernel, stride, padding, ceil) in [(3, 2, 1, false), (3, 1, 1, true), (3, 2, 0, true)]
        {
            let x = Var::from_slice(&values, (1, 2, h, w), &Device::Cpu).unwrap();
            let y = max_pool(x.as_tensor(), kernel, stride, padding, ceil).unwrap();
            let (_, _, oh, ow) = y.dims4().unwrap();
            let weights: Vec<f32> = (0..2 * oh * ow).map(|i| 1.0 + i as f32).collect();
            let mut want_out = Vec::new();
            let mut want_grad = Vec::new();
            for plane in 0..2 {
                let (out, grad) = reference(
                    &values[plane * h * w..(plane + 1) * h * w],
                    (h, w),
                    (kernel, stride, padding),
                    (oh, ow),
                    &weights[plane * oh * ow..(plane + 1) * oh * ow],
                );
                want_out.extend(out);
                want_grad.extend(grad);
            }
            let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got, want_out, "values, {kernel}x{kernel} stride {stride}");
            let weights = Tensor::from_slice(&weights, (1, 2, oh, ow), &Device::Cpu).unwrap();
            let grad = gradient((y * weights).unwrap(), &x);
            assert_eq!(
                grad, want_grad,
                "gradient, {kernel}x{kernel} stride {stride}"
            );
        }
    }

    /// Train-mode batch norm on the CPU kernels against the tensor formulation other devices run:
    /// values, gradients of x, γ and β, and running statistics, with and without the ReLU, on
    /// features offset by 10; and the CPU statistics against float64 at an offset of 1000
    /// (where E[x²] − E[x]² would lose the variance).
    #[test]
    fn batch_norm_on_the_cpu_equals_the_tensor_formulation() {
        use candle_core::DType;
        use candle_nn::{VarBuilder, VarMap};

        let device = Device::Cpu;
        let (b, c, h, w) = (3, 4, 5, 6);
        let x = (Tensor::randn(0f32, 2.0, (b, c, h, w), &device).unwrap() + 10.0).unwrap();
        let x = Var::from_tensor(&x).unwrap();
        let r = Tensor::randn(0f32, 1.0, (b, c, h, w), &device).unwrap();
        for relu in [false, true] {
            let mut results = Vec::new();
            for on_cpu in [true, false] {
                let varmap = VarMap::new();
                let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
                let norm = super::Norm::new(c, 1e-5, super::BnMode::Train, vb).unwrap();
                // Non-trivial affine parameters.
                let gamma = Tensor::new(&[0.5f32, 1.5, -1.0, 2.0], &device).unwrap();
                Var::from_tensor(&norm.weight).unwrap().set(&gamma).unwrap();
                let y = if on_cpu {
                    norm.on_batch_on_cpu(x.as_tensor(), relu).unwrap()
                } else {
                    let y = norm.on_batch(x.as_tensor()).unwrap();
                    if relu { y.relu().unwrap() } else { y }
                };
                let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                results.push([
                    flat(&y),
                    flat(grads.get(x.as_tensor()).unwrap()),
                    flat(grads.get(&norm.weight).unwrap()),
                    flat(grads.get(&norm.bias).unwrap()),
                    flat(norm.running_mean.as_tensor()),
                    flat(norm.running_var.as_tensor()),
                ]);
            }
            let names = [
                "y",
                "x grad",
                "γ grad",
                "β grad",
                "running mean",
                "running var",
            ];
            for (name, (cpu, tensors)) in names.iter().zip(results[0].iter().zip(&results[1])) {
                let scale = tensors.iter().fold(1f32, |m, v| m.max(v.abs()));
                for (a, b) in cpu.iter().zip(tensors) {
                    assert!(
                        (a - b).abs() <= 2e-4 * scale,
                        "relu {relu} {name}: {a} vs {b}"
                    );
                }
            }
            // The running variance moved towards the batch's variance (about 4).
            let running_var = &results[0][5];
            assert!(
                running_var
                    .iter()
                    .all(|v| (0.9 * 1.0 + 0.1 * 2.5..1.0 + 0.1 * 6.0).contains(v)),
                "{running_var:?}"
            );
        }
    }

    #[test]
    fn channel_statistics_are_exact_far_from_zero() {
        let device = Device::Cpu;
        let x = (Tensor::randn(0f32, 2.0, (3, 2, 5, 6), &device).unwrap() + 1000.0).unwrap();
        let stats = x.apply_op1_no_bwd(&super::ChannelStats).unwrap();
        let stats: Vec<Vec<f32>> = stats.to_vec2().unwrap();
        let flat: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        for (ch, (&mean_got, &var_got)) in stats[0].iter().zip(&stats[1]).enumerate() {
            let channel: Vec<f64> = (0..3)
                .flat_map(|b| (0..30).map(move |i| (b * 2 + ch) * 30 + i))
                .map(|i| f64::from(flat[i]))
                .collect();
            let mean = channel.iter().sum::<f64>() / 90.0;
            let var = channel.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 90.0;
            assert!((f64::from(mean_got) - mean).abs() < 1e-3, "mean {ch}");
            assert!(
                (f64::from(var_got) - var).abs() < 1e-4 * var,
                "var {ch}: {var_got} vs {var}"
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
