//! Decoding JPEG and PNG bytes to 8-bit RGB.
//!
//! Conversions: grayscale is replicated into the three channels; CMYK and YCCK JPEGs are
//! converted as PIL converts them; 16-bit PNG samples are scaled to 8 bits (rounded); alpha
//! is composited over white, so transparent product photos get the white background that the
//! paper's padding also uses. EXIF orientation is not applied, like PIL's `convert("RGB")`
//! that the reference implementations use.

use std::fmt;

use super::jpeg;

/// Largest width or height accepted (a guard against decompression bombs).
pub const MAX_SIDE: usize = 16_384;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `RGBRGB…`.
#[derive(Clone, PartialEq, Eq)]
pub struct Rgb8Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

impl fmt::Debug for Rgb8Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rgb8Image({}x{})", self.width, self.height)
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are neither JPEG nor PNG.
    #[error("not a JPEG or PNG file (it starts with {head})")]
    UnknownFormat {
        /// The first bytes, hex.
        head: String,
    },
    /// The JPEG data is damaged or cut short (libjpeg's message).
    #[error("damaged JPEG: {0}")]
    Jpeg(String),
    /// The PNG data is damaged or cut short.
    #[error("damaged PNG")]
    Png(#[source] image::ImageError),
    /// The image is larger than [`MAX_SIDE`] or empty.
    #[error("unsupported size {width}x{height} (each side must be 1 to {MAX_SIDE} pixels)")]
    Size {
        /// Width.
        width: usize,
        /// Height.
        height: usize,
    },
}

/// The container format of encoded image bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG (starts with `FF D8 FF`).
    Jpeg,
    /// PNG (starts with the PNG signature).
    Png,
}

/// Recognises JPEG and PNG by their first bytes.
pub fn sniff_format(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else {
        None
    }
}

/// Decodes JPEG or PNG bytes to RGB8.
pub fn decode_rgb8(bytes: &[u8]) -> Result<Rgb8Image, DecodeError> {
    match sniff_format(bytes) {
        Some(Format::Jpeg) => jpeg::decode(bytes),
        Some(Format::Png) => decode_png(bytes),
        None => Err(DecodeError::UnknownFormat {
            head: bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        }),
    }
}

fn decode_png(bytes: &[u8]) -> Result<Rgb8Image, DecodeError> {
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    reader.limits(limits);
    let decoded = reader.decode().map_err(DecodeError::Png)?;
    let (width, height) = (decoded.width(), decoded.height());
    if width == 0 || height == 0 {
        return Err(DecodeError::Size {
            width: width as usize,
            height: height as usize,
        });
    }
    let pixels = if decoded.color().has_alpha() {
        over_white(&decoded.to_rgba8())
    } else {
        decoded.to_rgb8().into_raw()
    };
    Ok(Rgb8Image {
        width,
        height,
        pixels,
    })
}

/// Composites RGBA over a white background.
fn over_white(rgba: &image::RgbaImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.as_raw().len() / 4 * 3);
    for pixel in rgba.as_raw().chunks_exact(4) {
        let alpha = u32::from(pixel[3]);
        for &channel in &pixel[..3] {
            // channel·α + 255·(1−α), rounded, in 0..=255.
            let value = (u32::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
            out.push(value as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bytes_are_named() {
        let err = decode_rgb8(b"GIF89a....").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a JPEG or PNG file (it starts with 47 49 46 38 39 61 2e 2e)"
        );
    }

    #[test]
    fn transparent_pixels_become_white() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![10, 20, 30, 255, 10, 20, 30, 0]).unwrap();
        assert_eq!(over_white(&rgba), vec![10, 20, 30, 255, 255, 255]);
    }
}
