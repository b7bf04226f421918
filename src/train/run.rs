//! `lifted train`: from a dataset name to a trained, evaluated run folder. Prepares the bundled
//! sample if needed, packs the training and test parts of the split if they are not packed with
//! the run's settings yet, then trains ([`super::trainer`]).
//!
//! A run folder holds `config.json`, `log.jsonl`, `checkpoint/` and, at the end, `summary.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::TrainError;
use super::config::TrainConfig;
use super::optim::Schedule;
use super::trainer::{Data, TrainSummary, train};
use crate::dataset::{self, DatasetRef};
use crate::fsutil;
use crate::pack::{self, PackOptions, Part, Preprocess};
use crate::prepare::{self, PrepareOptions};
use crate::progress::Progress;
use crate::shard::{ShardIndex, ShardSet};

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// Settings (ignored when resuming: the run's own `config.json` is used).
    pub config: TrainConfig,
    /// The run folder (default `runs/<dataset>-<model>-<loss>-seed<seed>`, with `-2`, `-3`, …
    /// appended if that already holds a run).
    pub out: Option<PathBuf>,
    /// Resume the run in this folder.
    pub resume: Option<PathBuf>,
    /// When resuming: train to this many epochs instead of the run's own (to extend a run; a
    /// cosine schedule is stretched to the new length).
    pub resume_epochs: Option<u64>,
    /// Stop (with a checkpoint, without the final evaluation) after this many epochs of this
    /// invocation, e.g. to fit a cluster's time limit; `resume` continues exactly.
    pub stop_after: Option<u64>,
    /// Progress bars.
    pub progress: Progress,
}

/// Runs a training request.
pub fn run(request: &TrainRequest) -> Result<TrainSummary, TrainError> {
    let (config, run_dir, resume) = match &request.resume {
        Some(dir) => {
            let path = dir.join("config.json");
            let bytes = std::fs::read(&path).map_err(|source| TrainError::Io {
                path: path.clone(),
                source,
            })?;
            let mut config: TrainConfig = serde_json::from_slice(&bytes).map_err(|e| {
                TrainError::Config(format!(
                    "{} is not a lifted run config: {e}",
                    path.display()
                ))
            })?;
            if let Some(epochs) = request.resume_epochs {
                config.epochs = epochs;
                if let Schedule::Cosine { total } = &mut config.optim.schedule {
                    *total = epochs;
                }
                let json = serde_json::to_vec_pretty(&config).expect("a config serialises");
                fsutil::write_atomic(&path, &json).map_err(|source| TrainError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            if !dir.join("checkpoint/state.json").is_file() {
                return Err(TrainError::Config(format!(
                    "{} has no checkpoint to resume from; start a new run with --out",
                    dir.display()
                )));
            }
            (config, dir.clone(), true)
        }
        None => {
            let c = &request.config;
            let dir = match &request.out {
                Some(dir) if dir.join("config.json").exists() => {
                    return Err(TrainError::RunExists(dir.clone()));
                }
                Some(dir) => dir.clone(),
                None => {
                    let name = format!(
                        "runs/{}-{:?}-{:?}-seed{}",
                        c.dataset, c.model.arch, c.loss, c.sampler.seed
                    )
                    .to_lowercase();
                    first_free(&name)
                }
            };
            std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
                path: dir.clone(),
                source,
            })?;
            (request.config.clone(), dir, false)
        }
    };
    let data = data_for(&config, request.progress)?;
    if !resume {
        let json = serde_json::to_vec_pretty(&config).expect("a config serialises");
        let path = run_dir.join("config.json");
        fsutil::write_atomic(&path, &json).map_err(|source| TrainError::Io { path, source })?;
    }
    let summary = train(
        &config,
        &data,
        &run_dir,
        resume,
        request.stop_after,
        request.progress,
    )?;
    let path = run_dir.join("summary.json");
    fsutil::write_atomic(
        &path,
        &serde_json::to_vec_pretty(&summary).expect("a summary serialises"),
    )
    .map_err(|source| TrainError::Io { path, source })?;
    Ok(summary)
}

/// `name`, or the first of `name-2`, `name-3`, … that holds no run yet.
fn first_free(name: &str) -> PathBuf {
    std::iter::once(PathBuf::from(name))
        .chain((2..).map(|n| PathBuf::from(format!("{name}-{n}"))))
        .find(|dir| !dir.join("config.json").exists())
        .expect("an unbounded sequence has a free name")
}

/// The packed training and test parts for a run, packing what is missing.
pub fn data_for(config: &TrainConfig, progress: Progress) -> Result<Data, TrainError> {
    let reference = DatasetRef::parse(&config.dataset);
    let prepared = match dataset::open_prepared_ref(&reference, &config.data_dir) {
        Ok(p) => p,
        Err(dataset::DatasetError::NotPrepared { .. }) if config.dataset == "sample" => {
            let options = PrepareOptions {
                data_dir: config.data_dir.clone(),
                manifest: None,
                archives: Vec::new(),
                allow_unverified: false,
                skip_bad_images: false,
                name: None,
                fetch: Default::default(),
                progress,
            };
            prepare::prepare(&reference, &options)?;
            dataset::open_prepared_ref(&reference, &config.data_dir)?
        }
        Err(e) => return Err(e.into()),
    };
    let split_dir = config
        .split_dir
        .clone()
        .unwrap_or_else(|| prepared.dir.split(&prepared.info.default_split));
    let open = |part: Part| -> Result<Arc<ShardSet>, TrainError> {
        let p = config.pack;
        let preprocess = Preprocess {
            size: p.size,
            resize: p.resize,
            crop: p.crop,
            encoding: p.encoding,
            quality: p.quality,
        };
        let options = PackOptions {
            data_dir: config.data_dir.clone(),
            part,
            split_dir: Some(split_dir.clone()),
            preprocess,
            threads: config.threads,
            strict: false,
            shard_bytes: 1 << 30,
            out: None,
            progress,
        };
        let out = pack::default_out(&prepared, &split_dir, part, &preprocess);
        if !packed_as(&out, &split_dir, &preprocess)? {
            pack::pack(
                &reference,
                &PackOptions {
                    out: Some(out.clone()),
                    ..options
                },
            )?;
        }
        Ok(Arc::new(ShardSet::open(&out)?))
    };
    let train = open(Part::Train)?;
    let test = open(Part::Test)?;
    let split_hash = train.index().split.hash.clone();
    Ok(Data {
        train,
        test,
        split_hash,
    })
}

/// Whether `out` already holds shards of the split in `split_dir` made with `preprocess`.
fn packed_as(out: &Path, split_dir: &Path, preprocess: &Preprocess) -> Result<bool, TrainError> {
    let Ok(index) = ShardIndex::read(out) else {
        return Ok(false);
    };
    let bytes = std::fs::read(split_dir.join("split.csv")).map_err(|source| TrainError::Io {
        path: split_dir.join("split.csv"),
        source,
    })?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let p = &index.preprocess;
    let same = index.split.hash == hash
        && p.size == preprocess.size
        && p.resize == preprocess.resize.as_str()
        && p.crop == preprocess.crop.as_str()
        && p.encoding == preprocess.encoding
        && (p.quality.is_none() || p.quality == Some(preprocess.quality));
    Ok(same)
}
