//! Max pooling on the CPU as one pass over the input, and its gradient as one more: each window's
//! gradient goes to its first maximum, in row-major order, as in PyTorch. Windows cover only the
//! input (padding never wins), so any input, negative or not, pools as PyTorch's `MaxPool2d`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::contiguous_f32;

/// One pooling: `[planes, h, w]` (batch and channels flattened) into `[planes, oh, ow]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct MaxPoolOnCpu {
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) padding: usize,
    pub(super) out: (usize, usize),
}

impl MaxPoolOnCpu {
    /// The input range one output reads along an axis of `size`.
    fn window(&self, o: usize, size: usize) -> std::ops::Range<usize> {
        let start = o * self.stride;
        let first = start.saturating_sub(self.padding);
        let end = (start + self.kernel).saturating_sub(self.padding).min(size);
        first..end.max(first)
    }

    /// The flat position of the first maximum of output (oy, ox) in `plane` (`h × w`).
    fn argmax(&self, plane: &[f32], (h, w): (usize, usize), oy: usize, ox: usize) -> usize {
        let mut best = None::<(usize, f32)>;
        for y in self.window(oy, h) {
            for x in self.window(ox, w) {
                let v = plane[y * w + x];
                // A NaN wins, as in PyTorch, so that it propagates.
                if best.is_none_or(|(_, b)| v > b || v.is_nan() && !b.is_nan()) {
                    best = Some((y * w + x, v));
                }
            }
        }
        best.map_or(0, |(i, _)| i)
    }
}

impl CustomOp1 for MaxPoolOnCpu {
    fn name(&self) -> &'static str {
        "max-pool"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = layout.shape().dims4()?;
        let input = contiguous_f32(storage, layout, "max_pool")?;
        let (oh, ow) = self.out;
        let mut output = vec![0f32; b * c * oh * ow];
        output
            .par_chunks_mut(oh * ow)
            .zip(input.par_chunks(h * w))
            .for_each(|(out, plane)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        out[oy * ow + ox] = plane[self.argmax(plane, (h, w), oy, ox)];
                    }
                }
            });
        Ok((CpuStorage::F32(output), (b, c, oh, ow).into()))
    }

    fn bwd(&self, input: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(input.apply_op2_no_bwd(&grad.contiguous()?, self)?))
    }
}

/// (input, output gradient) → input gradient.
impl CustomOp2 for MaxPoolOnCpu {
    fn name(&self) -> &'static str {
        "max-pool-grad"
    }

    fn cpu_fwd(
        &self,
        input: &CpuStorage,
        input_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = input_layout.shape().dims4()?;
        let input = contiguous_f32(input, input_layout, "max_pool")?;
        let grad = contiguous_f32(grad, grad_layout, "max_pool")?;
        let (oh, ow) = self.out;
        let mut input_grad = vec![0f32; b * c * h * w];
        input_grad
            .par_chunks_mut(h * w)
            .zip(input.par_chunks(h * w).zip(grad.par_chunks(oh * ow)))
            .for_each(|(plane_grad, (plane, out_grad))| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        plane_grad[self.argmax(plane, (h, w), oy, ox)] += out_grad[oy * ow + ox];
                    }
                }
            });
        Ok((CpuStorage::F32(input_grad), input_layout.shape().clone()))
    }
}
