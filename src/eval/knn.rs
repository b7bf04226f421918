//! Exact k-nearest neighbours of every sample among all the others, by blocked matrix
//! products, never materialising the N×N distance matrix.
//!
//! Queries are processed in blocks of rows: one product `Q·Xᵀ` (candle matmul, on the tensor's
//! device), then a bounded max-heap per row keeps the k best candidates as the row is scanned,
//! so memory is the embeddings plus one `block × N` score matrix. The query itself is excluded
//! by its index; ties are broken by the smaller index, so results are the same on every run.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use candle_core::{D, DType, Storage, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How distances are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance ‖a − b‖.
    Euclidean,
    /// Cosine distance 1 − a·b / (‖a‖‖b‖), with a zero row at distance 1 from every row.
    Cosine,
}

/// The k nearest neighbours of every sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    /// Neighbours per sample.
    pub k: usize,
    /// `n × k` neighbour indices, nearest first.
    pub indices: Vec<u32>,
    /// `n × k` distances, matching `indices`.
    pub distances: Vec<f32>,
}

impl Neighbours {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len() / self.k.max(1)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The neighbours of sample `i`.
    pub fn of(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }
}

/// A candidate neighbour, ordered by (distance, index).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    distance: f32,
    index: u32,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` nearest neighbours of each row of `x` (N×D, any float dtype, any device) among the
/// other rows, processing `block` query rows at a time.
///
/// Euclidean: the rows are first centred (their mean subtracted, which changes no distance), so
/// the ranking key ‖r‖² − 2 q·r does not lose its digits to a large common offset, as real
/// features (post-ReLU pooling, heads without normalisation) carry. Cosine: rows are scaled to
/// unit length and ranked by −q·r; a row of zeros has similarity 0 to every row (distance 1), as
/// scikit-learn and pytorch-metric-learning define it.
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` is not 2-D.
pub fn knn(x: &Tensor, k: usize, metric: Metric, block: usize) -> candle_core::Result<Neighbours> {
    let x = x.to_dtype(DType::F32)?;
    let n = x.dim(0)?;
    let k = k.min(n.saturating_sub(1));
    let x = match metric {
        Metric::Euclidean => x.broadcast_sub(&x.mean_keepdim(0)?)?,
        Metric::Cosine => {
            let norms = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
            // A zero row stays zero (0 / 1 = 0): similarity 0 to everything.
            let safe = norms.eq(0.0)?.where_cond(&norms.ones_like()?, &norms)?;
            x.broadcast_div(&safe)?
        }
    };
    let norms: Vec<f32> = match metric {
        Metric::Euclidean => x.sqr()?.sum_keepdim(D::Minus1)?.flatten_all()?.to_vec1()?,
        // Ranking by −q·r: the key needs no norm term.
        Metric::Cosine => vec![0.0; n],
    };
    let xt = x.t()?;
    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f32; n * k];
    if k == 0 {
        return Ok(Neighbours {
            k,
            indices,
            distances,
        });
    }
    let block = block.max(1);
    for start in (0..n).step_by(block) {
        let rows = block.min(n - start);
        // Only the dot products come from the matrix product; the ranking key
        // ‖r‖² − 2 q·r (‖q‖² is the same along a row; the norm term is 0 for cosine) is formed
        // during the scan, so no further block-sized tensors are made.
        let dots = x.narrow(0, start, rows)?.matmul(&xt)?;
        let out_idx = &mut indices[start * k..(start + rows) * k];
        let out_dist = &mut distances[start * k..(start + rows) * k];
        with_host_f32(&dots, |dots| {
            out_idx
                .par_chunks_mut(k)
                .zip(out_dist.par_chunks_mut(k))
                .enumerate()
                .for_each(|(r, (idx, dist))| {
                    let query = start + r;
                    let best = top_k(&dots[r * n..(r + 1) * n], &norms, query, k);
                    for (slot, c) in best.into_iter().enumerate() {
                        idx[slot] = c.index;
                        dist[slot] = match metric {
                            Metric::Euclidean => (c.distance + norms[query]).max(0.0).sqrt(),
                            // key = −2 cos, so the distance 1 − cos is 1 + key / 2.
                            Metric::Cosine => 1.0 + c.distance / 2.0,
                        };
                    }
                });
        })?;
    }
    Ok(Neighbours {
        k,
        indices,
        distances,
    })
}

/// Calls `f` with the values of the f32 tensor `t` in row-major order: borrowed in place when
/// `t` is a contiguous CPU tensor, else copied to the host.
pub(super) fn with_host_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((from, to))) = (&*storage, layout.contiguous_offsets()) {
            return Ok(f(&cpu.as_slice::<f32>()?[from..to]));
        }
    }
    Ok(f(&t.flatten_all()?.to_vec1::<f32>()?))
}

/// The `k` (≥ 1) smallest ranking keys `norms[j] − 2 dots[j]` over `j ≠ exclude`, by (key,
/// index), sorted.
fn top_k(dots: &[f32], norms: &[f32], exclude: usize, k: usize) -> Vec<Candidate> {
    let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(k + 1);
    // The worst kept key once the heap is full. Indices rise during the scan, so a key equal to
    // it loses the tie and can be rejected without building a candidate.
    let mut worst = f32::INFINITY;
    for (index, (&dot, &norm)) in dots.iter().zip(norms).enumerate() {
        let key = norm - 2.0 * dot;
        if key >= worst || index == exclude {
            continue;
        }
        let candidate = Candidate {
            distance: key,
            index: index as u32,
        };
        if heap.len() < k {
            heap.push(candidate);
            if heap.len() == k {
                worst = heap.peek().map_or(f32::INFINITY, |c| c.distance);
            }
        } else {
            if let Some(mut top) = heap.peek_mut() {
                *top = candidate;
            }
            worst = heap.peek().map_or(f32::INFINITY, |c| c.distance);
        }
    }
    heap.into_sorted_vec()
}
