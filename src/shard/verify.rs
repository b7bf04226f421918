//! `lifted verify`: check every byte of a packed folder that can be checked.
//!
//! Opening the set validates each header, both tables and every offset ([`super::ShardSet`]);
//! then each shard file is hashed and compared with `index.json`, every sample's CRC is
//! checked, and every sample is decoded and its size compared with its record.

use serde::Serialize;

use super::{ShardError, ShardSet};
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
            "ok: {} shards ({} bytes) match index.json; {} samples pass their CRC and decode to their recorded size",
            self.shards, self.bytes, self.samples
        )
    }
}

/// Checks a packed folder completely; the first problem found is the error.
pub fn verify(set: &ShardSet, progress: Progress) -> Result<VerifyReport, ShardError> {
    let mut bytes = 0u64;
    for entry in &set.index().shards {
        let path = set.dir().join(&entry.file);
        let bar = progress.bytes(Some(entry.bytes), format!("hashing {}", entry.file));
        let digests =
            digest_file(&path, false, &bar).map_err(|source| ShardError::Io { path, source })?;
        bar.finish_and_clear();
        let actual = digests.sha256;
        if actual != entry.sha256 {
            return Err(ShardError::ShardHash {
                shard: entry.file.clone(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        bytes += digests.size;
    }
    let bar = progress.items(set.len() as u64, "verifying samples");
    for index in 0..set.len() {
        let sample = set.sample(index)?;
        let undecodable = |reason: String| {
            let (shard, local) = set.locate(index).expect("index < len");
            ShardError::Undecodable {
                shard: shard.to_string(),
                sample: local as u32,
                reason,
            }
        };
        let image = sample.decode().map_err(|e| undecodable(e.to_string()))?;
        if (image.width, image.height) != (u32::from(sample.width), u32::from(sample.height)) {
            return Err(undecodable(format!(
                "it decodes to {}x{}, the record says {}x{}",
                image.width, image.height, sample.width, sample.height
            )));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(VerifyReport {
        shards: set.shard_count(),
        samples: set.len(),
        bytes,
    })
}
