//! The checks between reading a catalogue and writing its split: every image decodes, and the
//! counts match the manifest.

use std::path::{Path, PathBuf};

use super::{CheckCounts, PrepareError, PrepareOptions};
use crate::catalog::{self, Catalog, ImageCheck};
use crate::fsutil;

/// How many paths an error message lists before saying "and N more".
const LISTED_IN_MESSAGES: usize = 10;

/// Where a dataset's images come from, which decides the advice for bad ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// Extracted from downloaded or given archives.
    Archives,
    /// An image folder or CSV file, read in place.
    InPlace,
}

/// What to advise about bad images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advice {
    /// Where the images come from.
    pub archives: bool,
    /// Whether leaving bad images out was already asked for.
    pub skipping: bool,
}

/// Checks every image; writes `image-check.json` into the staging folder; fails, or drops bad
/// images when asked to skip them (adding a warning).
pub(super) fn check_catalog(
    catalog: &mut Catalog,
    staged: &Path,
    source: Source,
    options: &PrepareOptions,
    warnings: &mut Vec<String>,
) -> Result<CheckCounts, PrepareError> {
    let check = catalog::check_images(catalog, options.progress);
    let report = staged.join("image-check.json");
    let json = serde_json::to_vec_pretty(&check).expect("a check has only text keys");
    fsutil::write_atomic(&report, &json).map_err(|source| PrepareError::Io {
        path: report.clone(),
        source,
    })?;
    let has_bad = !check.missing.is_empty() || !check.unreadable.is_empty();
    if !check.duplicates.is_empty() || (has_bad && !options.skip_bad_images) {
        return Err(PrepareError::BadImages {
            check: Box::new(check),
            report,
            advice: Advice {
                archives: source == Source::Archives,
                skipping: options.skip_bad_images,
            },
        });
    }
    let mut bad: Vec<String> = check.missing.clone();
    bad.extend(check.unreadable.iter().map(|(p, _)| p.clone()));
    if !bad.is_empty() {
        catalog.remove_images(&bad, "missing or unreadable, left out on request");
        warnings.push(format!(
            "{} missing and {} unreadable images were left out on request (see image-check.json)",
            check.missing.len(),
            check.unreadable.len(),
        ));
    }
    if !check.warned.is_empty() {
        warnings.push(format!(
            "{} images decode with warnings that Pillow also accepts (listed in image-check.json)",
            check.warned.len()
        ));
    }
    Ok(CheckCounts {
        missing: check.missing.len(),
        unreadable: check.unreadable.len(),
        unlisted: check.unlisted.len(),
        warned: check.warned.len(),
        report: PathBuf::from("image-check.json"),
    })
}

/// The text of [`PrepareError::BadImages`].
pub(crate) fn bad_images_message(check: &ImageCheck, report: &Path, advice: &Advice) -> String {
    let mut text = String::new();
    let mut list = |title: &str, paths: Vec<String>| {
        if paths.is_empty() {
            return;
        }
        text.push_str(&format!("{title} ({}):", paths.len()));
        for path in paths.iter().take(LISTED_IN_MESSAGES) {
            text.push_str(&format!("\n  {path}"));
        }
        if paths.len() > LISTED_IN_MESSAGES {
            text.push_str(&format!(
                "\n  … and {} more",
                paths.len() - LISTED_IN_MESSAGES
            ));
        }
        text.push('\n');
    };
    list("listed images are missing", check.missing.clone());
    list(
        "listed images do not decode",
        check
            .unreadable
            .iter()
            .map(|(p, why)| format!("{p}: {why}"))
            .collect(),
    );
    list("paths are listed twice", check.duplicates.clone());
    text.push_str(&format!("The full list is in {}. ", report.display()));
    let bad_files = !check.missing.is_empty() || !check.unreadable.is_empty();
    if bad_files {
        text.push_str(match (advice.archives, advice.skipping) {
            (true, false) => {
                "Consider removing the dataset's root/ folder and preparing it again (to \
                 re-extract), downloading the archive again, or leaving these images out (they \
                 are then recorded as a warning). "
            }
            (false, false) => {
                "Consider repairing or removing these files in the folder, or leaving them out \
                 (they are then recorded as a warning). "
            }
            (_, true) => "Consider repairing or removing these files. ",
        });
    }
    if !check.duplicates.is_empty() {
        text.push_str("Each image must be listed once: remove the repeated rows from the list.");
    }
    text.trim_end().to_string()
}

/// Counts that differ from the manifest's, as (what, expected, found).
#[derive(Debug, Default)]
pub(super) struct CountCheck {
    problems: Vec<(String, usize, usize)>,
}

impl CountCheck {
    /// Records a count.
    pub fn compare(&mut self, what: impl Into<String>, expected: usize, found: usize) {
        if expected != found {
            self.problems.push((what.into(), expected, found));
        }
    }

    /// Fails on the first difference, or with `accept` turns every difference into a warning.
    pub fn settle(self, accept: bool, warnings: &mut Vec<String>) -> Result<(), PrepareError> {
        if let Some((what, expected, found)) = self.problems.first().cloned()
            && !accept
        {
            return Err(PrepareError::CountMismatch {
                what,
                expected,
                found,
            });
        }
        warnings.extend(self.problems.into_iter().map(|(what, expected, found)| {
            format!("{what}: found {found}, the manifest expects {expected}")
        }));
        Ok(())
    }
}
