//! `lifted pack`: a prepared split turned into shards (see `docs/FORMAT.md`).
//!
//! The images of one part of a split (`train`, `test`, `val` or `all`) are ordered by class,
//! then by their order in `split.csv`; N threads preprocess them ([`preprocess`]) in chunks,
//! and one writer appends the results in that order, starting a new shard when the current one
//! would pass the size limit. The output is therefore the same bytes whatever the thread
//! count. Everything is written into a temporary folder next to the output, which replaces the
//! output only when complete; a killed pack leaves the previous output intact and its
//! temporary folder is removed by the next pack.

pub mod preprocess;
mod select;
mod sink;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

pub use preprocess::{CropMode, Preprocess, Processed, ResizeMode};
pub use select::Part;

use crate::dataset::{self, DatasetError, DatasetRef};
use crate::fsutil;
use crate::progress::Progress;
use crate::shard::{ClassSummary, Encoding, Rejected, ShardError, ShardIndex, SplitRef};
use sink::Sink;

/// Images preprocessed between two writes (bounds memory to about this many samples).
const CHUNK: usize = 256;

/// Settings for [`pack`].
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Which part of the split.
    pub part: Part,
    /// A folder with `split.csv` to use instead of the dataset's default split.
    pub split_dir: Option<PathBuf>,
    /// Preprocessing.
    pub preprocess: Preprocess,
    /// Worker threads.
    pub threads: usize,
    /// Fail on the first image that cannot be packed, instead of skipping it.
    pub strict: bool,
    /// Largest data region per shard, in bytes.
    pub shard_bytes: u64,
    /// Output folder (default: under the dataset's `shards/`).
    pub out: Option<PathBuf>,
    /// Progress bars.
    pub progress: Progress,
}

/// Errors from [`pack`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// The dataset could not be opened.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The split could not be read or selected.
    #[error(transparent)]
    Select(#[from] select::SelectError),
    /// Writing a shard or the index failed.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// With `--strict`, an image could not be packed.
    #[error("{path} cannot be packed: {reason} (without --strict it would be skipped and listed)")]
    Rejected {
        /// The image.
        path: String,
        /// Why.
        reason: String,
    },
    /// Every image was rejected.
    #[error("no image could be packed; the first failure: {path}: {reason}")]
    Nothing {
        /// The first image.
        path: String,
        /// Why.
        reason: String,
    },
    /// Settings that cannot work.
    #[error("{0}")]
    Options(String),
    /// Another pack writes the same folder.
    #[error("another lifted process is packing into {0}; wait for it to finish")]
    Busy(PathBuf),
    /// A local file could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What [`pack`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PackSummary {
    /// The output folder.
    pub out: PathBuf,
    /// The dataset.
    pub dataset: String,
    /// The split and part packed.
    pub split: SplitRef,
    /// Preprocessing.
    pub preprocess: Preprocess,
    /// Samples written.
    pub samples: usize,
    /// Classes.
    pub classes: usize,
    /// Shard files.
    pub shards: usize,
    /// Total bytes of the shard files.
    pub total_bytes: u64,
    /// Average stored bytes per sample (data only).
    pub bytes_per_image: f64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Samples per second.
    pub images_per_s: f64,
    /// Threads used.
    pub threads: usize,
    /// Images skipped, with the reason.
    pub rejected: Vec<Rejected>,
}

