//! Evaluation: retrieval (Recall@K, precision@1, R-precision, MAP@R) from exact nearest
//! neighbours, and clustering (NMI, AMI, pairwise F1) from k-means with k = the number of
//! classes, over several seeds.
//!
//! - [`knn`]: blocked exact k-nearest neighbours;
//! - [`retrieval`]: the retrieval metrics and their definitions;
//! - [`kmeans`]: k-means++ and Lloyd;
//! - [`clustering`]: NMI, AMI and F1 and their definitions;
//! - [`io`]: embeddings and labels from `.npy` and CSV files.
//!
//! Every sample is a query against all the others (the test split is both query and gallery,
//! as in the paper and in the Metric Learning Reality Check).

pub mod clustering;
pub mod io;
pub mod kmeans;
pub mod knn;
mod npy;
pub mod retrieval;

use std::fmt;

use std::path::PathBuf;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

pub use knn::{Metric, Neighbours, knn};
pub use retrieval::RetrievalMetrics;

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// The K of Recall@K.
    pub recall_at: Vec<usize>,
    /// Distance.
    pub metric: Metric,
    /// k-means runs (seeds 0, 1, …); 0 skips clustering.
    pub kmeans_runs: usize,
    /// Most Lloyd iterations per run.
    pub kmeans_max_iter: usize,
    /// Query rows per matrix product.
    pub block: usize,
}

impl EvalOptions {
    /// The paper's settings for a dataset: K = 1, 10, 100, 1000 for SOP, else 1, 2, 4, 8.
    pub fn for_dataset(dataset: &str) -> EvalOptions {
        EvalOptions {
            recall_at: if dataset == "sop" {
                vec![1, 10, 100, 1000]
            } else {
                vec![1, 2, 4, 8]
            },
            metric: Metric::Euclidean,
            kmeans_runs: 3,
            kmeans_max_iter: 100,
            block: 1024,
        }
    }
}

/// Errors from evaluation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file is not a `.npy` file lifted can read.
    #[error("{path} is not a usable .npy file: {problem}")]
    NotNpy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A `.npy` file of embeddings that is not an N×D array with N, D ≥ 1.
    #[error(
        "{path} holds an array of shape {shape:?}; embeddings must be N×D with N and D at least 1"
    )]
    EmbeddingsShape {
        /// The file.
        path: PathBuf,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A label file whose header has no label column.
    #[error("{0}: the header needs a `label` or `class_id` column")]
    NoLabelColumn(PathBuf),
    /// A label that is not an integer.
    #[error("{path} row {row}: `{cell}` is not an integer label")]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// The row (1-based, after any header).
        row: usize,
        /// The cell.
        cell: String,
    },
    /// Embeddings that are not a 2-D tensor.
    #[error("embeddings must be N×D, got {0:?}")]
    NotMatrix(Vec<usize>),
    /// Embeddings with no dimensions.
    #[error("the embeddings have 0 dimensions (an N×0 array)")]
    NoDimensions,
    /// A Recall@K with K = 0.
    #[error("Recall@K needs K of at least 1, not 0")]
    ZeroK,
    /// As many labels as embeddings are needed.
    #[error("{embeddings} embeddings but {labels} labels")]
    CountMismatch {
        /// Embeddings.
        embeddings: usize,
        /// Labels.
        labels: usize,
    },
    /// Fewer than 2 samples.
    #[error("evaluation needs at least 2 samples, not {0}")]
    TooFewSamples(usize),
    /// NaN or infinite embeddings.
    #[error("the embeddings contain NaN or infinite values")]
    NonFinite,
    /// No sample shares its class with another.
    #[error(
        "none of the {0} samples has another sample of its class, so no retrieval metric has a \
         query to average (each class needs at least 2 samples)"
    )]
    NoQueries(usize),
    /// Embeddings could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A mean and standard deviation over k-means runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one run).
    pub sd: f64,
}

impl MeanSd {
    fn of(values: &[f64]) -> MeanSd {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        MeanSd {
            mean,
            sd: var.sqrt(),
        }
    }
}

/// Clustering metrics over the k-means runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusteringReport {
    /// k (the number of classes).
    pub k: usize,
    /// Runs.
    pub runs: usize,
    /// NMI.
    pub nmi: MeanSd,
    /// AMI.
    pub ami: MeanSd,
    /// Pairwise F1.
    pub f1: MeanSd,
}

