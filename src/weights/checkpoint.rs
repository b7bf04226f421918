//! Reading the tensors of a weight file without Python: PyTorch checkpoints (`torch.save`, the
//! zip format of torch ≥ 1.6 and the legacy format before it) and safetensors files.
//!
//! A `.pth` holds a pickled state dict whose tensors are calls of
//! `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` (possibly wrapped in
//! `_rebuild_parameter`), with each storage a persistent id: `('storage', torch.FloatStorage,
//! key, location, numel[, view])`. In the zip format a storage's bytes are the entry
//! `<archive>/data/<key>`; in the legacy format the pickles are followed by the list of storage
//! keys and then each storage as an 8-byte element count and its bytes, in that order.
//! Floating-point tensors are returned as f32; integer ones (batch norm's
//! `num_batches_tracked`) are not weights and are left out. Only contiguous tensors are read.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::pickle::{PickleError, Value, unpickle};

/// How many times its file's size one zip entry may unpack to.
const MAX_UNPACK_RATIO: u64 = 8;

/// `torch.save`'s legacy magic number, the first pickle of a legacy file.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Why a weight file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Not a format this reader knows.
    #[error(
        "{0} is neither a PyTorch checkpoint (torch.save, zip or legacy) nor a safetensors file"
    )]
    UnknownFormat(PathBuf),
    /// The pickle inside could not be read.
    #[error("{path}: its pickled state dict cannot be read")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: PickleError,
    },
    /// The zip container is damaged.
    #[error("{path}: its zip container is damaged")]
    Zip {
        /// The file.
        path: PathBuf,
        /// The zip reader's error.
        #[source]
        source: zip::result::ZipError,
    },
    /// The file's structure is not a state dict of tensors.
    #[error("{path}: {problem}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        problem: String,
    },
    /// A safetensors file or a tensor could not be built.
    #[error("{path}: cannot build its tensors")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// candle's error.
        #[source]
        source: candle_core::Error,
    },
}

/// The floating-point tensors of the weight file at `path`, by name, as f32 on the CPU. A
/// state dict nested under `state_dict` or `model` is found, and a `module.` prefix on every
/// name (from `DataParallel`) is removed.
///
/// # Errors
/// [`CheckpointError::Io`] when the file cannot be read; [`CheckpointError::UnknownFormat`] when
/// it is neither a checkpoint nor a safetensors file; [`CheckpointError::Pickle`],
/// [`CheckpointError::Zip`] and [`CheckpointError::Layout`] when it is damaged or holds
/// something other than a state dict of contiguous tensors; [`CheckpointError::Tensor`] when
/// candle cannot build a tensor from its bytes.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let tensors = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(path, &bytes)?
    } else if bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) && bytes[4..].starts_with(&LEGACY_MAGIC)
    {
        read_legacy(path, &bytes)?
    } else if is_safetensors(&bytes) {
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|source| CheckpointError::Tensor {
                path: path.to_path_buf(),
                source,
            })?
            .into_iter()
            .filter(|(_, t)| t.dtype().is_float())
            .map(|(k, t)| Ok((k, to_f32(path, t)?)))
            .collect::<Result<_, CheckpointError>>()?
    } else {
        return Err(CheckpointError::UnknownFormat(path.to_path_buf()));
    };
    Ok(strip_prefix(tensors))
}

/// A safetensors file starts with its JSON header's length, then the header.
fn is_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9
        && u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) < bytes.len() as u64
        && bytes[8] == b'{'
}

/// Removes a `module.` prefix that every name carries.
fn strip_prefix(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    if !tensors.is_empty() && tensors.keys().all(|k| k.starts_with("module.")) {
        tensors
            .into_iter()
            .map(|(k, t)| (k["module.".len()..].to_string(), t))
            .collect()
    } else {
        tensors
    }
}

