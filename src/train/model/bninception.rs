//! BN-Inception (Inception with batch normalisation, Ioffe and Szegedy 2015) as published in
//! Cadene's pretrained-models (`pretrainedmodels/models/bninception.py`), with its parameter
//! names (`conv1_7x7_s2`, `conv1_7x7_s2_bn`, `inception_3a_1x1`, …) so that its ImageNet weights
//! load by name. Every convolution has a bias and is followed by batch norm (ε = 1e-5) and a
//! ReLU; the pools of the standard blocks are 3×3 averages over zero padding (counted), the last
//! block's a max, and the two reduction blocks pass a strided max pool through. The network
//! returns the 1024 globally averaged features of `inception_5b`.
//!
//! Its weights expect BGR pixels in 0–255 minus [104, 117, 128]; the trunk converts the
//! loader's ImageNet-normalised RGB to that first ([`caffe_bgr`]).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::conv::Conv;
use super::layers::{BnMode, Norm, average_pool, conv_norm, global_average, max_pool};

const EPS: f64 = 1e-5;
/// ImageNet's mean and std, which the loader normalises with.
const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const STD: [f64; 3] = [0.229, 0.224, 0.225];
/// The Caffe model's per-channel mean, in B, G, R order.
const CAFFE_MEAN_BGR: [f64; 3] = [104.0, 117.0, 128.0];

/// A convolution with bias `name`, then batch norm `name_bn` and a ReLU.
#[derive(Debug, Clone)]
struct Unit {
    conv: Conv,
    norm: Norm,
}

impl Unit {
    fn new(
        vb: &VarBuilder,
        name: &str,
        (cin, cout, kernel): (usize, usize, usize),
        (stride, padding): (usize, usize),
        bn: BnMode,
    ) -> Result<Unit> {
        Ok(Unit {
            conv: Conv::new(vb.pp(name), (cin, cout, kernel), stride, padding, true)?,
            norm: Norm::new(cout, EPS, bn, vb.pp(format!("{name}_bn")))?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        conv_norm(&self.conv, &self.norm, x, train, true)
    }
}

/// How a block's pool branch pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    /// 3×3 average, stride 1, zero padding 1 counted (the standard blocks).
    Average,
    /// 3×3 max, stride 1, padding 1 (`inception_5b`).
    Max,
}

/// A standard block: 1×1; 1×1 → 3×3; 1×1 → 3×3 → 3×3; pool → 1×1.
#[derive(Debug, Clone)]
struct Block {
    b1: Unit,
    b3: [Unit; 2],
    double: [Unit; 3],
    pool: Pool,
    proj: Unit,
}

/// A reduction block: 1×1 → 3×3 stride 2; 1×1 → 3×3 → 3×3 stride 2; 3×3 max stride 2.
#[derive(Debug, Clone)]
struct Reduction {
    b3: [Unit; 2],
    double: [Unit; 3],
}

#[derive(Debug, Clone)]
enum Stage {
    Block(Box<Block>),
    Reduction(Box<Reduction>),
}

/// The BN-Inception trunk.
#[derive(Debug, Clone)]
pub struct BnInception {
    conv1: Unit,
    conv2_reduce: Unit,
    conv2: Unit,
    stages: Vec<Stage>,
}

impl BnInception {
    /// Builds the trunk under `vb`.
    ///
    /// # Errors
    /// candle's errors from creating the variables.
    pub fn new(vb: &VarBuilder, bn: BnMode) -> Result<BnInception> {
        let unit = |name: &str, shape, sp| Unit::new(vb, name, shape, sp, bn);
        // in, 1x1, 3x3 reduce, 3x3, double reduce, double 3x3, pool, pool projection
        let block = |b: &str, c: [usize; 7], pool: Pool| -> Result<Stage> {
            let n = |s: &str| format!("inception_{b}_{s}");
            Ok(Stage::Block(Box::new(Block {
                b1: unit(&n("1x1"), (c[0], c[1], 1), (1, 0))?,
                b3: [
                    unit(&n("3x3_reduce"), (c[0], c[2], 1), (1, 0))?,
                    unit(&n("3x3"), (c[2], c[3], 3), (1, 1))?,
                ],
                double: [
                    unit(&n("double_3x3_reduce"), (c[0], c[4], 1), (1, 0))?,
                    unit(&n("double_3x3_1"), (c[4], c[5], 3), (1, 1))?,
                    unit(&n("double_3x3_2"), (c[5], c[5], 3), (1, 1))?,
                ],
                pool,
                proj: unit(&n("pool_proj"), (c[0], c[6], 1), (1, 0))?,
            })))
        };
        // in, 3x3 reduce, 3x3, double reduce, double 3x3
        let reduction = |b: &str, c: [usize; 5]| -> Result<Stage> {
            let n = |s: &str| format!("inception_{b}_{s}");
            Ok(Stage::Reduction(Box::new(Reduction {
                b3: [
                    unit(&n("3x3_reduce"), (c[0], c[1], 1), (1, 0))?,
                    unit(&n("3x3"), (c[1], c[2], 3), (2, 1))?,
                ],
                double: [
                    unit(&n("double_3x3_reduce"), (c[0], c[3], 1), (1, 0))?,
                    unit(&n("double_3x3_1"), (c[3], c[4], 3), (1, 1))?,
                    unit(&n("double_3x3_2"), (c[4], c[4], 3), (2, 1))?,
                ],
            })))
        };
        Ok(BnInception {
            conv1: unit("conv1_7x7_s2", (3, 64, 7), (2, 3))?,
            conv2_reduce: unit("conv2_3x3_reduce", (64, 64, 1), (1, 0))?,
            conv2: unit("conv2_3x3", (64, 192, 3), (1, 1))?,
            stages: vec![
                block("3a", [192, 64, 64, 64, 64, 96, 32], Pool::Average)?,
                block("3b", [256, 64, 64, 96, 64, 96, 64], Pool::Average)?,
                reduction("3c", [320, 128, 160, 64, 96])?,
                block("4a", [576, 224, 64, 96, 96, 128, 128], Pool::Average)?,
                block("4b", [576, 192, 96, 128, 96, 128, 128], Pool::Average)?,
                block("4c", [576, 160, 128, 160, 128, 160, 128], Pool::Average)?,
                block("4d", [608, 96, 128, 192, 160, 192, 128], Pool::Average)?,
                reduction("4e", [608, 128, 192, 192, 256])?,
                block("5a", [1056, 352, 192, 320, 160, 224, 128], Pool::Average)?,
                block("5b", [1024, 352, 192, 320, 192, 224, 128], Pool::Max)?,
            ],
        })
    }

