//! The training loop: P×K batches from the loader, the loss, backward, the optimiser; a JSONL
//! record per step, an evaluation before training, every `eval_every` epochs and at the end,
//! checkpoints every `checkpoint_every` epochs and at the end, and an exact resume from the last
//! checkpoint. A non-finite loss stops the run with an error; the checkpoint on disk is then the
//! last good one. Checkpoints are never chosen by a test score: the run ends with its last.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use super::TrainError;
use super::checkpoint::{self, State};
use super::config::TrainConfig;
use super::data::Data;
use super::embed::embed_all;
use super::log::{RunLog, truncate_after};
use super::model::init::SeededVars;
use super::model::{EmbeddingNet, parameter_groups};
use super::optim::{Optimizer, Schedule};
use crate::eval::{EvalReport, evaluate};
use crate::loader::{Layout, Loader, LoaderConfig, PkSampler};
use crate::progress::Progress;
use crate::rng::{Purpose, stream};
use crate::runlog::LogRecord;
use crate::shard::ShardSet;

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// The run folder.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub run: std::path::PathBuf,
    /// Steps taken in all.
    pub steps: u64,
    /// Epochs completed.
    pub epochs: u64,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// Training images per second (this invocation).
    pub images_per_s: f64,
    /// The last training loss.
    pub last_loss: f64,
    /// Test metrics of the untrained network (absent when resuming).
    pub before: Option<EvalReport>,
    /// Test metrics at the end (absent when stopped early to be resumed).
    pub after: Option<EvalReport>,
    /// The run's planned epochs.
    pub planned_epochs: u64,
    /// The settings that decide the run, in words ([`TrainConfig::describe`]).
    pub settings: String,
}

/// Parses `cpu` or `cuda:N`.
///
/// # Errors
/// [`TrainError::UnknownDevice`] when `name` is neither `cpu` nor `cuda`/`cuda:N`;
/// [`TrainError::Cuda`] when candle cannot open the CUDA device (no GPU, or lifted built without
/// the `cuda` feature).
pub fn device(name: &str) -> Result<Device, TrainError> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = name
        .strip_prefix("cuda:")
        .or_else(|| (name == "cuda").then_some("0"))
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| TrainError::UnknownDevice(name.to_string()))?;
    Device::new_cuda(ordinal).map_err(|source| TrainError::Cuda {
        device: name.to_string(),
        source,
    })
}

