//! The baselines the paper compares against, by its equations: the contrastive loss over every
//! pair and the triplet loss over every triplet of the batch.

use candle_core::Tensor;

use super::distances::{Masks, euclidean, squared_euclidean};
use super::{LossError, check_inputs, masked_sum, masks_with_both_pairs};

/// The contrastive loss (Hadsell et al. 2006; the paper's eq. 1), averaged over the n(n−1)/2
/// unordered pairs of the batch: `same · D² + different · max(0, α − D)²`.
///
/// # Errors
/// [`LossError::EmbeddingsShape`] when `embeddings` is not N×D with N ≥ 2 and D ≥ 1;
/// [`LossError::LabelsShape`] when `labels` is not a vector of N; [`LossError::Tensor`] when a
/// tensor operation fails. A batch without positive or negative pairs is not an error.
pub fn contrastive_loss(
    embeddings: &Tensor,
    labels: &Tensor,
    margin: f64,
) -> Result<Tensor, LossError> {
    let labels = check_inputs(embeddings, labels)?;
    let n = labels.len();
    let masks = Masks::new(&labels, embeddings.dtype(), embeddings.device())?;
    let d2 = squared_euclidean(embeddings)?;
    let d = euclidean(embeddings)?;
    let upper = Tensor::triu2(n, embeddings.dtype(), embeddings.device())?.sub(&Tensor::eye(
        n,
        embeddings.dtype(),
        embeddings.device(),
    )?)?;
    let positive = masked_sum(&d2, &masks.upper_same)?;
    let negative = masked_sum(
        &d.affine(-1.0, margin)?.relu()?.sqr()?,
        &masks.different.mul(&upper)?,
    )?;
    let pairs = (n * (n - 1) / 2) as f64;
    Ok(positive.add(&negative)?.affine(1.0 / pairs, 0.0)?)
}

/// The triplet loss (Schroff et al. 2015; the paper's eq. 2) with squared distances, averaged
/// over every valid triplet (a, p, n): a ≠ p of one class, n of another:
/// `max(0, D²ₐₚ − D²ₐₙ + α)`.
///
/// # Errors
/// As for [`lifted_structured_loss`](super::lifted_structured_loss).
pub fn triplet_loss(
    embeddings: &Tensor,
    labels: &Tensor,
    margin: f64,
) -> Result<Tensor, LossError> {
    let masks = masks_with_both_pairs(embeddings, labels)?;
    let d2 = squared_euclidean(embeddings)?;
    // [a, p, n] = D²[a, p] − D²[a, n] + α, valid where same[a, p] and different[a, n].
    let terms = d2
        .unsqueeze(2)?
        .broadcast_sub(&d2.unsqueeze(1)?)?
        .affine(1.0, margin)?
        .relu()?;
    let valid = masks
        .same
        .unsqueeze(2)?
        .broadcast_mul(&masks.different.unsqueeze(1)?)?;
    let count = valid
        .sum_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?;
    Ok(terms.mul(&valid)?.sum_all()?.affine(1.0 / count, 0.0)?)
}