    /// Pooled features: ImageNet-normalised RGB [N, 3, H, W] → [N, 1024].
    ///
    /// # Errors
    /// candle's errors from the tensor operations (for instance when `x` is not 4-D).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = caffe_bgr(x)?;
        let x = max_pool(&self.conv1.forward(&x, train)?, 3, 2, 0, true)?;
        let x = self.conv2_reduce.forward(&x, train)?;
        let mut x = max_pool(&self.conv2.forward(&x, train)?, 3, 2, 0, true)?;
        for stage in &self.stages {
            x = match stage {
                Stage::Block(b) => {
                    let y1 = b.b1.forward(&x, train)?;
                    let y3 = b.b3[1].forward(&b.b3[0].forward(&x, train)?, train)?;
                    let yd = chain(&b.double, &x, train)?;
                    let pooled = match b.pool {
                        Pool::Average => average_pool(&x, 3, 1)?,
                        Pool::Max => max_pool(&x, 3, 1, 1, true)?,
                    };
                    let yp = b.proj.forward(&pooled, train)?;
                    Tensor::cat(&[y1, y3, yd, yp], 1)?
                }
                Stage::Reduction(r) => {
                    let y3 = r.b3[1].forward(&r.b3[0].forward(&x, train)?, train)?;
                    let yd = chain(&r.double, &x, train)?;
                    let yp = max_pool(&x, 3, 2, 0, true)?;
                    Tensor::cat(&[y3, yd, yp], 1)?
                }
            };
        }
        global_average(&x)
    }
}

fn chain(units: &[Unit], x: &Tensor, train: bool) -> Result<Tensor> {
    let mut y = x.clone();
    for unit in units {
        y = unit.forward(&y, train)?;
    }
    Ok(y)
}

/// ImageNet-normalised RGB to the Caffe model's input: BGR, 0–255, minus its mean.
///
/// # Errors
/// candle's errors from the tensor operations (for instance when `x` has no 3 channels).
pub fn caffe_bgr(x: &Tensor) -> Result<Tensor> {
    let channels: Vec<Tensor> = (0..3)
        .map(|bgr| {
            let rgb = 2 - bgr;
            x.narrow(1, rgb, 1)?
                .affine(255.0 * STD[rgb], 255.0 * MEAN[rgb] - CAFFE_MEAN_BGR[bgr])
        })
        .collect::<Result<_>>()?;
    Tensor::cat(&channels, 1)
}
