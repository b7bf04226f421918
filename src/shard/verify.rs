//! `lifted verify`: check every byte of a packed folder that can be checked.
//!
//! Opening the set validates each header, both tables and every offset, and checks every
//! shard's seal against `index.json`'s SHA-256 ([`super::ShardSet`]), so no edit to the index
//! goes unnoticed. Then each shard file is hashed and compared with `shards.sha256`, every
//! sample's CRC is checked, every sample is decoded and its size compared with its record and
//! with the index's preprocessing settings, and the index's sources are checked to be exactly
//! the packed samples plus the rejected images, each once.

use std::collections::HashMap;

use serde::Serialize;

use super::settings::ResizeMode;
use super::{ShardError, ShardSet, read_sums};
use crate::fetch::digest_file;
use crate::progress::Progress;

/// What [`verify`] checked.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Shard files hashed.
    pub shards: usize,
    /// Samples checked.
    pub samples: usize,
    /// Bytes hashed.
    pub bytes: u64,
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ok: index.json is the one the {} shards were sealed with; the shards ({} bytes) match \
             shards.sha256; {} samples pass their CRC, decode to their recorded size and match the \
             index's settings and sources",
            self.shards, self.bytes, self.samples
        )
    }
}

/// Checks a packed folder completely; the first problem found is the error.
///
/// # Errors
/// Whatever [`read_sums`] returns; [`ShardError::IndexMismatch`] when `shards.sha256` does not list
/// exactly the index's shards, or the index's sources are not each packed or rejected exactly once;
/// [`ShardError::Io`] when a shard cannot be read; [`ShardError::ShardHash`] when a shard's SHA-256
/// differs from `shards.sha256`; [`ShardError::SampleChecksum`] when a sample does not match its
/// CRC; [`ShardError::Undecodable`] when a sample does not decode, or decodes to another size than
/// its record's or one the index's settings cannot give.
pub fn verify(set: &ShardSet, progress: Progress) -> Result<VerifyReport, ShardError> {
    let bytes = check_shard_hashes(set, progress)?;
    check_samples(set, progress)?;
    check_sources(set)?;
    Ok(VerifyReport {
        shards: set.shard_count(),
        samples: set.len(),
        bytes,
    })
}

/// Hashes every shard and compares it with `shards.sha256`, which must list exactly the
/// index's shards.
fn check_shard_hashes(set: &ShardSet, progress: Progress) -> Result<u64, ShardError> {
    let sums_path = set.dir().join(super::SUMS_FILE);
    let sums: HashMap<String, String> = read_sums(set.dir())?.into_iter().collect();
    let listed: Vec<&str> = set.index().shards.iter().map(|s| s.file.as_str()).collect();
    if sums.len() != listed.len() || listed.iter().any(|f| !sums.contains_key(*f)) {
        let mut named: Vec<&str> = sums.keys().map(String::as_str).collect();
        named.sort_unstable();
        return Err(ShardError::IndexMismatch {
            path: sums_path,
            problem: format!("it lists {named:?}, but index.json lists the shards {listed:?}"),
        });
    }
    let mut bytes = 0u64;
    for entry in &set.index().shards {
        let path = set.dir().join(&entry.file);
        let bar = progress.bytes(Some(entry.bytes), format!("hashing {}", entry.file));
        let digests =
            digest_file(&path, false, &bar).map_err(|source| ShardError::Io { path, source })?;
        bar.finish_and_clear();
        let expected = &sums[&entry.file];
        if &digests.sha256 != expected {
            return Err(ShardError::ShardHash {
                shard: entry.file.clone(),
                expected: expected.clone(),
                actual: digests.sha256,
            });
        }
        bytes += digests.size;
    }
    Ok(bytes)
}

/// Decodes every sample and checks its size against its record and the index's settings.
fn check_samples(set: &ShardSet, progress: Progress) -> Result<(), ShardError> {
    let settings = set.index().preprocess;
    let bar = progress.items(set.len() as u64, "verifying samples");
    for index in 0..set.len() {
        let sample = set.sample(index)?;
        let undecodable = |problem: Box<dyn std::error::Error + Send + Sync>| {
            let (shard, local) = set.locate(index).expect("index < len");
            ShardError::Undecodable {
                shard: shard.to_string(),
                sample: local as u32,
                problem,
            }
        };
        let image = sample.decode().map_err(|e| undecodable(e.into()))?;
        let (w, h) = (u32::from(sample.width), u32::from(sample.height));
        if (image.width, image.height) != (w, h) {
            return Err(undecodable(
                format!(
                    "it decodes to {}x{}, the record says {w}x{h}",
                    image.width, image.height
                )
                .into(),
            ));
        }
        let fits = match settings.resize {
            ResizeMode::ShortSide => w.min(h) == settings.size,
            ResizeMode::PadSquare => w == settings.size && h == settings.size,
        };
        if !fits {
            return Err(undecodable(
                format!(
                    "it is {w}x{h}, which {} to size {} cannot give (index.json's preprocess)",
                    settings.resize.as_str(),
                    settings.size
                )
                .into(),
            ));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The index's sources must be exactly the packed samples' sources plus the rejected images,
/// each once.
fn check_sources(set: &ShardSet) -> Result<(), ShardError> {
    let index = set.index();
    let path = set.dir().join(super::INDEX_FILE);
    let mismatch = |problem: String| ShardError::IndexMismatch {
        path: path.clone(),
        problem,
    };
    let mut used = vec![false; index.sources.len()];
    for i in 0..set.len() {
        let source = set.source_index(i)? as usize;
        if std::mem::replace(&mut used[source], true) {
            return Err(mismatch(format!(
                "source {source} ({}) is packed twice",
                index.sources[source]
            )));
        }
    }
    let positions: HashMap<&str, usize> = index
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    for rejected in &index.rejected {
        match positions.get(rejected.path.as_str()) {
            Some(&i) if !used[i] => used[i] = true,
            Some(_) => {
                return Err(mismatch(format!(
                    "{} is listed as rejected, but it is packed (or rejected twice)",
                    rejected.path
                )));
            }
            None => {
                return Err(mismatch(format!(
                    "{} is listed as rejected, but it is not among the sources",
                    rejected.path
                )));
            }
        }
    }
    if let Some(missing) = used.iter().position(|u| !u) {
        return Err(mismatch(format!(
            "source {missing} ({}) is neither packed nor rejected",
            index.sources[missing]
        )));
    }
    Ok(())
}
