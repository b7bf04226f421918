//! `lifted pack`: a prepared split turned into shards (see `docs/FORMAT.md`).
//!
//! The images of one part of a split (`train`, `test`, `val` or `all`) are ordered by class,
//! then by their order in `split.csv`; N threads preprocess them ([`preprocess`]) in chunks,
//! and one writer appends the results in that order, starting a new shard when the current one
//! would pass the size limit. The output is therefore the same bytes whatever the thread
//! count. Everything is written into a temporary folder next to the output, which replaces the
//! output only when complete ([`output`]); a killed pack leaves the previous output intact and
//! its temporary folder is removed by the next pack. `pack` never replaces a folder it did not
//! make.

pub mod output;
pub mod preprocess;
mod select;
mod sink;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

pub use preprocess::{ImageError, Processed};
pub use select::SelectError;

pub use crate::shard::{CropMode, MAX_SIZE, Preprocess, ResizeMode};

use crate::dataset::{self, DatasetError, DatasetRef, Prepared};
use crate::limits::{MAX_IMAGE_FILE_BYTES, MAX_THREADS};
use crate::progress::Progress;
use crate::shard::{ClassSummary, MadeFrom, Rejected, ShardError, ShardIndex, SplitRef};
use crate::split::Selection;
use select::Chosen;
use sink::Sink;

/// Images preprocessed between two writes (bounds memory to about this many samples).
const CHUNK: usize = 256;

