//! Reading a split back from its folder (`split.csv` and `split.json`), checked before any
//! stage uses it: the CSV must be the one `split.json` names by hash, its name must be a safe
//! folder name, and no class may sit in two parts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Part;
use crate::fsutil;
use crate::manifest::check_name;

/// Largest `split.csv` read, in bytes.
const MAX_SPLIT_BYTES: u64 = 1 << 30;

/// Errors from reading a split folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoredSplitError {
    /// The folder has no `split.csv`.
    #[error("no split.csv in {0}; write one with `lifted split`")]
    Missing(PathBuf),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `split.json` is not a split description.
    #[error("{path} is not a lifted split description")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// `split.csv` could not be parsed.
    #[error("cannot parse {path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// The name in `split.json` is not a safe folder name.
    #[error("{path}: the split's name `{name}` is not usable as a folder name: {problem}")]
    BadName {
        /// `split.json`.
        path: PathBuf,
        /// The name found.
        name: String,
        /// Why it is refused.
        problem: String,
    },
    /// `split.csv` is not the file `split.json` describes.
    #[error(
        "{csv} has SHA-256 {actual}, but {json} describes a split.csv with {expected}; the CSV was \
         edited, truncated or copied from another split. Write the split again with `lifted split`"
    )]
    Changed {
        /// `split.csv`.
        csv: PathBuf,
        /// `split.json`.
        json: PathBuf,
        /// The hash `split.json` records.
        expected: String,
        /// The CSV's hash.
        actual: String,
    },
    /// A row's `split` column is not `train`, `val` or `test`.
    #[error("{path} row {row}: split `{found}` is not train, val or test")]
    BadPart {
        /// `split.csv`.
        path: PathBuf,
        /// 1-based data row.
        row: usize,
        /// The value found.
        found: String,
    },
    /// A class has images in two parts, so the split is not class-disjoint.
    #[error(
        "{path}: class {class_id} has images in both `{first}` and `{second}`, so the split is not \
         class-disjoint; write it again with `lifted split`"
    )]
    NotDisjoint {
        /// `split.csv`.
        path: PathBuf,
        /// The class.
        class_id: u32,
        /// One part.
        first: Part,
        /// The other.
        second: Part,
    },
}

/// One row of `split.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRow {
    /// Image path relative to the dataset root.
    pub path: String,
    /// Class id.
    pub class_id: u32,
    /// The part.
    pub part: Part,
}

/// A split read back from its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSplit {
    /// Its name: `split.json`'s, or the folder's (made safe) if there is no `split.json`.
    pub name: String,
    /// SHA-256 of `split.csv`.
    pub hash: String,
    /// The rows, in file order.
    pub rows: Vec<SplitRow>,
}

#[derive(Deserialize)]
struct SplitJson {
    name: String,
    hash: String,
}

#[derive(Deserialize)]
struct CsvRow {
    path: String,
    class_id: u32,
    split: String,
}

/// Reads and checks the split in `dir` (see the module documentation).
///
/// # Errors
/// [`StoredSplitError::Missing`] when `dir` has no `split.csv`; [`StoredSplitError::Read`] when
/// `split.csv` or `split.json` cannot be read, is not a regular file or is over the size limit;
/// [`StoredSplitError::Json`] when `split.json` is not a split description;
/// [`StoredSplitError::BadName`] when its name is not a safe folder name;
/// [`StoredSplitError::Changed`] when `split.csv` is not the file it describes by hash;
/// [`StoredSplitError::Csv`] when a row does not parse; [`StoredSplitError::BadPart`] when a row's
/// part is not `train`, `val` or `test`; [`StoredSplitError::NotDisjoint`] when a class has images
/// in two parts.
pub fn read_split(dir: &Path) -> Result<StoredSplit, StoredSplitError> {
    let csv_path = dir.join("split.csv");
    let json_path = dir.join("split.json");
    let bytes = match fsutil::read_regular(&csv_path, MAX_SPLIT_BYTES) {
        Ok(bytes) => bytes,
        Err(fsutil::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoredSplitError::Missing(dir.to_path_buf()));
        }
        Err(e) => {
            return Err(StoredSplitError::Read {
                path: csv_path,
                source: e.into_io(),
            });
        }
    };
    let hash = hex::encode(Sha256::digest(&bytes));
    let name = match fsutil::read_regular(&json_path, MAX_SPLIT_BYTES) {
        Ok(json) => {
            let described: SplitJson = serde_json::from_slice(fsutil::strip_bom_bytes(&json))
                .map_err(|source| StoredSplitError::Json {
                    path: json_path.clone(),
                    source,
                })?;
            check_name(&described.name).map_err(|problem| StoredSplitError::BadName {
                path: json_path.clone(),
                name: described.name.clone(),
                problem,
            })?;
            if !described.hash.eq_ignore_ascii_case(&hash) {
                return Err(StoredSplitError::Changed {
                    csv: csv_path,
                    json: json_path,
                    expected: described.hash,
                    actual: hash,
                });
            }
            described.name
        }
        Err(fsutil::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            folder_name(dir)
        }
        Err(e) => {
            return Err(StoredSplitError::Read {
                path: json_path,
                source: e.into_io(),
            });
        }
    };
    let rows = parse_rows(fsutil::strip_bom_bytes(&bytes), &csv_path)?;
    Ok(StoredSplit { name, hash, rows })
}

/// A split folder's name made safe for folder names (`split` if it has none).
fn folder_name(dir: &Path) -> String {
    let name: String = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.trim_start_matches('.') {
        "" => "split".to_string(),
        trimmed => trimmed.to_string(),
    }
}

fn parse_rows(bytes: &[u8], path: &Path) -> Result<Vec<SplitRow>, StoredSplitError> {
    let mut rows = Vec::new();
    let mut parts: BTreeMap<u32, Part> = BTreeMap::new();
    for (n, row) in csv::Reader::from_reader(bytes)
        .deserialize::<CsvRow>()
        .enumerate()
    {
        let row = row.map_err(|source| StoredSplitError::Csv {
            path: path.to_path_buf(),
            source,
        })?;
        let part = match row.split.as_str() {
            "train" => Part::Train,
            "val" => Part::Val,
            "test" => Part::Test,
            _ => {
                return Err(StoredSplitError::BadPart {
                    path: path.to_path_buf(),
                    row: n + 1,
                    found: row.split,
                });
            }
        };
        let first = *parts.entry(row.class_id).or_insert(part);
        if first != part {
            return Err(StoredSplitError::NotDisjoint {
                path: path.to_path_buf(),
                class_id: row.class_id,
                first,
                second: part,
            });
        }
        rows.push(SplitRow {
            path: row.path,
            class_id: row.class_id,
            part,
        });
    }
    Ok(rows)
}
