//! Turning one image file into one sample: decode, optionally crop to the bounding box,
//! resize, optionally pad to a white square, encode.
//!
//! Resizing is bilinear with antialiasing (fast_image_resize's convolution), as torchvision's
//! `Resize` and Pillow's `BILINEAR` do. Output sizes are rounded to the nearest pixel with
//! integer arithmetic, so they are the same on every machine.

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::catalog::BBox;
use crate::imageio::{DecodeError, Format, decode_rgb8, jpeg, sniff_format};
use crate::shard::{CropMode, Encoding, Preprocess, ResizeMode};

/// Why one image cannot be packed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read it")]
    Read(#[source] crate::fsutil::ReadError),
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The bounding box misses the image.
    #[error(
        "the bounding box ({x}, {y}, {width}x{height}) lies outside the {image_width}x{image_height} image"
    )]
    BoxOutside {
        /// Box left.
        x: f32,
        /// Box top.
        y: f32,
        /// Box width.
        width: f32,
        /// Box height.
        height: f32,
        /// Image width.
        image_width: u32,
        /// Image height.
        image_height: u32,
    },
    /// Cropping to a box was asked for, and the image has none.
    #[error("no bounding box for this image")]
    NoBox,
    /// The target size cannot be reached from this image.
    #[error("a {width}x{height} image cannot be scaled to {size} with {mode}")]
    Unscalable {
        /// Width (after cropping).
        width: u32,
        /// Height (after cropping).
        height: u32,
        /// The target size.
        size: u32,
        /// The resize rule.
        mode: &'static str,
    },
    /// Resizing failed (the resizer's own error is the source).
    #[error("resizing failed")]
    Resize(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Encoding failed.
    #[error("JPEG encoding failed")]
    Encode(#[source] crate::imageio::jpeg::EncodeError),
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A preprocessed sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
}

/// Per-thread buffers reused from image to image (decoded pixels, resized pixels).
#[derive(Default)]
struct Scratch {
    resizer: Resizer,
    decoded: Vec<u8>,
    resized: Vec<u8>,
}

impl Preprocess {
    /// Preprocesses the bytes of one image file; the error says why it cannot be packed.
    ///
    /// # Errors
    /// [`ImageError::Decode`] when the bytes do not decode; [`ImageError::NoBox`] when a box crop
    /// is asked for and `bbox` is `None`; [`ImageError::BoxOutside`] when the box misses the image;
    /// [`ImageError::Unscalable`] when the target size cannot be reached from the image's size;
    /// [`ImageError::Resize`] when the resizer fails; [`ImageError::Encode`] when JPEG encoding
    /// fails.
    pub fn run(&self, file: &[u8], bbox: Option<BBox>) -> Result<Processed, ImageError> {
        SCRATCH.with(|scratch| self.run_with(file, bbox, &mut scratch.borrow_mut()))
    }

    fn run_with(
        &self,
        file: &[u8],
        bbox: Option<BBox>,
        scratch: &mut Scratch,
    ) -> Result<Processed, ImageError> {
        let Scratch {
            resizer,
            decoded,
            resized,
        } = scratch;
        let (iw, ih) = match sniff_format(file) {
            Some(Format::Jpeg) => {
                let jpeg = jpeg::decode_into(file, decoded)?;
                (jpeg.width as u32, jpeg.height as u32)
            }
            _ => {
                let image = decode_rgb8(file)?;
                *decoded = image.pixels;
                (image.width, image.height)
            }
        };
        let source = &decoded[..iw as usize * ih as usize * 3];
        let (left, top, cw, ch) = match (self.crop, bbox) {
            (CropMode::None, _) => (0, 0, iw, ih),
            (CropMode::BBox, Some(bbox)) => crop_rect(iw, ih, bbox)?,
            (CropMode::BBox, None) => return Err(ImageError::NoBox),
        };
        let (w, h) = target_size(cw, ch, self.size, self.resize).ok_or(ImageError::Unscalable {
            width: cw,
            height: ch,
            size: self.size,
            mode: self.resize.as_str(),
        })?;
        let scaled: &[u8] = if (w, h, left, top) == (iw, ih, 0, 0) {
            source
        } else {
            let needed = w as usize * h as usize * 3;
            if resized.len() < needed {
                resized.resize(needed, 0);
            }
            let resize_error = |e| ImageError::Resize(Box::new(e));
            let src = ImageRef::new(iw, ih, source, PixelType::U8x3).map_err(resize_error)?;
            let mut dst = Image::from_slice_u8(w, h, &mut resized[..needed], PixelType::U8x3)
                .map_err(resize_error)?;
            let options = ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
                .crop(
                    f64::from(left),
                    f64::from(top),
                    f64::from(cw),
                    f64::from(ch),
                );
            resizer
                .resize(&src, &mut dst, &options)
                .map_err(|e| ImageError::Resize(Box::new(e)))?;
            &resized[..needed]
        };
        let padded;
        let (pixels, width, height) = match self.resize {
            ResizeMode::ShortSide => (scaled, w, h),
            ResizeMode::PadSquare => {
                padded = pad_square(scaled, w, h, self.size);
                (&padded[..], self.size, self.size)
            }
        };
        let bytes = match self.encoding {
            Encoding::Raw => pixels.to_vec(),
            Encoding::Jpeg => jpeg::encode(
                pixels,
                width as usize,
                height as usize,
                self.quality.unwrap_or(90),
            )
            .map_err(ImageError::Encode)?,
        };
        // target_size keeps both sides within u16 (shard records store them as 16 bits).
        Ok(Processed {
            width: width as u16,
            height: height as u16,
            bytes,
        })
    }
}

/// The output size before padding, or `None` if a side would be 0 or too long.
pub fn target_size(width: u32, height: u32, size: u32, mode: ResizeMode) -> Option<(u32, u32)> {
    let scaled = |long: u32, short: u32| -> u64 {
        // round(long · size / short), in integers.
        (u64::from(long) * u64::from(size) + u64::from(short) / 2) / u64::from(short)
    };
    if width == 0 || height == 0 || size == 0 {
        return None;
    }
    let (w, h) = match mode {
        ResizeMode::ShortSide if width <= height => (u64::from(size), scaled(height, width)),
        ResizeMode::ShortSide => (scaled(width, height), u64::from(size)),
        ResizeMode::PadSquare if width >= height => (u64::from(size), scaled(height, width).max(1)),
        ResizeMode::PadSquare => (scaled(width, height).max(1), u64::from(size)),
    };
    let limit = u64::from(u16::MAX);
    (w <= limit && h <= limit).then_some((w as u32, h as u32))
}

/// The integer pixel rectangle covering `bbox`, clamped to a `width`×`height` image.
fn crop_rect(width: u32, height: u32, bbox: BBox) -> Result<(u32, u32, u32, u32), ImageError> {
    let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32);
    let x0 = clamp(bbox.x, width).floor() as u32;
    let y0 = clamp(bbox.y, height).floor() as u32;
    let x1 = clamp(bbox.x + bbox.width, width).ceil() as u32;
    let y1 = clamp(bbox.y + bbox.height, height).ceil() as u32;
    if x1 <= x0 || y1 <= y0 {
        return Err(ImageError::BoxOutside {
            x: bbox.x,
            y: bbox.y,
            width: bbox.width,
            height: bbox.height,
            image_width: width,
            image_height: height,
        });
    }
    Ok((x0, y0, x1 - x0, y1 - y0))
}

