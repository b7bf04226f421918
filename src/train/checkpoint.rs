//! Checkpoints: the network's variables (safetensors), the optimiser's state (safetensors) and
//! where the run stands (`state.json`), written into a temporary folder and renamed over the
//! previous checkpoint, so a crash leaves either the old checkpoint or the new one, complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::optim::Optimizer;
use crate::fsutil;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The next epoch to run.
    pub epoch: u64,
    /// The next step within it.
    pub step: u64,
    /// Training steps taken in all.
    pub global_step: u64,
    /// SHA-256 of the split the run trains on.
    pub split_hash: String,
    /// The random streams need no state: every draw is keyed by (seed, epoch, step).
    pub rng: String,
}

/// The checkpoint folder of a run.
pub fn folder(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// Writes a checkpoint of `varmap`, `optimizer` and `state` into `run/checkpoint/`.
///
/// # Errors
/// [`TrainError::Io`] when the temporary folder or `state.json` cannot be written, synced, or
/// swapped in for the previous checkpoint; [`TrainError::Tensor`] when the weights or the
/// optimiser's state cannot be written.
pub fn save(
    run: &Path,
    varmap: &VarMap,
    optimizer: &Optimizer,
    state: &State,
) -> Result<(), TrainError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    let target = folder(run);
    let temp = fsutil::staging_dir(&target).map_err(io(run))?;
    varmap.save(temp.path().join("weights.safetensors"))?;
    let (tensors, steps) = optimizer.state();
    let mut tensors: HashMap<String, Tensor> = tensors;
    tensors.insert(
        "__steps__".to_string(),
        Tensor::new(&[steps as f64], &candle_core::Device::Cpu)?,
    );
    candle_core::safetensors::save(&tensors, temp.path().join("optimizer.safetensors"))?;
    let json = serde_json::to_vec_pretty(state).expect("a state serialises");
    fsutil::write_atomic(&temp.path().join("state.json"), &json).map_err(io(temp.path()))?;
    fsutil::sync_tree(temp.path()).map_err(io(temp.path()))?;
    fsutil::replace_dir(&temp.keep(), &target).map_err(io(&target))
}

/// Reads a checkpoint: sets `varmap`'s variables, restores `optimizer`, returns the state.
///
/// # Errors
/// [`TrainError::Io`] when `state.json` cannot be read; [`TrainError::BadState`] when it is not a
/// checkpoint state; [`TrainError::Weights`] when the weights or the optimiser's state cannot be
/// loaded (a missing file, or tensors that do not fit the network); [`TrainError::Tensor`] when the
/// optimiser's state cannot be moved to the network's device or restored.
pub fn load(
    run: &Path,
    varmap: &mut VarMap,
    optimizer: &mut Optimizer,
) -> Result<State, TrainError> {
    let dir = folder(run);
    let state_path = dir.join("state.json");
    let bytes = std::fs::read(&state_path).map_err(|source| TrainError::Io {
        path: state_path.clone(),
        source,
    })?;
    let state: State = serde_json::from_slice(&bytes).map_err(|source| TrainError::BadState {
        path: state_path.clone(),
        source,
    })?;
    let weights = dir.join("weights.safetensors");
    varmap
        .load(&weights)
        .map_err(|source| TrainError::Weights {
            path: weights,
            source,
        })?;
    let optimizer_path = dir.join("optimizer.safetensors");
    let mut tensors = candle_core::safetensors::load(&optimizer_path, &candle_core::Device::Cpu)
        .map_err(|source| TrainError::Weights {
            path: optimizer_path,
            source,
        })?;
    let steps = tensors
        .remove("__steps__")
        .map(|t| t.to_vec1::<f64>())
        .transpose()?
        .and_then(|v| v.first().copied())
        .unwrap_or(0.0) as u64;
    let device = varmap
        .all_vars()
        .first()
        .map(|v| v.device().clone())
        .unwrap_or(candle_core::Device::Cpu);
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(&device)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()?;
    optimizer.restore(tensors, steps)?;
    Ok(state)
}
