//! Retrieval metrics from the neighbours of every sample (each query against all other samples).
//!
//! For a query with class size c, R = c − 1 is the number of other samples of its class. A
//! query with R = 0 (a "lone" query, alone in its class) cannot retrieve anything and is left
//! out of every retrieval metric, as pytorch-metric-learning does; their number is reported.
//!
//! - **Recall@K** (the paper's): the share of queries with at least one same-class sample among
//!   their K nearest neighbours.
//! - **Precision@1**: the share whose nearest neighbour is of their class (equals Recall@1).
//! - **R-precision**: the mean over queries of (same-class samples among the R nearest) / R.
//! - **MAP@R** (Metric Learning Reality Check): the mean over queries of
//!   (1/R) · Σ_{i=1..R} P(i) · rel(i), where rel(i) is 1 if neighbour i is of the query's class
//!   and P(i) the precision among the first i neighbours. The divisor is R, not the number of
//!   relevant neighbours retrieved (MLRC and PML keep R; see PML issue #331).

use serde::Serialize;

use super::knn::Neighbours;

/// Retrieval metrics.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RetrievalMetrics {
    /// (K, Recall@K).
    pub recall_at: Vec<(usize, f64)>,
    /// Precision@1.
    pub precision_at_1: f64,
    /// R-precision.
    pub r_precision: f64,
    /// MAP@R.
    pub map_at_r: f64,
    /// Queries used.
    pub queries: usize,
    /// Queries left out because they are alone in their class.
    pub lone_queries: usize,
}

/// The number of neighbours [`retrieval`] needs: the largest K and the largest R.
pub fn neighbours_needed(labels: &[i64], ks: &[usize]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    let max_r = counts.values().map(|c| c - 1).max().unwrap_or(0);
    max_r.max(ks.iter().copied().max().unwrap_or(1))
}

/// Computes the metrics; `neighbours.k` must be at least [`neighbours_needed`] (capped at n − 1).
pub fn retrieval(neighbours: &Neighbours, labels: &[i64], ks: &[usize]) -> RetrievalMetrics {
    let mut counts = std::collections::HashMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0usize) += 1;
    }
    let mut hits = vec![0usize; ks.len()];
    let (mut p1, mut r_precision, mut map, mut queries, mut lone) = (0.0, 0.0, 0.0, 0usize, 0usize);
    for (i, &label) in labels.iter().enumerate() {
        let r = counts[&label] - 1;
        if r == 0 {
            lone += 1;
            continue;
        }
        queries += 1;
        let found = neighbours.of(i);
        let relevant: Vec<bool> = found.iter().map(|&j| labels[j as usize] == label).collect();
        for (h, &k) in hits.iter_mut().zip(ks) {
            if relevant.iter().take(k).any(|&x| x) {
                *h += 1;
            }
        }
        p1 += f64::from(u8::from(relevant.first() == Some(&true)));
        let within_r = relevant.iter().take(r);
        let (mut seen, mut precision_sum) = (0usize, 0.0);
        for (position, &rel) in within_r.enumerate() {
            if rel {
                seen += 1;
                precision_sum += seen as f64 / (position + 1) as f64;
            }
        }
        r_precision += seen as f64 / r as f64;
        map += precision_sum / r as f64;
    }
    let q = queries.max(1) as f64;
    RetrievalMetrics {
        recall_at: ks
            .iter()
            .zip(hits)
            .map(|(&k, h)| (k, h as f64 / q))
            .collect(),
        precision_at_1: p1 / q,
        r_precision: r_precision / q,
        map_at_r: map / q,
        queries,
        lone_queries: lone,
    }
}
