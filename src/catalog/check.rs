//! Checking a catalogue against the disk: every listed image must exist and decode as Pillow
//! decodes it (by content: JPEG, PNG, GIF, BMP or WebP; a truncated file is unreadable; a
//! damaged JPEG that Pillow reads is kept and its warning recorded), and image files that no
//! annotation lists are reported.
//!
//! Decoding is done in parallel, a JPEG at 1/8 scale (every byte read and entropy-decoded, so
//! the verdict is a full decode's, at a fraction of its cost), so a damaged image is reported
//! by `prepare-data` rather than found later. Unlisted files are looked for only in
//! the folders that hold listed images, so an archive's other folders (CUB's `parts/`, say)
//! are not reported.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use super::Catalog;
use super::generic::is_image_name;
use crate::fsutil;
use crate::imageio::check_decodes;
use crate::limits::MAX_IMAGE_FILE_BYTES;
use crate::progress::Progress;

/// What [`check_images`] found; paths are relative to the catalogue root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageCheck {
    /// Listed images that are not on disk.
    pub missing: Vec<String>,
    /// Listed images that do not decode, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// Paths listed more than once.
    pub duplicates: Vec<String>,
    /// Listed images that decode with warnings Pillow also accepts, with the warning.
    pub warned: Vec<(String, String)>,
    /// Image files on disk, next to listed ones, that no annotation lists.
    pub unlisted: Vec<String>,
}

impl ImageCheck {
    /// Whether every listed image is present, readable and listed once.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unreadable.is_empty() && self.duplicates.is_empty()
    }
}

/// Checks every image of `catalog` on disk.
pub fn check_images(catalog: &Catalog, progress: Progress) -> ImageCheck {
    let bar = progress.items(catalog.images.len() as u64, "checking images");
    let results: Vec<Option<Result<Option<String>, String>>> = catalog
        .images
        .par_iter()
        .map(|image| {
            let outcome = decode(&catalog.image_path(image));
            bar.inc(1);
            outcome
        })
        .collect();
    bar.finish_and_clear();

    let mut check = ImageCheck::default();
    for (image, outcome) in catalog.images.iter().zip(results) {
        match outcome {
            None => check.missing.push(image.path.clone()),
            Some(Err(reason)) => check.unreadable.push((image.path.clone(), reason)),
            Some(Ok(Some(warning))) => check.warned.push((image.path.clone(), warning)),
            Some(Ok(None)) => {}
        }
    }
    let mut seen = HashSet::new();
    let mut duplicates = BTreeSet::new();
    for image in &catalog.images {
        if !seen.insert(image.path.as_str()) {
            duplicates.insert(image.path.clone());
        }
    }
    check.duplicates = duplicates.into_iter().collect();
    check.unlisted = unlisted(catalog, &seen);
    check
}

/// `None` if the file does not exist, else whether it decodes (with the warning of a damaged
/// but readable JPEG). A FIFO or device named like an image is refused without reading it, so
/// the check cannot hang.
fn decode(path: &Path) -> Option<Result<Option<String>, String>> {
    match fsutil::read_regular(path, MAX_IMAGE_FILE_BYTES) {
        Ok(bytes) => Some(check_decodes(&bytes).map_err(|e| e.to_string())),
        Err(fsutil::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Image files in the folders of listed images that are not listed themselves.
fn unlisted(catalog: &Catalog, listed: &HashSet<&str>) -> Vec<String> {
    let folders: BTreeSet<&str> = catalog
        .images
        .iter()
        .map(|image| image.path.rsplit_once('/').map_or("", |(dir, _)| dir))
        .collect();
    let mut found = Vec::new();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(catalog.root.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if folder.is_empty() {
                name.clone()
            } else {
                format!("{folder}/{name}")
            };
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file
                && !name.starts_with('.')
                && is_image_name(Path::new(&name))
                && !listed.contains(rel.as_str())
            {
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}
