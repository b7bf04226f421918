//! CARS-196 in its metric-learning form: `cars_annos.mat` next to `car_ims/`.
//!
//! The MAT-file holds `annotations`, a struct array with fields `relative_im_path`,
//! `bbox_x1`, `bbox_y1`, `bbox_x2`, `bbox_y2`, `class` (1-based) and `test` (Krause's
//! classification split, kept out of the metric-learning split), and `class_names`, a cell
//! array of the 196 names. Boxes are MATLAB's 1-based inclusive corners; they become
//! 0-based left/top plus width/height.

use std::path::Path;

use super::mat5::{self, MatFile, MatValue};
use super::{BBox, Catalog, CatalogError, ClassInfo, ImageRecord};

/// The fields each annotation must have.
const FIELDS: [&str; 7] = [
    "relative_im_path",
    "bbox_x1",
    "bbox_y1",
    "bbox_x2",
    "bbox_y2",
    "class",
    "test",
];

/// Reads CARS-196's annotations from the folder that holds `cars_annos.mat` and `car_ims/`.
pub fn read(root: &Path) -> Result<Catalog, CatalogError> {
    read_mat(root, &root.join("cars_annos.mat"))
}

/// Reads a CARS-196 annotation MAT-file at `mat_path`; image paths are relative to `root`.
pub fn read_mat(root: &Path, mat_path: &Path) -> Result<Catalog, CatalogError> {
    let bytes = match std::fs::read(mat_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CatalogError::MissingFile {
                path: mat_path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(CatalogError::Read {
                path: mat_path.to_path_buf(),
                source,
            });
        }
    };
    let mat = mat5::parse(&bytes).map_err(|source| CatalogError::Mat {
        path: mat_path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| CatalogError::Inconsistent {
        path: mat_path.to_path_buf(),
        reason,
    };

    let names = match variable(&mat, "class_names", &bad)? {
        MatValue::Cell { items, .. } => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_text().map(str::to_string).ok_or_else(|| {
                    bad(format!(
                        "class_names{{{}}} is a {}, not text",
                        i + 1,
                        item.kind()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        other => {
            return Err(bad(format!(
                "class_names is a {}, not a cell array",
                other.kind()
            )));
        }
    };

    let MatValue::Struct {
        fields, elements, ..
    } = variable(&mat, "annotations", &bad)?
    else {
        return Err(bad("annotations is not a struct array".to_string()));
    };
    let column = |name: &str| {
        fields.iter().position(|f| f == name).ok_or_else(|| {
            bad(format!(
                "annotations has no field `{name}` (fields: {})",
                fields.join(", ")
            ))
        })
    };
    let columns = FIELDS.map(column);
    let mut at = [0usize; 7];
    for (slot, found) in at.iter_mut().zip(columns) {
        *slot = found?;
    }

    let mut images = Vec::with_capacity(elements.len());
    for (row, element) in elements.iter().enumerate() {
        let which = |f: usize| format!("annotations({}).{}", row + 1, FIELDS[f]);
        let number = |f: usize| {
            element[at[f]]
                .as_scalar()
                .ok_or_else(|| bad(format!("{} is not a number", which(f))))
        };
        let raw_path = element[at[0]]
            .as_text()
            .ok_or_else(|| bad(format!("{} is not text", which(0))))?;
        let path = super::safe_relative(raw_path).ok_or_else(|| {
            bad(format!(
                "{} `{raw_path}` must be a relative path inside the dataset",
                which(0)
            ))
        })?;
        let class = number(5)?;
        if class.fract() != 0.0 || class < 1.0 || class > names.len() as f64 {
            return Err(bad(format!(
                "{} is {class}, not a class number 1-{}",
                which(5),
                names.len()
            )));
        }
        let (x1, y1, x2, y2) = (number(1)?, number(2)?, number(3)?, number(4)?);
        if let Some(f) = (1..=4).find(|&f| ![x1, y1, x2, y2][f - 1].is_finite()) {
            return Err(bad(format!(
                "{} is {}, not a finite pixel coordinate",
                which(f),
                [x1, y1, x2, y2][f - 1]
            )));
        }
        if x2 < x1 || y2 < y1 {
            return Err(bad(format!(
                "annotations({}) has an inverted box ({x1}, {y1})-({x2}, {y2})",
                row + 1
            )));
        }
        number(6)?;
        images.push(ImageRecord {
            path,
            class_id: class as u32,
            bbox: Some(BBox {
                x: (x1 - 1.0).max(0.0) as f32,
                y: (y1 - 1.0).max(0.0) as f32,
                width: (x2 - x1 + 1.0) as f32,
                height: (y2 - y1 + 1.0) as f32,
            }),
            official: None,
        });
    }
    let classes = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| ClassInfo {
            id: i as u32 + 1,
            name,
        })
        .collect();
    Ok(Catalog {
        dataset: "cars196".to_string(),
        root: root.to_path_buf(),
        classes,
        images,
        notes: Vec::new(),
    })
}

fn variable<'a>(
    mat: &'a MatFile,
    name: &str,
    bad: &dyn Fn(String) -> CatalogError,
) -> Result<&'a MatValue, CatalogError> {
    mat.get(name).ok_or_else(|| {
        let found: Vec<&str> = mat.variables.iter().map(|(n, _)| n.as_str()).collect();
        bad(format!(
            "no variable `{name}` (found: {})",
            found.join(", ")
        ))
    })
}
