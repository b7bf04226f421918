//! Batch norm on batch statistics on the CPU, `[B, C, H, W]` f32: one pass for the statistics,
//! one for the output (with the ReLU that follows it, if asked), and two for the gradients,
//! instead of candle's dozen element-wise ops and copies each way.
//!
//! With `x̂ = (x − mean)·inv_std` over the M = B·H·W values of a channel and `y = γ·x̂ + β`:
//! `∂β = Σ g`, `∂γ = Σ g·x̂`, `∂x = γ·inv_std·(g − ∂β/M − x̂·∂γ/M)`, where `g` is the output's
//! gradient (zero where the ReLU cut).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::contiguous_f32;

/// For each channel `c`, `f(c, starts)` with the offsets of the channel's `B` planes of
/// `plane` values, in parallel over channels.
fn per_channel_planes<T: Send>(
    (batch, channels, plane): (usize, usize, usize),
    f: impl Fn(usize, &mut dyn Iterator<Item = usize>) -> T + Sync,
) -> Vec<T> {
    (0..channels)
        .into_par_iter()
        .map(|c| f(c, &mut (0..batch).map(|b| (b * channels + c) * plane)))
        .collect()
}

/// `[B, C, H, W]` → `[2, C]`: each channel's mean and (biased) variance, in f64 sums.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChannelStats;

impl CustomOp1 for ChannelStats {
    fn name(&self) -> &'static str {
        "channel-stats"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = layout.shape().dims4()?;
        let x = contiguous_f32(storage, layout, "batch norm")?;
        let count = (b * h * w) as f64;
        let plane = h * w;
        // Two passes, the mean and then the squared deviations from it, in f64 across planes:
        // E[x²] − E[x]² loses the variance of features far from zero.
        let stats = per_channel_planes((b, c, plane), |_, starts| {
            let starts: Vec<usize> = starts.collect();
            let planes = || starts.iter().map(|&s| &x[s..s + plane]);
            let sum: f64 = planes().map(|p| f64::from(p.iter().sum::<f32>())).sum();
            let mean = sum / count;
            let squares: f64 = planes()
                .map(|p| {
                    let m = mean as f32;
                    f64::from(p.iter().map(|&v| (v - m) * (v - m)).sum::<f32>())
                })
                .sum();
            (mean, squares / count)
        });
        let mut out: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
        out.extend(stats.iter().map(|s| s.1 as f32));
        Ok((CpuStorage::F32(out), (2, c).into()))
    }
}

/// (x, γ, β) → `γ·x̂ + β`, rectified if `relu`, with the batch's `mean` and `inv_std` given.
#[derive(Debug, Clone)]
pub(super) struct BatchNormOnCpu {
    pub(super) mean: Arc<[f32]>,
    pub(super) inv_std: Arc<[f32]>,
    pub(super) relu: bool,
}

impl CustomOp3 for BatchNormOnCpu {
    fn name(&self) -> &'static str {
        "batch-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        gamma: &CpuStorage,
        gamma_layout: &Layout,
        beta: &CpuStorage,
        beta_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = x_layout.shape().dims4()?;
        let (x, gamma, beta) = (
            contiguous_f32(x, x_layout, "batch norm")?,
            contiguous_f32(gamma, gamma_layout, "batch norm")?,
            contiguous_f32(beta, beta_layout, "batch norm")?,
        );
        let plane = h * w;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .for_each(|(i, (out, input))| {
                let ch = i % c;
                let scale = gamma[ch] * self.inv_std[ch];
                let shift = beta[ch] - self.mean[ch] * scale;
                for (o, &v) in out.iter_mut().zip(input) {
                    let value = v * scale + shift;
                    // Not `max`, which would turn a NaN into 0.
                    *o = if self.relu && value < 0.0 { 0.0 } else { value };
                }
            });
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let sums = x.apply_op3_no_bwd(&grad, y, &GradSums(self.clone()))?;
        let per_channel: Vec<Vec<f32>> = sums.to_vec2()?;
        let input_grad = InputGrad {
            norm: self.clone(),
            gamma: gamma.to_vec1::<f32>()?.into(),
            grad_sum: per_channel[0].clone().into(),
            grad_xhat_sum: per_channel[1].clone().into(),
        };
        let x_grad = x.apply_op3_no_bwd(&grad, y, &input_grad)?;
        Ok((Some(x_grad), Some(sums.get(1)?), Some(sums.get(0)?)))
    }
}

impl BatchNormOnCpu {
    /// The output gradient where the ReLU passed it.
    fn passed(&self, g: f32, y: f32) -> f32 {
        if self.relu && y <= 0.0 { 0.0 } else { g }
    }
}

/// (x, output gradient, output) → `[2, C]`: each channel's `Σ g` and `Σ g·x̂`.
#[derive(Debug, Clone)]
struct GradSums(BatchNormOnCpu);

impl CustomOp3 for GradSums {
    fn name(&self) -> &'static str {
        "batch-norm-grad-sums"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = x_layout.shape().dims4()?;
        let plane = h * w;
        let (x, grad, y) = (
            contiguous_f32(x, x_layout, "batch norm")?,
            contiguous_f32(grad, grad_layout, "batch norm")?,
            contiguous_f32(y, y_layout, "batch norm")?,
        );
        let norm = &self.0;
        let sums = per_channel_planes((b, c, plane), |ch, offsets| {
            let (mut sum_g, mut sum_gx) = (0f64, 0f64);
            for start in offsets {
                let (mut s, mut sx) = (0f32, 0f32);
                for i in start..start + plane {
                    let g = norm.passed(grad[i], y[i]);
                    s += g;
                    sx += g * (x[i] - norm.mean[ch]);
                }
                sum_g += f64::from(s);
                sum_gx += f64::from(sx) * f64::from(norm.inv_std[ch]);
            }
            (sum_g as f32, sum_gx as f32)
        });
        let mut out: Vec<f32> = sums.iter().map(|s| s.0).collect();
        out.extend(sums.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), (2, c).into()))
    }
}

/// (x, output gradient, output) → the input gradient, given γ and the sums of [`GradSums`].
#[derive(Debug, Clone)]
struct InputGrad {
    norm: BatchNormOnCpu,
    gamma: Arc<[f32]>,
    grad_sum: Arc<[f32]>,
    grad_xhat_sum: Arc<[f32]>,
}

impl CustomOp3 for InputGrad {
    fn name(&self) -> &'static str {
        "batch-norm-input-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = x_layout.shape().dims4()?;
        let plane = h * w;
        let count = (b * plane) as f32;
        let (x, grad, y) = (
            contiguous_f32(x, x_layout, "batch norm")?,
            contiguous_f32(grad, grad_layout, "batch norm")?,
            contiguous_f32(y, y_layout, "batch norm")?,
        );
        let norm = &self.norm;
        let mut x_grad = vec![0f32; x.len()];
        x_grad
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(p, out)| {
                let ch = p % c;
                let (mean, inv_std) = (norm.mean[ch], norm.inv_std[ch]);
                let factor = self.gamma[ch] * inv_std;
                let mean_g = self.grad_sum[ch] / count;
                let mean_gx = self.grad_xhat_sum[ch] / count;
                let start = p * plane;
                for (i, o) in (start..start + plane).zip(out.iter_mut()) {
                    let xhat = (x[i] - mean) * inv_std;
                    *o = factor * (norm.passed(grad[i], y[i]) - mean_g - xhat * mean_gx);
                }
            });
        Ok((CpuStorage::F32(x_grad), x_layout.shape().clone()))
    }
}
