//! Tests of the MAT-5 reader against files written by a real MATLAB-compatible writer
//! (`scipy.io.savemat`) and in MATLAB's own style (doubles stored as miUINT8/miUINT16,
//! UTF-16 names), both made by `tools/fixtures/make_cars_mat.py` and checked there with
//! `scipy.io.loadmat`; the expected values are that script's `expected.json`.

use std::path::PathBuf;

use super::{MatError, MatValue};
use crate::catalog::mat5;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected() -> serde_json::Value {
    let bytes = std::fs::read(fixtures().join("cars196/expected.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn check_file(name: &str) {
    let bytes = std::fs::read(fixtures().join("cars196").join(name)).unwrap();
    let mat = mat5::parse(&bytes).unwrap();
    let expected = expected();

    let Some(MatValue::Cell { dims, items }) = mat.get("class_names") else {
        panic!("{name}: class_names is not a cell");
    };
    assert_eq!(dims, &[1, 196]);
    let names: Vec<&str> = items.iter().map(|v| v.as_text().unwrap()).collect();
    let wanted: Vec<&str> = expected["class_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, wanted, "{name}");

    let Some(MatValue::Struct {
        dims,
        fields,
        elements,
    }) = mat.get("annotations")
    else {
        panic!("{name}: annotations is not a struct");
    };
    assert_eq!(dims, &[1, 16]);
    assert_eq!(
        fields,
        &[
            "relative_im_path",
            "bbox_x1",
            "bbox_y1",
            "bbox_x2",
            "bbox_y2",
            "class",
            "test"
        ]
    );
    for (element, row) in elements
        .iter()
        .zip(expected["annotations"].as_array().unwrap())
    {
        assert_eq!(
            element[0].as_text(),
            row["relative_im_path"].as_str(),
            "{name}"
        );
        for (i, field) in fields.iter().enumerate().skip(1) {
            assert_eq!(
                element[i].as_scalar(),
                row[field.as_str()].as_f64(),
                "{name}: {field}"
            );
        }
    }
}

#[test]
fn reads_a_file_written_by_scipy() {
    check_file("cars_annos_scipy.mat");
}

#[test]
fn reads_a_file_in_matlabs_own_narrow_storage() {
    check_file("cars_annos_matlab_style.mat");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = std::fs::read(fixtures().join("cars196/cars_annos_matlab_style.mat")).unwrap();
    for cut in 0..bytes.len() {
        let result = mat5::parse(&bytes[..cut]);
        // A cut exactly between two variables leaves a valid file with fewer variables.
        if let Ok(mat) = &result {
            assert!(mat.variables.len() < 2, "cut at {cut} kept every variable");
        }
    }
}

#[test]
fn corrupted_compressed_data_is_an_error() {
    let mut bytes = std::fs::read(fixtures().join("cars196/cars_annos_matlab_style.mat")).unwrap();
    for b in &mut bytes[140..180] {
        *b ^= 0xa5;
    }
    let err = mat5::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            MatError::Decompress(_) | MatError::Malformed { .. } | MatError::Truncated { .. }
        ),
        "{err:?}"
    );
}

/// The MATLAB-style fixture with every variable stored uncompressed, so that damage reaches
/// the matrix parser instead of stopping at zlib.
fn uncompressed_fixture() -> Vec<u8> {
    let bytes = std::fs::read(fixtures().join("cars196/cars_annos_matlab_style.mat")).unwrap();
    let mut out = bytes[..128].to_vec();
    let mut at = 128;
    while at < bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        assert_eq!(kind, 15, "every variable of the fixture is compressed");
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&bytes[at + 8..at + 8 + len]),
            &mut inflated,
        )
        .unwrap();
        out.extend_from_slice(&inflated);
        at += 8 + len;
    }
    out
}

#[test]
fn uncompressed_variables_read_the_same() {
    let compressed = std::fs::read(fixtures().join("cars196/cars_annos_matlab_style.mat")).unwrap();
    assert_eq!(
        mat5::parse(&uncompressed_fixture()).unwrap(),
        mat5::parse(&compressed).unwrap()
    );
}

#[test]
fn damaged_matrices_are_errors_not_panics() {
    let bytes = uncompressed_fixture();
    // Every truncation.
    for cut in 128..bytes.len() {
        if let Ok(mat) = mat5::parse(&bytes[..cut]) {
            assert!(mat.variables.len() < 2, "cut at {cut} kept every variable");
        }
    }
    // Every byte of the first 600 after the header set to 0xff, then to 0x7f: tags, sizes,
    // dimensions and counts all become hostile somewhere in this range.
    for at in 128..(128 + 600).min(bytes.len()) {
        for value in [0xff, 0x7f] {
            let mut damaged = bytes.clone();
            damaged[at] = value;
            let _ = mat5::parse(&damaged);
        }
    }
}

#[test]
fn a_fieldless_struct_with_huge_dimensions_is_refused() {
    // miMATRIX: flags (mxSTRUCT), dims 2^31-1 x 2^31-1, empty name, field-name length 32, no
    // field names: the element count is bounded by nothing but the dimensions.
    let mut body = Vec::new();
    let mut push = |words: &[u32]| body.extend(words.iter().flat_map(|w| w.to_le_bytes()));
    push(&[6, 8, 2, 0]);
    push(&[5, 8, 0x7fff_ffff, 0x7fff_ffff]);
    push(&[1, 0]);
    push(&[(4 << 16) | 5, 32]);
    push(&[1, 0]);
    let mut bytes = std::fs::read(fixtures().join("cars196/cars_annos_matlab_style.mat")).unwrap()
        [..128]
        .to_vec();
    bytes.extend(14u32.to_le_bytes());
    bytes.extend((body.len() as u32).to_le_bytes());
    bytes.extend(body);
    let err = mat5::parse(&bytes).unwrap_err();
    assert!(
        matches!(&err, MatError::Malformed { what, .. } if what.contains("without fields")),
        "{err:?}"
    );
}
