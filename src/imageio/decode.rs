//! Decoding image files to 8-bit RGB, by content, never by name: JPEG (libjpeg-turbo, see
//! [`super::jpeg`]), PNG, GIF (the first frame), BMP and WebP (the `image` crate).
//!
//! What is accepted follows Pillow, which every metric-learning codebase reads images with:
//! a JPEG with recoverable damage (extraneous bytes, data after the end, a corrupt stretch of
//! entropy data) decodes, and its libjpeg warning is returned for the record; a file that ends
//! before its image data does is refused, as Pillow refuses it unless `LOAD_TRUNCATED_IMAGES` is
//! set. Images above Pillow's decompression-bomb limit ([`MAX_PIXELS`]) are refused.
//!
//! Conversions: grayscale is replicated into the three channels; CMYK and YCCK JPEGs are
//! converted as Pillow converts them; palettes are expanded; 16-bit samples are scaled to 8 bits
//! (rounded); alpha (PNG, WebP, GIF transparency) is composited over white, so transparent
//! product photos get the white background that the paper's padding also uses (Pillow's
//! `convert("RGB")` drops alpha instead). EXIF orientation is not applied, as
//! `convert("RGB")` does not apply it.

use std::fmt;

use super::jpeg;

/// Most pixels an image may have: Pillow's `DecompressionBombError` threshold (twice its
/// `MAX_IMAGE_PIXELS` of 89,478,485).
pub const MAX_PIXELS: u64 = 178_956_970;

/// Largest width or height accepted (JPEG's own limit; shard records store 16-bit sides).
pub const MAX_SIDE: usize = 65_535;

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
    /// The file has no bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The bytes are none of the formats read.
    #[error("not a JPEG, PNG, GIF, BMP or WebP file (it starts with {head})")]
    UnknownFormat {
        /// The first bytes, hex.
        head: String,
    },
    /// libjpeg stopped on damaged JPEG data (its message).
    #[error("damaged JPEG: {0}")]
    Jpeg(String),
    /// The file ends before its image data does.
    #[error(
        "truncated {format}: the file ends before its image data is complete (Pillow refuses it \
         too); download or extract it again"
    )]
    Truncated {
        /// The format.
        format: Format,
    },
    /// A PNG, GIF, BMP or WebP file is damaged or cut short.
    #[error("damaged {format}")]
    Image {
        /// The format.
        format: Format,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The image is larger than the limits, or has no pixels.
    #[error(
        "the image is {width}x{height}; lifted decodes images of 1 to {MAX_SIDE} pixels a side \
         and at most {MAX_PIXELS} pixels (Pillow's decompression-bomb limit)"
    )]
    Size {
        /// Width.
        width: u64,
        /// Height.
        height: u64,
    },
}

/// The container format of encoded image bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG (starts with `FF D8 FF`).
    Jpeg,
    /// PNG (starts with the PNG signature).
    Png,
    /// GIF (`GIF87a` or `GIF89a`).
    Gif,
    /// Windows bitmap (`BM`).
    Bmp,
    /// WebP (`RIFF`, size, `WEBP`).
    WebP,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Bmp => "BMP",
            Format::WebP => "WebP",
        })
    }
}

