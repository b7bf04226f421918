//! Pairwise Euclidean distances and the label masks every loss needs.

use candle_core::{DType, Device, Tensor};

/// The floor under squared distances before the square root: √ has an infinite slope at 0, so
/// identical embeddings would give NaN gradients. With the floor, their distance is 10⁻⁶ and
/// no gradient flows through it.
pub const MIN_SQUARED_DISTANCE: f64 = 1e-12;

/// The N×N Euclidean distances between the rows of `x` (N×D):
/// √max(‖xᵢ‖² + ‖xⱼ‖² − 2xᵢ·xⱼ, [`MIN_SQUARED_DISTANCE`]), the original layer's formula.
///
/// # Errors
/// candle's errors from the tensor operations, among them one when `x` is not 2-D.
pub fn euclidean(x: &Tensor) -> candle_core::Result<Tensor> {
    squared_euclidean(x)?
        .clamp(MIN_SQUARED_DISTANCE, f64::MAX)?
        .sqrt()
}

/// The N×N squared distances, clamped at 0 from below.
pub fn squared_euclidean(x: &Tensor) -> candle_core::Result<Tensor> {
    let norms = x.sqr()?.sum_keepdim(1)?;
    let gram = x.matmul(&x.t()?)?;
    norms
        .broadcast_add(&norms.t()?)?
        .sub(&gram.affine(2.0, 0.0)?)?
        .clamp(0.0, f64::MAX)
}

/// 0/1 masks of a batch's pairs, as tensors of `dtype` on `device`.
pub(crate) struct Masks {
    /// `same[i][j]`: i ≠ j and same class.
    pub same: Tensor,
    /// `upper_same[i][j]`: i < j and same class (the unordered positive pairs).
    pub upper_same: Tensor,
    /// `different[i][j]`: different classes.
    pub different: Tensor,
    /// Number of unordered positive pairs.
    pub positive_pairs: usize,
}

impl Masks {
    pub fn new(labels: &[i64], dtype: DType, device: &Device) -> candle_core::Result<Masks> {
        let n = labels.len();
        let mut same = vec![0f32; n * n];
        let mut upper = vec![0f32; n * n];
        let mut different = vec![0f32; n * n];
        let mut positive_pairs = 0;
        for i in 0..n {
            for j in 0..n {
                if i != j && labels[i] == labels[j] {
                    same[i * n + j] = 1.0;
                    if i < j {
                        upper[i * n + j] = 1.0;
                        positive_pairs += 1;
                    }
                }
                if labels[i] != labels[j] {
                    different[i * n + j] = 1.0;
                }
            }
        }
        let tensor = |v: Vec<f32>| Tensor::from_vec(v, (n, n), device)?.to_dtype(dtype);
        Ok(Masks {
            same: tensor(same)?,
            upper_same: tensor(upper)?,
            different: tensor(different)?,
            positive_pairs,
        })
    }
}
