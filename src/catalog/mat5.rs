//! A small reader for MATLAB MAT-5 (v5/v6/v7, not v7.3) files: enough for `cars_annos.mat`.
//!
//! Reads numeric arrays of any storage type, char arrays (UTF-8, UTF-16 and UINT16 data),
//! cell arrays and struct arrays, compressed (`miCOMPRESSED`, zlib) or not, little-endian
//! only. MATLAB stores a double array whose values fit a narrower type with that type's data
//! element (an `mxDOUBLE_CLASS` array with `miUINT8` data, say); every numeric value is
//! therefore read as `f64` whatever its storage. Sparse arrays and objects are returned as
//! [`MatValue::Unsupported`].
//!
//! Every tag, length and count is checked against the bytes that remain before use, and
//! decompression and nesting are capped, so a hostile file gives an error, never a panic or an
//! unbounded allocation. Layout reference: MathWorks, "MAT-File Format", R2013 and later.

use std::io::Read;

/// Longest decompressed variable accepted (the real `cars_annos.mat` holds about 3 MB).
const MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;
/// Deepest nesting of cells and structs accepted (`cars_annos.mat` needs 2).
const MAX_DEPTH: usize = 16;
/// Size of the text header plus subsystem offset, version and endian indicator.
const HEADER_LEN: usize = 128;

// Data element types (MAT-File Format, table 1-1).
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;
const MI_UTF32: u32 = 18;

// Array classes (MAT-File Format, table 1-3).
const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;
const MX_DOUBLE: u8 = 6;
const MX_UINT64: u8 = 15;

/// Errors from reading a MAT-file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatError {
    /// The header is not a MAT-5 header.
    #[error("not a MAT-5 file (the header does not start with `MATLAB 5.0 MAT-file`)")]
    NotMat5,
    /// The file was saved with `-v7.3` (HDF5).
    #[error("saved in MATLAB's v7.3 (HDF5) format; re-save it with `save(..., '-v7')`")]
    V73,
    /// The file is big-endian.
    #[error("big-endian MAT-files are not supported")]
    BigEndian,
    /// A structure runs past the end of the bytes that hold it.
    #[error("truncated at byte {offset}: {what}")]
    Truncated {
        /// Offset in the (decompressed) buffer.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A value breaks the format's rules.
    #[error("malformed at byte {offset}: {what}")]
    Malformed {
        /// Offset in the (decompressed) buffer.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// A compressed variable does not inflate.
    #[error("a compressed variable does not decompress")]
    Decompress(#[source] std::io::Error),
    /// A compressed variable inflates beyond [`MAX_DECOMPRESSED_BYTES`].
    #[error("a compressed variable decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")]
    TooLarge,
}

/// A MATLAB value.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A numeric or logical array; values in column-major order, real part only.
    Numeric {
        /// Dimensions.
        dims: Vec<usize>,
        /// Values.
        data: Vec<f64>,
    },
    /// A char array, as text (column-major for multi-row arrays).
    Char {
        /// Dimensions.
        dims: Vec<usize>,
        /// The characters.
        text: String,
    },
    /// A cell array, elements in column-major order.
    Cell {
        /// Dimensions.
        dims: Vec<usize>,
        /// The elements.
        items: Vec<MatValue>,
    },
    /// A struct array: `elements[i][f]` is field `fields[f]` of element `i` (column-major).
    Struct {
        /// Dimensions.
        dims: Vec<usize>,
        /// Field names, in file order.
        fields: Vec<String>,
        /// Field values per element.
        elements: Vec<Vec<MatValue>>,
    },
    /// An array of a class this reader does not decode (sparse, object, function handle).
    Unsupported {
        /// The MATLAB array class number.
        class: u8,
    },
}

impl MatValue {
    /// The single number this value holds, if it is a 1-element numeric array.
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            MatValue::Numeric { data, .. } if data.len() == 1 => Some(data[0]),
            _ => None,
        }
    }

    /// The text of a char array.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            MatValue::Char { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            MatValue::Numeric { .. } => "numeric array",
            MatValue::Char { .. } => "char array",
            MatValue::Cell { .. } => "cell array",
            MatValue::Struct { .. } => "struct array",
            MatValue::Unsupported { .. } => "unsupported array",
        }
    }
}

/// The variables of a MAT-file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatFile {
    /// Name and value of each variable.
    pub variables: Vec<(String, MatValue)>,
}

