//! [`super::conv2d_bias_relu`] against a direct float64 convolution written out from its
//! definition: values and input, weight and bias gradients, with and without the ReLU, for every kernel, stride and padding the
//! networks use and some odd sizes, on both paths (the CPU kernels and the forward-convolution
//! formulation other devices run). candle's own autograd is no reference: its `conv2d` backward
//! fails when the rows and the columns leave different remainders under the stride (case 7).

use candle_core::{Device, Result, Tensor, Var};

use super::{Geometry, conv2d, conv2d_bias_relu, device};

/// (batch, C_in, H, W, C_out, kernel, stride, padding).
type Case = (usize, usize, usize, usize, usize, usize, usize, usize);

const CASES: [Case; 11] = [
    (2, 3, 17, 15, 4, 7, 2, 3), // every network's stem
    (2, 5, 9, 9, 6, 1, 1, 0),   // pointwise
    (2, 5, 9, 8, 6, 3, 1, 1),   // 3×3 same
    (3, 4, 11, 11, 5, 3, 2, 1), // ResNet's downsampling 3×3
    (2, 4, 10, 10, 3, 1, 2, 0), // ResNet's projection shortcut
    (2, 3, 8, 8, 4, 5, 1, 2),
    (1, 2, 6, 7, 3, 3, 2, 0), // one image: the products share the threads
    (2, 3, 7, 7, 2, 2, 2, 0),
    (2, 2, 5, 5, 3, 3, 3, 2), // padding wider than the stride skips
    (2, 2, 3, 3, 2, 3, 1, 0), // one output
    (4, 16, 6, 6, 8, 3, 1, 1),
];

/// Values and the gradients of `Σ conv(x, w, b) · r` for the input, the weight and the bias.
fn run(
    conv: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
    [x, w, b]: [&Var; 3],
    r: &Tensor,
) -> Result<[Tensor; 4]> {
    let y = conv(x.as_tensor(), w.as_tensor(), b.as_tensor())?;
    let grads = (&y * r)?.sum_all()?.backward()?;
    let grad = |v: &Var| grads.get(v.as_tensor()).expect("a gradient").clone();
    Ok([y, grad(x), grad(w), grad(b)])
}