/// Trains per `config` in the folder `run`, continuing from its checkpoint if `resume`; with
/// `stop_after`, stops (with a checkpoint) after that many epochs of this invocation, to be
/// resumed later.
///
/// # Errors
/// Whatever [`device`] returns for `config.device`; [`TrainError::Pretrained`] when
/// `config.pretrained` cannot be loaded into the network; [`TrainError::Sampler`] when the sampler's settings do not work;
/// [`TrainError::Loader`] when the loaders' settings are refused or a batch cannot be loaded; when
/// resuming, whatever [`checkpoint::load`] returns, and [`TrainError::SplitChanged`] when the
/// checkpoint was trained on another split; [`TrainError::Io`] when the log cannot be opened,
/// written or synced, or a checkpoint cannot be saved; [`TrainError::Loss`] when the loss cannot be
/// computed; [`TrainError::NonFinite`] when the loss or the embeddings become NaN or infinite;
/// [`TrainError::Eval`] when an evaluation fails; [`TrainError::Tensor`] when the network cannot be
/// built or a tensor operation fails.
pub fn train(
    config: &TrainConfig,
    data: &Data,
    run: &Path,
    resume: bool,
    stop_after: Option<u64>,
    progress: Progress,
) -> Result<TrainSummary, TrainError> {
    let started = Instant::now();
    let device = device(&config.device)?;
    let mut varmap = VarMap::new();
    let vb = SeededVars::builder(&varmap, config.sampler.seed, DType::F32, &device);
    let net = EmbeddingNet::new(config.model, &vb)?;
    if let (Some(weights), false) = (&config.pretrained, resume) {
        crate::weights::load_into(&varmap, &weights.path, &["embedding."])?;
    }
    let classes = data
        .train
        .classes()
        .iter()
        .map(|c| (c.class_id, c.indices().collect()))
        .collect();
    let sampler = PkSampler::new(classes, config.sampler)?;
    let groups = parameter_groups(&varmap, config.model.bn);
    let mut optim = config.optim;
    // The run's schedule counts epochs; the optimiser's counts steps.
    let per_epoch = sampler.batches_per_epoch() as u64;
    optim.schedule = match optim.schedule {
        Schedule::Step { every, gamma } => Schedule::Step {
            every: every * per_epoch,
            gamma,
        },
        Schedule::Cosine { total } => Schedule::Cosine {
            total: total * per_epoch,
        },
        constant => constant,
    };
    let mut optimizer = Optimizer::new(
        optim,
        vec![
            (groups.trunk, 1.0),
            (groups.head, config.optim.head_lr_mult),
        ],
    );
    let loader_config = |seed| LoaderConfig {
        threads: config.threads,
        prefetch: 4,
        normalize: config.normalize,
        layout: Layout::NchwF32,
        seed,
    };
    let train_loader = Loader::new(data.train.clone(), loader_config(config.sampler.seed))?;
    let test_loader = Loader::new(data.test.clone(), loader_config(0))?;

    let mut state = if resume {
        let state = checkpoint::load(run, &mut varmap, &mut optimizer)?;
        if state.split_hash != data.split_hash {
            return Err(TrainError::SplitChanged {
                checkpoint: state.split_hash.clone(),
                data: data.split_hash.clone(),
            });
        }
        truncate_after(run, state.global_step)?;
        state
    } else {
        State {
            epoch: 0,
            step: 0,
            global_step: 0,
            split_hash: data.split_hash.clone(),
            rng: "stateless: keyed by (seed, epoch, step)".to_string(),
        }
    };
    let mut log = RunLog::open(run)?;
    let evaluate_now = |log: &mut RunLog, state: &State| -> Result<EvalReport, TrainError> {
        let (embeddings, labels) = embed_all(&net, &test_loader, config.eval_crop, 256, &device)?;
        let report = evaluate(&embeddings, &labels, &config.eval)?;
        log.write(&LogRecord::Eval {
            epoch: state.epoch,
            global_step: state.global_step,
            report: report.clone(),
        })?;
        Ok(report)
    };
    let before = if resume {
        None
    } else {
        Some(evaluate_now(&mut log, &state)?)
    };

    let total_steps = config.epochs * sampler.batches_per_epoch() as u64;
    let bar = progress.items(total_steps, "training");
    bar.set_position(state.global_step);
    let mut images = 0usize;
    let mut totals = Totals {
        last_loss: f64::NAN,
        epoch_loss: 0.0,
        epoch_steps: 0,
    };
    let mut pending = Vec::new();
    let steps_at_start = state.global_step;
    let stop_at = stop_after.map_or(config.epochs, |n| config.epochs.min(state.epoch + n));
    while state.epoch < stop_at {
        let epoch_start = Instant::now();
        for batch in train_loader.epoch(&sampler, state.epoch, state.step as usize, config.augment)
        {
            let batch = batch?;
            let x = batch.images(&device)?;
            // The labels stay on the host: the loss reads them there to build its pair masks,
            // without waiting for the device.
            let labels = batch.label_tensor(&Device::Cpu)?;
            let mut dropout_rng = stream(
                config.sampler.seed,
                Purpose::Dropout,
                &[state.epoch, state.step],
            );
            let mut embeddings = net.forward_train(&x, &mut dropout_rng)?;
            if config.normalize_embeddings {
                embeddings = embeddings.broadcast_div(
                    &embeddings
                        .sqr()?
                        .sum_keepdim(1)?
                        .sqrt()?
                        .clamp(1e-12, f64::MAX)?,
                )?;
            }
            let loss = config.loss.compute(&embeddings, &labels, config.margin)?;
            // A hinge turns NaN into 0, so the embeddings are checked as well as the loss.
            // Detached, so that a pending step does not keep its whole graph alive.
            let checks =
                Tensor::stack(&[loss.to_dtype(DType::F32)?, embeddings.sum_all()?], 0)?.detach();
            let grads = loss.backward()?;
            let lr = optimizer.learning_rate();
            optimizer.step(&grads)?;
            images += batch.len();
            pending.push(PendingStep {
                epoch: state.epoch,
                step: state.step,
                global_step: state.global_step + 1,
                lr,
                images,
                checks,
            });
            state.step += 1;
            state.global_step += 1;
            if pending.len() as u64 >= config.check_every.max(1) {
                totals.read_back(&mut pending, &mut log, &bar, started)?;
            }
        }
        totals.read_back(&mut pending, &mut log, &bar, started)?;
        let (epoch_loss, epoch_steps) = (totals.epoch_loss, totals.epoch_steps);
        (totals.epoch_loss, totals.epoch_steps) = (0.0, 0);
        state.epoch += 1;
        state.step = 0;
        log.write(&LogRecord::Epoch {
            epoch: state.epoch - 1,
            global_step: state.global_step,
            mean_loss: epoch_loss / epoch_steps.max(1) as f64,
            seconds: epoch_start.elapsed().as_secs_f64(),
        })?;
        if config.eval_every > 0
            && state.epoch % config.eval_every == 0
            && state.epoch < config.epochs
        {
            evaluate_now(&mut log, &state)?;
        }
        if state.epoch % config.checkpoint_every.max(1) == 0 || state.epoch == stop_at {
            checkpoint::save(run, &varmap, &optimizer, &state)?;
            log.sync()?;
        }
    }
    bar.finish_and_clear();
    let after = if state.epoch == config.epochs {
        Some(evaluate_now(&mut log, &state)?)
    } else {
        None
    };
    log.sync()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainSummary {
        run: run.to_path_buf(),
        steps: state.global_step,
        epochs: state.epoch,
        seconds,
        images_per_s: images as f64 / seconds.max(1e-9),
        last_loss: if totals.last_loss.is_nan() && state.global_step > steps_at_start {
            0.0
        } else {
            totals.last_loss
        },
        before,
        after,
        planned_epochs: config.epochs,
        settings: config.describe(),
    })
}

