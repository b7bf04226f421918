//! 2-D convolution whose forward pass and both gradients are matrix products, on every device.
//!
//! candle 0.11 computes a convolution's input gradient with `conv_transpose2d`, a direct kernel
//! (one dot product per output on the CPU, one thread per output on CUDA), which made the
//! backward pass of an ImageNet network about 10× its forward pass. Here:
//! - on the CPU, [`cpu`]'s kernels run the forward pass, the input gradient (weightᵀ · grad,
//!   then col2im) and the weight gradient (grad · im2colᵀ) as one GEMM per image;
//! - on other devices, the forward pass is candle's `conv2d` (im2col and cuBLAS, or cuDNN with
//!   candle's `cudnn` feature) and the gradients are themselves forward convolutions: the input
//!   gradient convolves the zero-dilated output gradient with the flipped, transposed weight,
//!   and the weight gradient is candle's own batch-as-channels convolution.
//!
//! [`Conv`] is the layer the networks use, with candle-nn's parameter names and initial values.

mod cpu;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};

use super::cpu_slice::contiguous_f32;

/// The shapes of one convolution (square kernels' sizes kept per axis for clarity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    /// The geometry of `input` `[B, C_in, H, W]` convolved by `weight` `[C_out, C_in, k, k]`.
    fn new(input: &Shape, weight: &Shape, stride: usize, padding: usize) -> Result<Geometry> {
        let (batch, cin, h, w) = input.dims4()?;
        let (cout, wcin, kh, kw) = weight.dims4()?;
        if wcin != cin {
            candle_core::bail!("conv2d: input has {cin} channels, the weight expects {wcin}")
        }
        if stride == 0 || kh == 0 || kw == 0 || cin == 0 || cout == 0 {
            candle_core::bail!("conv2d: stride, kernel and channels must be positive")
        }
        if h + 2 * padding < kh || w + 2 * padding < kw {
            candle_core::bail!(
                "conv2d: a {h}×{w} input padded by {padding} is smaller than the {kh}×{kw} kernel"
            )
        }
        Ok(Geometry {
            batch,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride,
            padding,
            ho: (h + 2 * padding - kh) / stride + 1,
            wo: (w + 2 * padding - kw) / stride + 1,
        })
    }

    /// A 1×1 convolution with stride 1 and no padding: the image itself is its im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    fn output_shape(&self) -> Shape {
        (self.batch, self.cout, self.ho, self.wo).into()
    }
}

/// `x` `[B, C_in, H, W]` convolved by `weight` `[C_out, C_in, k_h, k_w]` with zero padding
/// `padding` on every side and stride `stride` (no dilation, no groups): `[B, C_out, H_out,
/// W_out]`, with gradients for both.
///
/// # Errors
/// When the shapes do not fit (not 4-D, channels that differ, an input smaller than the
/// kernel), when the tensors are not f32 on the CPU, and candle's errors on other devices.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_bias_relu(x, weight, None, stride, padding, false)
}

/// [`conv2d`], plus a per-channel `bias` `[C_out]` if given, then a ReLU if `relu`: on the CPU
/// one pass over the output, and one over its gradient, instead of three of each.
///
/// # Errors
/// [`conv2d`]'s, and a bias that is not `[C_out]`.
pub fn conv2d_bias_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    relu: bool,
) -> Result<Tensor> {
    let geometry = Geometry::new(x.shape(), weight.shape(), stride, padding)?;
    if let Some(bias) = bias
        && bias.dims() != [geometry.cout]
    {
        candle_core::bail!(
            "conv2d: the bias has shape {:?}, the weight {} output channels",
            bias.dims(),
            geometry.cout
        )
    }
    if x.device().is_cpu() {
        let bias = match bias {
            Some(bias) => bias.contiguous()?,
            None => Tensor::zeros(geometry.cout, x.dtype(), x.device())?,
        };
        let op = ConvOnCpu { geometry, relu };
        x.contiguous()?.apply_op3(&weight.contiguous()?, &bias, op)
    } else {
        let y = device::conv2d(x, weight, geometry)?;
        let y = match bias {
            Some(bias) => y.broadcast_add(&bias.reshape((1, (), 1, 1))?)?,
            None => y,
        };
        if relu { y.relu() } else { Ok(y) }
    }
}

/// (input, weight, bias) → the convolution, biased and rectified if asked, on the CPU, with
/// [`cpu`]'s kernels for the gradients.
#[derive(Debug, Clone, Copy)]
struct ConvOnCpu {
    geometry: Geometry,
    relu: bool,
}

