//! `lifted stream`: run the loader over a packed folder for a number of epochs and report its
//! speed; optionally save the first batch as an image grid.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::LoaderError;
use super::augment::Augment;
use super::grid::write_grid;
use super::pipeline::{Loader, LoaderConfig};
use super::sampler::{PkSampler, SamplerConfig};
use crate::shard::{ShardError, ShardSet};

/// What to stream.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The packed folder.
    pub shards: PathBuf,
    /// Sampler settings.
    pub sampler: SamplerConfig,
    /// Loader settings.
    pub loader: LoaderConfig,
    /// Augmentation.
    pub augment: Augment,
    /// Epochs to run.
    pub epochs: u64,
    /// Write the first batch as a grid here.
    pub grid: Option<PathBuf>,
}

/// Errors from [`stream`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The shards could not be opened.
    #[error(transparent)]
    Shards(#[from] ShardError),
    /// The loader failed.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// The grid could not be written.
    #[error("cannot write the grid {path}")]
    Grid {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },
}

/// What [`stream`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Epochs run.
    pub epochs: u64,
    /// Batches delivered.
    pub batches: usize,
    /// Images delivered.
    pub images: usize,
    /// Samples per batch.
    pub batch_size: usize,
    /// Wall time.
    pub seconds: f64,
    /// Batches per second.
    pub batches_per_s: f64,
    /// Images per second.
    pub images_per_s: f64,
    /// Loader threads.
    pub threads: usize,
    /// The grid written, if any.
    #[serde(serialize_with = "lossy_optional_path")]
    pub grid: Option<PathBuf>,
}

impl fmt::Display for StreamReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} batches of {} ({} images, {} epochs) in {:.2} s on {} threads: {:.1} batches/s, {:.0} images/s",
            self.batches,
            self.batch_size,
            self.images,
            self.epochs,
            self.seconds,
            self.threads,
            self.batches_per_s,
            self.images_per_s
        )?;
        if let Some(grid) = &self.grid {
            writeln!(f, "first batch drawn in {}", grid.display())?;
        }
        Ok(())
    }
}

/// Streams `options.epochs` epochs of P×K batches.
///
/// # Errors
/// [`StreamError::Shards`] with whatever [`ShardSet::open`] returns; [`StreamError::Loader`] when
/// the sampler or loader settings are refused ([`PkSampler::new`], [`Loader::new`]) or a batch
/// fails (a bad augmentation, a batch too large, a sample that cannot be read or decoded);
/// [`StreamError::Grid`] when the grid cannot be written.
pub fn stream(options: &StreamOptions) -> Result<StreamReport, StreamError> {
    let set = Arc::new(ShardSet::open(&options.shards)?);
    let classes = set
        .classes()
        .iter()
        .map(|c| (c.class_id, c.indices().collect()))
        .collect();
    let sampler = PkSampler::new(classes, options.sampler).map_err(LoaderError::from)?;
    let loader = Loader::new(set, options.loader)?;
    let start = Instant::now();
    let (mut batches, mut images) = (0, 0);
    // One stream over all epochs, so the workers stay busy across epoch boundaries.
    for batch in loader.epochs(&sampler, 0..options.epochs, 0, options.augment) {
        let batch = batch?;
        if batches == 0
            && let Some(path) = &options.grid
        {
            write_grid(
                &batch,
                sampler.config().per_class,
                &options.loader.normalize,
                path,
            )
            .map_err(|source| StreamError::Grid {
                path: path.clone(),
                source,
            })?;
        }
        batches += 1;
        images += batch.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(StreamReport {
        epochs: options.epochs,
        batches,
        images,
        batch_size: sampler.batch_size(),
        seconds,
        batches_per_s: batches as f64 / seconds.max(1e-9),
        images_per_s: images as f64 / seconds.max(1e-9),
        threads: options.loader.threads,
        grid: options.grid.clone(),
    })
}

fn lossy_optional_path<S: serde::Serializer>(
    path: &Option<PathBuf>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => crate::fsutil::lossy_path(path, serializer),
        None => serializer.serialize_none(),
    }
}
