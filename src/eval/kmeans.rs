//! k-means for the clustering metrics: k-means++ seeding, then Lloyd iterations, with every
//! distance computed by blocked matrix products (candle, on the tensor's device).
//!
//! Seeding, up to k = 128, is greedy k-means++ exactly as scikit-learn does it: each new centre
//! is the best (lowest resulting Σ D²) of 2 + ⌊ln k⌋ candidates drawn with probability
//! proportional to the squared distance to the nearest centre so far, one centre at a time.
//! Beyond that (SOP's test split has 11,316 classes) the greedy trials would cost k·(2 + ln k)
//! distance rows, eleven times the work of a Lloyd iteration at SOP's k, so seeding is plain
//! k-means++ (one draw per centre) in 128 rounds of ⌈k / 128⌉ centres: a round draws its
//! centres from the same D² distribution and updates the distances with one matrix product.
//! Lloyd iterations stop when no assignment changes or after `max_iter`. A cluster that empties
//! gets the point farthest from its centre. All randomness comes from the seed.

use candle_core::{D, DType, Device, Tensor};
use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::knn::with_host_f32;

/// Up to this k, seeding is scikit-learn's greedy k-means++, one centre at a time.
const EXACT_GREEDY_UP_TO: usize = 128;

/// Rows per parallel chunk when summing seeding potentials.
const POTENTIAL_CHUNK: usize = 64;
use serde::Serialize;

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Seed.
    pub seed: u64,
    /// Most Lloyd iterations.
    pub max_iter: usize,
    /// Rows per block of distance computations.
    pub block: usize,
}

/// A clustering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KMeansResult {
    /// Cluster of each point.
    pub assignments: Vec<u32>,
    /// Sum of squared distances to the assigned centres.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
}

