//! What `prepare-data` did, for people (`Display`) and programs (`--json`, `prepared.json`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::ExtractOutcome;
use crate::dataset::PreparedInfo;
use crate::fetch::{Fetched, Verification};
use crate::split::{Part, PartCounts};

/// The result of preparing a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareSummary {
    /// Name, root, canonical split rule (what later stages read back).
    pub info: PreparedInfo,
    /// The dataset's title.
    pub title: String,
    /// The dataset's folder under the data dir.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub dir: PathBuf,
    /// Every source file, where it came from, and whether it was verified.
    pub files: Vec<Fetched>,
    /// What extraction did (none for an image folder or CSV).
    pub extraction: Option<ExtractOutcome>,
    /// Whether any file was accepted without verification.
    pub unverified: bool,
    /// Number of images in the catalogue.
    pub images: usize,
    /// Number of classes with images.
    pub classes: usize,
    /// `catalog.csv`.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub catalog_csv: PathBuf,
    /// The split written.
    pub split: SplitSummary,
    /// How many listed images were left out, and image files nobody lists.
    pub image_check: CheckCounts,
    /// Problems accepted on request (`--allow-unverified`, `--skip-bad-images`).
    pub warnings: Vec<String>,
    /// Remarks.
    pub notes: Vec<String>,
}

/// A split that was written.
#[derive(Debug, Clone, Serialize)]
pub struct SplitSummary {
    /// Its name (`canonical`, `seed0-ratio0.5`, ...).
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

/// Counts from the image check (full lists are in `image-check.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckCounts {
    /// Listed images missing on disk (left out with `--skip-bad-images`).
    pub missing: usize,
    /// Listed images with unreadable headers (left out with `--skip-bad-images`).
    pub unreadable: usize,
    /// Image files on disk that no annotation lists (ignored).
    pub unlisted: usize,
    /// Listed images that decode with warnings Pillow also accepts (kept, listed in the report).
    pub warned: usize,
    /// The full report.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub report: PathBuf,
}

impl fmt::Display for PrepareSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "prepared {} ({})", self.info.dataset, self.title)?;
        for file in &self.files {
            let short = &file.digests.sha256[..12.min(file.digests.sha256.len())];
            let speed = file.transfer.as_ref().map_or(String::new(), |t| {
                let resumed = t
                    .resumed_from
                    .map_or(String::new(), |b| format!(", resumed at byte {b}"));
                format!(
                    " ({:.1} MB in {:.1} s, {:.1} MB/s{resumed})",
                    t.bytes as f64 / 1e6,
                    t.seconds,
                    t.bytes_per_s / 1e6
                )
            });
            writeln!(
                f,
                "  file       {}  {}  sha256 {short}…  from {}{speed}",
                file.name, file.verification, file.origin
            )?;
            for failure in &file.failed {
                writeln!(
                    f,
                    "             (tried first: {}: {})",
                    failure.url, failure.reason
                )?;
            }
        }
        if let Some(extraction) = &self.extraction {
            if extraction.reused {
                writeln!(
                    f,
                    "  extracted  earlier, from the same files (reused root/)"
                )?;
            } else {
                let report = &extraction.report;
                write!(
                    f,
                    "  extracted  {} files, {} bytes",
                    report.files, report.bytes
                )?;
                for (reason, count) in &report.skipped {
                    write!(f, "; skipped {count} {reason}")?;
                }
                writeln!(f)?;
            }
        }
        writeln!(
            f,
            "  images     {} in {} classes, under {}",
            self.images,
            self.classes,
            self.info.root.display()
        )?;
        writeln!(
            f,
            "  split      {}  sha256 {}",
            self.split.name, self.split.hash
        )?;
        for (part, counts) in &self.split.parts {
            writeln!(
                f,
                "               {:<5} {:>7} images {:>6} classes",
                part.as_str(),
                counts.images,
                counts.classes
            )?;
        }
        writeln!(f, "  catalogue  {}", self.catalog_csv.display())?;
        writeln!(f, "  split.csv  {}", self.split.csv.display())?;
        if self.image_check.unlisted > 0 {
            writeln!(
                f,
                "  note       {} image files on disk are in no annotation and were ignored (list in {})",
                self.image_check.unlisted,
                self.image_check.report.display()
            )?;
        }
        for note in &self.notes {
            writeln!(f, "  note       {note}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "  WARNING    {warning}")?;
        }
        if self.unverified {
            writeln!(
                f,
                "  WARNING    some files did not match the manifest and were used because of \
                 --allow-unverified; results on this copy may not be comparable with published ones"
            )?;
        }
        Ok(())
    }
}

impl PrepareSummary {
    /// Whether every file was verified.
    pub fn all_verified(files: &[Fetched]) -> bool {
        files
            .iter()
            .all(|f| f.verification == Verification::Verified)
    }
}