/// Centres a `w`×`h` image on a white `size`×`size` square.
fn pad_square(pixels: &[u8], w: u32, h: u32, size: u32) -> Vec<u8> {
    let (w, h, s) = (w as usize, h as usize, size as usize);
    let mut out = vec![255u8; s * s * 3];
    let (left, top) = ((s - w) / 2, (s - h) / 2);
    for row in 0..h {
        let src = &pixels[row * w * 3..(row + 1) * w * 3];
        let at = ((top + row) * s + left) * 3;
        out[at..at + w * 3].copy_from_slice(src);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_sizes() {
        assert_eq!(
            target_size(500, 375, 256, ResizeMode::ShortSide),
            Some((341, 256))
        );
        assert_eq!(
            target_size(375, 500, 256, ResizeMode::ShortSide),
            Some((256, 341))
        );
        assert_eq!(
            target_size(500, 375, 256, ResizeMode::PadSquare),
            Some((256, 192))
        );
        assert_eq!(
            target_size(100, 100, 256, ResizeMode::ShortSide),
            Some((256, 256))
        );
        assert_eq!(
            target_size(1000, 1, 256, ResizeMode::PadSquare),
            Some((256, 1))
        );
        assert_eq!(target_size(16384, 1, 256, ResizeMode::ShortSide), None);
    }

    #[test]
    fn padding_centres_on_white() {
        let padded = pad_square(&[0, 0, 0, 10, 10, 10], 2, 1, 4);
        assert_eq!(padded.len(), 48);
        // Row 1 (top = (4-1)/2 = 1), columns 1 and 2 (left = (4-2)/2 = 1).
        assert_eq!(
            &padded[12..24],
            &[255, 255, 255, 0, 0, 0, 10, 10, 10, 255, 255, 255]
        );
        assert!(padded[..12].iter().all(|&b| b == 255));
    }
}
