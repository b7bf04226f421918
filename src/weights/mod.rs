//! ImageNet-pretrained backbones: which files exist (`manifests/weights.toml`), fetching them
//! verified into `<data>/weights/` (the datasets' download code: mirrors, resume, hashes), and
//! loading a weight file into a network by name, refusing any missing or misshaped tensor.
//!
//! A weight file is a PyTorch checkpoint (zip or legacy `torch.save`) or a safetensors file
//! with torchvision's names (timm's ResNets use the same), or Cadene's for BN-Inception; see
//! [`checkpoint`]. `lifted train --weights FILE|NAME|none` and `lifted weights` use this module.

pub mod checkpoint;
mod pickle;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

pub use checkpoint::{CheckpointError, read_tensors};
pub use pickle::PickleError;

use crate::fetch::{self, FetchError, FetchOptions, Fetched};
use crate::manifest::SourceFile;
use crate::progress::Progress;
use crate::train::model::Architecture;

/// The built-in weight manifest.
const BUILT_IN: &str = include_str!("../../manifests/weights.toml");

/// How many differences a mismatch error lists.
const SHOWN_DIFFERENCES: usize = 8;

/// One published weight file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsEntry {
    /// The name `--weights` and `lifted weights fetch` take.
    pub name: String,
    /// The network it is for.
    pub arch: Architecture,
    /// What it is.
    pub title: String,
    /// Its licence or terms, as published.
    pub licence: String,
    /// Remarks (input convention, provenance).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The file's size as its publisher states it, in MiB rounded to 3 decimals (torchvision's
    /// `_file_size`); informative, since the hash is what is checked.
    #[serde(default)]
    pub published_size_mib: Option<f64>,
    /// The file, its hashes and sources.
    pub file: SourceFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightsManifest {
    weights: Vec<WeightsEntry>,
}

/// Which initial weights a run starts from (none: random weights).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightsSpec {
    /// A weight file on disk.
    File(PathBuf),
    /// A published file by name, fetched into the data dir if missing.
    Named(String),
}

impl WeightsSpec {
    /// Reads a command-line argument by one rule, as for datasets: `none` is random weights
    /// (`None`), a path has a `/` or a weight file's extension (`.pth`, `.pt`, `.bin`,
    /// `.safetensors`), and any other word is a published file's name.
    pub fn parse(arg: &str) -> Option<WeightsSpec> {
        let lower = arg.to_ascii_lowercase();
        let file_like = [".pth", ".pt", ".bin", ".safetensors"]
            .iter()
            .any(|e| lower.ends_with(e));
        if arg == "none" {
            None
        } else if arg.contains(['/', '\\']) || file_like {
            Some(WeightsSpec::File(PathBuf::from(arg)))
        } else {
            Some(WeightsSpec::Named(arg.to_string()))
        }
    }
}

/// The weight file a run starts from, as recorded in its `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedWeights {
    /// The published name, if it was given by name.
    pub name: Option<String>,
    /// The file.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
}

/// Errors from finding, fetching or loading weights.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The weight manifest cannot be read.
    #[error("the weight manifest {origin} is not valid")]
    Manifest {
        /// Where it came from.
        origin: String,
        /// The TOML error.
        #[source]
        source: toml::de::Error,
    },
    /// The weight manifest breaks a rule TOML cannot express (a file name that is a path, a
    /// malformed hash, a name listed twice).
    #[error("the weight manifest {origin} is not valid: {problem}")]
    InvalidManifest {
        /// Where it came from.
        origin: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// A weight manifest file cannot be read.
    #[error("cannot read the weight manifest {path}")]
    ManifestIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No published file has this name.
    #[error("no published weights are named `{name}`; known: {known} (or give a file's path)")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The known names.
        known: String,
    },
    /// The weights are for another network than the run's.
    #[error("the weights `{name}` are for {weights:?}, but the network is {network:?}")]
    WrongNetwork {
        /// The weights' name.
        name: String,
        /// Their network.
        weights: Architecture,
        /// The run's network.
        network: Architecture,
    },
    /// The file could not be fetched or verified.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The file could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The file's tensors do not fit the network.
    #[error(
        "{path} does not fit the network: {total} of its parameters are missing or misshaped \
         ({}); is it for another network?",
        differences.join("; ")
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The first differences, one line each.
        differences: Vec<String>,
        /// How many there are.
        total: usize,
    },
    /// A tensor could not be copied into the network.
    #[error("cannot copy the weights of {path} into the network")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
}

/// The published weight files: the built-in manifest, or the one at `manifest`.
///
/// # Errors
/// [`WeightsError::ManifestIo`] when `manifest` cannot be read; [`WeightsError::Manifest`] when
/// it is not valid TOML of this form; [`WeightsError::InvalidManifest`] when an entry's file
/// name is not a plain file name, a hash is malformed, a file has no hash or no source, or a
/// name is listed twice.
pub fn entries(manifest: Option<&Path>) -> Result<Vec<WeightsEntry>, WeightsError> {
    let (text, origin) = match manifest {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| WeightsError::ManifestIo {
                path: path.to_path_buf(),
                source,
            })?,
            path.display().to_string(),
        ),
        None => (BUILT_IN.to_string(), "built-in".to_string()),
    };
    let parsed: WeightsManifest =
        toml::from_str(&text).map_err(|source| WeightsError::Manifest {
            origin: origin.clone(),
            source,
        })?;
    check_entries(&parsed.weights)
        .map_err(|problem| WeightsError::InvalidManifest { origin, problem })?;
    Ok(parsed.weights)
}