fn read_zip(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let zip_error = |source| CheckpointError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_error)?;
    let pickle_name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(|n| n.into_owned())
        .ok_or_else(|| layout(path, "the zip holds no data.pkl"))?;
    let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];
    let pickle = read_entry(&mut archive, &pickle_name, bytes.len()).map_err(zip_error)?;
    let (value, _) = unpickle(&pickle).map_err(|source| CheckpointError::Pickle {
        path: path.to_path_buf(),
        source,
    })?;
    let mut storages: HashMap<String, Cow<'_, [u8]>> = HashMap::new();
    for key in storage_element_sizes(&value).into_keys() {
        let data = read_entry(&mut archive, &format!("{prefix}data/{key}"), bytes.len())
            .map_err(|_| layout(path, &format!("storage {key} is missing from the zip")))?;
        storages.insert(key, Cow::Owned(data));
    }
    build_tensors(path, &value, &storages)
}

/// Reads one entry whole. `torch.save` stores entries uncompressed, so none may unpack to more
/// than [`MAX_UNPACK_RATIO`] times the whole file: a compressed entry that claims more is a
/// zip bomb, not a checkpoint.
fn read_entry(
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
    file_size: usize,
) -> Result<Vec<u8>, zip::result::ZipError> {
    let limit = (file_size as u64).saturating_mul(MAX_UNPACK_RATIO);
    let entry = archive.by_name(name)?;
    let mut data = Vec::with_capacity(usize::try_from(entry.size().min(limit)).unwrap_or(0));
    entry.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(zip::result::ZipError::InvalidArchive(
            "an entry unpacks to far more than the file holds".into(),
        ));
    }
    Ok(data)
}

fn read_legacy(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let pickle_error = |source| CheckpointError::Pickle {
        path: path.to_path_buf(),
        source,
    };
    // The magic number, the protocol version and the system info, then the object.
    let mut at = 0;
    for _ in 0..3 {
        at += unpickle(&bytes[at..]).map_err(pickle_error)?.1;
    }
    let (value, used) = unpickle(&bytes[at..]).map_err(pickle_error)?;
    at += used;
    let (keys, used) = unpickle(&bytes[at..]).map_err(pickle_error)?;
    at += used;
    let Value::List(keys) = keys else {
        return Err(layout(path, "the storage key list is missing"));
    };
    // Each storage: an 8-byte element count, then its bytes; their element sizes come from
    // the tensors that use them.
    let sizes = storage_element_sizes(&value);
    let mut storages: HashMap<String, Cow<'_, [u8]>> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(layout(path, "a storage key is not a string"));
        };
        let count = bytes
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| layout(path, "the file ends before its storages"))?;
        let element = *sizes
            .get(&key)
            .ok_or_else(|| layout(path, &format!("storage {key} is used by no tensor")))?;
        let start = at + 8;
        let end = count
            .checked_mul(element as u64)
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| layout(path, &format!("storage {key} runs past the end")))?;
        storages.insert(key, Cow::Borrowed(&bytes[start..end]));
        at = end;
    }
    build_tensors(path, &value, &storages)
}

