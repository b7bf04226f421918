//! Normalisation: RGB8 rows to planar `(b / 255 − mean) / std` floats.
//!
//! The loader writes about 620 KB of floats per 227×227 sample, so this is the second-largest
//! cost after JPEG decoding. The value is an affine map of the byte, `b · scale + offset`, which
//! the compiler vectorises (a per-channel lookup table cannot be); where the CPU has AVX2 the same
//! code is compiled a second time for it and chosen at run time.

use super::LoaderError;

/// Per-channel mean and standard deviation, on the 0–1 scale.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalize {
    /// Channel means.
    pub mean: [f32; 3],
    /// Channel standard deviations.
    pub std: [f32; 3],
}

impl Normalize {
    /// ImageNet's statistics, which torchvision's pretrained weights expect.
    pub const IMAGENET: Normalize = Normalize {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// Checks that every mean is finite and every standard deviation finite and positive.
    ///
    /// # Errors
    /// [`LoaderError::Normalize`] when a mean is not finite or a standard deviation is not finite
    /// and positive.
    pub fn validate(&self) -> Result<(), LoaderError> {
        let good = self.mean.iter().all(|m| m.is_finite())
            && self.std.iter().all(|s| s.is_finite() && *s > 0.0);
        if good {
            Ok(())
        } else {
            Err(LoaderError::Normalize {
                mean: self.mean,
                std: self.std,
            })
        }
    }

    /// The map of bytes to normalised values, within 1e-6 of `(b / 255 − mean) / std`.
    pub fn affine(&self) -> Affine {
        Affine {
            scale: std::array::from_fn(|c| 1.0 / (255.0 * self.std[c])),
            offset: std::array::from_fn(|c| -self.mean[c] / self.std[c]),
        }
    }
}

/// `value = byte · scale + offset`, per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    scale: [f32; 3],
    offset: [f32; 3],
}

impl Affine {
    /// Normalises `height` rows of `width` RGB8 pixels, row `y` starting at `rgb[y * stride]`,
    /// into `out` as three planes (`3 · width · height` floats, NCHW), rows reversed if `flip`.
    ///
    /// Rows are written straight into `out` (an L1-resident row buffer copied out with
    /// streaming stores measured 1.7× slower on our machines).
    ///
    /// # Panics
    /// If `rgb` or `out` is too short for the given sizes.
    pub fn image_to_planes(
        &self,
        rgb: &[u8],
        stride: usize,
        (width, height): (usize, usize),
        flip: bool,
        out: &mut [f32],
    ) {
        let plane = width * height;
        assert!(
            out.len() >= 3 * plane
                && (height == 0 || rgb.len() >= (height - 1) * stride + 3 * width),
            "a {width}x{height} image does not fit its buffers"
        );
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for y in 0..height {
            let at = y * width..(y + 1) * width;
            let planes = [&mut r[at.clone()], &mut g[at.clone()], &mut b[at]];
            self.row_to_planes(&rgb[y * stride..y * stride + 3 * width], planes, flip);
        }
    }

    /// One row: interleaved RGB8 to three planes, reversed if `flip`.
    fn row_to_planes(&self, rgb: &[u8], [r, g, b]: [&mut [f32]; 3], flip: bool) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the only requirement of calling a function compiled for AVX2 is a CPU that
            // has it, which was just checked.
            unsafe { self.row_to_planes_avx2(rgb, [r, g, b]) };
        } else {
            self.row_to_planes_portable(rgb, [r, g, b]);
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.row_to_planes_portable(rgb, [r, g, b]);
        if flip {
            r.reverse();
            g.reverse();
            b.reverse();
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn row_to_planes_avx2(&self, rgb: &[u8], planes: [&mut [f32]; 3]) {
        self.row_to_planes_portable(rgb, planes);
    }

    #[inline(always)]
    fn row_to_planes_portable(&self, rgb: &[u8], [r, g, b]: [&mut [f32]; 3]) {
        let Affine { scale, offset } = *self;
        let planes = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut());
        for (px, ((r, g), b)) in rgb.chunks_exact(3).zip(planes) {
            *r = f32::from(px[0]) * scale[0] + offset[0];
            *g = f32::from(px[1]) * scale[1] + offset[1];
            *b = f32::from(px[2]) * scale[2] + offset[2];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_within_1e_6_of_the_definition_whatever_the_alignment_and_direction() {
        let normalize = Normalize {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        };
        let affine = normalize.affine();
        // Two rows of 259 pixels (not a multiple of any vector width, so the vectorised loop's
        // remainder runs too) whose channels run through every byte value in different orders,
        // with 5 bytes of padding at the end of each row.
        let (width, height, stride) = (259, 2, 259 * 3 + 5);
        let mut rgb = vec![0u8; height * stride];
        for y in 0..height {
            for x in 0..width {
                let i = (x + 97 * y) as u32 % 256;
                let at = y * stride + 3 * x;
                rgb[at..at + 3].copy_from_slice(&[i as u8, (255 - i) as u8, (i * 7 % 256) as u8]);
            }
        }
        for flip in [false, true] {
            // Every start alignment of the output buffer.
            for shift in 0..4 {
                let mut buffer = vec![f32::NAN; shift + 3 * width * height];
                let out = &mut buffer[shift..];
                affine.image_to_planes(&rgb, stride, (width, height), flip, out);
                for (c, plane) in out.chunks_exact(width * height).enumerate() {
                    for y in 0..height {
                        for x in 0..width {
                            let source = if flip { width - 1 - x } else { x };
                            let byte = f64::from(rgb[y * stride + 3 * source + c]);
                            let exact = (byte / 255.0 - f64::from(normalize.mean[c]))
                                / f64::from(normalize.std[c]);
                            let got = f64::from(plane[y * width + x]);
                            assert!(
                                (got - exact).abs() <= 1e-6,
                                "channel {c}, row {y}, x {x}, flip {flip}, shift {shift}: {got} against {exact}"
                            );
                        }
                    }
                }
            }
        }
    }
}
