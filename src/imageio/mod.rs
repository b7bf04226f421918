//! Image decoding for every stage that reads pixels: `prepare-data`'s image check, `pack`'s
//! writer, and the loader.
//!
//! Everything becomes 8-bit RGB. JPEG goes through zune-jpeg in strict mode (a truncated or
//! damaged JPEG is an error, not a grey-filled picture); PNG through the `image` crate. See
//! [`decode_rgb8`] for the conversions.

mod decode;

pub use decode::{DecodeError, Rgb8Image, decode_rgb8, sniff_format};