/// A step whose loss and check are still on the device.
struct PendingStep {
    epoch: u64,
    step: u64,
    global_step: u64,
    lr: f64,
    /// Images trained on by the end of this step.
    images: usize,
    /// [loss, sum of the embeddings].
    checks: Tensor,
}

/// What the read-back steps add up to.
struct Totals {
    last_loss: f64,
    epoch_loss: f64,
    epoch_steps: u64,
}

impl Totals {
    /// Reads the pending steps' checks back in one transfer and, in order, stops at the first
    /// non-finite one or logs each.
    fn read_back(
        &mut self,
        pending: &mut Vec<PendingStep>,
        log: &mut RunLog,
        bar: &indicatif::ProgressBar,
        started: Instant,
    ) -> Result<(), TrainError> {
        if pending.is_empty() {
            return Ok(());
        }
        let checks: Vec<&Tensor> = pending.iter().map(|p| &p.checks).collect();
        let values = Tensor::stack(&checks, 0)?.to_vec2::<f32>()?;
        let seconds = started.elapsed().as_secs_f64();
        for (p, v) in pending.drain(..).zip(values) {
            for (what, checked) in [("loss", v[0]), ("embeddings", v[1])] {
                if !checked.is_finite() {
                    return Err(TrainError::NonFinite {
                        what,
                        epoch: p.epoch,
                        step: p.step,
                        value: f64::from(checked),
                    });
                }
            }
            let value = f64::from(v[0]);
            self.last_loss = value;
            self.epoch_loss += value;
            self.epoch_steps += 1;
            let rate = p.images as f64 / seconds;
            log.write(&LogRecord::Step {
                epoch: p.epoch,
                step: p.step,
                global_step: p.global_step,
                loss: value,
                lr: p.lr,
                images_per_s: Some(rate),
            })?;
            bar.set_message(format!("training, loss {value:.4}, {rate:.0} img/s"));
            bar.inc(1);
        }
        Ok(())
    }
}

