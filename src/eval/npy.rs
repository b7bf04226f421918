//! Reading NumPy `.npy` files (format versions 1 to 3) without trusting their headers: the
//! shape must account for exactly the bytes that follow, before anything is allocated.

use std::path::Path;

use super::EvalError;

/// Largest `.npy` header read, in bytes (NumPy pads headers to 64; real ones are under 200).
const MAX_HEADER: usize = 1 << 16;

/// The element types read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
    Int { bytes: usize, signed: bool },
}

/// A parsed `.npy` file.
#[derive(Debug)]
pub(crate) struct Npy {
    shape: Vec<usize>,
    dtype: Dtype,
    fortran: bool,
    data: Vec<u8>,
}

fn bad(path: &Path, problem: impl std::fmt::Display) -> EvalError {
    EvalError::NotNpy {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

impl Npy {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Npy, EvalError> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Npy::parse(bytes, path)
    }

    fn parse(bytes: Vec<u8>, path: &Path) -> Result<Npy, EvalError> {
        if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
            return Err(bad(path, "it does not start with the NumPy magic"));
        }
        let (header_len, header_start) = match bytes[6] {
            1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(bad(path, format!("format version {v} is unknown"))),
        };
        if header_len > MAX_HEADER {
            return Err(bad(path, format!("its header claims {header_len} bytes")));
        }
        let data_start = header_start + header_len;
        let header = bytes
            .get(header_start..data_start)
            .ok_or_else(|| bad(path, "the file ends inside its header"))?;
        let header = String::from_utf8_lossy(header);
        let descr = dict_value(&header, "descr").ok_or_else(|| bad(path, "no 'descr'"))?;
        let dtype = parse_descr(descr.trim_matches(|c| c == '\'' || c == '"'))
            .ok_or_else(|| bad(path, format!("element type {descr} is not read (use float32, float64 or little-endian integers)")))?;
        let fortran = dict_value(&header, "fortran_order")
            .ok_or_else(|| bad(path, "no 'fortran_order'"))?
            .starts_with("True");
        let shape = parse_shape(&header).ok_or_else(|| bad(path, "no readable 'shape'"))?;
        let item = match dtype {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::Int { bytes, .. } => bytes,
        };
        let expected = shape
            .iter()
            .try_fold(item, |acc: usize, &d| acc.checked_mul(d));
        let actual = bytes.len() - data_start;
        if expected != Some(actual) {
            return Err(bad(
                path,
                format!(
                    "its header promises shape {shape:?} of {item}-byte values, but {actual} data \
                     bytes follow"
                ),
            ));
        }
        let mut data = bytes;
        data.drain(..data_start);
        Ok(Npy {
            shape,
            dtype,
            fortran,
            data,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values as `f32` in C (row-major) order.
    pub fn to_f32(&self, path: &Path) -> Result<Vec<f32>, EvalError> {
        let values: Vec<f32> = match self.dtype {
            Dtype::F32 => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
            Dtype::F64 => self
                .data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            Dtype::Int { .. } => {
                return Err(bad(path, "embeddings must be float32 or float64"));
            }
        };
        Ok(self.c_order(values))
    }

    /// The values as `i64` in C order.
    pub fn to_i64(&self, path: &Path) -> Result<Vec<i64>, EvalError> {
        let Dtype::Int { bytes, signed } = self.dtype else {
            return Err(bad(path, "labels must be integers"));
        };
        let values = self
            .data
            .chunks_exact(bytes)
            .map(|c| {
                let mut raw = [0u8; 8];
                raw[..bytes].copy_from_slice(c);
                if signed && c[bytes - 1] & 0x80 != 0 {
                    raw[bytes..].fill(0xff);
                }
                let value = i64::from_le_bytes(raw);
                if !signed && bytes == 8 && value < 0 {
                    Err(bad(path, "a label does not fit in 64 bits"))
                } else {
                    Ok(value)
                }
            })
            .collect::<Result<Vec<i64>, EvalError>>()?;
        Ok(self.c_order(values))
    }

    /// Reorders Fortran-order 2-D data to row-major.
    fn c_order<T: Copy>(&self, values: Vec<T>) -> Vec<T> {
        match (self.fortran, self.shape.as_slice()) {
            (true, &[rows, cols]) => {
                let mut out = Vec::with_capacity(values.len());
                for r in 0..rows {
                    out.extend((0..cols).map(|c| values[c * rows + r]));
                }
                out
            }
            _ => values,
        }
    }
}

/// The text after `'key':` in a header dict, up to the next top-level comma or brace.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' if depth > 0 => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

fn parse_descr(descr: &str) -> Option<Dtype> {
    let (order, kind) = descr.split_at(1);
    if !matches!(order, "<" | "|" | "=") {
        return None;
    }
    match kind {
        "f4" => Some(Dtype::F32),
        "f8" => Some(Dtype::F64),
        _ => {
            let signed = kind.starts_with('i');
            let unsigned = kind.starts_with('u') || kind == "b1";
            let bytes: usize = kind[1..].parse().ok()?;
            ((signed || unsigned) && matches!(bytes, 1 | 2 | 4 | 8))
                .then_some(Dtype::Int { bytes, signed })
        }
    }
}

fn parse_shape(header: &str) -> Option<Vec<usize>> {
    let value = dict_value(header, "shape")?;
    let inner = value.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn a_header_that_claims_more_than_the_file_holds_is_refused() {
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 128), }\n",
            &[0; 16],
        );
        let err = Npy::parse(bytes, Path::new("x.npy"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("promises shape"), "{err}");
    }

    #[test]
    fn fortran_order_is_read_row_major() {
        let data: Vec<u8> = [1f32, 3.0, 2.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n",
            &data,
        );
        let parsed = Npy::parse(bytes, Path::new("x.npy")).unwrap();
        assert_eq!(
            parsed.to_f32(Path::new("x")).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
    }

    #[test]
    fn signed_labels_extend_their_sign() {
        let bytes = npy(
            "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }\n",
            &[0xff, 7],
        );
        let parsed = Npy::parse(bytes, Path::new("x.npy")).unwrap();
        assert_eq!(parsed.to_i64(Path::new("x")).unwrap(), vec![-1, 7]);
    }
}