fn layout(path: &Path, problem: &str) -> CheckpointError {
    CheckpointError::Layout {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

/// A tensor's description in the pickle.
struct TensorRef {
    storage_key: String,
    dtype: Option<DType>,
    element: usize,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// The state dict's entries: the top-level dict, or one nested under `state_dict` or `model`.
fn state_dict(value: &Value) -> Option<&Vec<(Value, Value)>> {
    let Value::Dict(entries) = value else {
        return None;
    };
    let has_tensors = entries.iter().any(|(_, v)| tensor_ref(v).is_some());
    if has_tensors {
        return Some(entries);
    }
    entries.iter().find_map(|(k, v)| match k {
        Value::Str(k) if k == "state_dict" || k == "model" => state_dict(v),
        _ => None,
    })
}

fn build_tensors(
    path: &Path,
    value: &Value,
    storages: &HashMap<String, Cow<'_, [u8]>>,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let entries = state_dict(value)
        .ok_or_else(|| layout(path, "it does not hold a state dict of tensors"))?;
    let mut tensors = HashMap::new();
    for (key, item) in entries {
        let Value::Str(name) = key else {
            continue;
        };
        let Some(t) = tensor_ref(item) else {
            continue; // not a tensor (`_metadata`, a step count, …)
        };
        let Some(dtype) = t.dtype else {
            continue; // an integer tensor: not a weight
        };
        let bytes = storages.get(&t.storage_key).ok_or_else(|| {
            layout(
                path,
                &format!("storage {} is not in the file", t.storage_key),
            )
        })?;
        let numel = t.size.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let contiguous = contiguous_strides(&t.size);
        let same = t
            .size
            .iter()
            .zip(t.stride.iter().zip(&contiguous))
            .all(|(&n, (&s, &c))| n <= 1 || s == c);
        if !same || t.stride.len() != t.size.len() {
            return Err(layout(
                path,
                &format!("{name} is not stored contiguously (stride {:?})", t.stride),
            ));
        }
        let span = numel.and_then(|n| n.checked_mul(t.element));
        let start = t.offset.checked_mul(t.element);
        let range = start
            .zip(span)
            .and_then(|(s, n)| Some(s..s.checked_add(n)?));
        let raw = range.and_then(|r| bytes.get(r)).ok_or_else(|| {
            layout(
                path,
                &format!(
                    "{name} reaches past the end of its storage ({} bytes)",
                    bytes.len()
                ),
            )
        })?;
        let tensor =
            Tensor::from_raw_buffer(raw, dtype, &t.size, &Device::Cpu).map_err(|source| {
                CheckpointError::Tensor {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        tensors.insert(name.clone(), to_f32(path, tensor)?);
    }
    if tensors.is_empty() {
        return Err(layout(
            path,
            "its state dict holds no floating-point tensor",
        ));
    }
    Ok(tensors)
}

fn to_f32(path: &Path, tensor: Tensor) -> Result<Tensor, CheckpointError> {
    tensor
        .to_dtype(DType::F32)
        .map_err(|source| CheckpointError::Tensor {
            path: path.to_path_buf(),
            source,
        })
}

fn contiguous_strides(size: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * size[i + 1].max(1);
    }
    strides
}

/// The storage keys' element sizes, from the tensors that use them.
fn storage_element_sizes(value: &Value) -> HashMap<String, usize> {
    let mut sizes = HashMap::new();
    if let Some(entries) = state_dict(value) {
        for (_, item) in entries {
            if let Some(t) = tensor_ref(item) {
                sizes.insert(t.storage_key, t.element);
            }
        }
    }
    sizes
}

/// A `_rebuild_tensor_v2` call (possibly inside `_rebuild_parameter`), read.
fn tensor_ref(value: &Value) -> Option<TensorRef> {
    let Value::Call { callable, args } = value else {
        return None;
    };
    let Value::Global { module, name } = callable.as_ref() else {
        return None;
    };
    let Value::Tuple(args) = args.as_ref() else {
        return None;
    };
    match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_parameter") => tensor_ref(args.first()?),
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            let Value::Persistent(id) = args.first()? else {
                return None;
            };
            let Value::Tuple(id) = id.as_ref() else {
                return None;
            };
            // ('storage', storage class, key, location, numel[, view])
            let Value::Global { name: class, .. } = id.get(1)? else {
                return None;
            };
            let storage_key = match id.get(2)? {
                Value::Str(k) => k.clone(),
                Value::Int(k) => k.to_string(),
                _ => return None,
            };
            let (dtype, element) = storage_type(class)?;
            Some(TensorRef {
                storage_key,
                dtype,
                element,
                offset: usize::try_from(int(args.get(1)?)?).ok()?,
                size: ints(args.get(2)?)?,
                stride: ints(args.get(3)?)?,
            })
        }
        _ => None,
    }
}

/// A storage class's dtype (`None` for integer and boolean storages) and element size.
fn storage_type(class: &str) -> Option<(Option<DType>, usize)> {
    Some(match class {
        "FloatStorage" => (Some(DType::F32), 4),
        "DoubleStorage" => (Some(DType::F64), 8),
        "HalfStorage" => (Some(DType::F16), 2),
        "BFloat16Storage" => (Some(DType::BF16), 2),
        "LongStorage" => (None, 8),
        "IntStorage" => (None, 4),
        "ShortStorage" => (None, 2),
        "ByteStorage" | "CharStorage" | "BoolStorage" => (None, 1),
        _ => return None,
    })
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(v) => Some(*v),
        _ => None,
    }
}

fn ints(value: &Value) -> Option<Vec<usize>> {
    let Value::Tuple(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|v| int(v).and_then(|v| usize::try_from(v).ok()))
        .collect()
}
