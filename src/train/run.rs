//! `lifted train`: from a dataset name to a trained, evaluated run folder. Prepares the bundled
//! sample if needed, packs the training and test parts of the split if they are not packed with
//! the run's settings yet, then trains ([`super::trainer`]).
//!
//! A run folder holds `config.json`, `log.jsonl`, `checkpoint/` and, at the end, `summary.json`.

use std::path::PathBuf;

use super::TrainError;
use super::config::TrainConfig;
use super::data::{data_for, prepared_dataset};
use super::optim::Schedule;
use super::trainer::{TrainSummary, train};
use crate::fsutil;
use crate::progress::Progress;

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
///
/// # Errors
/// [`TrainError::Io`] when a run's `config.json` cannot be read or written, the run folder cannot
/// be made, or its log or `summary.json` cannot be written; [`TrainError::BadRunConfig`] when a
/// resumed run's `config.json` is not one lifted wrote; [`TrainError::UnwritableConfig`] when the
/// settings cannot be written as JSON; [`TrainError::NothingToResume`] when the folder to resume
/// has no checkpoint; [`TrainError::RunExists`] when `request.out` already holds a run;
/// [`TrainError::Pretrained`] when the initial weights cannot be found or fetched; whatever
/// [`data_for`] and [`train`] return.
pub fn run(request: &TrainRequest) -> Result<TrainSummary, TrainError> {
    let (config, run_dir, resume) = match &request.resume {
        Some(dir) => {
            let path = dir.join("config.json");
            let bytes = std::fs::read(&path).map_err(|source| TrainError::Io {
                path: path.clone(),
                source,
            })?;
            let mut config: TrainConfig =
                serde_json::from_slice(&bytes).map_err(|source| TrainError::BadRunConfig {
                    path: path.clone(),
                    source,
                })?;
            if let Some(epochs) = request.resume_epochs {
                config.epochs = epochs;
                if let Schedule::Cosine { total } = &mut config.optim.schedule {
                    *total = epochs;
                }
                let json = config_json(&config)?;
                fsutil::write_atomic(&path, &json).map_err(|source| TrainError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            if !dir.join("checkpoint/state.json").is_file() {
                return Err(TrainError::NothingToResume(dir.to_path_buf()));
            }
            (config, dir.clone(), true)
        }
        None => {
            let c = &request.config;
            let dir = match &request.out {
                Some(dir) if holds_run(dir) => {
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
            // A folder without a checkpoint holds nothing to resume: start its log afresh.
            let log = dir.join("log.jsonl");
            if log.is_file() {
                fsutil::write_atomic(&log, b"")
                    .map_err(|source| TrainError::Io { path: log, source })?;
            }
            (request.config.clone(), dir, false)
        }
    };
    let mut config = config;
    if !resume && let Some(spec) = &config.weights {
        // A dataset that is not there is reported before a weight file is downloaded.
        prepared_dataset(&config, request.progress)?;
        let resolved = crate::weights::resolve(
            spec,
            config.model.arch,
            config.weights_manifest.as_deref(),
            &config.data_dir,
            &crate::fetch::FetchOptions::default(),
            request.progress,
        )?;
        config.pretrained = Some(resolved);
    }
    let data = data_for(&config, request.progress)?;
    if !resume {
        let json = config_json(&config)?;
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

/// Whether `dir` holds a run that can be resumed (it has a checkpoint). A folder left by a run
/// that stopped before its first checkpoint holds nothing to resume and may be reused.
fn holds_run(dir: &std::path::Path) -> bool {
    super::checkpoint::folder(dir).join("state.json").exists()
}

/// `name`, or the first of `name-2`, `name-3`, … that holds no run yet.
fn first_free(name: &str) -> PathBuf {
    std::iter::once(PathBuf::from(name))
        .chain((2..).map(|n| PathBuf::from(format!("{name}-{n}"))))
        .find(|dir| !holds_run(dir))
        .expect("an unbounded sequence has a free name")
}

/// `config.json`'s bytes; paths in it must be valid UTF-8, since a resume reads them back.
fn config_json(config: &TrainConfig) -> Result<Vec<u8>, TrainError> {
    serde_json::to_vec_pretty(config).map_err(TrainError::UnwritableConfig)
}
