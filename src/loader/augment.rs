//! Per-sample augmentation (crops, flips), written straight into a batch buffer and normalised
//! there by [`super::normalize`].
//!
//! - [`Augment::RandomCrop`]: the paper's training input, a random `size`×`size` crop (227 from
//!   images stored at 256) and a horizontal flip with probability ½ (flips can be turned off,
//!   as for glyphs, where a mirrored `b` is a `d`).
//! - [`Augment::RandomResizedCrop`]: torchvision's `RandomResizedCrop(size, scale, ratio)` (ten
//!   tries at a random area share and log-uniform aspect ratio, then the centre crop of the
//!   clamped ratio), resized bilinearly to `size`×`size`, plus the flip.
//! - [`Augment::CenterCrop`]: the evaluation input, the centre `size`×`size` crop, placed as
//!   torchvision places it (offsets rounded half to even).
//!
//! An image smaller than `size` on a side is first scaled up so its short side is `size`.
//! All randomness comes from the stream passed in, which the loader keys by (seed, epoch,
//! batch, position), so the output does not depend on the thread that computes it.

use super::{LoaderError, SampleError};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::batch::Layout;
use super::normalize::Affine;

/// How a sample is cropped.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Augment {
    /// A random `size`×`size` crop and, if `flip`, a random horizontal flip (the paper's).
    RandomCrop {
        /// Output side.
        size: u32,
        /// Flip horizontally with probability ½.
        flip: bool,
    },
    /// torchvision's RandomResizedCrop plus, if `flip`, a random horizontal flip.
    RandomResizedCrop {
        /// Output side.
        size: u32,
        /// Range of the crop's share of the image area.
        scale: (f32, f32),
        /// Range of the crop's aspect ratio (width / height).
        ratio: (f32, f32),
        /// Flip horizontally with probability ½.
        flip: bool,
    },
    /// The centre `size`×`size` crop (evaluation).
    CenterCrop {
        /// Output side.
        size: u32,
    },
}

impl Augment {
    /// Checks the settings: a side of 1 to [`crate::shard::MAX_SIZE`], and for
    /// RandomResizedCrop an area share range within (0, 1] and a positive ratio range, each with
    /// its low end first.
    ///
    /// # Errors
    /// [`LoaderError::OutputSize`] when the side is 0 or over [`crate::shard::MAX_SIZE`];
    /// [`LoaderError::CropRange`] when a RandomResizedCrop's scale or ratio range is empty or out
    /// of bounds.
    pub fn validate(&self) -> Result<(), LoaderError> {
        let size = self.size();
        if size == 0 || size > crate::shard::MAX_SIZE {
            return Err(LoaderError::OutputSize(size));
        }
        if let Augment::RandomResizedCrop { scale, ratio, .. } = *self {
            let good_scale = scale.0 > 0.0 && scale.0 <= scale.1 && scale.1 <= 1.0;
            let good_ratio = ratio.0 > 0.0 && ratio.0 <= ratio.1 && ratio.1.is_finite();
            if !good_scale || !good_ratio {
                return Err(LoaderError::CropRange { scale, ratio });
            }
        }
        Ok(())
    }

    /// The output side.
    pub fn size(&self) -> u32 {
        match *self {
            Augment::RandomCrop { size, .. }
            | Augment::RandomResizedCrop { size, .. }
            | Augment::CenterCrop { size } => size,
        }
    }
}

/// A crop rectangle in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Buffers one worker reuses from sample to sample.
#[derive(Default)]
pub struct Scratch {
    resizer: Resizer,
    scaled: Vec<u8>,
}

