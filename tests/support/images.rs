//! Real image bytes for fixtures: small JPEGs made with libjpeg-turbo, and the
//! committed special cases in `tests/fixtures/images/` (grayscale, CMYK, truncated...).

use std::path::PathBuf;

/// The folder of committed fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A committed image fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("images").join(name)).unwrap()
}

/// A small RGB JPEG whose colours depend on `seed`.
pub fn jpeg(seed: u32) -> Vec<u8> {
    let (w, h) = (24 + seed % 7, 16 + seed % 5);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let s = seed.wrapping_mul(2_654_435_761);
        image::Rgb([
            ((x * 9 + s) % 256) as u8,
            ((y * 13 + (s >> 8)) % 256) as u8,
            (((x + y) * 5 + (s >> 16)) % 256) as u8,
        ])
    });
    lifted::imageio::jpeg::encode(img.as_raw(), w as usize, h as usize, 85).unwrap()
}
