//! JPEG through libjpeg-turbo: decoding to RGB (CMYK and YCCK converted here) and encoding.
//!
//! One decompressor and one compressor per thread are kept in thread-locals, so the hot paths
//! (pack's workers, the loader's workers) allocate no libjpeg state per image.
//!
//! Damaged files are judged as Pillow judges them (its verdicts on a corpus of crafted files are
//! in `tests/fixtures/jpeg-corpus/`, made by `tools/golden/jpeg_corpus.py`). libjpeg reports
//! recoverable damage (extraneous bytes, a marker or bad code inside the entropy data) as a
//! warning and still fills the output; Pillow ignores those warnings, and so does this module,
//! returning the warning for the record. What Pillow refuses is a file that ends before its
//! image data does ("image file is truncated"): a progressive or multi-scan file without its
//! end marker, or a sequential file whose entropy data stops before the last block. The first
//! is seen in the file's marker structure ([`structure`]); the second by decoding twice more
//! with two different fillers after the end: if the pixels depend on the filler, the decoder
//! needed data the file does not have. libjpeg's fatal errors are refused.

use std::cell::RefCell;

use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, Subsamp};

use super::decode::{DecodeError, Format, Rgb8Image, check_size};

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// The beginnings of libjpeg-turbo's warning messages (`JWRN_*` in `jerror.h`): damage it
/// recovers from. Any other message is a fatal error.
const WARNINGS: &[&str] = &[
    "Corrupt JPEG data",
    "Premature end of JPEG file",
    "Inconsistent progression sequence",
    "Invalid SOS parameters for sequential JPEG",
    "Unknown Adobe color transform code",
    "Warning: unknown JFIF revision number",
    "Warning: thumbnail image size does not match data length",
    "JFIF extension marker",
    "Application transferred too many scanlines",
];

/// Two fillers appended after a file's end to tell whether the decoder needed more data: if
/// the pixels depend on which one follows, the file ended before its image data did. (One
/// filler is not enough: zeros can decode to exactly what libjpeg makes up for missing data.)
const FILLERS: [[u8; 256]; 2] = [[0x00; 256], [0x55; 256]];

/// A decoded JPEG's size, and the warning libjpeg gave for recoverable damage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// libjpeg's first warning, if it recovered from damage.
    pub warning: Option<String>,
}

/// Width and height from a JPEG header, without decoding.
pub fn dimensions(bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
    with_decompressor(|d| {
        d.read_header(bytes)
            .map(|h| (h.width, h.height))
            .map_err(|e| DecodeError::Jpeg(message(&e)))
    })
}

/// Decodes a JPEG to RGB8, with the warning of a damaged but readable file.
pub fn decode(bytes: &[u8]) -> Result<(Rgb8Image, Option<String>), DecodeError> {
    let mut pixels = Vec::new();
    let decoded = decode_into(bytes, &mut pixels)?;
    pixels.truncate(decoded.width * decoded.height * 3);
    Ok((
        Rgb8Image {
            width: decoded.width as u32,
            height: decoded.height as u32,
            pixels,
        },
        decoded.warning,
    ))
}

/// Decodes a JPEG to RGB8 into the first `width * height * 3` bytes of `buffer`, which grows
/// as needed and is otherwise reused as is (hot loops keep one per thread).
pub fn decode_into(bytes: &[u8], buffer: &mut Vec<u8>) -> Result<Decoded, DecodeError> {
    let decoded = decompress(bytes, buffer)?;
    if decoded.warning.is_none() {
        return Ok(decoded);
    }
    let shape = structure(bytes);
    let truncated = if shape.end_marker {
        false
    } else if shape.progressive || shape.scans > 1 {
        true
    } else {
        let mut outputs = FILLERS.iter().map(|filler| {
            let mut padded = Vec::with_capacity(bytes.len() + filler.len() + 2);
            padded.extend_from_slice(bytes);
            padded.extend_from_slice(filler);
            padded.extend_from_slice(&[0xff, 0xd9]);
            let mut pixels = Vec::new();
            decompress(&padded, &mut pixels).map(|_| pixels)
        });
        let (first, second) = (outputs.next(), outputs.next());
        match (first, second) {
            (Some(Ok(a)), Some(Ok(b))) => a != b,
            _ => true,
        }
    };
    if truncated {
        return Err(DecodeError::Truncated {
            format: Format::Jpeg,
        });
    }
    Ok(decoded)
}

