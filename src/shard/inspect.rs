//! `lifted inspect`: what a packed folder holds, and a few samples written out as image files
//! to look at.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::layout::Encoding;
use super::{ShardError, ShardIndex, ShardSet};

/// How many classes the text report lists before summarising the rest.
const CLASSES_LISTED: usize = 20;

/// The contents of a packed folder.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// The folder.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub dir: PathBuf,
    /// Its `index.json`, without the per-sample source list.
    pub index: ShardIndex,
    /// Each shard's header fields.
    pub shards: Vec<ShardInfo>,
}

/// One shard's header.
#[derive(Debug, Clone, Serialize)]
pub struct ShardInfo {
    /// File name.
    pub file: String,
    /// Samples.
    pub samples: u32,
    /// Classes (entries in its class table).
    pub classes: u32,
    /// Bytes.
    pub bytes: u64,
    /// Encoding.
    pub encoding: Encoding,
    /// Data alignment in bytes.
    pub alignment: u64,
    /// Where the data region starts.
    pub data_offset: u64,
}

/// Describes a packed folder.
pub fn inspect(set: &ShardSet) -> InspectReport {
    let mut index = set.index().clone();
    index.sources = Vec::new();
    let shards = index
        .shards
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let header = set.shard_header(i).expect("one header per listed shard");
            ShardInfo {
                file: entry.file.clone(),
                samples: header.sample_count,
                classes: header.class_count,
                bytes: header.file_length,
                encoding: header.encoding,
                alignment: 1 << header.alignment_log2,
                data_offset: header.data_offset,
            }
        })
        .collect();
    InspectReport {
        dir: set.dir().to_path_buf(),
        index,
        shards,
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.index;
        writeln!(f, "{} ({})", self.dir.display(), i.format)?;
        writeln!(
            f,
            "  dataset     {}, split {} part {} (sha256 {})",
            i.dataset, i.split.name, i.split.part, i.split.hash
        )?;
        writeln!(f, "  preprocess  {}", i.preprocess)?;
        writeln!(
            f,
            "  samples     {} in {} classes; {} rejected",
            i.samples,
            i.classes.len(),
            i.rejected.len()
        )?;
        for s in &self.shards {
            writeln!(
                f,
                "  {:<16} {:>7} samples {:>6} classes {:>12} bytes, data at {} (alignment {})",
                s.file, s.samples, s.classes, s.bytes, s.data_offset, s.alignment
            )?;
        }
        writeln!(f, "  classes (id, samples, name):")?;
        for c in i.classes.iter().take(CLASSES_LISTED) {
            writeln!(f, "    {:>6} {:>5}  {}", c.id, c.samples, c.name)?;
        }
        if i.classes.len() > CLASSES_LISTED {
            writeln!(f, "    … and {} more", i.classes.len() - CLASSES_LISTED)?;
        }
        Ok(())
    }
}

/// Writes `count` samples, spread evenly over the set, into `out` as image files (JPEG
/// samples as stored, raw samples as PNG); returns their paths.
///
/// # Errors
/// [`ShardError::Io`] when `out` cannot be made or a file cannot be written; whatever
/// [`ShardSet::sample`] returns for a sample read.
pub fn dump(set: &ShardSet, count: usize, out: &Path) -> Result<Vec<PathBuf>, ShardError> {
    std::fs::create_dir_all(out).map_err(|source| ShardError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let count = count.min(set.len());
    let mut written = Vec::with_capacity(count);
    for k in 0..count {
        let index = k * set.len() / count;
        let sample = set.sample(index)?;
        let stem = format!("{index:06}-class{}", sample.class_id);
        let path = match sample.encoding {
            Encoding::Jpeg => {
                let path = out.join(format!("{stem}.jpg"));
                std::fs::write(&path, sample.bytes).map_err(|source| ShardError::Io {
                    path: path.clone(),
                    source,
                })?;
                path
            }
            Encoding::Raw => {
                let path = out.join(format!("{stem}.png"));
                let image = image::RgbImage::from_raw(
                    u32::from(sample.width),
                    u32::from(sample.height),
                    sample.bytes.to_vec(),
                )
                .expect("a validated raw sample has width × height × 3 bytes");
                image
                    .save_with_format(&path, image::ImageFormat::Png)
                    .map_err(|e| ShardError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(e),
                    })?;
                path
            }
        };
        written.push(path);
    }
    Ok(written)
}
