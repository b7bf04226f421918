//! Reading embeddings and labels written by any framework: `.npy` (float32/float64 N×D, integer
//! labels N) or a CSV of labels (one per line, or a `label`/`class_id` column).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::EvalError;
use super::npy::Npy;

/// Reads an N×D embedding matrix (float32 or float64) from a `.npy` file.
///
/// # Errors
/// [`EvalError::NotNpy`] when the file is not a `.npy` file, its header does not match its
/// size, or its values are not floats; [`EvalError::EmbeddingsShape`] when it is not 2-D with
/// D ≥ 1 and N ≥ 1; [`EvalError::Io`] when it cannot be read.
pub fn read_embeddings(path: &Path) -> Result<Tensor, EvalError> {
    let npy = Npy::read(path)?;
    let (n, d) = match *npy.shape() {
        [n, d] if n > 0 && d > 0 => (n, d),
        _ => {
            return Err(EvalError::EmbeddingsShape {
                path: path.to_path_buf(),
                shape: npy.shape().to_vec(),
            });
        }
    };
    let values = npy.to_f32(path)?;
    Ok(Tensor::from_vec(values, (n, d), &Device::Cpu)?)
}

/// Reads N integer labels from a `.npy` file or a CSV file.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be read (or a CSV is not UTF-8); [`EvalError::NotNpy`]
/// when a `.npy` file is not one lifted reads or does not hold integers;
/// [`EvalError::NoLabelColumn`] when a CSV's header has no `label` or `class_id` column;
/// [`EvalError::BadLabel`] when a CSV cell is not an integer.
pub fn read_labels(path: &Path) -> Result<Vec<i64>, EvalError> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        return Npy::read(path)?.to_i64(path);
    }
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines = crate::fsutil::strip_bom(&text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .peekable();
    let mut column = 0;
    if let Some(first) = lines.peek()
        && first.split(',').any(|c| c.trim().parse::<i64>().is_err())
    {
        let header: Vec<&str> = first.split(',').map(str::trim).collect();
        column = header
            .iter()
            .position(|h| *h == "label" || *h == "class_id")
            .ok_or_else(|| EvalError::NoLabelColumn(path.to_path_buf()))?;
        lines.next();
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let cell = line.split(',').nth(column).unwrap_or("").trim();
            cell.parse::<i64>().map_err(|_| EvalError::BadLabel {
                path: path.to_path_buf(),
                row: i + 1,
                cell: cell.to_string(),
            })
        })
        .collect()
}

/// Writes embeddings as a float32 `.npy` file.
///
/// # Errors
/// [`EvalError::Tensor`] when the embeddings cannot be converted to float32 on the CPU;
/// [`EvalError::Write`] when the file cannot be written.
pub fn write_embeddings(embeddings: &Tensor, path: &Path) -> Result<(), EvalError> {
    embeddings
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .write_npy(path)
        .map_err(|source| EvalError::Write {
            path: path.to_path_buf(),
            source,
        })
}