/// Clusters the rows of `x` (N×D).
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` is not 2-D or has no
/// rows.
pub fn kmeans(x: &Tensor, config: KMeansConfig) -> candle_core::Result<KMeansResult> {
    let x = x.to_dtype(DType::F32)?.contiguous()?;
    let (n, d) = x.dims2()?;
    if n == 0 {
        candle_core::bail!("k-means needs at least one row; the embeddings are empty");
    }
    let k = config.k.clamp(1, n);
    let device = x.device().clone();
    let host: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let norms: Vec<f32> = host
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);

    // Greedy k-means++ seeding, in rounds of `batch` centres.
    let batch = k.div_ceil(128).max(1);
    let trials = if k <= EXACT_GREEDY_UP_TO {
        2 + (k as f64).ln().floor() as usize
    } else {
        1
    };
    let mut chosen: Vec<usize> = vec![rng.random_range(0..n)];
    let mut nearest = squared_to(&x, &norms, &host, &chosen, None, d, config.block, &device)?.0;
    while chosen.len() < k {
        let draws = batch.min(k - chosen.len());
        // `trials` candidates per centre to draw, each drawn with probability ∝ D².
        let total: f64 = nearest.iter().map(|&w| f64::from(w)).sum();
        let mut cumulative = Vec::with_capacity(n);
        let mut running = 0f64;
        for &w in &nearest {
            running += f64::from(w);
            cumulative.push(running);
        }
        let candidates: Vec<usize> = (0..draws * trials)
            .map(|_| {
                if total > 0.0 {
                    let target = rng.random_range(0.0..total);
                    cumulative.partition_point(|&c| c <= target).min(n - 1)
                } else {
                    rng.random_range(0..n)
                }
            })
            .collect();
        // Keep, for each centre, the candidate that lowers Σ D² the most.
        let picks: Vec<usize> = if trials == 1 {
            candidates
        } else {
            let (_, potentials) = squared_to(
                &x,
                &norms,
                &host,
                &candidates,
                Some(&nearest),
                d,
                config.block,
                &device,
            )?;
            candidates
                .chunks(trials)
                .zip(potentials.chunks(trials))
                .map(|(c, p)| {
                    let best = p
                        .iter()
                        .enumerate()
                        .fold(0, |best, (i, v)| if *v < p[best] { i } else { best });
                    c[best]
                })
                .collect()
        };
        let (update, _) = squared_to(&x, &norms, &host, &picks, None, d, config.block, &device)?;
        for (current, fresh) in nearest.iter_mut().zip(update) {
            *current = current.min(fresh);
        }
        chosen.extend(picks);
    }
    let mut centres: Vec<f32> = chosen
        .iter()
        .flat_map(|&i| host[i * d..(i + 1) * d].iter().copied())
        .collect();

    // Lloyd iterations.
    let mut assignments = vec![u32::MAX; n];
    let mut iterations = 0;
    let mut inertia = 0.0;
    for _ in 0..config.max_iter.max(1) {
        iterations += 1;
        let (assigned, distances) = assign(&x, &norms, &centres, k, d, config.block, &device)?;
        inertia = distances.iter().map(|&v| f64::from(v)).sum();
        let changed = assigned != assignments;
        assignments = assigned;
        if !changed {
            break;
        }
        // New centres: means of their points; an empty cluster takes the farthest point.
        let mut sums = vec![0f64; k * d];
        let mut counts = vec![0usize; k];
        for (i, &c) in assignments.iter().enumerate() {
            counts[c as usize] += 1;
            for (s, &v) in sums[c as usize * d..(c as usize + 1) * d]
                .iter_mut()
                .zip(&host[i * d..(i + 1) * d])
            {
                *s += f64::from(v);
            }
        }
        let mut far: Vec<usize> = (0..n).collect();
        far.sort_by(|&a, &b| distances[b].total_cmp(&distances[a]).then(a.cmp(&b)));
        let mut spare = far.into_iter();
        for c in 0..k {
            let centre = &mut centres[c * d..(c + 1) * d];
            if counts[c] == 0 {
                let p = spare.next().unwrap_or(0);
                centre.copy_from_slice(&host[p * d..(p + 1) * d]);
            } else {
                for (value, s) in centre.iter_mut().zip(&sums[c * d..(c + 1) * d]) {
                    *value = (s / counts[c] as f64) as f32;
                }
            }
        }
    }
    Ok(KMeansResult {
        assignments,
        inertia,
        iterations,
    })
}

/// Distances to the rows `centres` (indices into x), in row blocks: the squared distance from
/// every row to the nearest of them, and, for each of them, the potential Σᵢ min(currentᵢ,
/// D²(i, centre)) it would leave if it were added alone to the centres behind `current`.
#[allow(clippy::too_many_arguments)]
fn squared_to(
    x: &Tensor,
    norms: &[f32],
    host: &[f32],
    centres: &[usize],
    current: Option<&[f32]>,
    d: usize,
    block: usize,
    device: &Device,
) -> candle_core::Result<(Vec<f32>, Vec<f64>)> {
    let n = norms.len();
    let m = centres.len();
    let c: Vec<f32> = centres
        .iter()
        .flat_map(|&i| host[i * d..(i + 1) * d].iter().copied())
        .collect();
    let c = Tensor::from_vec(c, (m, d), device)?;
    let c_norms: Vec<f32> = c.sqr()?.sum_keepdim(D::Minus1)?.flatten_all()?.to_vec1()?;
    let ct = c.t()?;
    let mut nearest = vec![0f32; n];
    let mut potentials = vec![0f64; m];
    let block = block.max(1);
    for start in (0..n).step_by(block) {
        let rows = block.min(n - start);
        let dots = x.narrow(0, start, rows)?.matmul(&ct)?;
        // Rows are scanned in parallel in fixed chunks whose partial potentials are added in
        // chunk order, so the sums do not depend on the number of threads.
        let partials: Vec<(Vec<f32>, Vec<f64>)> = with_host_f32(&dots, |dots| {
            dots.par_chunks(POTENTIAL_CHUNK * m)
                .enumerate()
                .map(|(chunk, values)| {
                    let mut bests = Vec::with_capacity(POTENTIAL_CHUNK);
                    let mut partial = vec![0f64; m];
                    for (r, row) in values.chunks(m).enumerate() {
                        let i = start + chunk * POTENTIAL_CHUNK + r;
                        let cap = current.map_or(f32::INFINITY, |c| c[i]);
                        let mut best = f32::INFINITY;
                        for ((p, &dot), &c_norm) in partial.iter_mut().zip(row).zip(&c_norms) {
                            let squared = (c_norm - 2.0 * dot + norms[i]).max(0.0);
                            best = best.min(squared);
                            *p += f64::from(squared.min(cap));
                        }
                        bests.push(best);
                    }
                    (bests, partial)
                })
                .collect()
        })?;
        let mut i = start;
        for (bests, partial) in partials {
            for best in bests {
                nearest[i] = best;
                i += 1;
            }
            for (total, p) in potentials.iter_mut().zip(partial) {
                *total += p;
            }
        }
    }
    Ok((nearest, potentials))
}

/// The nearest centre of every row, and the squared distance to it.
fn assign(
    x: &Tensor,
    norms: &[f32],
    centres: &[f32],
    k: usize,
    d: usize,
    block: usize,
    device: &Device,
) -> candle_core::Result<(Vec<u32>, Vec<f32>)> {
    let n = norms.len();
    let c = Tensor::from_slice(centres, (k, d), device)?;
    let c_norms: Vec<f32> = c.sqr()?.sum_keepdim(D::Minus1)?.flatten_all()?.to_vec1()?;
    let ct = c.t()?;
    let mut assignments = vec![0u32; n];
    let mut distances = vec![0f32; n];
    let block = block.max(1);
    for start in (0..n).step_by(block) {
        let rows = block.min(n - start);
        let dots = x.narrow(0, start, rows)?.matmul(&ct)?;
        with_host_f32(&dots, |dots| {
            assignments[start..start + rows]
                .par_iter_mut()
                .zip(distances[start..start + rows].par_iter_mut())
                .zip(dots.par_chunks(k))
                .for_each(|((a, dist), row)| {
                    // The nearest centre minimises ‖c‖² − 2 x·c; the first wins a tie.
                    let (best, value) = row.iter().zip(&c_norms).enumerate().fold(
                        (0usize, f32::INFINITY),
                        |acc, (j, (&dot, &c_norm))| {
                            let key = c_norm - 2.0 * dot;
                            if key < acc.1 { (j, key) } else { acc }
                        },
                    );
                    *a = best as u32;
                    *dist = value;
                });
        })?;
        for (dist, &norm) in distances[start..start + rows]
            .iter_mut()
            .zip(&norms[start..start + rows])
        {
            *dist = (*dist + norm).max(0.0);
        }
    }
    Ok((assignments, distances))
}
