//! Metric-learning losses on a batch of embeddings, as candle tensors that support backward.
//!
//! - [`lifted_structured_loss`]: the paper's loss, exactly as the original Caffe layer computes it.
//! - [`generalized_lifted_loss`]: Hermans et al. (2017)'s per-anchor variant.
//! - [`contrastive_loss`] and [`triplet_loss`]: the baselines the paper compares against, by
//!   its equations (squared distances, every pair / every triplet of the batch).
//!
//! All take `embeddings` (N×D, f32 or f64) and `labels` (N class ids, any integer dtype), check
//! both shapes before computing, and compute Euclidean distances with a floor of
//! [`MIN_SQUARED_DISTANCE`] under the square root, so two identical embeddings give a finite
//! loss and zero (not NaN) gradient through their distance. `tools/golden/losses.py` computes
//! the reference values the tests compare with.

mod distances;
mod lifted;
mod pairs;

use candle_core::{D, Tensor};

pub use distances::{MIN_SQUARED_DISTANCE, euclidean};
pub use lifted::{generalized_lifted_loss, lifted_structured_loss};
pub use pairs::{contrastive_loss, triplet_loss};

/// Errors from computing a loss.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LossError {
    /// Embeddings that are not N×D with N ≥ 2 and D ≥ 1.
    #[error("embeddings must be N×D with N ≥ 2 and D ≥ 1, got shape {0:?}")]
    EmbeddingsShape(Vec<usize>),
    /// Labels that do not match the embeddings.
    #[error("labels must have shape [{expected}] to match the embeddings, got {got:?}")]
    LabelsShape {
        /// N, the number of embeddings.
        expected: usize,
        /// The labels' shape.
        got: Vec<usize>,
    },
    /// No two samples of the batch share a class.
    #[error(
        "the batch of {0} samples has no positive pair (no two samples share a class); use a P×K sampler with K ≥ 2"
    )]
    NoPositivePair(usize),
    /// All samples of the batch share a class.
    #[error(
        "the batch of {0} samples has a single class, so no negative pair; use at least 2 classes per batch"
    )]
    NoNegativePair(usize),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// The losses `lifted train` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// [`lifted_structured_loss`].
    Lifted,
    /// [`contrastive_loss`].
    Contrastive,
    /// [`triplet_loss`].
    Triplet,
    /// [`generalized_lifted_loss`].
    GeneralizedLifted,
}

impl LossKind {
    /// Computes this loss. `labels` may be on any device; they are read to the host to build
    /// the pair masks, which go to the embeddings' device, so labels on the CPU spare a wait
    /// for the device (the trainer keeps them there).
    ///
    /// # Errors
    /// Whatever the chosen loss returns: [`lifted_structured_loss`], [`contrastive_loss`],
    /// [`triplet_loss`] or [`generalized_lifted_loss`].
    pub fn compute(
        self,
        embeddings: &Tensor,
        labels: &Tensor,
        margin: f64,
    ) -> Result<Tensor, LossError> {
        match self {
            LossKind::Lifted => lifted_structured_loss(embeddings, labels, margin),
            LossKind::Contrastive => contrastive_loss(embeddings, labels, margin),
            LossKind::Triplet => triplet_loss(embeddings, labels, margin),
            LossKind::GeneralizedLifted => generalized_lifted_loss(embeddings, labels, margin),
        }
    }
}

/// Checks the inputs and builds the pair masks of a loss that needs at least one positive and
/// one negative pair in the batch.
fn masks_with_both_pairs(
    embeddings: &Tensor,
    labels: &Tensor,
) -> Result<distances::Masks, LossError> {
    let labels = check_inputs(embeddings, labels)?;
    let n = labels.len();
    let masks = distances::Masks::new(&labels, embeddings.dtype(), embeddings.device())?;
    if masks.positive_pairs == 0 {
        return Err(LossError::NoPositivePair(n));
    }
    if labels.iter().all(|&l| l == labels[0]) {
        return Err(LossError::NoNegativePair(n));
    }
    Ok(masks)
}

/// Checks shapes and reads the labels: `embeddings` N×D with N ≥ 2, `labels` N.
fn check_inputs(embeddings: &Tensor, labels: &Tensor) -> Result<Vec<i64>, LossError> {
    let dims = embeddings.dims();
    if dims.len() != 2 || dims[0] < 2 || dims[1] == 0 {
        return Err(LossError::EmbeddingsShape(dims.to_vec()));
    }
    if labels.dims() != [dims[0]] {
        return Err(LossError::LabelsShape {
            expected: dims[0],
            got: labels.dims().to_vec(),
        });
    }
    Ok(labels.to_dtype(candle_core::DType::I64)?.to_vec1::<i64>()?)
}

/// Sums a matrix's entries where `mask` (same shape, 0/1) is 1.
fn masked_sum(values: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    values.mul(mask)?.sum_all()
}

/// The maximum of each row (kept as a column), as a constant for stabilising log-sum-exp.
fn row_max(values: &Tensor) -> candle_core::Result<Tensor> {
    Ok(values.max_keepdim(D::Minus1)?.detach())
}
