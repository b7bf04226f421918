//! The checks between reading a catalogue and writing its split: every image decodes, and the
//! counts match the manifest.

use std::path::Path;

use super::{CheckCounts, PrepareError, PrepareOptions};
use crate::catalog::{self, Catalog, ImageCheck};
use crate::dataset::DatasetDir;
use crate::fsutil;

/// How many paths an error message lists before saying "and N more".
const LISTED_IN_MESSAGES: usize = 10;

/// Checks every image; writes `image-check.json`; fails, or drops bad images with
/// `--skip-bad-images` (adding a warning).
pub(super) fn check_catalog(
    catalog: &mut Catalog,
    dir: &DatasetDir,
    options: &PrepareOptions,
    warnings: &mut Vec<String>,
) -> Result<CheckCounts, PrepareError> {
    let check = catalog::check_images(catalog, options.progress);
    let report = dir.image_check();
    let json = serde_json::to_vec_pretty(&check).expect("a check serialises");
    fsutil::write_atomic(&report, &json).map_err(|source| PrepareError::Io {
        path: report.clone(),
        source,
    })?;
    let has_bad = !check.missing.is_empty() || !check.unreadable.is_empty();
    if !check.duplicates.is_empty() || (has_bad && !options.skip_bad_images) {
        return Err(PrepareError::BadImages {
            check: Box::new(check),
            report,
        });
    }
    let mut bad: Vec<String> = check.missing.clone();
    bad.extend(check.unreadable.iter().map(|(p, _)| p.clone()));
    if !bad.is_empty() {
        catalog.remove_images(
            &bad,
            "missing or unreadable, left out because of --skip-bad-images",
        );
        warnings.push(format!(
            "{} missing and {} unreadable images were left out (--skip-bad-images); see {}",
            check.missing.len(),
            check.unreadable.len(),
            report.display()
        ));
    }
    Ok(CheckCounts {
        missing: check.missing.len(),
        unreadable: check.unreadable.len(),
        unlisted: check.unlisted.len(),
        report,
    })
}

/// The text of [`PrepareError::BadImages`].
pub(super) fn bad_images_message(check: &ImageCheck, report: &Path) -> String {
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
    text.push_str(&format!(
        "The full list is in {}. Consider removing the dataset's root/ folder and running \
         prepare-data again (to re-extract), downloading the archive again, or passing \
         --skip-bad-images to leave these images out.",
        report.display()
    ));
    text
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
