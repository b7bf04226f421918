//! Extracting a dataset's files, all or nothing, into the folder the preparation is staged in.
//!
//! Everything is extracted into a fresh `.root.tmp-*` folder inside the staging folder, a stamp
//! naming the source files and their SHA-256 is written last, and only then is the folder
//! renamed to `root/` there; the preparation later swaps it in for the dataset's `root/`. A run
//! reuses the dataset's `root/`, or a staged `root/` left by a failed run, if its stamp names
//! exactly the current files, and removes leftover temporary folders of interrupted runs.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PrepareError, convert};
use crate::archive::{self, Budget, ExtractReport};
use crate::dataset::{DatasetDir, ROOT_STAMP};
use crate::fetch::Fetched;
use crate::fsutil;
use crate::manifest::{Conversion, ExtractLimits, FileKind};
use crate::progress::Progress;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    format: String,
    /// (file name, SHA-256) of every source file, in manifest order.
    files: Vec<(String, String)>,
    /// (path, digest of every file's name, size and time) of every unpacked folder given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    folders: Vec<(String, String)>,
    /// The conversion applied after extraction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    convert: Option<Conversion>,
}

/// Whether `root/` was reused, and what extraction did if it ran.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtractOutcome {
    /// An earlier run had already extracted exactly these files.
    pub reused: bool,
    /// What this run extracted (empty when reused).
    pub report: ExtractReport,
}

/// Extracted files ready to catalogue.
pub(crate) struct Extracted {
    /// Where they are: the dataset's `root/`, or the staged one that will replace it.
    pub root: PathBuf,
    /// Whether `root` is the staged folder (to be swapped in when the preparation succeeds).
    pub staged: bool,
    /// SHA-256 of the stamp in `root`.
    pub stamp_sha256: String,
    /// What happened.
    pub outcome: ExtractOutcome,
    /// Remarks from the conversion, if one ran.
    pub notes: Vec<String>,
}

/// Makes sure a folder holds exactly the extracted `files` (each with its kind): the dataset's
/// `root/`, a staged `root/` from an earlier failed run, or a fresh extraction into the
/// staging folder `staged`.
pub(crate) fn extract_root(
    dir: &DatasetDir,
    staged: &Path,
    files: &[(Fetched, FileKind)],
    folders: &[PathBuf],
    convert: Option<Conversion>,
    limits: ExtractLimits,
    progress: Progress,
) -> Result<Extracted, PrepareError> {
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
        folders: folders
            .iter()
            .map(|f| (f.display().to_string(), archive::folder_digest(f)))
            .collect(),
        convert,
    };
    let stamp = serde_json::to_vec_pretty(&wanted).expect("a stamp has only text keys");
    let stamp_sha256 = hex::encode(Sha256::digest(&stamp));
    let staged_root = staged.join("root");
    for (root, is_staged) in [(dir.root(), false), (staged_root.clone(), true)] {
        if fs::read(root.join(ROOT_STAMP)).is_ok_and(|bytes| bytes == stamp) {
            return Ok(Extracted {
                root,
                staged: is_staged,
                stamp_sha256,
                outcome: ExtractOutcome {
                    reused: true,
                    report: ExtractReport::default(),
                },
                notes: Vec::new(),
            });
        }
    }
    fs::create_dir_all(staged).map_err(io(staged))?;
    fsutil::remove_leftovers(&dir.root(), |_| true).map_err(io(&dir.dir))?;
    fsutil::remove_leftovers(&staged_root, |_| true).map_err(io(staged))?;

    let temp = fsutil::staging_dir(&staged_root).map_err(io(staged))?;
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
        report.add(one);
    }
    for folder in folders {
        let one = archive::copy_folder(folder, temp.path(), &mut budget, progress)?;
        report.add(one);
    }
    let notes = match convert {
        Some(conversion) => convert::apply(conversion, temp.path())?,
        None => Vec::new(),
    };
    // The stamp marks the folder complete: the files it vouches for must be on disk first.
    fsutil::sync_tree(temp.path()).map_err(io(temp.path()))?;
    fsutil::write_atomic(&temp.path().join(ROOT_STAMP), &stamp).map_err(io(temp.path()))?;
    let extracted = temp.keep();
    fsutil::replace_dir(&extracted, &staged_root).map_err(io(&staged_root))?;
    Ok(Extracted {
        root: staged_root,
        staged: true,
        stamp_sha256,
        outcome: ExtractOutcome {
            reused: false,
            report,
        },
        notes,
    })
}