impl CustomOp3 for ConvOnCpu {
    fn name(&self) -> &'static str {
        "conv2d-gemm"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(input, input_layout, "conv2d")?;
        let weight = contiguous_f32(weight, weight_layout, "conv2d")?;
        let bias = contiguous_f32(bias, bias_layout, "conv2d")?;
        let output = cpu::forward(&self.geometry, input, weight, bias, self.relu);
        Ok((CpuStorage::F32(output), self.geometry.output_shape()))
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.geometry;
        let grad = if self.relu {
            grad.contiguous()?
                .apply_op2_no_bwd(output, &ReluGradOnCpu)?
        } else {
            grad.contiguous()?
        };
        // The first layer's input is the batch, which needs no gradient.
        let input_grad = if input.track_op() {
            Some(grad.apply_op2_no_bwd(weight, &InputGradOnCpu(g))?)
        } else {
            None
        };
        let weight_grad = if weight.track_op() {
            Some(input.apply_op2_no_bwd(&grad, &WeightGradOnCpu(g))?)
        } else {
            None
        };
        let bias_grad = if bias.track_op() {
            Some(grad.sum(3)?.sum(2)?.sum(0)?)
        } else {
            None
        };
        Ok((input_grad, weight_grad, bias_grad))
    }
}

/// (gradient, output) → the gradient where the rectified output is positive, else 0.
#[derive(Debug, Clone, Copy)]
struct ReluGradOnCpu;

impl CustomOp2 for ReluGradOnCpu {
    fn name(&self) -> &'static str {
        "relu-grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        output: &CpuStorage,
        output_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let grad = contiguous_f32(grad, grad_layout, "conv2d")?;
        let output = contiguous_f32(output, output_layout, "conv2d")?;
        let masked = grad
            .iter()
            .zip(output)
            .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(masked), grad_layout.shape().clone()))
    }
}

/// (output gradient, weight) → input gradient, on the CPU.
#[derive(Debug, Clone, Copy)]
struct InputGradOnCpu(Geometry);

impl CustomOp2 for InputGradOnCpu {
    fn name(&self) -> &'static str {
        "conv2d-gemm-input-grad"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        grad_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let grad = contiguous_f32(grad, grad_layout, "conv2d")?;
        let weight = contiguous_f32(weight, weight_layout, "conv2d")?;
        let input_grad = cpu::input_grad(g, grad, weight);
        Ok((
            CpuStorage::F32(input_grad),
            (g.batch, g.cin, g.h, g.w).into(),
        ))
    }
}

/// (input, output gradient) → weight gradient, on the CPU.
#[derive(Debug, Clone, Copy)]
struct WeightGradOnCpu(Geometry);

impl CustomOp2 for WeightGradOnCpu {
    fn name(&self) -> &'static str {
        "conv2d-gemm-weight-grad"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let input = contiguous_f32(input, input_layout, "conv2d")?;
        let grad = contiguous_f32(grad, grad_layout, "conv2d")?;
        let weight_grad = cpu::weight_grad(g, input, grad);
        Ok((
            CpuStorage::F32(weight_grad),
            (g.cout, g.cin, g.kh, g.kw).into(),
        ))
    }
}

/// The path for devices other than the CPU: candle's forward convolution for the values and
/// for both gradients.
mod device {
    use candle_core::{CustomOp3, Result, Tensor};

    use super::Geometry;

    pub(super) fn conv2d(x: &Tensor, weight: &Tensor, g: Geometry) -> Result<Tensor> {
        let output = x
            .detach()
            .conv2d(&weight.detach(), g.padding, g.stride, 1, 1)?;
        x.apply_op3(weight, &output, WithGemmGradients(g))
    }

    /// Passes the precomputed output through, and gives the gradients as forward convolutions.
    #[derive(Debug, Clone, Copy)]
    struct WithGemmGradients(Geometry);

    impl CustomOp3 for WithGemmGradients {
        fn name(&self) -> &'static str {
            "conv2d-gemm-gradients"
        }

        fn cpu_fwd(
            &self,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
            _: &candle_core::CpuStorage,
            _: &candle_core::Layout,
            output: &candle_core::CpuStorage,
            output_layout: &candle_core::Layout,
        ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
            use candle_core::backend::BackendStorage;
            Ok((
                output.try_clone(output_layout)?,
                output_layout.shape().clone(),
            ))
        }

        #[cfg(feature = "cuda")]
        fn cuda_fwd(
            &self,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
            _: &candle_core::CudaStorage,
            _: &candle_core::Layout,
            output: &candle_core::CudaStorage,
            output_layout: &candle_core::Layout,
        ) -> Result<(candle_core::CudaStorage, candle_core::Shape)> {
            use candle_core::backend::BackendStorage;
            Ok((
                output.try_clone(output_layout)?,
                output_layout.shape().clone(),
            ))
        }