/// One libjpeg-turbo decompression; warnings are returned, fatal errors are errors.
fn decompress(bytes: &[u8], buffer: &mut Vec<u8>) -> Result<Decoded, DecodeError> {
    with_decompressor(|decompressor| {
        let header = decompressor
            .read_header(bytes)
            .map_err(|e| DecodeError::Jpeg(message(&e)))?;
        let (width, height) = (header.width, header.height);
        check_size(width as u64, height as u64)?;
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
        let warning = match decompressor.decompress(bytes, output) {
            Ok(()) => None,
            Err(err) => {
                let text = message(&err);
                if !WARNINGS.iter().any(|w| text.starts_with(w)) {
                    return Err(DecodeError::Jpeg(text));
                }
                Some(text)
            }
        };
        if cmyk {
            cmyk_to_rgb_in_place(&mut buffer[..needed]);
        }
        Ok(Decoded {
            width,
            height,
            warning,
        })
    })
}

/// libjpeg's message, without the crate's prefix.
fn message(error: &turbojpeg::Error) -> String {
    match error {
        turbojpeg::Error::TurboJpegError(text) => text.trim().to_string(),
        other => other.to_string(),
    }
}

/// What a JPEG's markers say about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Structure {
    /// A progressive frame (SOF2, SOF6, SOF10, SOF14).
    pub progressive: bool,
    /// Start-of-scan markers seen.
    pub scans: u32,
    /// Whether an end-of-image marker follows the last scan.
    pub end_marker: bool,
}

/// Walks a JPEG's markers (skipping entropy-coded data and stray bytes between segments) to
/// see whether it is progressive, how many scans it has, and whether it ends with EOI.
pub fn structure(bytes: &[u8]) -> Structure {
    let mut found = Structure::default();
    let mut at = 2; // after SOI
    while at < bytes.len() {
        // Find the next marker: 0xFF (any number of fill bytes) then a non-zero code.
        let Some(ff) = bytes[at..].iter().position(|&b| b == 0xff) else {
            break;
        };
        at += ff;
        while at < bytes.len() && bytes[at] == 0xff {
            at += 1;
        }
        let Some(&code) = bytes.get(at) else {
            break;
        };
        at += 1;
        match code {
            0x00 | 0x01 | 0xd0..=0xd8 => continue,
            0xd9 => {
                found.end_marker = true;
                break;
            }
            _ => {}
        }
        let Some(length) = bytes
            .get(at..at + 2)
            .map(|l| usize::from(l[0]) << 8 | usize::from(l[1]))
        else {
            break;
        };
        if matches!(code, 0xc2 | 0xc6 | 0xca | 0xce) {
            found.progressive = true;
        }
        at += length;
        if code == 0xda {
            found.scans += 1;
            at = end_of_entropy_data(bytes, at);
        }
    }
    found
}

/// Where the entropy-coded data starting at `at` ends: at the next marker that is not a stuffed
/// byte (`FF 00`) or a restart marker, or at the end of the file.
fn end_of_entropy_data(bytes: &[u8], mut at: usize) -> usize {
    while at + 1 < bytes.len() {
        match bytes[at..].iter().position(|&b| b == 0xff) {
            None => return bytes.len(),
            Some(ff) => at += ff,
        }
        match bytes.get(at + 1) {
            Some(0x00 | 0xd0..=0xd7 | 0xff) => at += 1,
            Some(_) => return at,
            None => return bytes.len(),
        }
    }
    bytes.len()
}

/// The encoder failed (its own error is the source).
#[derive(Debug, thiserror::Error)]
#[error("the JPEG encoder failed")]
pub struct EncodeError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// Encodes RGB8 pixels as a baseline JPEG with 4:2:0 chroma subsampling (PIL's default).
pub fn encode(
    pixels: &[u8],
    width: usize,
    height: usize,
    quality: u8,
) -> Result<Vec<u8>, EncodeError> {
    let fail = |e: turbojpeg::Error| EncodeError(Box::new(e));
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut compressor = Compressor::new().map_err(fail)?;
            compressor.set_subsamp(Subsamp::Sub2x2).map_err(fail)?;
            *slot = Some(compressor);
        }
        let compressor = slot.as_mut().expect("the compressor was just created");
        compressor.set_quality(i32::from(quality)).map_err(fail)?;
        let image = Image {
            pixels,
            width,
            pitch: width * 3,
            height,
            format: PixelFormat::RGB,
        };
        compressor.compress_to_vec(image).map_err(fail)
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