/// All metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Samples.
    pub samples: usize,
    /// Classes.
    pub classes: usize,
    /// Distance.
    pub metric: Metric,
    /// Retrieval metrics.
    pub retrieval: RetrievalMetrics,
    /// Clustering metrics (absent when `kmeans_runs` is 0).
    pub clustering: Option<ClusteringReport>,
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.retrieval;
        writeln!(
            f,
            "{} samples, {} classes, {:?} distance ({} queries, {} alone in their class)",
            self.samples, self.classes, self.metric, r.queries, r.lone_queries
        )?;
        let recalls: Vec<String> = r
            .recall_at
            .iter()
            .map(|(k, v)| format!("R@{k} {:.2}", v * 100.0))
            .collect();
        writeln!(f, "  retrieval   {}", recalls.join("  "))?;
        writeln!(
            f,
            "              P@1 {:.2}  R-precision {:.2}  MAP@R {:.2}",
            r.precision_at_1 * 100.0,
            r.r_precision * 100.0,
            r.map_at_r * 100.0
        )?;
        if let Some(c) = &self.clustering {
            writeln!(
                f,
                "  clustering  NMI {:.2} ± {:.2}  AMI {:.2} ± {:.2}  F1 {:.2} ± {:.2}  (k-means, k = {}, {} runs)",
                c.nmi.mean * 100.0,
                c.nmi.sd * 100.0,
                c.ami.mean * 100.0,
                c.ami.sd * 100.0,
                c.f1.mean * 100.0,
                c.f1.sd * 100.0,
                c.k,
                c.runs
            )?;
        }
        Ok(())
    }
}

/// Evaluates `embeddings` (N×D) with integer class `labels` (N).
///
/// # Errors
/// Whatever [`evaluate_with_neighbours`] returns.
pub fn evaluate(
    embeddings: &Tensor,
    labels: &[i64],
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    evaluate_with_neighbours(embeddings, labels, options).map(|(report, _)| report)
}

/// [`evaluate`], also returning the nearest neighbours it found (as many per sample as the
/// metrics needed: the largest K and the largest class size − 1), for pictures.
///
/// # Errors
/// [`EvalError::NotMatrix`] when `embeddings` is not 2-D; [`EvalError::NoDimensions`] when it has
/// no columns; [`EvalError::ZeroK`] when `options.recall_at` holds 0; [`EvalError::CountMismatch`]
/// when there are not as many labels as rows; [`EvalError::TooFewSamples`] for fewer than 2 rows;
/// [`EvalError::NonFinite`] when a value is NaN or infinite; [`EvalError::NoQueries`] when no class
/// has 2 samples; [`EvalError::Tensor`] when a tensor operation fails.
pub fn evaluate_with_neighbours(
    embeddings: &Tensor,
    labels: &[i64],
    options: &EvalOptions,
) -> Result<(EvalReport, Neighbours), EvalError> {
    let (n, d) = embeddings
        .dims2()
        .map_err(|_| EvalError::NotMatrix(embeddings.dims().to_vec()))?;
    if d == 0 {
        return Err(EvalError::NoDimensions);
    }
    if options.recall_at.contains(&0) {
        return Err(EvalError::ZeroK);
    }
    let mut seen = std::collections::BTreeSet::new();
    let recall_at: Vec<usize> = options
        .recall_at
        .iter()
        .copied()
        .filter(|k| seen.insert(*k))
        .collect();
    if n != labels.len() {
        return Err(EvalError::CountMismatch {
            embeddings: n,
            labels: labels.len(),
        });
    }
    if n < 2 {
        return Err(EvalError::TooFewSamples(n));
    }
    let finite = embeddings
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .all(|v| v.is_finite());
    if !finite {
        return Err(EvalError::NonFinite);
    }
    let k = retrieval::neighbours_needed(labels, &recall_at);
    let neighbours = knn(embeddings, k, options.metric, options.block)?;
    let retrieval = retrieval::retrieval(&neighbours, labels, &recall_at);
    if retrieval.queries == 0 {
        return Err(EvalError::NoQueries(n));
    }
    let classes = labels
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let clustering = if options.kmeans_runs == 0 {
        None
    } else {
        let mut runs = Vec::new();
        for seed in 0..options.kmeans_runs as u64 {
            let config = kmeans::KMeansConfig {
                k: classes,
                seed,
                max_iter: options.kmeans_max_iter,
                block: options.block,
            };
            let result = kmeans::kmeans(embeddings, config)?;
            runs.push(clustering::scores(&result.assignments, labels));
        }
        let pick = |f: fn(&clustering::ClusteringScores) -> f64| {
            MeanSd::of(&runs.iter().map(f).collect::<Vec<_>>())
        };
        Some(ClusteringReport {
            k: classes,
            runs: runs.len(),
            nmi: pick(|s| s.nmi),
            ami: pick(|s| s.ami),
            f1: pick(|s| s.f1),
        })
    };
    let report = EvalReport {
        samples: n,
        classes,
        metric: options.metric,
        retrieval,
        clustering,
    };
    Ok((report, neighbours))
}
