//! Where a pack writes: the output folder is checked before anything is written, staged in a
//! temporary sibling folder, and swapped in only when complete.
//!
//! `pack` replaces only what it made itself. The output may be missing, an empty folder, or a
//! folder holding nothing but an earlier pack (its `index.json`, shard files and
//! `shards.sha256`, of any format version). An earlier pack of another dataset or part is
//! replaced only with `force`; anything else (a file, a link, a folder with other contents, such
//! as the dataset itself or a folder of images) is refused, whatever `force` says.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PackError;
use crate::fsutil;
use crate::shard::{INDEX_FILE, SUMS_FILE};
use crate::split::Selection;

/// What an output folder holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Nothing (or an empty folder).
    Nothing,
    /// An earlier pack of `dataset`'s `part`.
    Pack {
        /// Its dataset.
        dataset: String,
        /// Its part (`train`, `test`, …).
        part: String,
    },
}

/// The part of any version's `index.json` that says what was packed.
#[derive(Deserialize)]
struct IndexIdentity {
    format: String,
    dataset: String,
    split: IndexSplit,
}

#[derive(Deserialize)]
struct IndexSplit {
    part: String,
}

/// Whether `name` is a file a pack writes.
fn is_pack_file(name: &str) -> bool {
    let shard = name
        .strip_prefix("shard-")
        .and_then(|rest| {
            rest.strip_suffix(".lfs")
                .or_else(|| rest.strip_suffix(".lfs.tmp"))
        })
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    shard || name == INDEX_FILE || name == SUMS_FILE || name.starts_with(".tmp-")
}

/// Describes what `out` holds, or refuses it (see the module documentation).
///
/// # Errors
/// [`PackError::Io`] when `out` or its entries cannot be read; [`PackError::OutputTaken`] when
/// `out` is not a folder, or is a folder that holds more than an earlier pack.
pub fn examine(out: &Path) -> Result<Existing, PackError> {
    let refuse = |what: String| PackError::OutputTaken {
        out: out.to_path_buf(),
        what,
    };
    let meta = match std::fs::symlink_metadata(out) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(source) => {
            return Err(PackError::Io {
                path: out.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_dir() {
        return Err(refuse(fsutil::kind_of(&meta.file_type()).to_string()));
    }
    let mut others = Vec::new();
    let mut count = 0usize;
    let entries = std::fs::read_dir(out).map_err(|source| PackError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| PackError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        count += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let plain_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !(plain_file && is_pack_file(&name)) {
            others.push(name);
        }
    }
    if count == 0 {
        return Ok(Existing::Nothing);
    }
    let identity = std::fs::read(out.join(INDEX_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<IndexIdentity>(&bytes).ok())
        .filter(|i| i.format.starts_with("lifted-shards/"));
    match identity {
        Some(identity) if others.is_empty() => Ok(Existing::Pack {
            dataset: identity.dataset,
            part: identity.split.part,
        }),
        _ => {
            others.sort();
            let shown: Vec<&str> = others.iter().take(5).map(String::as_str).collect();
            let what = if others.is_empty() {
                format!("a folder of {count} entries without a lifted index.json")
            } else {
                format!(
                    "a folder that is not a lifted pack (it holds {}{})",
                    shown.join(", "),
                    if others.len() > shown.len() {
                        format!(" and {} more", others.len() - shown.len())
                    } else {
                        String::new()
                    }
                )
            };
            Err(refuse(what))
        }
    }
}

/// The temporary folder a pack writes into, next to its output, and the lock that keeps a
/// second pack out.
pub(super) struct Staging {
    out: PathBuf,
    temp: tempfile::TempDir,
    _lock: std::fs::File,
}

impl Staging {
    /// Checks `out` (see [`examine`]), locks it and starts a temporary folder next to it.
    pub fn begin(
        out: &Path,
        dataset: &str,
        part: Selection,
        force: bool,
    ) -> Result<Staging, PackError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PackError::Io { path, source }
        };
        let name = out
            .file_name()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| PackError::OutputName(out.to_path_buf()))?
            .to_string_lossy()
            .into_owned();
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // What is there is judged before anything is created next to it, and again under the
        // lock (another pack may have finished in between).
        let existing = examine(out)?;
        check_replaceable(out, &existing, dataset, part, force)?;
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let lock_path = parent.join(format!(".{name}.lock"));
        let lock = match fsutil::try_lock(&lock_path) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Err(PackError::Busy(out.to_path_buf())),
            Err(source) => {
                return Err(PackError::Io {
                    path: lock_path,
                    source,
                });
            }
        };
        check_replaceable(out, &examine(out)?, dataset, part, force)?;
        fsutil::remove_leftovers(out, holds_only_pack_files).map_err(io(parent))?;
        let temp = fsutil::staging_dir(out).map_err(io(parent))?;
        Ok(Staging {
            out: out.to_path_buf(),
            temp,
            _lock: lock,
        })
    }

    /// The temporary folder.
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Replaces the output folder with the finished temporary one.
    pub fn commit(self) -> Result<(), PackError> {
        let temp = self.temp.keep();
        fsutil::replace_dir(&temp, &self.out).map_err(|source| PackError::Io {
            path: self.out.clone(),
            source,
        })
    }
}

/// Refuses to replace a pack of another dataset or part unless `force`.
fn check_replaceable(
    out: &Path,
    existing: &Existing,
    dataset: &str,
    part: Selection,
    force: bool,
) -> Result<(), PackError> {
    match existing {
        Existing::Pack {
            dataset: found_dataset,
            part: found_part,
        } if (found_dataset != dataset || found_part != part.as_str()) && !force => {
            Err(PackError::OtherPack {
                out: out.to_path_buf(),
                dataset: found_dataset.clone(),
                part: found_part.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Whether a leftover folder holds only files a pack writes (so removing it loses nothing).
fn holds_only_pack_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().all(|e| {
            e.file_type().is_ok_and(|t| t.is_file())
                && is_pack_file(&e.file_name().to_string_lossy())
        })
    })
}
