//! A 2-D map of the embeddings by Barnes–Hut t-SNE (the `bhtsne` crate), drawn as a PNG
//! scatter plot coloured by class, as the paper shows its test-set embeddings.
//!
//! The input affinities use the exact nearest neighbours from [`crate::eval::knn`] (3 ×
//! perplexity of them, as van der Maaten's Barnes–Hut t-SNE does), so the map agrees with the
//! retrieval numbers. Large sets are subsampled (seeded) and the initial layout is seeded, so a
//! map can be redrawn exactly.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use plotters::prelude::*;
use rand::seq::index::sample as sample_indices;
use rand_distr::{Distribution, Normal};

use super::PlotError;
use super::palette::class_colour;
use crate::eval::{Metric, knn};
use crate::rng::{Purpose, stream};

/// How the map is made.
#[derive(Debug, Clone, Copy)]
pub struct TsneOptions {
    /// At most this many points are mapped (a seeded subsample of larger sets).
    pub points: usize,
    /// t-SNE perplexity (lowered for tiny sets, which need at least 3 × perplexity + 1 points).
    pub perplexity: f32,
    /// Gradient-descent iterations.
    pub epochs: usize,
    /// Seed of the subsample and the initial layout.
    pub seed: u64,
    /// The distance the map preserves.
    pub metric: Metric,
    /// Side of the square PNG in pixels.
    pub size: u32,
}

impl Default for TsneOptions {
    fn default() -> TsneOptions {
        TsneOptions {
            points: 5000,
            perplexity: 30.0,
            epochs: 1000,
            seed: 0,
            metric: Metric::Euclidean,
            size: 1200,
        }
    }
}

/// A computed map: one 2-D point per chosen sample.
#[derive(Debug, Clone)]
pub struct TsneMap {
    /// Which samples were mapped (sorted).
    pub indices: Vec<usize>,
    /// Their 2-D coordinates.
    pub points: Vec<[f32; 2]>,
    /// Their classes.
    pub labels: Vec<i64>,
}

/// Maps `embeddings` (N×D) with class `labels` to 2-D.
///
/// # Errors
/// [`PlotError::Tensor`] when `embeddings` is not 2-D or a tensor operation fails;
/// [`PlotError::CountMismatch`] when there are not as many labels as rows;
/// [`PlotError::TooFewPoints`] for fewer than 5 rows; [`PlotError::Thread`] when the t-SNE thread
/// cannot be started.
pub fn tsne_map(
    embeddings: &Tensor,
    labels: &[i64],
    options: &TsneOptions,
) -> Result<TsneMap, PlotError> {
    let (n, _) = embeddings.dims2()?;
    if n != labels.len() {
        return Err(PlotError::CountMismatch {
            embeddings: n,
            labels: labels.len(),
        });
    }
    if n < 5 {
        return Err(PlotError::TooFewPoints(n));
    }
    let mut indices = if options.points < n {
        let mut rng = stream(options.seed, Purpose::Plot, &[0]);
        sample_indices(&mut rng, n, options.points.max(5)).into_vec()
    } else {
        (0..n).collect()
    };
    indices.sort_unstable();
    let m = indices.len();
    let chosen = Tensor::from_vec(
        indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        m,
        embeddings.device(),
    )?;
    let mut x = embeddings.to_dtype(DType::F32)?.index_select(&chosen, 0)?;
    if options.metric == Metric::Cosine {
        let norms = x
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        x = x.broadcast_div(&norms)?;
    }
    // Barnes–Hut t-SNE needs more than 3 × perplexity neighbours per point.
    let perplexity = options.perplexity.min((m - 1) as f32 / 3.0).max(1.0);
    let k = ((3.0 * perplexity) as usize).clamp(1, m - 1);
    let neighbours = knn(&x, k, Metric::Euclidean, 1024)?;
    let neighbour_rows: Vec<Vec<bhtsne::Neighbor<f32>>> = (0..m)
        .map(|i| {
            neighbours.indices[i * k..(i + 1) * k]
                .iter()
                .zip(&neighbours.distances[i * k..(i + 1) * k])
                .map(|(&index, &distance)| bhtsne::Neighbor {
                    index: index as usize,
                    distance,
                })
                .collect()
        })
        .collect();
    let rows = x.to_device(&Device::Cpu)?.to_vec2::<f32>()?;
    let samples: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    let normal = Normal::new(0.0f32, 1e-4).expect("a valid deviation");
    let mut rng = stream(options.seed, Purpose::Plot, &[1]);
    let start: Vec<f32> = (0..2 * m).map(|_| normal.sample(&mut rng)).collect();
    // bhtsne sums forces in parallel, in an order that varies with work stealing; one thread
    // makes the layout the same on every run.
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(PlotError::Thread)?;
    let flat = single.install(|| {
        let mut tsne = bhtsne::tSNE::<f32, &[f32]>::new(&samples);
        tsne.perplexity(perplexity)
            .epochs(options.epochs.max(1))
            .initial_embedding(start)
            .barnes_hut_with_neighbors(0.5, &neighbour_rows);
        tsne.embedding()
    });
    let points = flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
    let labels = indices.iter().map(|&i| labels[i]).collect();
    Ok(TsneMap {
        indices,
        points,
        labels,
    })
}

/// Draws `map` as a `size`×`size` PNG at `path`, one colour per class.
///
/// # Errors
/// [`PlotError::Draw`] when drawing fails; [`PlotError::Image`] when the PNG cannot be written.
pub fn write_png(map: &TsneMap, size: u32, path: &Path) -> Result<(), PlotError> {
    let draw_error = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let classes: BTreeMap<i64, usize> = map
        .labels
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(rank, label)| (label, rank))
        .collect();
    let bounds = |axis: usize| {
        let (lo, hi) = map.points.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
            (lo.min(p[axis]), hi.max(p[axis]))
        });
        let pad = ((hi - lo) * 0.03).max(1e-3);
        (lo - pad)..(hi + pad)
    };
    let mut buffer = vec![255u8; size as usize * size as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (size, size)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .build_cartesian_2d(bounds(0), bounds(1))
            .map_err(|e| draw_error(&e))?;
        let radius = if map.points.len() > 2000 { 2 } else { 3 };
        chart
            .draw_series(map.points.iter().zip(&map.labels).map(|(p, label)| {
                let [r, g, b] = class_colour(classes[label]);
                Circle::new((p[0], p[1]), radius, RGBColor(r, g, b).filled())
            }))
            .map_err(|e| draw_error(&e))?;
        root.present().map_err(|e| draw_error(&e))?;
    }
    image::RgbImage::from_raw(size, size, buffer)
        .expect("the buffer was sized for the image")
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| PlotError::Image {
            path: path.to_path_buf(),
            source,
        })
}