/// Embeddings of a test set by a trained run's network, for `lifted eval --run`.
///
/// # Errors
/// Whatever [`device`] returns for `config.device`; [`TrainError::Tensor`] when the network cannot
/// be built; [`TrainError::Weights`] when the run's checkpoint weights cannot be loaded;
/// [`TrainError::Loader`] when the loader's settings are refused; whatever [`embed_all`] returns.
pub fn embed_run(
    config: &TrainConfig,
    test: Arc<ShardSet>,
    run: &Path,
) -> Result<(Tensor, Vec<i64>), TrainError> {
    let device = device(&config.device)?;
    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let net = EmbeddingNet::new(config.model, &vb)?;
    let weights = checkpoint::folder(run).join("weights.safetensors");
    varmap
        .load(&weights)
        .map_err(|source| TrainError::Weights {
            path: weights.clone(),
            source,
        })?;
    let loader = Loader::new(
        test,
        LoaderConfig {
            threads: config.threads,
            prefetch: 4,
            normalize: config.normalize,
            layout: Layout::NchwF32,
            seed: 0,
        },
    )?;
    embed_all(&net, &loader, config.eval_crop, 256, &device)
}

impl std::fmt::Display for TrainSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "settings: {}", self.settings)?;
        writeln!(
            f,
            "trained {} steps ({} epochs) in {:.1} s, {:.0} images/s, last loss {:.4}",
            self.steps, self.epochs, self.seconds, self.images_per_s, self.last_loss
        )?;
        let rows = |r: &EvalReport| -> Vec<(String, f64)> {
            let mut rows: Vec<(String, f64)> = r
                .retrieval
                .recall_at
                .iter()
                .map(|(k, v)| (format!("Recall@{k}"), *v))
                .collect();
            rows.push(("MAP@R".to_string(), r.retrieval.map_at_r));
            rows.push(("R-precision".to_string(), r.retrieval.r_precision));
            if let Some(c) = &r.clustering {
                rows.push(("NMI".to_string(), c.nmi.mean));
                rows.push(("AMI".to_string(), c.ami.mean));
                rows.push(("F1".to_string(), c.f1.mean));
            }
            rows
        };
        let Some(after) = &self.after else {
            writeln!(
                f,
                "stopped after epoch {} of {}; continue with `lifted train --resume {}`",
                self.epochs,
                self.planned_epochs,
                self.run.display()
            )?;
            return Ok(());
        };
        writeln!(
            f,
            "held-out test classes ({} images, {} classes):",
            after.samples, after.classes
        )?;
        match &self.before {
            Some(before) => {
                writeln!(
                    f,
                    "  {:<12} {:>9} {:>9} {:>8}",
                    "", "untrained", "trained", "change"
                )?;
                for ((name, b), (_, a)) in rows(before).into_iter().zip(rows(after)) {
                    writeln!(
                        f,
                        "  {name:<12} {:>9.2} {:>9.2} {:>+8.2}",
                        b * 100.0,
                        a * 100.0,
                        (a - b) * 100.0
                    )?;
                }
            }
            None => {
                for (name, a) in rows(after) {
                    writeln!(f, "  {name:<12} {:>9.2}", a * 100.0)?;
                }
            }
        }
        writeln!(f, "run folder: {}", self.run.display())
    }
}