/// Draws the crop rectangle and flip for a `width`×`height` image.
pub fn plan(augment: &Augment, width: u32, height: u32, rng: &mut ChaCha8Rng) -> (Crop, bool) {
    match *augment {
        Augment::RandomCrop { size, flip } => {
            let x = rng.random_range(0..=width - size);
            let y = rng.random_range(0..=height - size);
            let flip = flip && rng.random_bool(0.5);
            (
                Crop {
                    x,
                    y,
                    width: size,
                    height: size,
                },
                flip,
            )
        }
        Augment::CenterCrop { size } => {
            let x = round_half_even_half(width - size);
            let y = round_half_even_half(height - size);
            (
                Crop {
                    x,
                    y,
                    width: size,
                    height: size,
                },
                false,
            )
        }
        Augment::RandomResizedCrop {
            scale, ratio, flip, ..
        } => {
            let crop = random_resized_crop(width, height, scale, ratio, rng);
            let flip = flip && rng.random_bool(0.5);
            (crop, flip)
        }
    }
}

/// `round(d / 2)` with halves to even, as Python's `round` (torchvision's CenterCrop).
fn round_half_even_half(d: u32) -> u32 {
    let half = d / 2;
    if d.is_multiple_of(2) || half.is_multiple_of(2) {
        half
    } else {
        half + 1
    }
}

/// torchvision's `RandomResizedCrop.get_params`.
fn random_resized_crop(
    width: u32,
    height: u32,
    scale: (f32, f32),
    ratio: (f32, f32),
    rng: &mut ChaCha8Rng,
) -> Crop {
    let area = (width * height) as f32;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * aspect).sqrt().round() as u32;
        let h = (target / aspect).sqrt().round() as u32;
        if 0 < w && w <= width && 0 < h && h <= height {
            let x = rng.random_range(0..=width - w);
            let y = rng.random_range(0..=height - h);
            return Crop {
                x,
                y,
                width: w,
                height: h,
            };
        }
    }
    // Fallback: the whole image's centre at the nearest allowed ratio.
    let in_ratio = width as f32 / height as f32;
    let (w, h) = if in_ratio < ratio.0 {
        (width, ((width as f32 / ratio.0).round() as u32).max(1))
    } else if in_ratio > ratio.1 {
        (((height as f32 * ratio.1).round() as u32).max(1), height)
    } else {
        (width, height)
    };
    Crop {
        x: (width - w) / 2,
        y: (height - h) / 2,
        width: w,
        height: h,
    }
}

/// The side lengths after scaling `width`×`height` up so that its short side is at least `size`.
pub fn fit_at_least(width: u32, height: u32, size: u32) -> (u32, u32) {
    let short = width.min(height);
    if short >= size {
        return (width, height);
    }
    let scale = |v: u32| (u64::from(v) * u64::from(size)).div_ceil(u64::from(short)) as u32;
    (scale(width).max(size), scale(height).max(size))
}

/// Writes one augmented sample into its slot of a batch buffer.
///
/// `pixels` is a `width`×`height` RGB8 image; `out` is the sample's slot (`3·S·S` values).
///
/// # Errors
/// [`SampleError::TooLarge`] when scaling the image up to the crop would take it over
/// [`crate::imageio::MAX_PIXELS`]; [`SampleError::Resize`] when the resizer fails.
#[allow(clippy::too_many_arguments)]
pub fn render(
    augment: &Augment,
    pixels: &[u8],
    width: u32,
    height: u32,
    rng: &mut ChaCha8Rng,
    affine: &Affine,
    out: Slot<'_>,
    scratch: &mut Scratch,
) -> Result<(), SampleError> {
    let size = augment.size();
    let (fw, fh) = fit_at_least(width, height, size);
    if u64::from(fw) * u64::from(fh) > crate::imageio::MAX_PIXELS {
        return Err(SampleError::TooLarge {
            width,
            height,
            scaled_width: fw,
            scaled_height: fh,
            size,
        });
    }
    let (source, sw, sh): (&[u8], u32, u32) = if (fw, fh) == (width, height) {
        (pixels, width, height)
    } else {
        resize_into(
            &mut scratch.resizer,
            &mut scratch.scaled,
            pixels,
            width,
            height,
            None,
            fw,
            fh,
        )?;
        (&scratch.scaled[..], fw, fh)
    };
    let (crop, flip) = plan(augment, sw, sh, rng);
    if crop.width == size && crop.height == size {
        write_crop(source, sw, crop, flip, affine, out);
        return Ok(());
    }
    // A resized crop: scale the rectangle to size×size first.
    let mut resized = Vec::new();
    resize_into(
        &mut scratch.resizer,
        &mut resized,
        source,
        sw,
        sh,
        Some(crop),
        size,
        size,
    )?;
    let whole = Crop {
        x: 0,
        y: 0,
        width: size,
        height: size,
    };
    write_crop(&resized, size, whole, flip, affine, out);
    Ok(())
}

