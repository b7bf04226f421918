//! The CPU kernels of [`super::conv2d`]: each image's convolution, input gradient and weight
//! gradient as one matrix product (`gemm`, the crate candle's own CPU matmul uses) over its
//! im2col matrix, images spread over rayon's pool.
//!
//! All buffers are contiguous row-major f32 in PyTorch's layouts: images `[B, C_in, H, W]`,
//! weights `[C_out, C_in, k_h, k_w]`, outputs `[B, C_out, H_out, W_out]`. The im2col matrix of an
//! image is `[C_in·k_h·k_w, H_out·W_out]`, its rows in the weight's order, so that the output is
//! `weight · columns` with the weight read as `[C_out, C_in·k_h·k_w]`.

use gemm::Parallelism;
use rayon::prelude::*;

use super::Geometry;

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, each matrix given by its slice and its
/// (row, column) strides in elements.
struct Product<'a> {
    m: usize,
    n: usize,
    k: usize,
    lhs: (&'a [f32], usize, usize),
    rhs: (&'a [f32], usize, usize),
    accumulate: bool,
}

impl Product<'_> {
    /// Runs it into `dst`, a row-major `m × n` matrix.
    fn into(self, dst: &mut [f32], parallelism: Parallelism) {
        let Product {
            m,
            n,
            k,
            lhs,
            rhs,
            accumulate,
        } = self;
        let last = |rows: usize, cols: usize, (rs, cs): (usize, usize)| {
            if rows == 0 || cols == 0 {
                0
            } else {
                (rows - 1) * rs + (cols - 1) * cs + 1
            }
        };
        assert!(dst.len() >= m * n, "destination too short");
        assert!(
            lhs.0.len() >= last(m, k, (lhs.1, lhs.2)),
            "left operand too short"
        );
        assert!(
            rhs.0.len() >= last(k, n, (rhs.1, rhs.2)),
            "right operand too short"
        );
        if m == 0 || n == 0 {
            return;
        }
        // SAFETY: the assertions above show that every element the product reads, at
        // `row·rs + col·cs` for rows and columns inside the stated shapes, lies inside its slice,
        // and that `dst` holds the `m × n` row-major result. `dst` is borrowed mutably, so it
        // cannot alias the operands; `gemm` reads and writes nothing else.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                accumulate,
                lhs.0.as_ptr(),
                lhs.2 as isize,
                lhs.1 as isize,
                rhs.0.as_ptr(),
                rhs.2 as isize,
                rhs.1 as isize,
                if accumulate { 1.0 } else { 0.0 },
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// How to run one product: inside it on every thread when there are fewer images than threads,
/// else one thread per image.
fn inner_parallelism(g: &Geometry) -> Parallelism {
    let threads = rayon::current_num_threads();
    if g.batch < threads {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// For kernel offset `k` along an axis of `size` inputs and `outputs` outputs: the outputs whose
/// input `o·stride + k − padding` lies inside the image, as a range.
fn valid_outputs(
    k: usize,
    size: usize,
    outputs: usize,
    stride: usize,
    padding: usize,
) -> (usize, usize) {
    // First o with o·stride + k ≥ padding; last with o·stride + k − padding ≤ size − 1.
    let first = padding.saturating_sub(k).div_ceil(stride);
    let end = if size + padding > k {
        ((size + padding - k - 1) / stride + 1).min(outputs)
    } else {
        0
    };
    (first.min(end), end)
}

/// Writes the im2col matrix of one image into `columns`.
fn im2col(g: &Geometry, image: &[f32], columns: &mut [f32]) {
    let n = g.ho * g.wo;
    let mut row = 0;
    for c in 0..g.cin {
        let plane = &image[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            let (y0, y1) = valid_outputs(ky, g.h, g.ho, g.stride, g.padding);
            for kx in 0..g.kw {
                let (x0, x1) = valid_outputs(kx, g.w, g.wo, g.stride, g.padding);
                let out = &mut columns[row * n..(row + 1) * n];
                for oy in 0..g.ho {
                    let line = &mut out[oy * g.wo..(oy + 1) * g.wo];
                    if oy < y0 || oy >= y1 || x0 == x1 {
                        line.fill(0.0);
                        continue;
                    }
                    let iy = oy * g.stride + ky - g.padding;
                    let source = &plane[iy * g.w..(iy + 1) * g.w];
                    line[..x0].fill(0.0);
                    line[x1..].fill(0.0);
                    let ix0 = x0 * g.stride + kx - g.padding;
                    if g.stride == 1 {
                        line[x0..x1].copy_from_slice(&source[ix0..ix0 + (x1 - x0)]);
                    } else {
                        for (o, v) in line[x0..x1].iter_mut().enumerate() {
                            *v = source[ix0 + o * g.stride];
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// Adds the im2col-shaped gradient `columns` into one image's gradient (the adjoint of
/// [`im2col`]).
fn col2im(g: &Geometry, columns: &[f32], image: &mut [f32]) {
    image.fill(0.0);
    let n = g.ho * g.wo;
    let mut row = 0;
    for c in 0..g.cin {
        let plane = &mut image[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ky in 0..g.kh {
            let (y0, y1) = valid_outputs(ky, g.h, g.ho, g.stride, g.padding);
            for kx in 0..g.kw {
                let (x0, x1) = valid_outputs(kx, g.w, g.wo, g.stride, g.padding);
                let grad = &columns[row * n..(row + 1) * n];
                row += 1;
                if x0 == x1 {
                    continue;
                }
                for oy in y0..y1 {
                    let iy = oy * g.stride + ky - g.padding;
                    let target = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let line = &grad[oy * g.wo + x0..oy * g.wo + x1];
                    let ix0 = x0 * g.stride + kx - g.padding;
                    if g.stride == 1 {
                        for (t, v) in target[ix0..ix0 + line.len()].iter_mut().zip(line) {
                            *t += v;
                        }
                    } else {
                        for (o, v) in line.iter().enumerate() {
                            target[ix0 + o * g.stride] += v;
                        }
                    }
                }
            }
        }
    }
}

/// The convolution of `input` by `weight`, plus `bias` per output channel, rectified if `relu`:
/// `[B, C_out, H_out, W_out]`.
pub(super) fn forward(
    g: &Geometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    relu: bool,
) -> Vec<f32> {
    let (k, n) = (g.cin * g.kh * g.kw, g.ho * g.wo);
    let mut output = vec![0f32; g.batch * g.cout * n];
    let parallelism = inner_parallelism(g);
    output
        .par_chunks_mut(g.cout * n)
        .zip(input.par_chunks(g.cin * g.h * g.w))
        .for_each_init(
            || vec![0f32; if g.is_pointwise() { 0 } else { k * n }],
            |columns, (out, image)| {
                let columns: &[f32] = if g.is_pointwise() {
                    image
                } else {
                    im2col(g, image, columns);
                    columns
                };
                for (channel, &b) in out.chunks_mut(n).zip(bias) {
                    channel.fill(b);
                }
                Product {
                    m: g.cout,
                    n,
                    k,
                    lhs: (weight, k, 1),
                    rhs: (columns, n, 1),
                    accumulate: true,
                }
                .into(out, parallelism);
                if relu {
                    // Not `max`, which would turn a NaN into 0 and hide it from the trainer's check.
                    out.iter_mut().filter(|v| **v < 0.0).for_each(|v| *v = 0.0);
                }
            },
        );
    output
}

/// The gradient with respect to the input, from the output's gradient `grad`.
pub(super) fn input_grad(g: &Geometry, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, n) = (g.cin * g.kh * g.kw, g.ho * g.wo);
    let mut input_grad = vec![0f32; g.batch * g.cin * g.h * g.w];
    let parallelism = inner_parallelism(g);
    input_grad
        .par_chunks_mut(g.cin * g.h * g.w)
        .zip(grad.par_chunks(g.cout * n))
        .for_each_init(
            || vec![0f32; if g.is_pointwise() { 0 } else { k * n }],
            |columns, (image_grad, out_grad)| {
                // weightᵀ (k × C_out) · grad (C_out × n): the weight read column-major.
                let product = Product {
                    m: k,
                    n,
                    k: g.cout,
                    lhs: (weight, 1, k),
                    rhs: (out_grad, n, 1),
                    accumulate: false,
                };
                if g.is_pointwise() {
                    product.into(image_grad, parallelism);
                } else {
                    product.into(columns, parallelism);
                    col2im(g, columns, image_grad);
                }
            },
        );
    input_grad
}

/// How many partial sums the weight gradient is split into. Fixed, so that the order of the
/// additions, and so the result to the last bit, does not depend on the threads or on how
/// rayon schedules them: runs with the same seed train the same weights.
const WEIGHT_GRAD_PARTS: usize = 16;

/// The gradient with respect to the weight: the sum over images of grad · columnsᵀ, as
/// [`WEIGHT_GRAD_PARTS`] partial sums over consecutive images, added in order.
pub(super) fn weight_grad(g: &Geometry, input: &[f32], grad: &[f32]) -> Vec<f32> {
    let (k, n) = (g.cin * g.kh * g.kw, g.ho * g.wo);
    let parallelism = inner_parallelism(g);
    let per_part = g.batch.div_ceil(WEIGHT_GRAD_PARTS).max(1);
    let partial_sums: Vec<Vec<f32>> = input
        .par_chunks(per_part * g.cin * g.h * g.w)
        .zip(grad.par_chunks(per_part * g.cout * n))
        .map(|(images, out_grads)| {
            let mut columns = vec![0f32; if g.is_pointwise() { 0 } else { k * n }];
            let mut sum = vec![0f32; g.cout * k];
            let pairs = images
                .chunks(g.cin * g.h * g.w)
                .zip(out_grads.chunks(g.cout * n));
            for (i, (image, out_grad)) in pairs.enumerate() {
                let columns_view: &[f32] = if g.is_pointwise() {
                    image
                } else {
                    im2col(g, image, &mut columns);
                    &columns
                };
                // grad (C_out × n) · columnsᵀ (n × k): the columns read column-major.
                Product {
                    m: g.cout,
                    n: k,
                    k: n,
                    lhs: (out_grad, n, 1),
                    rhs: (columns_view, 1, n),
                    accumulate: i > 0,
                }
                .into(&mut sum, parallelism);
            }
            sum
        })
        .collect();
    let mut parts = partial_sums.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0f32; g.cout * k]);
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::valid_outputs;

    #[test]
    fn valid_outputs_are_those_whose_input_is_inside() {
        for size in 1usize..9 {
            for k in 0..5 {
                for stride in 1..4 {
                    for padding in 0..4 {
                        let outputs = (size + 2 * padding).saturating_sub(k + 1) / stride + 1;
                        let inside: Vec<usize> = (0..outputs)
                            .filter(|&o| {
                                let i = (o * stride + k) as isize - padding as isize;
                                i >= 0 && (i as usize) < size
                            })
                            .collect();
                        let (first, end) = valid_outputs(k, size, outputs, stride, padding);
                        let expected: Vec<usize> = (first..end).collect();
                        assert_eq!(inside, expected, "{size} {k} {stride} {padding}");
                    }
                }
            }
        }
    }
}
