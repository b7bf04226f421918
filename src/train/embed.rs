//! Embeddings of every sample of a packed folder, by a network in evaluation mode (centre crop,
//! no gradient), for evaluation and export.

use candle_core::{DType, Device, Tensor};

use super::TrainError;
use super::model::EmbeddingNet;
use crate::loader::{Augment, Loader};

/// The embeddings (N×D, on `device`) and class ids of every sample of `loader`'s set, in index
/// order.
///
/// # Errors
/// [`TrainError::Loader`] when a batch cannot be loaded; [`TrainError::Tensor`] when a tensor
/// operation or the network's forward pass fails (also when the set is empty).
pub fn embed_all(
    net: &EmbeddingNet,
    loader: &Loader,
    crop: u32,
    batch: usize,
    device: &Device,
) -> Result<(Tensor, Vec<i64>), TrainError> {
    let mut parts = Vec::new();
    let mut labels = Vec::new();
    for b in loader.sequential(batch, Augment::CenterCrop { size: crop }) {
        let b = b?;
        let images = b.images(device)?;
        parts.push(net.forward(&images, false)?.detach());
        labels.extend(b.labels.iter().map(|&l| i64::from(l)));
    }
    let embeddings = Tensor::cat(&parts, 0)?.to_dtype(DType::F32)?;
    Ok((embeddings, labels))
}