/// The same four results from the definition, in f64: `z[b,o,i,j] = bias[o] + Σ w[o,c,u,v] ·
/// x[b,c,i·s+u−p, j·s+v−p]`, `y = max(z, 0)` if `relu` else `z`, and the gradients of `Σ y · r`
/// by the chain rule.
fn direct(
    [x, w, bias, r]: [&Tensor; 4],
    stride: usize,
    padding: usize,
    relu: bool,
) -> [Vec<f64>; 4] {
    let to_f64 = |t: &Tensor| -> Vec<f64> {
        let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values.into_iter().map(f64::from).collect()
    };
    let (b, cin, h, wd) = x.dims4().unwrap();
    let (cout, _, k, _) = w.dims4().unwrap();
    let (_, _, ho, wo) = r.dims4().unwrap();
    let (xs, ws, bs, rs) = (to_f64(x), to_f64(w), to_f64(bias), to_f64(r));
    let inside = |i: usize, u: usize, size: usize| -> Option<usize> {
        (i * stride + u).checked_sub(padding).filter(|&v| v < size)
    };
    // Every (output, input, weight) index triple of the sum.
    let mut terms = Vec::new();
    for n in 0..b {
        for o in 0..cout {
            for i in 0..ho {
                for j in 0..wo {
                    for c in 0..cin {
                        for u in 0..k {
                            for v in 0..k {
                                let (Some(iy), Some(ix)) = (inside(i, u, h), inside(j, v, wd))
                                else {
                                    continue;
                                };
                                terms.push((
                                    ((n * cout + o) * ho + i) * wo + j,
                                    ((n * cin + c) * h + iy) * wd + ix,
                                    ((o * cin + c) * k + u) * k + v,
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    let mut y: Vec<f64> = (0..rs.len()).map(|i| bs[i / (ho * wo) % cout]).collect();
    for &(out, xi, wi) in &terms {
        y[out] += ws[wi] * xs[xi];
    }
    let mut grad = rs.clone();
    if relu {
        for (y, g) in y.iter_mut().zip(&mut grad) {
            if *y <= 0.0 {
                *y = 0.0;
                *g = 0.0;
            }
        }
    }
    let (mut dx, mut dw, mut db) = (vec![0f64; xs.len()], vec![0f64; ws.len()], vec![0f64; cout]);
    for &(out, xi, wi) in &terms {
        dx[xi] += ws[wi] * grad[out];
        dw[wi] += xs[xi] * grad[out];
    }
    for (i, g) in grad.iter().enumerate() {
        db[i / (ho * wo) % cout] += g;
    }
    [y, dx, dw, db]
}

#[test]
fn both_paths_equal_the_definition_in_value_and_gradients() -> Result<()> {
    let device = Device::Cpu;
    for (i, &(b, cin, h, w, cout, k, stride, padding)) in CASES.iter().enumerate() {
        let x = Var::randn(0f32, 1.0, (b, cin, h, w), &device)?;
        let weight = Var::randn(0f32, 1.0, (cout, cin, k, k), &device)?;
        let bias = Var::randn(0f32, 1.0, cout, &device)?;
        let (ho, wo) = (
            (h + 2 * padding - k) / stride + 1,
            (w + 2 * padding - k) / stride + 1,
        );
        let r = Tensor::randn(0f32, 1.0, (b, cout, ho, wo), &device)?;
        let geometry = Geometry::new(x.shape(), weight.shape(), stride, padding)?;
        for fused in [false, true] {
            let reference = direct([&x, &weight, &bias, &r], stride, padding, fused);
            let on_cpu = run(
                |x, w, b| conv2d_bias_relu(x, w, Some(b), stride, padding, fused),
                [&x, &weight, &bias],
                &r,
            )?;
            let formulated = run(
                |x, w, b| {
                    let y = device::conv2d(x, w, geometry)?.broadcast_add(&b.reshape((
                        1,
                        (),
                        1,
                        1,
                    ))?)?;
                    if fused { y.relu() } else { Ok(y) }
                },
                [&x, &weight, &bias],
                &r,
            )?;
            for (path, result) in [("cpu", &on_cpu), ("device", &formulated)] {
                let case = format!("case {i} {path} fused {fused}");
                assert_eq!(result[0].dims(), [b, cout, ho, wo], "{case}");
                assert_eq!(result[1].dims(), x.dims(), "{case}");
                assert_eq!(result[2].dims(), weight.dims(), "{case}");
                assert_eq!(result[3].dims(), [cout], "{case}");
                let names = ["output", "input grad", "weight grad", "bias grad"];
                for (what, (got, want)) in names.iter().zip(result.iter().zip(&reference)) {
                    let got = got.flatten_all()?.to_vec1::<f32>()?;
                    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
                    let difference = got
                        .iter()
                        .zip(want)
                        .fold(0f64, |m, (g, w)| m.max((f64::from(*g) - w).abs()));
                    assert!(
                        difference <= 1e-5 * scale,
                        "{case} {what}: max |difference| {difference} (scale {scale})"
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn a_nan_passes_the_relu_and_the_batch_needs_no_gradient_and_bad_shapes_are_refused() -> Result<()>
{
    let device = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &device)?;
    let weight = Var::randn(0f32, 1.0, (4, 3, 3, 3), &device)?;
    let grads = conv2d(&x, weight.as_tensor(), 1, 1)?
        .sum_all()?
        .backward()?;
    assert!(grads.get(&x).is_none());
    assert!(grads.get(weight.as_tensor()).is_some());

    let nan_weight = weight.as_tensor().affine(0.0, f64::NAN)?;
    let y = conv2d_bias_relu(&x, &nan_weight, None, 1, 1, true)?;
    let nans = y.flatten_all()?.to_vec1::<f32>()?;
    assert!(
        nans.iter().all(|v| v.is_nan()),
        "a NaN must survive the ReLU"
    );

    let wrong_channels = Tensor::zeros((4, 2, 3, 3), candle_core::DType::F32, &device)?;
    let error = conv2d(&x, &wrong_channels, 1, 1).unwrap_err().to_string();
    assert!(error.contains("3 channels"), "{error}");
    let too_big = Tensor::zeros((4, 3, 11, 11), candle_core::DType::F32, &device)?;
    let error = conv2d(&x, &too_big, 1, 1).unwrap_err().to_string();
    assert!(error.contains("smaller than the 11×11 kernel"), "{error}");
    let no_channels = Tensor::zeros((0, 3, 3, 3), candle_core::DType::F32, &device)?;
    let error = conv2d(&x, &no_channels, 1, 1).unwrap_err().to_string();
    assert!(error.contains("channels must be positive"), "{error}");
    let half = x.to_dtype(candle_core::DType::F16)?;
    let error = conv2d(
        &half,
        &weight.as_tensor().to_dtype(candle_core::DType::F16)?,
        1,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("f32"), "{error}");
    Ok(())
}