impl MatFile {
    /// A variable by name.
    pub fn get(&self, name: &str) -> Option<&MatValue> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// Parses a whole MAT-file.
pub fn parse(bytes: &[u8]) -> Result<MatFile, MatError> {
    if bytes.starts_with(b"MATLAB 7.3 MAT-file") {
        return Err(MatError::V73);
    }
    if !bytes.starts_with(b"MATLAB 5.0 MAT-file") {
        return Err(MatError::NotMat5);
    }
    let header = bytes.get(..HEADER_LEN).ok_or(MatError::Truncated {
        offset: bytes.len(),
        what: "the 128-byte header",
    })?;
    match &header[126..128] {
        b"IM" => {}
        b"MI" => return Err(MatError::BigEndian),
        _ => {
            return Err(MatError::Malformed {
                offset: 126,
                what: "unknown endian indicator".to_string(),
            });
        }
    }
    let mut variables = Vec::new();
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let element = read_tag(bytes, offset)?;
        match element.kind {
            MI_COMPRESSED => {
                let inflated = inflate(element.data(bytes))?;
                let inner = read_tag(&inflated, 0)?;
                if inner.kind != MI_MATRIX {
                    return Err(MatError::Malformed {
                        offset: 0,
                        what: format!(
                            "a compressed element holds type {} instead of a matrix",
                            inner.kind
                        ),
                    });
                }
                variables.push(read_matrix(&inflated, &inner, 0)?);
                // Compressed elements are not padded (neither MATLAB nor scipy pad them).
                offset = element.data_end;
            }
            MI_MATRIX => {
                variables.push(read_matrix(bytes, &element, 0)?);
                offset = element.next;
            }
            _ => offset = element.next,
        }
    }
    Ok(MatFile { variables })
}

/// A data element's type and where its data lies.
#[derive(Debug, Clone, Copy)]
struct Element {
    kind: u32,
    data_start: usize,
    data_end: usize,
    /// Where the next element starts (data padded to 8 bytes).
    next: usize,
}

impl Element {
    fn data<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.data_start..self.data_end]
    }
}

fn u32_at(buf: &[u8], offset: usize, what: &'static str) -> Result<u32, MatError> {
    let end = offset
        .checked_add(4)
        .ok_or(MatError::Truncated { offset, what })?;
    let bytes = buf
        .get(offset..end)
        .ok_or(MatError::Truncated { offset, what })?;
    Ok(u32::from_le_bytes(
        bytes.try_into().expect("slice of 4 bytes"),
    ))
}

/// Reads the tag at `offset` (normal or small format) and bounds-checks its data.
fn read_tag(buf: &[u8], offset: usize) -> Result<Element, MatError> {
    let first = u32_at(buf, offset, "an element tag")?;
    let (kind, len, data_start, padded_len) = if first >> 16 != 0 {
        // Small data element: type in the low half, byte count in the high half, data in the
        // next 4 bytes.
        let len = (first >> 16) as usize;
        if len > 4 {
            return Err(MatError::Malformed {
                offset,
                what: format!("a small element claims {len} bytes"),
            });
        }
        (first & 0xffff, len, offset + 4, 4)
    } else {
        let len = u32_at(buf, offset + 4, "an element size")? as usize;
        (first, len, offset + 8, len.div_ceil(8) * 8)
    };
    let data_end = data_start
        .checked_add(len)
        .filter(|&end| end <= buf.len())
        .ok_or(MatError::Truncated {
            offset,
            what: "element data",
        })?;
    let next = data_start
        .saturating_add(padded_len)
        .min(buf.len().max(data_end));
    Ok(Element {
        kind,
        data_start,
        data_end,
        next,
    })
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, MatError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(MatError::Decompress)?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(MatError::TooLarge);
    }
    Ok(out)
}

