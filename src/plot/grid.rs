//! Retrieval results as a picture: one row per query, the query first (framed blue), then its
//! nearest neighbours in order, framed green when they share the query's class and red when
//! they do not.

use std::path::Path;

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use super::PlotError;
use crate::eval::Neighbours;
use crate::shard::ShardSet;

/// Frame colour of a query.
pub const QUERY_FRAME: [u8; 3] = [40, 90, 220];
/// Frame colour of a neighbour of the query's class.
pub const RIGHT_FRAME: [u8; 3] = [20, 170, 60];
/// Frame colour of a neighbour of another class.
pub const WRONG_FRAME: [u8; 3] = [220, 30, 30];

/// What the grid shows.
#[derive(Debug, Clone, Copy)]
pub struct GridOptions {
    /// Number of queries (rows), spread evenly over the set.
    pub queries: usize,
    /// Neighbours per query.
    pub neighbours: usize,
    /// Side of one square tile in pixels, frame included.
    pub tile: u32,
    /// Width of the coloured frame in pixels.
    pub frame: u32,
}

impl Default for GridOptions {
    fn default() -> GridOptions {
        GridOptions {
            queries: 8,
            neighbours: 6,
            tile: 96,
            frame: 4,
        }
    }
}

/// Gap between tiles, and the wider one between a query and its neighbours.
const GAP: u32 = 4;
const QUERY_GAP: u32 = 16;

/// The queries of a grid: `count` sample indices spread evenly over `0..n`.
pub fn query_indices(n: usize, count: usize) -> Vec<usize> {
    let count = count.min(n);
    (0..count).map(|i| i * n / count).collect()
}

/// Draws the retrieval grid of `set` (whose sample `i` has embedding row `i`, neighbours
/// `neighbours.of(i)` and class `labels[i]`) and writes it to `path` as PNG.
///
/// # Errors
/// [`PlotError::GridInputs`] when `neighbours` or `labels` does not have one entry per sample of
/// `set`; [`PlotError::GridTooSmall`] when there is no query or no neighbour to show;
/// [`PlotError::Shard`] when a sample cannot be read; [`PlotError::Undecodable`] when it does not
/// decode; [`PlotError::Image`] when the PNG cannot be written.
pub fn write_grid(
    set: &ShardSet,
    neighbours: &Neighbours,
    labels: &[i64],
    options: &GridOptions,
    path: &Path,
) -> Result<(), PlotError> {
    let n = set.len();
    if neighbours.len() != n || labels.len() != n {
        return Err(PlotError::GridInputs {
            samples: n,
            neighbour_lists: neighbours.len(),
            labels: labels.len(),
        });
    }
    let shown = options.neighbours.min(neighbours.k);
    let queries = query_indices(n, options.queries);
    if queries.is_empty() || shown == 0 {
        return Err(PlotError::GridTooSmall);
    }
    let tile = options.tile.max(2 * options.frame + 8);
    let width = tile + QUERY_GAP + shown as u32 * (tile + GAP) - GAP;
    let height = queries.len() as u32 * (tile + GAP) - GAP;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (row, &query) in queries.iter().enumerate() {
        let y = row as u32 * (tile + GAP);
        let picture = tile_of(set, query, tile, options.frame, QUERY_FRAME)?;
        imageops::replace(&mut canvas, &picture, 0, i64::from(y));
        for (col, &hit) in neighbours.of(query)[..shown].iter().enumerate() {
            let hit = hit as usize;
            let frame = if labels[hit] == labels[query] {
                RIGHT_FRAME
            } else {
                WRONG_FRAME
            };
            let picture = tile_of(set, hit, tile, options.frame, frame)?;
            let x = tile + QUERY_GAP + col as u32 * (tile + GAP);
            imageops::replace(&mut canvas, &picture, i64::from(x), i64::from(y));
        }
    }
    canvas
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| PlotError::Image {
            path: path.to_path_buf(),
            source,
        })
}

/// Sample `index` centre-cropped to a square, scaled to `tile` and framed in `colour`.
fn tile_of(
    set: &ShardSet,
    index: usize,
    tile: u32,
    frame: u32,
    colour: [u8; 3],
) -> Result<RgbImage, PlotError> {
    let sample = set.sample(index)?;
    let decoded = sample.decode().map_err(|source| PlotError::Undecodable {
        index,
        path: set.source_path(&sample).to_string(),
        source,
    })?;
    let image = RgbImage::from_raw(decoded.width, decoded.height, decoded.pixels)
        .expect("a decoded image holds width × height × 3 bytes");
    let side = image.width().min(image.height());
    let square = imageops::crop_imm(
        &image,
        (image.width() - side) / 2,
        (image.height() - side) / 2,
        side,
        side,
    )
    .to_image();
    let inner = tile - 2 * frame;
    let scaled = imageops::resize(&square, inner, inner, FilterType::Triangle);
    let mut framed = RgbImage::from_pixel(tile, tile, Rgb(colour));
    imageops::replace(&mut framed, &scaled, i64::from(frame), i64::from(frame));
    Ok(framed)
}
