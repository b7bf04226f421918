//! A batch as the loader hands it out: pixels in a reusable buffer, labels and sample indices.

use std::sync::{Arc, Mutex, Weak};

/// How a batch's pixels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `[N, 3, S, S]` float32, normalised (what a network takes).
    NchwF32,
    /// `[N, S, S, 3]` bytes, not normalised (to normalise on the GPU).
    NhwcU8,
}

/// Pixel storage of a batch.
#[derive(Debug)]
pub enum Pixels {
    /// Normalised floats, NCHW.
    F32(Vec<f32>),
    /// Bytes, NHWC.
    U8(Vec<u8>),
}

/// Buffers returned by dropped batches, for the next ones.
pub(crate) type Pool = Arc<Mutex<Vec<Pixels>>>;

/// One batch.
#[derive(Debug)]
pub struct Batch {
    pixels: Option<Pixels>,
    /// `[N, 3, S, S]` or `[N, S, S, 3]`.
    pub shape: [usize; 4],
    /// Each sample's class id.
    pub labels: Vec<u32>,
    /// Each sample's global index in the shard set.
    pub indices: Vec<usize>,
    pool: Weak<Mutex<Vec<Pixels>>>,
}

impl Batch {
    pub(crate) fn new(
        pixels: Pixels,
        shape: [usize; 4],
        labels: Vec<u32>,
        indices: Vec<usize>,
        pool: &Pool,
    ) -> Batch {
        Batch {
            pixels: Some(pixels),
            shape,
            labels,
            indices,
            pool: Arc::downgrade(pool),
        }
    }

    /// The pixels.
    pub fn pixels(&self) -> &Pixels {
        self.pixels
            .as_ref()
            .expect("pixels are present until the batch is consumed")
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch is empty (never true for a batch from the loader).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels as a candle tensor on `device` (`f32` NCHW, or `u8` NHWC), copied out of the
    /// batch's buffer so that the buffer can be reused (with the `train` feature).
    ///
    /// # Errors
    /// candle's error when the tensor cannot be made on `device`.
    #[cfg(feature = "train")]
    pub fn images(&self, device: &candle_core::Device) -> candle_core::Result<candle_core::Tensor> {
        match self.pixels() {
            Pixels::F32(v) => candle_core::Tensor::from_slice(&v[..], &self.shape, device),
            Pixels::U8(v) => candle_core::Tensor::from_slice(&v[..], &self.shape, device),
        }
    }

    /// The labels as a `u32` tensor on `device` (with the `train` feature).
    ///
    /// # Errors
    /// candle's error when the tensor cannot be made on `device`.
    #[cfg(feature = "train")]
    pub fn label_tensor(
        &self,
        device: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_slice(&self.labels[..], self.labels.len(), device)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let (Some(pixels), Some(pool)) = (self.pixels.take(), self.pool.upgrade())
            && let Ok(mut pool) = pool.lock()
        {
            pool.push(pixels);
        }
    }
}
