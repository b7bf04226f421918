//! Image decoding and encoding for every stage that touches pixels: `prepare-data`'s image
//! check, `pack`'s writer, and the loader.
//!
//! Everything is 8-bit RGB in memory. Formats are recognised by content: JPEG goes through
//! libjpeg-turbo ([`jpeg`]), PNG, GIF, BMP and WebP through the `image` crate; [`decode_rgb8`]
//! documents what is accepted and the conversions.

mod decode;
pub mod jpeg;

pub use decode::{
    DecodeError, Format, MAX_PIXELS, MAX_SIDE, Rgb8Image, check_decodes, decode_checked,
    decode_rgb8, sniff_format,
};
