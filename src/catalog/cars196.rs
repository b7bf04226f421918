//! CARS-196 in its metric-learning form: `cars_annos.mat` next to `car_ims/`.
//!
//! The MAT-file holds `annotations`, a struct array with fields `relative_im_path`,
//! `bbox_x1`, `bbox_y1`, `bbox_x2`, `bbox_y2`, `class` (1-based) and `test` (Krause's
//! classification split, kept out of the metric-learning split), and `class_names`, a cell
//! array of the 196 names. Boxes are MATLAB's 1-based inclusive corners; they become
//! 0-based left/top plus width/height.
//!
//! The devkit's MAT-files (`devkit/cars_train_annos.mat`, `cars_test_annos_withlabels.mat`) hold
//! the same kind of struct array with `fname` in place of `relative_im_path` and no `test`;
//! [`read_rows`] reads either (the devkit layout is converted to this one when it is
//! extracted, see `prepare-data`).

use std::path::Path;

use super::mat5::{self, MatFile, MatValue};
use super::{BBox, Catalog, CatalogError, ClassInfo, ImageRecord};

/// One annotation row of a CARS MAT-file.
#[derive(Debug, Clone, PartialEq)]
pub struct CarsRow {
    /// The image's name field (`relative_im_path` or `fname`), as stored.
    pub name: String,
    /// Class, 1-based.
    pub class: u32,
    /// `bbox_x1`, `bbox_y1`, `bbox_x2`, `bbox_y2`: 1-based inclusive corners, finite.
    pub corners: [f64; 4],
    /// The `test` field, when the file has one.
    pub test: Option<bool>,
}

/// The annotation rows and class names of a CARS MAT-file.
#[derive(Debug, Clone, PartialEq)]
pub struct CarsAnnotations {
    /// Every row of `annotations`, in order.
    pub rows: Vec<CarsRow>,
    /// `class_names`, if the file has it.
    pub class_names: Option<Vec<String>>,
    /// The names of every variable in the file.
    pub variables: Vec<String>,
}

/// Reads CARS-196's annotations from the folder that holds `cars_annos.mat` and `car_ims/`.
///
/// # Errors
/// Whatever [`read_mat`] returns for `cars_annos.mat`.
pub fn read(root: &Path) -> Result<Catalog, CatalogError> {
    read_mat(root, &root.join("cars_annos.mat"))
}

/// Reads a CARS-196 annotation MAT-file at `mat_path`; image paths are relative to `root`.
///
/// # Errors
/// Whatever [`read_rows`] returns, and [`CatalogError::Inconsistent`] when the file has no
/// `class_names`, or a row's path leaves `root` or its class has no name.
pub fn read_mat(root: &Path, mat_path: &Path) -> Result<Catalog, CatalogError> {
    let annotations = read_rows(mat_path, "relative_im_path", true)?;
    let bad = |reason: String| CatalogError::Inconsistent {
        path: mat_path.to_path_buf(),
        reason,
    };
    let names = annotations.class_names.ok_or_else(|| {
        bad(format!(
            "no variable `class_names` (found: {})",
            annotations.variables.join(", ")
        ))
    })?;
    let mut images = Vec::with_capacity(annotations.rows.len());
    for (row, entry) in annotations.rows.into_iter().enumerate() {
        let path = super::safe_relative(&entry.name).ok_or_else(|| {
            bad(format!(
                "annotations({}).relative_im_path `{}` must be a relative path inside the dataset",
                row + 1,
                entry.name
            ))
        })?;
        if entry.class as usize > names.len() {
            return Err(bad(format!(
                "annotations({}).class is {}, not a class number 1-{}",
                row + 1,
                entry.class,
                names.len()
            )));
        }
        let [x1, y1, x2, y2] = entry.corners;
        images.push(ImageRecord {
            path,
            class_id: entry.class,
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

/// Reads the `annotations` struct array (and `class_names`, if present) of a CARS MAT-file;
/// `name_field` is `relative_im_path` or `fname`, and `with_test` asks for the `test` field.
/// Every number is checked: classes are whole and positive, box corners finite and ordered.
///
/// # Errors
/// [`CatalogError::MissingFile`] when `mat_path` does not exist, [`CatalogError::Read`] when it
/// cannot be read, and whatever [`parse_rows`] returns.
pub fn read_rows(
    mat_path: &Path,
    name_field: &str,
    with_test: bool,
) -> Result<CarsAnnotations, CatalogError> {
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
    parse_rows(&bytes, mat_path, name_field, with_test)
}

/// [`read_rows`] on a MAT-file's bytes; `mat_path` names it in errors.
///
/// # Errors
/// [`CatalogError::Mat`] when the bytes are not a MAT-file it can read, and
/// [`CatalogError::Inconsistent`] when `annotations` or a field it needs is missing or of the wrong
/// kind, or a row has a class that is not a positive whole number or a box corner that is not
/// finite or out of order.
pub fn parse_rows(
    bytes: &[u8],
    mat_path: &Path,
    name_field: &str,
    with_test: bool,
) -> Result<CarsAnnotations, CatalogError> {
    let mat = mat5::parse(bytes).map_err(|source| CatalogError::Mat {
        path: mat_path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| CatalogError::Inconsistent {
        path: mat_path.to_path_buf(),
        reason,
    };
    let class_names = match mat.get("class_names") {
        None => None,
        Some(MatValue::Cell { items, .. }) => Some(
            items
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
        ),
        Some(other) => {
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
    let name_at = column(name_field)?;
    let class_at = column("class")?;
    let corner_names = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"];
    let mut corner_at = [0usize; 4];
    for (slot, name) in corner_at.iter_mut().zip(corner_names) {
        *slot = column(name)?;
    }
    let test_at = if with_test {
        Some(column("test")?)
    } else {
        None
    };
    let mut rows = Vec::with_capacity(elements.len());
    for (row, element) in elements.iter().enumerate() {
        let which = |field: &str| format!("annotations({}).{field}", row + 1);
        let number = |at: usize, field: &str| {
            element[at]
                .as_scalar()
                .ok_or_else(|| bad(format!("{} is not a number", which(field))))
        };
        let name = element[name_at]
            .as_text()
            .ok_or_else(|| bad(format!("{} is not text", which(name_field))))?
            .to_string();
        let class = number(class_at, "class")?;
        if class.fract() != 0.0 || class < 1.0 || class > f64::from(u32::MAX) {
            return Err(bad(format!(
                "{} is {class}, not a class number",
                which("class")
            )));
        }
        let mut corners = [0f64; 4];
        for ((value, &at), field) in corners.iter_mut().zip(&corner_at).zip(corner_names) {
            *value = number(at, field)?;
            if !value.is_finite() {
                return Err(bad(format!(
                    "{} is {value}, not a finite pixel coordinate",
                    which(field)
                )));
            }
        }
        let [x1, y1, x2, y2] = corners;
        if x2 < x1 || y2 < y1 {
            return Err(bad(format!(
                "annotations({}) has an inverted box ({x1}, {y1})-({x2}, {y2})",
                row + 1
            )));
        }
        let test = match test_at {
            Some(at) => Some(number(at, "test")? != 0.0),
            None => None,
        };
        rows.push(CarsRow {
            name,
            class: class as u32,
            corners,
            test,
        });
    }
    let variables = mat.variables.iter().map(|(n, _)| n.clone()).collect();
    Ok(CarsAnnotations {
        rows,
        class_names,
        variables,
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