/// Reads a miMATRIX element: returns its name and value.
fn read_matrix(
    buf: &[u8],
    element: &Element,
    depth: usize,
) -> Result<(String, MatValue), MatError> {
    if depth > MAX_DEPTH {
        return Err(MatError::Malformed {
            offset: element.data_start,
            what: format!("cells or structs nested deeper than {MAX_DEPTH}"),
        });
    }
    let data = element.data(buf);
    let base = element.data_start;
    if data.is_empty() {
        // MATLAB writes an empty array inside a cell or struct as a matrix of zero bytes.
        let empty = MatValue::Numeric {
            dims: vec![0, 0],
            data: Vec::new(),
        };
        return Ok((String::new(), empty));
    }
    let flags = read_tag(data, 0).map_err(|e| shift(e, base))?;
    let flag_bytes = flags.data(data);
    if flags.kind != MI_UINT32 || flag_bytes.len() != 8 {
        return Err(MatError::Malformed {
            offset: base,
            what: "array flags are not 8 bytes of miUINT32".to_string(),
        });
    }
    let class = flag_bytes[0];
    let dims_el = read_tag(data, flags.next).map_err(|e| shift(e, base))?;
    let dims = read_dims(dims_el.data(data), base + dims_el.data_start)?;
    let name_el = read_tag(data, dims_el.next).map_err(|e| shift(e, base))?;
    let name = String::from_utf8_lossy(name_el.data(data)).into_owned();
    let rest = name_el.next;
    let count = element_count(&dims, base)?;
    let value = match class {
        MX_CELL => {
            let items = read_matrices(data, rest, count, base, depth)?;
            MatValue::Cell { dims, items }
        }
        MX_STRUCT => read_struct(data, rest, dims, count, base, depth)?,
        MX_CHAR => {
            let el = read_tag(data, rest).map_err(|e| shift(e, base))?;
            let text = decode_chars(el.kind, el.data(data), base + el.data_start)?;
            MatValue::Char { dims, text }
        }
        MX_DOUBLE..=MX_UINT64 => {
            let el = read_tag(data, rest).map_err(|e| shift(e, base))?;
            let values = decode_numbers(el.kind, el.data(data), base + el.data_start)?;
            if values.len() != count {
                return Err(MatError::Malformed {
                    offset: base + el.data_start,
                    what: format!("{} values for an array of {count}", values.len()),
                });
            }
            MatValue::Numeric { dims, data: values }
        }
        other => MatValue::Unsupported { class: other },
    };
    Ok((name, value))
}

fn read_struct(
    data: &[u8],
    start: usize,
    dims: Vec<usize>,
    count: usize,
    base: usize,
    depth: usize,
) -> Result<MatValue, MatError> {
    let len_el = read_tag(data, start).map_err(|e| shift(e, base))?;
    let name_len = match decode_numbers(len_el.kind, len_el.data(data), base + len_el.data_start)?
        .as_slice()
    {
        [n] if *n >= 1.0 && *n <= 4096.0 => *n as usize,
        _ => {
            return Err(MatError::Malformed {
                offset: base + start,
                what: "struct field-name length is not one positive number".to_string(),
            });
        }
    };
    let names_el = read_tag(data, len_el.next).map_err(|e| shift(e, base))?;
    let fields: Vec<String> = names_el
        .data(data)
        .chunks(name_len)
        .filter(|chunk| chunk.len() == name_len)
        .map(|chunk| {
            let end = chunk.iter().position(|&b| b == 0).unwrap_or(chunk.len());
            String::from_utf8_lossy(&chunk[..end]).into_owned()
        })
        .collect();
    let total = count.checked_mul(fields.len()).ok_or(MatError::Malformed {
        offset: base + start,
        what: "struct size overflows".to_string(),
    })?;
    let values = read_matrices(data, names_el.next, total, base, depth)?;
    let elements = if fields.is_empty() {
        // Nothing bounds `count` here but the dimensions: cap it by the bytes that hold it.
        if count > data.len() {
            return Err(MatError::Malformed {
                offset: base + start,
                what: format!("a struct without fields claims {count} elements"),
            });
        }
        vec![Vec::new(); count]
    } else {
        values
            .chunks(fields.len())
            .map(<[MatValue]>::to_vec)
            .collect()
    };
    Ok(MatValue::Struct {
        dims,
        fields,
        elements,
    })
}

/// Reads `count` consecutive miMATRIX elements starting at `start`.
fn read_matrices(
    data: &[u8],
    start: usize,
    count: usize,
    base: usize,
    depth: usize,
) -> Result<Vec<MatValue>, MatError> {
    // Every element takes at least an 8-byte tag: reject counts the bytes cannot hold
    // before allocating for them.
    if count > data.len().saturating_sub(start) / 8 {
        return Err(MatError::Truncated {
            offset: base + start,
            what: "the elements of a cell or struct",
        });
    }
    let mut values = Vec::with_capacity(count);
    let mut offset = start;
    for _ in 0..count {
        let el = read_tag(data, offset).map_err(|e| shift(e, base))?;
        if el.kind != MI_MATRIX {
            return Err(MatError::Malformed {
                offset: base + offset,
                what: format!("expected a matrix element, found type {}", el.kind),
            });
        }
        let (_, value) = read_matrix_at(data, &el, base, depth + 1)?;
        values.push(value);
        offset = el.next;
    }
    Ok(values)
}

