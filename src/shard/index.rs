//! `index.json`: what a packed folder holds and how it was made (see `docs/FORMAT.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ShardError;
use super::layout::Encoding;
use crate::fsutil;

/// The `format` string of version 1.
pub const INDEX_FORMAT: &str = "lifted-shards/1";
/// The index's file name inside a packed folder.
pub const INDEX_FILE: &str = "index.json";

/// The contents of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardIndex {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// The dataset's name.
    pub dataset: String,
    /// The split the samples come from.
    pub split: SplitRef,
    /// How images were turned into samples.
    pub preprocess: Preprocess,
    /// Number of samples in all shards.
    pub samples: usize,
    /// Every class, by id, with its sample count.
    pub classes: Vec<ClassSummary>,
    /// The shard files, in order.
    pub shards: Vec<IndexShard>,
    /// Source paths (relative to the dataset root), by source index.
    pub sources: Vec<String>,
    /// Images that could not be packed, with the reason.
    pub rejected: Vec<Rejected>,
    /// The program and version that wrote the folder.
    pub created_by: String,
}

/// The split a folder was packed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRef {
    /// The split's name.
    pub name: String,
    /// SHA-256 of its `split.csv`.
    pub hash: String,
    /// `train`, `val`, `test` or `all`.
    pub part: String,
}

/// Preprocessing parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// The target size S.
    pub size: u32,
    /// `short-side` or `pad-square`.
    pub resize: String,
    /// `none` or `bbox`.
    pub crop: String,
    /// How samples are stored.
    pub encoding: Encoding,
    /// JPEG quality (absent for raw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

/// A class and its number of samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSummary {
    /// Class id.
    pub id: u32,
    /// Class name.
    pub name: String,
    /// Samples of the class in the folder.
    pub samples: usize,
}

/// One shard file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexShard {
    /// File name inside the folder.
    pub file: String,
    /// Number of samples.
    pub samples: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// An image that could not be packed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    /// Its path relative to the dataset root.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl ShardIndex {
    /// Reads `dir/index.json`.
    pub fn read(dir: &Path) -> Result<ShardIndex, ShardError> {
        let path = dir.join(INDEX_FILE);
        let bytes = std::fs::read(&path).map_err(|source| ShardError::Io {
            path: path.clone(),
            source,
        })?;
        let index: ShardIndex =
            serde_json::from_slice(&bytes).map_err(|source| ShardError::Index {
                path: path.clone(),
                source,
            })?;
        if index.format != INDEX_FORMAT {
            return Err(ShardError::IndexMismatch {
                path,
                problem: format!(
                    "format is `{}`, this lifted reads `{INDEX_FORMAT}`",
                    index.format
                ),
            });
        }
        Ok(index)
    }

    /// Writes `dir/index.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), ShardError> {
        let path = dir.join(INDEX_FILE);
        let mut bytes = serde_json::to_vec_pretty(self).expect("an index serialises");
        bytes.push(b'\n');
        fsutil::write_atomic(&path, &bytes).map_err(|source| ShardError::Io { path, source })
    }
}