/// A sample's slot in a batch buffer.
pub enum Slot<'a> {
    /// Planar `3·S·S` normalised floats (NCHW).
    F32(&'a mut [f32]),
    /// Interleaved `S·S·3` bytes (NHWC).
    U8(&'a mut [u8]),
}

impl Slot<'_> {
    /// The layout of this slot.
    pub fn layout(&self) -> Layout {
        match self {
            Slot::F32(_) => Layout::NchwF32,
            Slot::U8(_) => Layout::NhwcU8,
        }
    }
}

/// Copies `crop` of a `src_width`-wide RGB8 image into `out`, flipped if asked.
fn write_crop(src: &[u8], src_width: u32, crop: Crop, flip: bool, affine: &Affine, out: Slot<'_>) {
    let (w, h) = (crop.width as usize, crop.height as usize);
    let stride = src_width as usize * 3;
    match out {
        Slot::F32(out) => {
            let first = crop.y as usize * stride + crop.x as usize * 3;
            affine.image_to_planes(&src[first..], stride, (w, h), flip, out);
        }
        Slot::U8(out) => {
            for y in 0..h {
                let start = (crop.y as usize + y) * stride + crop.x as usize * 3;
                let row = &src[start..start + w * 3];
                let dst = &mut out[y * w * 3..(y + 1) * w * 3];
                if flip {
                    for (x, px) in row.chunks_exact(3).enumerate() {
                        let dx = (w - 1 - x) * 3;
                        dst[dx..dx + 3].copy_from_slice(px);
                    }
                } else {
                    dst.copy_from_slice(row);
                }
            }
        }
    }
}

/// Resizes (a crop of) a `width`×`height` RGB8 image to `tw`×`th` into `out`.
#[allow(clippy::too_many_arguments)]
fn resize_into(
    resizer: &mut Resizer,
    out: &mut Vec<u8>,
    pixels: &[u8],
    width: u32,
    height: u32,
    crop: Option<Crop>,
    tw: u32,
    th: u32,
) -> Result<(), SampleError> {
    let needed = tw as usize * th as usize * 3;
    out.resize(needed, 0);
    let failed = |e| SampleError::Resize(Box::new(e));
    let src = ImageRef::new(width, height, pixels, PixelType::U8x3).map_err(failed)?;
    let mut dst =
        Image::from_slice_u8(tw, th, &mut out[..needed], PixelType::U8x3).map_err(failed)?;
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    if let Some(c) = crop {
        options = options.crop(
            f64::from(c.x),
            f64::from(c.y),
            f64::from(c.width),
            f64::from(c.height),
        );
    }
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(|e| SampleError::Resize(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_offsets_round_half_to_even() {
        // Python: round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(3.5) = 4.
        assert_eq!([1, 3, 5, 7, 4].map(round_half_even_half), [0, 2, 2, 4, 2]);
    }

    #[test]
    fn small_images_are_scaled_up_to_the_crop() {
        assert_eq!(fit_at_least(32, 48, 28), (32, 48));
        assert_eq!(fit_at_least(20, 30, 28), (28, 42));
    }
}
