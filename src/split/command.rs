//! `lifted split`: export a split of any dataset (prepared, an image folder, or a CSV) for use
//! in other projects.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Folds, Part, PartCounts, SplitError, SplitMethod, SplitSpec, make_split, write_split};
use crate::dataset::{self, DatasetError, DatasetRef};

/// What to split and how.
#[derive(Debug, Clone)]
pub struct SplitRequest {
    /// The dataset.
    pub dataset: DatasetRef,
    /// The data dir, for prepared datasets.
    pub data_dir: PathBuf,
    /// Seed of a random split; `None` asks for the canonical split.
    pub seed: Option<u64>,
    /// Share of classes for training in a seeded split (default 0.5).
    pub ratio: Option<f64>,
    /// Number of validation folds inside the training classes.
    pub folds: Option<u32>,
    /// Which fold is the validation part (default 0).
    pub fold: Option<u32>,
    /// Where to write `split.csv` and `split.json`.
    pub out: PathBuf,
}

/// Errors from [`export_split`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The dataset could not be opened.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The split could not be made or written.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// A ratio was given without a seed (only seeded splits have one).
    #[error("a ratio applies to seeded splits; give a seed too")]
    RatioWithoutSeed,
    /// A validation fold was given without the number of folds.
    #[error("a validation fold needs a number of folds")]
    FoldWithoutCount,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct SplitReport {
    /// The dataset.
    pub dataset: String,
    /// The split's name.
    pub name: String,
    /// SHA-256 of `split.csv`.
    pub hash: String,
    /// `split.csv`.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub csv: PathBuf,
    /// `split.json`.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub json: PathBuf,
    /// Images and classes per part.
    pub parts: BTreeMap<Part, PartCounts>,
}

impl fmt::Display for SplitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "split {} of {}  sha256 {}",
            self.name, self.dataset, self.hash
        )?;
        for (part, counts) in &self.parts {
            writeln!(
                f,
                "  {:<5} {:>7} images {:>6} classes",
                part.as_str(),
                counts.images,
                counts.classes
            )?;
        }
        writeln!(
            f,
            "  wrote {} and {}",
            self.csv.display(),
            self.json.display()
        )
    }
}

/// Makes the requested split and writes it to `request.out`.
///
/// # Errors
/// [`ExportError::RatioWithoutSeed`] when a ratio is given without a seed;
/// [`ExportError::FoldWithoutCount`] when a fold is given without a number of folds;
/// [`ExportError::Dataset`] with whatever [`dataset::open`] returns; [`ExportError::Split`] with
/// whatever [`make_split`] or [`write_split`] returns.
pub fn export_split(request: &SplitRequest) -> Result<SplitReport, ExportError> {
    let spec = spec_of(request)?;
    let opened = dataset::open(&request.dataset, &request.data_dir)?;
    let split = make_split(&opened.catalog, opened.canonical_split.as_ref(), spec)?;
    let files = write_split(&opened.catalog, &split, Path::new(&request.out))?;
    Ok(SplitReport {
        dataset: opened.catalog.dataset.clone(),
        name: spec.name(),
        hash: files.hash,
        csv: files.csv,
        json: files.json,
        parts: split.counts(&opened.catalog),
    })
}

fn spec_of(request: &SplitRequest) -> Result<SplitSpec, ExportError> {
    let method = match (request.seed, request.ratio) {
        (Some(seed), ratio) => SplitMethod::Seeded {
            seed,
            ratio: ratio.unwrap_or(0.5),
        },
        (None, None) => SplitMethod::Canonical,
        (None, Some(_)) => {
            return Err(ExportError::RatioWithoutSeed);
        }
    };
    let folds = match (request.folds, request.fold) {
        (Some(count), fold) => Some(Folds {
            count,
            fold: fold.unwrap_or(0),
        }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ExportError::FoldWithoutCount);
        }
    };
    Ok(SplitSpec { method, folds })
}