/// The rules of a weight manifest beyond its form: each file is checked as a dataset's are
/// (a plain file name, since it is written under the data dir; well-formed hashes; a source),
/// has a hash, and no name or file name is listed twice.
fn check_entries(entries: &[WeightsEntry]) -> Result<(), String> {
    let files: Vec<SourceFile> = entries.iter().map(|e| e.file.clone()).collect();
    crate::manifest::check_files(&files)?;
    for (i, entry) in entries.iter().enumerate() {
        if !entry.file.has_hash() {
            return Err(format!("file `{}` has no hash", entry.file.name));
        }
        if entries[..i].iter().any(|e| e.name == entry.name) {
            return Err(format!("the name `{}` is listed twice", entry.name));
        }
    }
    Ok(())
}

/// The published file named `name`.
///
/// # Errors
/// Whatever [`entries`] returns; [`WeightsError::UnknownName`] when no file has this name.
pub fn entry(name: &str, manifest: Option<&Path>) -> Result<WeightsEntry, WeightsError> {
    let all = entries(manifest)?;
    let known = all
        .iter()
        .map(|e| e.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    all.into_iter()
        .find(|e| e.name == name)
        .ok_or(WeightsError::UnknownName {
            name: name.to_string(),
            known,
        })
}

/// The folder published weights are kept in: `<data>/weights/`.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("weights")
}

/// Makes sure the published file `entry` is in the cache, verified (a cached copy is hashed
/// again), and returns where it is.
///
/// # Errors
/// Whatever [`fetch::fetch_file`] returns.
pub fn fetch(
    entry: &WeightsEntry,
    data_dir: &Path,
    options: &FetchOptions,
    progress: Progress,
) -> Result<Fetched, WeightsError> {
    Ok(fetch::fetch_file(
        &entry.file,
        &cache_dir(data_dir),
        options,
        false,
        &|_| None,
        progress,
    )?)
}

/// The file `spec` names for a network `arch`: a published one fetched if needed, or a file on
/// disk (hashed).
///
/// # Errors
/// Whatever [`entry`] and [`fetch`] return; [`WeightsError::WrongNetwork`] when a published
/// file is for another network; [`WeightsError::Checkpoint`] when a file cannot be read.
pub fn resolve(
    spec: &WeightsSpec,
    arch: Architecture,
    manifest: Option<&Path>,
    data_dir: &Path,
    options: &FetchOptions,
    progress: Progress,
) -> Result<ResolvedWeights, WeightsError> {
    match spec {
        WeightsSpec::File(path) => {
            let bar = progress.bytes(None, format!("hashing {}", path.display()));
            let digests =
                fetch::digest_file(path, false, &bar).map_err(|source| CheckpointError::Io {
                    path: path.clone(),
                    source,
                })?;
            bar.finish_and_clear();
            Ok(ResolvedWeights {
                name: None,
                path: path.clone(),
                sha256: digests.sha256,
            })
        }
        WeightsSpec::Named(name) => {
            let entry = entry(name, manifest)?;
            if entry.arch != arch {
                return Err(WeightsError::WrongNetwork {
                    name: name.clone(),
                    weights: entry.arch,
                    network: arch,
                });
            }
            let fetched = fetch(&entry, data_dir, options, progress)?;
            Ok(ResolvedWeights {
                name: Some(entry.name),
                path: fetched.path,
                sha256: fetched.digests.sha256,
            })
        }
    }
}

/// What loading weights did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// Network variables set from the file.
    pub loaded: usize,
    /// Tensors of the file the network does not use (the classifier, auxiliary heads).
    pub unused: Vec<String>,
}

/// Sets every variable of `varmap` whose name does not start with one of `skip` (the embedding
/// head, which no ImageNet file has) from the weight file at `path`. Every such variable must
/// be in the file with its shape; the file's other tensors are reported as unused.
///
/// # Errors
/// Whatever [`read_tensors`] returns; [`WeightsError::Mismatch`] listing the first missing or
/// misshaped parameters; [`WeightsError::Tensor`] when a tensor cannot be copied.
pub fn load_into(varmap: &VarMap, path: &Path, skip: &[&str]) -> Result<LoadReport, WeightsError> {
    let tensors = read_tensors(path)?;
    let data = varmap
        .data()
        .lock()
        .expect("the variable map is not poisoned");
    let mut names: Vec<&String> = data
        .keys()
        .filter(|n| !skip.iter().any(|s| n.starts_with(s)))
        .collect();
    names.sort();
    let differences = differences(&names, &data, &tensors);
    if !differences.is_empty() {
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            total: differences.len(),
            differences: differences.into_iter().take(SHOWN_DIFFERENCES).collect(),
        });
    }
    let copy_error = |source| WeightsError::Tensor {
        path: path.to_path_buf(),
        source,
    };
    for name in &names {
        let var = &data[*name];
        let value = tensors[*name].to_device(var.device()).map_err(copy_error)?;
        var.set(&value).map_err(copy_error)?;
    }
    let mut unused: Vec<String> = tensors
        .keys()
        .filter(|k| !data.contains_key(*k))
        .cloned()
        .collect();
    unused.sort();
    Ok(LoadReport {
        loaded: names.len(),
        unused,
    })
}

/// One line per network variable the file lacks or has in another shape.
fn differences(
    names: &[&String],
    vars: &HashMap<String, candle_core::Var>,
    tensors: &HashMap<String, Tensor>,
) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| {
            let wanted = vars[*name].dims();
            match tensors.get(*name) {
                None => Some(format!("{name} is missing")),
                Some(t) if t.dims() != wanted => Some(format!(
                    "{name} is {:?} in the file but {wanted:?} in the network",
                    t.dims()
                )),
                Some(_) => None,
            }
        })
        .collect()
}