        fn bwd(
            &self,
            input: &Tensor,
            weight: &Tensor,
            _: &Tensor,
            _: &Tensor,
            grad: &Tensor,
        ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
            let input_grad = if input.track_op() {
                Some(input_grad(grad, weight, self.0)?)
            } else {
                None
            };
            let weight_grad = if weight.track_op() {
                Some(weight_grad(input, grad, self.0)?)
            } else {
                None
            };
            Ok((input_grad, weight_grad, None))
        }
    }

    /// Inserts `stride − 1` zeros between neighbours along `dim` (3 or 4 of a 4-D tensor).
    fn dilate(x: &Tensor, dim: usize, stride: usize) -> Result<Tensor> {
        if stride == 1 {
            return Ok(x.clone());
        }
        let len = x.dim(dim)?;
        let x = x.unsqueeze(dim + 1)?;
        let mut zeros_shape = x.dims().to_vec();
        zeros_shape[dim + 1] = stride - 1;
        let zeros = Tensor::zeros(zeros_shape, x.dtype(), x.device())?;
        let mut shape = x.dims().to_vec();
        shape.remove(dim + 1);
        shape[dim] = len * stride;
        Tensor::cat(&[&x, &zeros], dim + 1)?
            .reshape(shape)?
            .narrow(dim, 0, (len - 1) * stride + 1)
    }

    /// The input gradient of the padded input is the output gradient, dilated by the stride and
    /// padded by k − 1 before and by what the stride left uncovered after, correlated with the
    /// weight flipped in space and with input and output channels swapped; the input's own
    /// gradient is its middle, which the crop to `padding .. padding + size + k − 1` gives.
    fn input_grad(grad: &Tensor, weight: &Tensor, g: Geometry) -> Result<Tensor> {
        let dilated = dilate(&dilate(&grad.detach(), 2, g.stride)?, 3, g.stride)?;
        let pad_and_crop = |t: Tensor, dim: usize, k: usize, size: usize| -> Result<Tensor> {
            let uncovered = size + 2 * g.padding - t.dim(dim)?;
            t.pad_with_zeros(dim, k - 1, uncovered)?
                .narrow(dim, g.padding, size + k - 1)
        };
        let padded = pad_and_crop(dilated, 2, g.kh, g.h)?;
        let padded = pad_and_crop(padded, 3, g.kw, g.w)?;
        let flipped = flip(&flip(&weight.detach(), 2)?, 3)?
            .transpose(0, 1)?
            .contiguous()?;
        padded.conv2d(&flipped, 0, 1, 1, 1)
    }

    /// Reverses `x` along `dim`.
    fn flip(x: &Tensor, dim: usize) -> Result<Tensor> {
        let len = x.dim(dim)?;
        let reversed: Vec<u32> = (0..len as u32).rev().collect();
        let index = Tensor::new(reversed.as_slice(), x.device())?;
        x.index_select(&index, dim)
    }

    /// The weight gradient: the input with batch and channels swapped, convolved by the output
    /// gradient likewise swapped, dilated by the stride (candle's own formula for `conv2d`).
    fn weight_grad(input: &Tensor, grad: &Tensor, g: Geometry) -> Result<Tensor> {
        let swapped = input
            .detach()
            .transpose(0, 1)?
            .conv2d(&grad.detach().transpose(0, 1)?, g.padding, 1, g.stride, 1)?
            .transpose(0, 1)?;
        swapped.narrow(2, 0, g.kh)?.narrow(3, 0, g.kw)
    }
}

/// A convolution layer with candle-nn's variable names (`weight`, and `bias` if it has one) and
/// initial values, run by [`conv2d`].
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv {
    /// A `kernel`×`kernel` convolution from `cin` to `cout` channels under `vb`.
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn new(
        vb: VarBuilder,
        (cin, cout, kernel): (usize, usize, usize),
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Conv> {
        let weight = vb.get_with_hints(
            (cout, cin, kernel, kernel),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bias = if bias {
            let bound = 1.0 / (cin as f64).sqrt();
            let init = Init::Uniform {
                lo: -bound,
                up: bound,
            };
            Some(vb.get_with_hints(cout, "bias", init)?)
        } else {
            None
        };
        Ok(Conv {
            weight,
            bias,
            stride,
            padding,
        })
    }

    /// A convolution with the given `weight` `[C_out, C_in, k, k]` and `bias` `[C_out]`.
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Conv {
        Conv {
            weight,
            bias,
            stride,
            padding,
        }
    }

    /// Applies it to `x` `[B, C_in, H, W]`, then a ReLU if `relu`.
    ///
    /// # Errors
    /// [`conv2d`]'s.
    pub fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        conv2d_bias_relu(
            x,
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            self.padding,
            relu,
        )
    }

    /// Applies it followed by the per-channel affine map `y·scale + shift` (a batch norm with
    /// fixed statistics), folded into the convolution's weight and bias, then a ReLU if `relu`.
    /// Gradients reach the convolution's own parameters; `scale` and `shift` get none.
    ///
    /// # Errors
    /// [`conv2d`]'s, and `scale` or `shift` that are not `[C_out]`.
    pub fn forward_scaled(
        &self,
        x: &Tensor,
        (scale, shift): (&Tensor, &Tensor),
        relu: bool,
    ) -> Result<Tensor> {
        let (scale, shift) = (scale.detach(), shift.detach());
        let weight = self.weight.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
        let bias = match &self.bias {
            Some(bias) => ((bias * &scale)? + shift)?,
            None => shift,
        };
        conv2d_bias_relu(x, &weight, Some(&bias), self.stride, self.padding, relu)
    }
}

#[cfg(test)]
mod tests;