impl fmt::Display for PackSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "packed {} {} ({} of split {}, sha256 {}…)",
            self.dataset,
            self.split.part,
            self.split.part,
            self.split.name,
            &self.split.hash[..12.min(self.split.hash.len())]
        )?;
        writeln!(
            f,
            "  samples    {} in {} classes, {} shards, {} bytes",
            self.samples, self.classes, self.shards, self.total_bytes
        )?;
        writeln!(
            f,
            "  per image  {:.0} bytes ({:?}, size {}, {})",
            self.bytes_per_image,
            self.preprocess.encoding,
            self.preprocess.size,
            self.preprocess.resize.as_str()
        )?;
        writeln!(
            f,
            "  speed      {:.0} images/s on {} threads ({:.1} s)",
            self.images_per_s, self.threads, self.seconds
        )?;
        writeln!(f, "  output     {}", self.out.display())?;
        if !self.rejected.is_empty() {
            writeln!(
                f,
                "  rejected   {} images (all listed in index.json):",
                self.rejected.len()
            )?;
            for r in self.rejected.iter().take(10) {
                writeln!(f, "               {}: {}", r.path, r.reason)?;
            }
        }
        Ok(())
    }
}

/// Packs one part of a prepared dataset's split into shards.
pub fn pack(dataset: &DatasetRef, options: &PackOptions) -> Result<PackSummary, PackError> {
    let started = Instant::now();
    let p = options.preprocess;
    if p.size == 0
        || p.size > u32::from(u16::MAX)
        || !(1..=100).contains(&p.quality)
        || options.threads == 0
    {
        return Err(PackError::Options(format!(
            "--size must be 1 to 65535, --quality 1 to 100 and --threads at least 1 (got {}, {}, {})",
            p.size, p.quality, options.threads
        )));
    }
    let prepared = dataset::open_prepared_ref(dataset, &options.data_dir)?;
    let split_dir = options
        .split_dir
        .clone()
        .unwrap_or_else(|| prepared.dir.split(&prepared.info.default_split));
    let selection = select::select(&prepared.catalog, &split_dir, options.part, p.crop)?;
    let out = options.out.clone().unwrap_or_else(|| {
        prepared
            .dir
            .dir
            .join("shards")
            .join(default_name(&selection.split.name, options.part, &p))
    });

    let staging = Staging::begin(&out)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|e| {
            PackError::Options(format!("cannot start {} threads: {e}", options.threads))
        })?;
    let bar = options
        .progress
        .items(selection.images.len() as u64, "packing");
    let images = &selection.images;
    let root = &prepared.catalog.root;
    // Workers preprocess chunk k+1 while one writer thread appends chunk k, in order.
    let written = std::thread::scope(|scope| {
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<(usize, Vec<Result<Processed, String>>)>(2);
        let staging_path = staging.path();
        let writer = scope.spawn(move || {
            let mut sink = Sink::new(
                staging_path,
                p.encoding,
                options.shard_bytes,
                options.strict,
            );
            for (start, results) in receiver {
                for (offset, result) in results.into_iter().enumerate() {
                    let position = start + offset;
                    sink.accept(&images[position], position as u32, result)?;
                }
            }
            sink.finish()
        });
        for (chunk_no, chunk) in images.chunks(CHUNK).enumerate() {
            let results: Vec<Result<Processed, String>> = pool.install(|| {
                chunk
                    .par_iter()
                    .map(|image| {
                        let file =
                            std::fs::read(root.join(&image.path)).map_err(|e| e.to_string())?;
                        let result = p.run(&file, image.bbox);
                        bar.inc(1);
                        result
                    })
                    .collect()
            });
            if sender.send((chunk_no * CHUNK, results)).is_err() {
                break; // The writer stopped on an error; join reports it.
            }
        }
        drop(sender);
        writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    bar.finish_and_clear();
    let sink::Written {
        shards,
        rejected,
        class_counts,
        data_bytes,
    } = written;

    let names = prepared.catalog.class_names();
    let samples: usize = class_counts.iter().map(|(_, n)| n).sum();
    let index = ShardIndex {
        format: crate::shard::INDEX_FORMAT.to_string(),
        dataset: prepared.info.dataset.clone(),
        split: selection.split.clone(),
        preprocess: crate::shard::Preprocess {
            size: p.size,
            resize: p.resize.as_str().to_string(),
            crop: p.crop.as_str().to_string(),
            encoding: p.encoding,
            quality: (p.encoding == Encoding::Jpeg).then_some(p.quality),
        },
        samples,
        classes: class_counts
            .iter()
            .map(|&(id, samples)| ClassSummary {
                id,
                name: names.get(&id).copied().unwrap_or_default().to_string(),
                samples,
            })
            .collect(),
        shards: shards.clone(),
        sources: selection.images.iter().map(|i| i.path.clone()).collect(),
        rejected: rejected.clone(),
        created_by: format!("lifted {}", env!("CARGO_PKG_VERSION")),
    };
    index.write(staging.path())?;
    staging.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(PackSummary {
        out,
        dataset: prepared.info.dataset,
        split: selection.split,
        preprocess: p,
        samples,
        classes: class_counts.len(),
        shards: shards.len(),
        total_bytes: shards.iter().map(|s| s.bytes).sum(),
        bytes_per_image: data_bytes as f64 / samples.max(1) as f64,
        seconds,
        images_per_s: samples as f64 / seconds.max(1e-9),
        threads: options.threads,
        rejected,
    })
}

/// The folder `pack` writes to by default for a prepared dataset, a split folder, a part and
/// preprocessing settings.
pub fn default_out(
    prepared: &crate::dataset::Prepared,
    split_dir: &Path,
    part: Part,
    p: &Preprocess,
) -> PathBuf {
    let name = std::fs::read(split_dir.join("split.json"))
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .and_then(|v| v["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            split_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    prepared
        .dir
        .dir
        .join("shards")
        .join(default_name(&name, part, p))
}

/// `canonical-train-jpeg256`, `seed3-ratio0.5-test-raw224-pad-bbox`, ...
fn default_name(split: &str, part: Part, p: &Preprocess) -> String {
    let encoding = match p.encoding {
        Encoding::Jpeg => "jpeg",
        Encoding::Raw => "raw",
    };
    let mut name = format!("{split}-{}-{encoding}{}", part.as_str(), p.size);
    if p.resize == ResizeMode::PadSquare {
        name.push_str("-pad");
    }
    if p.crop == CropMode::BBox {
        name.push_str("-bbox");
    }
    if p.encoding == Encoding::Jpeg && p.quality != 90 {
        name.push_str(&format!("-q{}", p.quality));
    }
    name
}

/// The temporary folder a pack writes into, next to its output, and the lock that keeps a
/// second pack out.
struct Staging {
    out: PathBuf,
    temp: tempfile::TempDir,
    _lock: std::fs::File,
}

impl Staging {
    fn begin(out: &Path) -> Result<Staging, PackError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PackError::Io { path, source }
        };
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = out
            .file_name()
            .ok_or_else(|| {
                PackError::Options(format!("--out {} has no folder name", out.display()))
            })?
            .to_string_lossy()
            .into_owned();
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
        let prefix = format!(".{name}.tmp-");
        let old_prefix = format!(".{name}.old-");
        for entry in std::fs::read_dir(parent).map_err(io(parent))?.flatten() {
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            if entry_name.starts_with(&prefix) || entry_name.starts_with(&old_prefix) {
                std::fs::remove_dir_all(entry.path()).map_err(io(&entry.path()))?;
            }
        }
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(parent)
            .map_err(io(parent))?;
        Ok(Staging {
            out: out.to_path_buf(),
            temp,
            _lock: lock,
        })
    }

    fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Replaces the output folder with the finished temporary one.
    fn commit(self) -> Result<(), PackError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PackError::Io { path, source }
        };
        let temp = self.temp.keep();
        if self.out.exists() {
            let name = self.out.file_name().unwrap_or_default().to_string_lossy();
            let old = self
                .out
                .with_file_name(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(&self.out, &old).map_err(io(&self.out))?;
            fsutil::rename_durable(&temp, &self.out).map_err(io(&self.out))?;
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        } else {
            fsutil::rename_durable(&temp, &self.out).map_err(io(&self.out))?;
        }
        Ok(())
    }
}
