//! `index.json`: what a packed folder holds and how it was made, and `shards.sha256`, the
//! SHA-256 of each shard file (see `docs/FORMAT.md`).
//!
//! Every shard header carries the SHA-256 of `index.json`, so an edit to the index shows as a
//! mismatch with the shards, and the shards' own hashes live outside the index, in a
//! `sha256sum`-style file, so the two never have to vouch for each other.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ShardError;
use super::settings::Preprocess;
use crate::fsutil;

/// The `format` string of the folder layout this crate writes (shard format version 2).
pub const INDEX_FORMAT: &str = "lifted-shards/2";
/// The index's file name inside a packed folder.
pub const INDEX_FILE: &str = "index.json";
/// The file with each shard's SHA-256, in `sha256sum` format.
pub const SUMS_FILE: &str = "shards.sha256";
/// Largest `index.json` read, in bytes (SOP's 120,053 source paths take about 6 MB).
pub const MAX_INDEX_BYTES: u64 = 1 << 30;

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
    /// What the samples were made from, to tell when they are out of date.
    pub made_from: MadeFrom,
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

/// What a packed folder was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MadeFrom {
    /// The prepared dataset's digest (`prepared.json`'s `digest`): it changes whenever
    /// `prepare-data` replaces the dataset.
    pub prepared: String,
    /// SHA-256 over every source image's path, size and modification time, in source order
    /// ([`sources_digest`]): it changes when an image is edited, replaced or removed.
    pub sources: String,
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
    ///
    /// # Errors
    /// Whatever [`ShardIndex::read_with_digest`] returns.
    pub fn read(dir: &Path) -> Result<ShardIndex, ShardError> {
        Ok(ShardIndex::read_with_digest(dir)?.0)
    }

    /// Reads `dir/index.json` and returns it with the SHA-256 of its bytes.
    ///
    /// # Errors
    /// [`ShardError::Io`] when `index.json` cannot be read, is not a regular file or is over the
    /// size limit; [`ShardError::IndexMismatch`] when its `format` is not the one this lifted reads
    /// (another version, or not a lifted index); [`ShardError::Index`] when it does not parse as an
    /// index.
    pub fn read_with_digest(dir: &Path) -> Result<(ShardIndex, [u8; 32]), ShardError> {
        let path = dir.join(INDEX_FILE);
        let bytes = fsutil::read_regular(&path, MAX_INDEX_BYTES).map_err(|e| ShardError::Io {
            path: path.clone(),
            source: e.into_io(),
        })?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let format = serde_json::from_slice::<FormatOnly>(&bytes)
            .map(|f| f.format)
            .unwrap_or_default();
        if format != INDEX_FORMAT {
            return Err(ShardError::IndexMismatch {
                path,
                problem: if format.starts_with("lifted-shards/") {
                    format!(
                        "format is `{format}`, this lifted reads `{INDEX_FORMAT}`; pack the split again"
                    )
                } else {
                    format!("this is not a lifted shard index (format `{INDEX_FORMAT}`)")
                },
            });
        }
        let index: ShardIndex =
            serde_json::from_slice(&bytes).map_err(|source| ShardError::Index {
                path: path.clone(),
                source,
            })?;
        Ok((index, digest))
    }

    /// The bytes of `index.json` for this index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("an index has only text keys");
        bytes.push(b'\n');
        bytes
    }
}

#[derive(Deserialize)]
struct FormatOnly {
    format: String,
}

/// The [`MadeFrom::sources`] digest of images under `root`: SHA-256 over `path`, size and
/// modification time (nanoseconds since the epoch) of each, one line per image. A missing file
/// counts as size and time `-`.
pub fn sources_digest<'a>(root: &Path, paths: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for path in paths {
        let stamp = std::fs::metadata(root.join(path)).ok().map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (m.len(), mtime)
        });
        hasher.update(path.as_bytes());
        match stamp {
            Some((size, mtime)) => hasher.update(format!("\0{size}\0{mtime}\n")),
            None => hasher.update("\0-\0-\n"),
        }
    }
    hex::encode(hasher.finalize())
}

/// Reads `shards.sha256`: (file name, lower-case hex SHA-256) per line.
///
/// # Errors
/// [`ShardError::Io`] when `shards.sha256` cannot be read, is not a regular file or is over the
/// size limit; [`ShardError::IndexMismatch`] when a line is not `<sha256>  <file>`.
pub fn read_sums(dir: &Path) -> Result<Vec<(String, String)>, ShardError> {
    let path = dir.join(SUMS_FILE);
    let bytes = fsutil::read_regular(&path, MAX_INDEX_BYTES).map_err(|e| ShardError::Io {
        path: path.clone(),
        source: e.into_io(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let mut sums = Vec::new();
    for (n, line) in fsutil::strip_bom(&text).lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = line.split_once("  ").filter(|(hash, name)| {
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty()
        });
        let Some((hash, name)) = parsed else {
            return Err(ShardError::IndexMismatch {
                path,
                problem: format!("line {} is not `<sha256>  <file>`: `{line}`", n + 1),
            });
        };
        sums.push((name.to_string(), hash.to_ascii_lowercase()));
    }
    Ok(sums)
}

/// Writes `shards.sha256` atomically.
pub(crate) fn write_sums(dir: &Path, sums: &[(String, String)]) -> Result<(), ShardError> {
    let text: String = sums
        .iter()
        .map(|(name, hash)| format!("{hash}  {name}\n"))
        .collect();
    let path = dir.join(SUMS_FILE);
    fsutil::write_atomic(&path, text.as_bytes()).map_err(|source| ShardError::Io { path, source })
}