/// Settings for [`pack`].
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Which part of the split.
    pub part: Selection,
    /// A folder with `split.csv` to use instead of the dataset's default split.
    pub split_dir: Option<PathBuf>,
    /// Preprocessing.
    pub preprocess: Preprocess,
    /// Worker threads (1 to [`MAX_THREADS`]).
    pub threads: usize,
    /// Fail on the first image that cannot be packed, instead of skipping it.
    pub strict: bool,
    /// Largest data region per shard, in bytes.
    pub shard_bytes: u64,
    /// Output folder (default: under the dataset's `shards/`).
    pub out: Option<PathBuf>,
    /// Replace an earlier pack of another dataset or part in `out` (never a folder that is
    /// not a lifted pack).
    pub force: bool,
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
    Select(#[from] SelectError),
    /// Writing a shard or the index failed.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// With `strict`, an image could not be packed.
    #[error("{path} cannot be packed: {reason} (a pack that is not strict would skip and list it)")]
    Rejected {
        /// The image.
        path: String,
        /// Why.
        #[source]
        reason: ImageError,
    },
    /// Every image was rejected.
    #[error("no image could be packed; the first failure: {path}: {reason}")]
    Nothing {
        /// The first image.
        path: String,
        /// Why.
        reason: String,
    },
    /// The preprocessing settings cannot work.
    #[error(transparent)]
    Settings(#[from] crate::shard::SettingsError),
    /// A thread count of 0 or above the limit.
    #[error("threads must be 1 to {MAX_THREADS}, not {0}")]
    Threads(usize),
    /// The output path has no folder name.
    #[error("the output {0} has no folder name")]
    OutputName(PathBuf),
    /// The output path holds something `pack` did not make.
    #[error(
        "{out} is {what}; pack writes only into a new folder or over an earlier pack, so it \
         leaves this alone. Choose another output folder"
    )]
    OutputTaken {
        /// The output path.
        out: PathBuf,
        /// What is there.
        what: String,
    },
    /// The output holds a pack of another dataset or part.
    #[error(
        "{out} holds the packed `{part}` part of {dataset}; choose another output folder, or \
         force replacing that pack"
    )]
    OtherPack {
        /// The output path.
        out: PathBuf,
        /// The dataset packed there.
        dataset: String,
        /// The part packed there.
        part: String,
    },
    /// Another pack writes the same folder.
    #[error("another lifted process is packing into {0}; wait for it to finish")]
    Busy(PathBuf),
    /// The worker threads could not be started.
    #[error("cannot start {threads} threads")]
    Pool {
        /// The threads asked for.
        threads: usize,
        /// The underlying error.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
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
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
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
            "packed {} {} (split {}, sha256 {}…)",
            self.dataset,
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
            "  per image  {:.0} bytes ({})",
            self.bytes_per_image, self.preprocess
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
///
/// # Errors
/// [`PackError::Settings`] when `options.preprocess` cannot work; [`PackError::Threads`] when
/// `options.threads` is 0 or over [`MAX_THREADS`]; [`PackError::Dataset`] when the dataset is not
/// prepared or cannot be opened; [`PackError::Select`] when the split cannot be read, lists an
/// image the catalogue lacks, has no images in the part, or lacks boxes a box crop needs;
/// [`PackError::OutputName`], [`PackError::OutputTaken`], [`PackError::OtherPack`] or
/// [`PackError::Busy`] when the output folder cannot be used (see [`output::examine`]);
/// [`PackError::Pool`] when the threads cannot be started; [`PackError::Rejected`] when, with
/// `options.strict`, an image cannot be packed; [`PackError::Nothing`] when no image can be;
/// [`PackError::Io`] or [`PackError::Shard`] when a file cannot be written or the output cannot be
/// swapped in.
pub fn pack(dataset: &DatasetRef, options: &PackOptions) -> Result<PackSummary, PackError> {
    let started = Instant::now();
    let settings = check_options(options)?;
    let prepared = dataset::open_prepared_ref(dataset, &options.data_dir)?;
    let split_dir = options
        .split_dir
        .clone()
        .unwrap_or_else(|| prepared.dir.split(&prepared.info.default_split));
    let selection = select::select(&prepared.catalog, &split_dir, options.part, settings.crop)?;
    let out = options.out.clone().unwrap_or_else(|| {
        default_out_named(&prepared, &selection.split.name, options.part, &settings)
    });
    let staging =
        output::Staging::begin(&out, &prepared.info.dataset, options.part, options.force)?;
    let made_from = made_from(&prepared, &selection);
    let written = write_samples(&selection, &prepared, settings, options, staging.path())?;
    let index = index_for(&prepared, &selection, settings, made_from, &written);
    let sealed = crate::shard::seal_folder(staging.path(), &index, written.shards)?;
    staging.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(PackSummary {
        out,
        dataset: index.dataset,
        split: index.split,
        preprocess: settings,
        samples: index.samples,
        classes: index.classes.len(),
        shards: sealed.len(),
        total_bytes: sealed.iter().map(|s| s.bytes).sum(),
        bytes_per_image: written.data_bytes as f64 / index.samples.max(1) as f64,
        seconds,
        images_per_s: index.samples as f64 / seconds.max(1e-9),
        threads: options.threads,
        rejected: index.rejected,
    })
}

/// The settings, checked, with the quality that applies.
fn check_options(options: &PackOptions) -> Result<Preprocess, PackError> {
    let settings = options.preprocess.normalized();
    settings.validate()?;
    if options.threads == 0 || options.threads > MAX_THREADS {
        return Err(PackError::Threads(options.threads));
    }
    Ok(settings)
}

/// What the samples are made from: the prepared dataset's digest and the sources' stamps.
fn made_from(prepared: &Prepared, selection: &Chosen) -> MadeFrom {
    MadeFrom {
        prepared: prepared.info.digest(),
        sources: crate::shard::sources_digest(
            &prepared.catalog.root,
            selection.images.iter().map(|i| i.path.as_str()),
        ),
    }
}

/// Preprocesses the selection on `options.threads` threads while one writer appends the
/// results to shards in `dir`, in order.
fn write_samples(
    selection: &Chosen,
    prepared: &Prepared,
    settings: Preprocess,
    options: &PackOptions,
    dir: &Path,
) -> Result<sink::Written, PackError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|source| PackError::Pool {
            threads: options.threads,
            source,
        })?;
    let bar = options
        .progress
        .items(selection.images.len() as u64, "packing");
    let images = &selection.images;
    let root = &prepared.catalog.root;
    // Workers preprocess chunk k+1 while one writer thread appends chunk k, in order.
    let written = std::thread::scope(|scope| {
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<(usize, Vec<Result<Processed, ImageError>>)>(2);
        let writer = scope.spawn(move || {
            let mut sink = Sink::new(dir, settings.encoding, options.shard_bytes, options.strict);
            for (start, results) in receiver {
                for (offset, result) in results.into_iter().enumerate() {
                    let position = start + offset;
                    sink.accept(&images[position], position as u32, result)?;
                }
            }
            sink.finish()
        });
        for (chunk_no, chunk) in images.chunks(CHUNK).enumerate() {
            let results: Vec<Result<Processed, ImageError>> = pool.install(|| {
                chunk
                    .par_iter()
                    .map(|image| {
                        let result = crate::fsutil::read_regular(
                            &root.join(&image.path),
                            MAX_IMAGE_FILE_BYTES,
                        )
                        .map_err(ImageError::Read)
                        .and_then(|file| settings.run(&file, image.bbox));
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
    Ok(written)
}

/// The `index.json` of a pack.
fn index_for(
    prepared: &Prepared,
    selection: &Chosen,
    settings: Preprocess,
    made_from: MadeFrom,
    written: &sink::Written,
) -> ShardIndex {
    let names = prepared.catalog.class_names();
    ShardIndex {
        format: crate::shard::INDEX_FORMAT.to_string(),
        dataset: prepared.info.dataset.clone(),
        split: selection.split.clone(),
        preprocess: settings,
        made_from,
        samples: written.class_counts.iter().map(|(_, n)| n).sum(),
        classes: written
            .class_counts
            .iter()
            .map(|&(id, samples)| ClassSummary {
                id,
                name: names.get(&id).copied().unwrap_or_default().to_string(),
                samples,
            })
            .collect(),
        shards: written
            .shards
            .iter()
            .map(|s| crate::shard::IndexShard {
                file: s.file(),
                samples: s.samples(),
                bytes: s.bytes(),
            })
            .collect(),
        sources: selection.images.iter().map(|i| i.path.clone()).collect(),
        rejected: written.rejected.clone(),
        created_by: format!("lifted {}", env!("CARGO_PKG_VERSION")),
    }
}

/// The folder `pack` writes to by default for a prepared dataset, a split folder, a part and
/// preprocessing settings: `<data>/<dataset>/shards/<split>-<part>-<settings>`.
///
/// # Errors
/// [`PackError::Select`] with whatever [`crate::split::read_split`] returns for `split_dir`.
pub fn default_out(
    prepared: &Prepared,
    split_dir: &Path,
    part: Selection,
    settings: &Preprocess,
) -> Result<PathBuf, PackError> {
    let split = crate::split::read_split(split_dir).map_err(SelectError::from)?;
    Ok(default_out_named(prepared, &split.name, part, settings))
}

fn default_out_named(prepared: &Prepared, split: &str, part: Selection, p: &Preprocess) -> PathBuf {
    prepared.dir.dir.join("shards").join(format!(
        "{split}-{}-{}",
        part.as_str(),
        p.normalized().folder_suffix()
    ))
}