/// Recognises the formats read by their first bytes.
pub fn sniff_format(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if bytes.starts_with(b"BM") && bytes.len() >= 26 {
        Some(Format::Bmp)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else {
        None
    }
}

/// Checks a size against [`MAX_SIDE`] and [`MAX_PIXELS`].
pub(crate) fn check_size(width: u64, height: u64) -> Result<(), DecodeError> {
    let side = MAX_SIDE as u64;
    if width == 0 || height == 0 || width > side || height > side || width * height > MAX_PIXELS {
        return Err(DecodeError::Size { width, height });
    }
    Ok(())
}

/// Decodes any supported image file to RGB8.
///
/// # Errors
/// Whatever [`decode_checked`] returns.
pub fn decode_rgb8(bytes: &[u8]) -> Result<Rgb8Image, DecodeError> {
    decode_checked(bytes).map(|(image, _)| image)
}

/// Decodes any supported image file to RGB8, also returning the warning a damaged but
/// readable JPEG gave (see the module documentation).
///
/// # Errors
/// [`DecodeError::Empty`] for no bytes; [`DecodeError::UnknownFormat`] when the bytes are none of
/// the formats read; [`DecodeError::Jpeg`] when libjpeg stops on damaged data;
/// [`DecodeError::Truncated`] when the file ends before its image data does; [`DecodeError::Image`]
/// when a PNG, GIF, BMP or WebP file is damaged; [`DecodeError::Size`] when the image has no pixels
/// or is over [`MAX_SIDE`] or [`MAX_PIXELS`].
pub fn decode_checked(bytes: &[u8]) -> Result<(Rgb8Image, Option<String>), DecodeError> {
    match sniff_format(bytes) {
        Some(Format::Jpeg) => jpeg::decode(bytes),
        Some(format) => decode_other(bytes, format).map(|image| (image, None)),
        None if bytes.is_empty() => Err(DecodeError::Empty),
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

/// Whether an image file decodes (see [`decode_checked`]), and the warning of a damaged but
/// readable JPEG; a JPEG is judged without producing its full-size pixels
/// ([`jpeg::check`]), other formats are decoded.
///
/// # Errors
/// The same errors as [`decode_checked`].
pub fn check_decodes(bytes: &[u8]) -> Result<Option<String>, DecodeError> {
    match sniff_format(bytes) {
        Some(Format::Jpeg) => jpeg::check(bytes).map(|decoded| decoded.warning),
        _ => decode_checked(bytes).map(|(_, warning)| warning),
    }
}

/// PNG, GIF (first frame), BMP and WebP through the `image` crate.
fn decode_other(bytes: &[u8], format: Format) -> Result<Rgb8Image, DecodeError> {
    use image::ImageDecoder;
    let damaged = |source| DecodeError::Image { format, source };
    let kind = match format {
        Format::Png => image::ImageFormat::Png,
        Format::Gif => image::ImageFormat::Gif,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::WebP => image::ImageFormat::WebP,
        Format::Jpeg => unreachable!("JPEG goes through libjpeg-turbo"),
    };
    if let Some((width, height)) = header_size(bytes, format) {
        check_size(width, height)?;
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), kind);
    // The size is checked against Pillow's limits below, before any pixel is allocated.
    reader.no_limits();
    let decoder = reader.into_decoder().map_err(damaged)?;
    let (width, height) = decoder.dimensions();
    check_size(u64::from(width), u64::from(height))?;
    let decoded = image::DynamicImage::from_decoder(decoder).map_err(damaged)?;
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

/// The size a PNG, GIF or BMP header declares, read before any decoder runs, so that an image
/// over the limits is named as such even when its data is missing.
fn header_size(bytes: &[u8], format: Format) -> Option<(u64, u64)> {
    let be = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
    };
    let le16 = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let le32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).unsigned_abs())
    };
    match format {
        // Signature (8), chunk length (4), "IHDR" (4), then width and height.
        Format::Png if bytes.get(12..16) == Some(b"IHDR") => Some((be(16)?, be(20)?)),
        // "GIF8?a", then the logical screen's width and height.
        Format::Gif => Some((le16(6)?, le16(8)?)),
        // File header (14), header size (4), then width and height (negative: top-down).
        Format::Bmp => Some((le32(18)?, le32(22)?)),
        _ => None,
    }
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
        let err = decode_rgb8(b"II*\0....").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a JPEG, PNG, GIF, BMP or WebP file (it starts with 49 49 2a 00 2e 2e 2e 2e)"
        );
        assert_eq!(
            decode_rgb8(b"").unwrap_err().to_string(),
            "the file is empty (0 bytes)"
        );
    }

    #[test]
    fn transparent_pixels_become_white() {
        let rgba = image::RgbaImage::from_raw(2, 1, vec![10, 20, 30, 255, 10, 20, 30, 0]).unwrap();
        assert_eq!(over_white(&rgba), vec![10, 20, 30, 255, 255, 255]);
    }

    #[test]
    fn sizes_follow_pillows_limits() {
        assert!(check_size(12_000, 12_000).is_ok());
        assert!(check_size(20_000, 1).is_ok());
        let err = check_size(20_000, 20_000).unwrap_err().to_string();
        assert!(
            err.contains("20000x20000") && err.contains("178956970"),
            "{err}"
        );
        assert!(check_size(0, 5).is_err());
    }
}
