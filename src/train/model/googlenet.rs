//! GoogLeNet (Inception v1), the paper's network, in torchvision's form and with its parameter
//! names (`conv1.conv`, `conv1.bn`, `inception3a.branch1.conv`, …), so torchvision weights load
//! by name. Like torchvision's, each convolution is followed by batch norm (ε = 0.001), the
//! "5×5" branch uses a 3×3 convolution, and pools use ceil mode. The auxiliary classifiers and
//! `fc` are not built: the network returns the 1024 pooled features.
//!
//! torchvision's ImageNet weights were ported from the original Caffe model and expect each
//! channel as `2p − 1`; torchvision builds the pretrained network with `transform_input`, which
//! maps ImageNet-normalised input to that, and so does this trunk, always.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::layers::{BnMode, ConvBn, global_average, max_pool};

const EPS: f64 = 1e-3;

/// torchvision's `BasicConv2d` `name`: a convolution (in, out, kernel) with (stride, padding),
/// then batch norm.
fn basic(
    vb: &VarBuilder,
    name: &str,
    shape: (usize, usize, usize),
    (stride, padding): (usize, usize),
    bn: BnMode,
) -> Result<ConvBn> {
    ConvBn::new(&vb.pp(name), "conv", "bn", shape, stride, padding, EPS, bn)
}

#[derive(Debug, Clone)]
struct Inception {
    b1: ConvBn,
    b2: [ConvBn; 2],
    b3: [ConvBn; 2],
    b4: ConvBn,
}

impl Inception {
    #[allow(clippy::too_many_arguments)]
    fn new(
        vb: &VarBuilder,
        cin: usize,
        c1: usize,
        c3r: usize,
        c3: usize,
        c5r: usize,
        c5: usize,
        pool: usize,
        bn: BnMode,
    ) -> Result<Inception> {
        Ok(Inception {
            b1: basic(vb, "branch1", (cin, c1, 1), (1, 0), bn)?,
            b2: [
                basic(vb, "branch2.0", (cin, c3r, 1), (1, 0), bn)?,
                basic(vb, "branch2.1", (c3r, c3, 3), (1, 1), bn)?,
            ],
            b3: [
                basic(vb, "branch3.0", (cin, c5r, 1), (1, 0), bn)?,
                basic(vb, "branch3.1", (c5r, c5, 3), (1, 1), bn)?,
            ],
            b4: basic(vb, "branch4.1", (cin, pool, 1), (1, 0), bn)?,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let run = |c: &ConvBn, x: &Tensor| c.forward_relu(x, train);
        let y1 = run(&self.b1, x)?;
        let y2 = run(&self.b2[1], &run(&self.b2[0], x)?)?;
        let y3 = run(&self.b3[1], &run(&self.b3[0], x)?)?;
        let y4 = run(&self.b4, &max_pool(x, 3, 1, 1, true)?)?;
        Tensor::cat(&[y1, y2, y3, y4], 1)
    }
}

/// The GoogLeNet trunk.
#[derive(Debug, Clone)]
pub struct GoogLeNet {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    stage3: Vec<Inception>,
    stage4: Vec<Inception>,
    stage5: Vec<Inception>,
}

impl GoogLeNet {
    /// Builds the trunk under `vb`.
    ///
    /// # Errors
    /// candle's errors from creating the variables in `vb` (for instance, one that exists there
    /// with another shape).
    pub fn new(vb: &VarBuilder, bn: BnMode) -> Result<GoogLeNet> {
        let i = |name: &str, c: [usize; 7]| {
            Inception::new(&vb.pp(name), c[0], c[1], c[2], c[3], c[4], c[5], c[6], bn)
        };
        Ok(GoogLeNet {
            conv1: basic(vb, "conv1", (3, 64, 7), (2, 3), bn)?,
            conv2: basic(vb, "conv2", (64, 64, 1), (1, 0), bn)?,
            conv3: basic(vb, "conv3", (64, 192, 3), (1, 1), bn)?,
            stage3: vec![
                i("inception3a", [192, 64, 96, 128, 16, 32, 32])?,
                i("inception3b", [256, 128, 128, 192, 32, 96, 64])?,
            ],
            stage4: vec![
                i("inception4a", [480, 192, 96, 208, 16, 48, 64])?,
                i("inception4b", [512, 160, 112, 224, 24, 64, 64])?,
                i("inception4c", [512, 128, 128, 256, 24, 64, 64])?,
                i("inception4d", [512, 112, 144, 288, 32, 64, 64])?,
                i("inception4e", [528, 256, 160, 320, 32, 128, 128])?,
            ],
            stage5: vec![
                i("inception5a", [832, 256, 160, 320, 32, 128, 128])?,
                i("inception5b", [832, 384, 192, 384, 48, 128, 128])?,
            ],
        })
    }

    /// Pooled features: ImageNet-normalised RGB [N, 3, H, W] → [N, 1024].
    ///
    /// # Errors
    /// candle's errors from the tensor operations, for instance when `x` is not a batch of
    /// 3-channel images.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = transform_input(x)?;
        let x = max_pool(&self.conv1.forward_relu(&x, train)?, 3, 2, 0, true)?;
        let x = self.conv2.forward_relu(&x, train)?;
        let mut x = max_pool(&self.conv3.forward_relu(&x, train)?, 3, 2, 0, true)?;
        for block in &self.stage3 {
            x = block.forward(&x, train)?;
        }
        x = max_pool(&x, 3, 2, 0, true)?;
        for block in &self.stage4 {
            x = block.forward(&x, train)?;
        }
        x = max_pool(&x, 2, 2, 0, true)?;
        for block in &self.stage5 {
            x = block.forward(&x, train)?;
        }
        global_average(&x)
    }
}

/// torchvision's `GoogLeNet._transform_input`: ImageNet-normalised channels to `2p − 1`.
fn transform_input(x: &Tensor) -> Result<Tensor> {
    const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
    const STD: [f64; 3] = [0.229, 0.224, 0.225];
    let channels: Vec<Tensor> = (0..3)
        .map(|c| {
            x.narrow(1, c, 1)?
                .affine(STD[c] / 0.5, (MEAN[c] - 0.5) / 0.5)
        })
        .collect::<Result<_>>()?;
    Tensor::cat(&channels, 1)
}