/// [`read_matrix`] on a sub-slice, with error offsets relative to the whole buffer.
fn read_matrix_at(
    data: &[u8],
    element: &Element,
    base: usize,
    depth: usize,
) -> Result<(String, MatValue), MatError> {
    read_matrix(data, element, depth).map_err(|e| shift(e, base))
}

fn read_dims(bytes: &[u8], offset: usize) -> Result<Vec<usize>, MatError> {
    if bytes.len() < 8 || !bytes.len().is_multiple_of(4) {
        return Err(MatError::Malformed {
            offset,
            what: "dimensions must be at least two int32 values".to_string(),
        });
    }
    bytes
        .chunks_exact(4)
        .map(|c| {
            let d = i32::from_le_bytes(c.try_into().expect("chunk of 4"));
            usize::try_from(d).map_err(|_| MatError::Malformed {
                offset,
                what: format!("negative dimension {d}"),
            })
        })
        .collect()
}

fn element_count(dims: &[usize], offset: usize) -> Result<usize, MatError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or(MatError::Malformed {
            offset,
            what: "dimensions overflow".to_string(),
        })
}

fn decode_numbers(kind: u32, bytes: &[u8], offset: usize) -> Result<Vec<f64>, MatError> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f64) -> Vec<f64> {
        bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N")))
            .collect()
    }
    let width = match kind {
        MI_INT8 | MI_UINT8 => 1,
        MI_INT16 | MI_UINT16 => 2,
        MI_INT32 | MI_UINT32 | MI_SINGLE => 4,
        MI_DOUBLE | MI_INT64 | MI_UINT64 => 8,
        other => {
            return Err(MatError::Malformed {
                offset,
                what: format!("data type {other} is not numeric"),
            });
        }
    };
    if !bytes.len().is_multiple_of(width) {
        return Err(MatError::Malformed {
            offset,
            what: format!("{} bytes of {width}-byte values", bytes.len()),
        });
    }
    Ok(match kind {
        MI_INT8 => each(bytes, |b: [u8; 1]| f64::from(i8::from_le_bytes(b))),
        MI_UINT8 => each(bytes, |b: [u8; 1]| f64::from(b[0])),
        MI_INT16 => each(bytes, |b| f64::from(i16::from_le_bytes(b))),
        MI_UINT16 => each(bytes, |b| f64::from(u16::from_le_bytes(b))),
        MI_INT32 => each(bytes, |b| f64::from(i32::from_le_bytes(b))),
        MI_UINT32 => each(bytes, |b| f64::from(u32::from_le_bytes(b))),
        MI_SINGLE => each(bytes, |b| f64::from(f32::from_le_bytes(b))),
        MI_DOUBLE => each(bytes, f64::from_le_bytes),
        MI_INT64 => each(bytes, |b| i64::from_le_bytes(b) as f64),
        _ => each(bytes, |b| u64::from_le_bytes(b) as f64),
    })
}

fn decode_chars(kind: u32, bytes: &[u8], offset: usize) -> Result<String, MatError> {
    let bad = |what: &str| MatError::Malformed {
        offset,
        what: what.to_string(),
    };
    match kind {
        MI_UTF8 | MI_UINT8 | MI_INT8 => {
            String::from_utf8(bytes.to_vec()).map_err(|_| bad("char data is not valid UTF-8"))
        }
        MI_UINT16 | MI_UTF16 => {
            if !bytes.len().is_multiple_of(2) {
                return Err(bad("UTF-16 char data has an odd length"));
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| bad("char data is not valid UTF-16"))
        }
        MI_UTF32 => bytes
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes(c.try_into().expect("chunk of 4"))))
            .collect::<Option<String>>()
            .ok_or_else(|| bad("char data is not valid UTF-32")),
        other => Err(bad(&format!("char data of type {other}"))),
    }
}

/// Moves an error's offset from a sub-slice to the enclosing buffer.
fn shift(error: MatError, base: usize) -> MatError {
    match error {
        MatError::Truncated { offset, what } => MatError::Truncated {
            offset: offset + base,
            what,
        },
        MatError::Malformed { offset, what } => MatError::Malformed {
            offset: offset + base,
            what,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_foreign_inputs_are_errors() {
        assert!(matches!(parse(b"hello"), Err(MatError::NotMat5)));
        assert!(matches!(
            parse(b"MATLAB 7.3 MAT-file, HDF5"),
            Err(MatError::V73)
        ));
        assert!(matches!(
            parse(b"MATLAB 5.0 MAT-file, cut"),
            Err(MatError::Truncated { .. })
        ));
    }
}

#[cfg(test)]
#[path = "mat5_tests.rs"]
mod fixture_tests;
