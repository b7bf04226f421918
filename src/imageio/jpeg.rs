//! JPEG through libjpeg-turbo: decoding to RGB (CMYK and YCCK converted here) and encoding.
//!
//! One decompressor and one compressor per thread are kept in thread-locals, so the hot paths
//! (pack's workers, the loader's workers) allocate no libjpeg state per image.
//!
//! libjpeg reports damaged data as warnings and still fills the output. Which warnings are
//! fatal is decided here: a JPEG cut short ("Premature end of JPEG file") or with bad entropy
//! data is an error, because part of the picture is made up; "extraneous bytes before marker",
//! common in web-scraped files and harmless to the pixels, is accepted, as PIL accepts it.

use std::cell::RefCell;

use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, Subsamp};

use super::decode::{DecodeError, MAX_SIDE, Rgb8Image};

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// The libjpeg warnings that leave every pixel intact.
const HARMLESS_WARNINGS: &[&str] = &["extraneous bytes before marker"];

/// Width and height from a JPEG header, without decoding.
pub fn dimensions(bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
    with_decompressor(|d| {
        d.read_header(bytes)
            .map(|h| (h.width, h.height))
            .map_err(|e| DecodeError::Jpeg(e.to_string()))
    })
}

/// Decodes a JPEG to RGB8.
pub fn decode(bytes: &[u8]) -> Result<Rgb8Image, DecodeError> {
    let mut pixels = Vec::new();
    let (width, height) = decode_into(bytes, &mut pixels)?;
    pixels.truncate(width * height * 3);
    Ok(Rgb8Image {
        width: width as u32,
        height: height as u32,
        pixels,
    })
}

/// Decodes a JPEG to RGB8 into the first `width * height * 3` bytes of `buffer`, which grows
/// as needed and is otherwise reused as is (hot loops keep one per thread); returns the size.
pub fn decode_into(bytes: &[u8], buffer: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
    with_decompressor(|decompressor| {
        let header = decompressor
            .read_header(bytes)
            .map_err(|e| DecodeError::Jpeg(e.to_string()))?;
        let (width, height) = (header.width, header.height);
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(DecodeError::Size { width, height });
        }
        let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
        let format = if cmyk {
            PixelFormat::CMYK
        } else {
            PixelFormat::RGB
        };
        let needed = width * height * format.size();
        if buffer.len() < needed {
            buffer.resize(needed, 0);
        }
        let output = Image {
            pixels: &mut buffer[..needed],
            width,
            pitch: width * format.size(),
            height,
            format,
        };
        if let Err(err) = decompressor.decompress(bytes, output) {
            let message = err.to_string();
            if !HARMLESS_WARNINGS.iter().any(|w| message.contains(w)) {
                return Err(DecodeError::Jpeg(message));
            }
        }
        if cmyk {
            cmyk_to_rgb_in_place(&mut buffer[..needed]);
        }
        Ok((width, height))
    })
}

/// Encodes RGB8 pixels as a baseline JPEG with 4:2:0 chroma subsampling (PIL's default).
pub fn encode(pixels: &[u8], width: usize, height: usize, quality: u8) -> Result<Vec<u8>, String> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut compressor = Compressor::new().map_err(|e| e.to_string())?;
            compressor
                .set_subsamp(Subsamp::Sub2x2)
                .map_err(|e| e.to_string())?;
            *slot = Some(compressor);
        }
        let compressor = slot.as_mut().expect("the compressor was just created");
        compressor
            .set_quality(i32::from(quality))
            .map_err(|e| e.to_string())?;
        let image = Image {
            pixels,
            width,
            pitch: width * 3,
            height,
            format: PixelFormat::RGB,
        };
        compressor.compress_to_vec(image).map_err(|e| e.to_string())
    })
}

fn with_decompressor<T>(
    f: impl FnOnce(&mut Decompressor) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Decompressor::new().map_err(|e| DecodeError::Jpeg(e.to_string()))?);
        }
        f(slot.as_mut().expect("the decompressor was just created"))
    })
}

/// Converts libjpeg's CMYK output to RGB as PIL does, in place (the RGB pixels end up in the
/// first three quarters). libjpeg returns Adobe CMYK as stored, inverted (C' = 255 − C); PIL's
/// R = (255 − K)(255 − C)/255 is therefore C'·K'/255.
fn cmyk_to_rgb_in_place(pixels: &mut [u8]) {
    for i in 0..pixels.len() / 4 {
        let k = u32::from(pixels[4 * i + 3]);
        for c in 0..3 {
            let value = (u32::from(pixels[4 * i + c]) * k + 127) / 255;
            // Writing pixel i's RGB never overwrites CMYK bytes not yet read (3i + c < 4i + c).
            pixels[3 * i + c] = value as u8;
        }
    }
}
