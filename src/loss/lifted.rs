//! The lifted structured loss (Oh Song et al. 2016) and its generalized form (Hermans et al.
//! 2017).

use candle_core::Tensor;

use super::distances::euclidean;
use super::{LossError, masked_sum, masks_with_both_pairs, row_max};

/// A value far below any log-sum-exp argument, standing in for "not in the set".
const EXCLUDED: f64 = -1e30;

/// The lifted structured loss, exactly as the original Caffe layer computes it:
///
/// J̃ᵢⱼ = log( Σ_{k: yₖ≠yᵢ} exp(α − Dᵢₖ) + Σ_{l: yₗ≠yⱼ} exp(α − Dⱼₗ) ) + Dᵢⱼ,
/// L = 1/(2|P|) · Σ_{(i,j)∈P} max(0, J̃ᵢⱼ)²,
///
/// over every unordered pair i < j of the batch with yᵢ = yⱼ (P), with Euclidean, not squared,
/// distances D and margin α. The log-sum-exp is stabilised by the larger of the two anchors'
/// maxima, as the layer does.
///
/// # Errors
/// [`LossError::EmbeddingsShape`] when `embeddings` is not N×D with N ≥ 2 and D ≥ 1;
/// [`LossError::LabelsShape`] when `labels` is not a vector of N; [`LossError::NoPositivePair`]
/// when no two samples share a class; [`LossError::NoNegativePair`] when all samples share one;
/// [`LossError::Tensor`] when a tensor operation fails.
pub fn lifted_structured_loss(
    embeddings: &Tensor,
    labels: &Tensor,
    margin: f64,
) -> Result<Tensor, LossError> {
    let masks = masks_with_both_pairs(embeddings, labels)?;
    let n = embeddings.dim(0)?;
    let d = euclidean(embeddings)?;
    // Per anchor: mᵢ = max over negatives of (α − Dᵢₖ), eᵢ = Σ exp(α − Dᵢₖ − mᵢ).
    let (m, e) = masked_logsumexp_parts(&d.affine(-1.0, margin)?, &masks.different)?;
    // Per pair: M = max(mᵢ, mⱼ), S = eᵢ·exp(mᵢ − M) + eⱼ·exp(mⱼ − M), J̃ = log S + M + Dᵢⱼ.
    let (mi, mj) = (m.broadcast_as((n, n))?, m.t()?.broadcast_as((n, n))?);
    let big = mi.maximum(&mj)?;
    let (ei, ej) = (e.broadcast_as((n, n))?, e.t()?.broadcast_as((n, n))?);
    let s = ei
        .mul(&mi.sub(&big)?.exp()?)?
        .add(&ej.mul(&mj.sub(&big)?.exp()?)?)?;
    // Off the positive pairs, log(1) keeps every value (and gradient) finite.
    let pairs = masks.upper_same.ne(0.0)?;
    let s = pairs.where_cond(&s, &s.ones_like()?)?;
    let j = s.log()?.add(&big)?.add(&d)?;
    let total = masked_sum(&j.relu()?.sqr()?, &masks.upper_same)?;
    Ok(total.affine(0.5 / masks.positive_pairs as f64, 0.0)?)
}

/// The generalized lifted loss of Hermans et al. (2017), in pytorch-metric-learning's form
/// with an un-normalised Euclidean distance:
///
/// Lₐ = max(0, log Σ_{p: yₚ=yₐ, p≠a} exp(Dₐₚ) + log Σ_{n: yₙ≠yₐ} exp(α − Dₐₙ)),
///
/// averaged over the anchors.
///
/// # Errors
/// As for [`lifted_structured_loss`].
pub fn generalized_lifted_loss(
    embeddings: &Tensor,
    labels: &Tensor,
    margin: f64,
) -> Result<Tensor, LossError> {
    let masks = masks_with_both_pairs(embeddings, labels)?;
    let d = euclidean(embeddings)?;
    let (mp, ep) = masked_logsumexp_parts(&d, &masks.same)?;
    let (mn, en) = masked_logsumexp_parts(&d.affine(-1.0, margin)?, &masks.different)?;
    // Anchors without a positive have ep = 0: keep log finite and leave them out of the mean.
    let has_positive = masks.same.sum_keepdim(1)?.gt(0.0)?;
    let anchors = has_positive.to_dtype(d.dtype())?;
    let ep = has_positive.where_cond(&ep, &ep.ones_like()?)?;
    let per_anchor = ep.log()?.add(&mp)?.add(&en.log()?.add(&mn)?)?.relu()?;
    let count = anchors
        .sum_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?;
    Ok(per_anchor
        .mul(&anchors)?
        .sum_all()?
        .affine(1.0 / count, 0.0)?)
}

/// For each row of `values`, over the columns where `mask` is 1: the maximum m (a constant)
/// and Σ exp(v − m). Rows with no such column get m = [`EXCLUDED`] and a sum of 0.
fn masked_logsumexp_parts(values: &Tensor, mask: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let keep = mask.ne(0.0)?;
    let excluded =
        Tensor::full(EXCLUDED, values.dims(), values.device())?.to_dtype(values.dtype())?;
    let masked = keep.where_cond(values, &excluded)?;
    let m = row_max(&masked)?;
    // Excluded entries become exp(−1e30 − m) = 0, with zero gradient.
    let e = masked.broadcast_sub(&m)?.exp()?.mul(mask)?.sum_keepdim(1)?;
    Ok((m, e))
}
