//! One batch drawn as an image grid, to look at what the loader produces: one row per class
//! run (K images), the class id written at the left of each row.

use std::path::Path;

use super::batch::{Batch, Pixels};
use super::normalize::Normalize;

/// Gap between cells, in pixels.
const GAP: usize = 4;
/// Scale of the 3×5 digit font.
const DIGIT_SCALE: usize = 3;

/// 3×5 bitmaps of the digits 0–9, one row of three bits per entry (bit 2 is the left column).
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// Writes `batch` as a PNG grid of `per_row` images per row; floats are un-normalised with
/// `normalize`.
///
/// # Errors
/// The `image` crate's error when the PNG cannot be encoded or written to `path`.
pub fn write_grid(
    batch: &Batch,
    per_row: usize,
    normalize: &Normalize,
    path: &Path,
) -> Result<(), image::ImageError> {
    let [n, a, b, c] = batch.shape;
    let (size, nchw) = if a == 3 { (b, true) } else { (a, false) };
    debug_assert!(nchw || c == 3);
    let per_row = per_row.clamp(1, n.max(1));
    let rows = n.div_ceil(per_row);
    let label_width = 6 * 4 * DIGIT_SCALE + GAP;
    let width = label_width + per_row * (size + GAP);
    let height = rows * (size + GAP);
    let mut canvas =
        image::RgbImage::from_pixel(width as u32, height as u32, image::Rgb([255, 255, 255]));
    for i in 0..n {
        let (row, col) = (i / per_row, i % per_row);
        let (x0, y0) = (label_width + col * (size + GAP), row * (size + GAP));
        for y in 0..size {
            for x in 0..size {
                let rgb = match batch.pixels() {
                    Pixels::U8(v) => {
                        let at = ((i * size + y) * size + x) * 3;
                        [v[at], v[at + 1], v[at + 2]]
                    }
                    Pixels::F32(v) => {
                        let plane = size * size;
                        std::array::from_fn(|ch| {
                            let value = v[i * 3 * plane + ch * plane + y * size + x];
                            ((value * normalize.std[ch] + normalize.mean[ch]) * 255.0)
                                .round()
                                .clamp(0.0, 255.0) as u8
                        })
                    }
                };
                canvas.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(rgb));
            }
        }
        if col == 0 {
            draw_number(&mut canvas, batch.labels[i], 2, y0 + 2);
        }
    }
    canvas.save_with_format(path, image::ImageFormat::Png)
}

/// Draws `value` in the digit font with its top-left corner at (`x`, `y`).
fn draw_number(canvas: &mut image::RgbImage, value: u32, x: usize, y: usize) {
    for (k, digit) in value.to_string().bytes().enumerate() {
        let glyph = DIGITS[usize::from(digit - b'0')];
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..3 {
                if bits & (4 >> gx) != 0 {
                    for dy in 0..DIGIT_SCALE {
                        for dx in 0..DIGIT_SCALE {
                            let px = x + k * 4 * DIGIT_SCALE + gx * DIGIT_SCALE + dx;
                            let py = y + gy * DIGIT_SCALE + dy;
                            if (px as u32) < canvas.width() && (py as u32) < canvas.height() {
                                canvas.put_pixel(px as u32, py as u32, image::Rgb([200, 0, 0]));
                            }
                        }
                    }
                }
            }
        }
    }
}
