//! Extracting a dataset's files into `root/`, all or nothing.
//!
//! Everything is extracted into a fresh `.root.tmp-*` folder next to `root/`, a stamp naming
//! the source files and their SHA-256 is written last, and only then is the folder renamed to
//! `root/`. A later run reuses `root/` only if its stamp names exactly the current files, and
//! removes leftover temporary folders of interrupted runs.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::PrepareError;
use crate::archive::{self, Budget, ExtractReport};
use crate::dataset::DatasetDir;
use crate::fetch::Fetched;
use crate::fsutil;
use crate::manifest::{ExtractLimits, FileKind};
use crate::progress::Progress;

/// The stamp's file name inside `root/`.
const STAMP: &str = ".lifted-extracted.json";
/// Prefixes of the folders a run leaves behind if it is killed.
const TEMP_PREFIXES: [&str; 2] = [".root.tmp-", ".root.old-"];

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    format: String,
    /// (file name, SHA-256) of every source file, in manifest order.
    files: Vec<(String, String)>,
}

/// Whether `root/` was reused, and what extraction did if it ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtractOutcome {
    /// `root/` already held exactly these files, extracted by an earlier run.
    pub reused: bool,
    /// What this run extracted (empty when reused).
    pub report: ExtractReport,
}

/// Makes sure `root/` holds exactly the extracted `files` (each with its kind).
pub(crate) fn extract_root(
    dir: &DatasetDir,
    files: &[(Fetched, FileKind)],
    limits: ExtractLimits,
    progress: Progress,
) -> Result<ExtractOutcome, PrepareError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PrepareError::Io { path, source }
    };
    let wanted = Stamp {
        format: "lifted-extract/1".to_string(),
        files: files
            .iter()
            .map(|(f, _)| (f.name.clone(), f.digests.sha256.clone()))
            .collect(),
    };
    let root = dir.root();
    let current: Option<Stamp> = fs::read(root.join(STAMP))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if current.as_ref() == Some(&wanted) {
        return Ok(ExtractOutcome {
            reused: true,
            report: ExtractReport::default(),
        });
    }
    fs::create_dir_all(&dir.dir).map_err(io(&dir.dir))?;
    remove_leftovers(&dir.dir)?;

    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIXES[0])
        .tempdir_in(&dir.dir)
        .map_err(io(&dir.dir))?;
    let mut budget = Budget::new(limits);
    let mut report = ExtractReport::default();
    for (file, kind) in files {
        let one = archive::extract(
            &file.path,
            *kind,
            &file.name,
            temp.path(),
            &mut budget,
            progress,
        )?;
        report.files += one.files;
        report.dirs += one.dirs;
        report.links += one.links;
        report.bytes += one.bytes;
        for (reason, count) in one.skipped {
            *report.skipped.entry(reason).or_insert(0) += count;
        }
    }
    // The stamp marks the folder complete: the files it vouches for must be on disk first.
    fsutil::sync_tree(temp.path()).map_err(io(temp.path()))?;
    let stamp = serde_json::to_vec_pretty(&wanted).expect("a stamp serialises");
    fsutil::write_atomic(&temp.path().join(STAMP), &stamp).map_err(io(temp.path()))?;

    let extracted = temp.keep();
    if root.exists() {
        let old = dir
            .dir
            .join(format!("{}{}", TEMP_PREFIXES[1], std::process::id()));
        fs::rename(&root, &old).map_err(io(&root))?;
        fsutil::rename_durable(&extracted, &root).map_err(io(&root))?;
        fs::remove_dir_all(&old).map_err(io(&old))?;
    } else {
        fsutil::rename_durable(&extracted, &root).map_err(io(&root))?;
    }
    Ok(ExtractOutcome {
        reused: false,
        report,
    })
}

/// Removes the temporary folders of interrupted runs.
fn remove_leftovers(dir: &Path) -> Result<(), PrepareError> {
    let entries = fs::read_dir(dir).map_err(|source| PrepareError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if TEMP_PREFIXES.iter().any(|p| name.starts_with(p)) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|source| PrepareError::Io { path, source })?;
        }
    }
    Ok(())
}
