//! The catalogue as `catalog.csv` in a prepared dataset's folder, so that later stages
//! (`lifted split`, `lifted pack`) need not parse the annotations again.
//!
//! Columns: `path,class_id,class_name,bbox_x,bbox_y,bbox_w,bbox_h,official` (box and official
//! split empty where the dataset has none). Classes without images are not stored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BBox, Catalog, CatalogError, ClassInfo, ImageRecord, OfficialPart};
use crate::fsutil;

#[derive(Serialize, Deserialize)]
struct Row {
    path: String,
    class_id: u32,
    class_name: String,
    bbox_x: Option<f32>,
    bbox_y: Option<f32>,
    bbox_w: Option<f32>,
    bbox_h: Option<f32>,
    official: Option<OfficialPart>,
}

/// Writes `catalog.csv` atomically.
///
/// # Errors
/// Whatever [`render_catalog_csv`] returns, and [`CatalogError::Write`] when the file cannot be
/// written.
pub fn write_catalog_csv(catalog: &Catalog, path: &Path) -> Result<(), CatalogError> {
    let bytes = render_catalog_csv(catalog)?;
    fsutil::write_atomic(path, &bytes).map_err(|source| CatalogError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The bytes of `catalog.csv`.
///
/// # Errors
/// [`CatalogError::Csv`] or [`CatalogError::Write`] when the CSV writer fails (in practice it does
/// not, as it writes to memory).
pub fn render_catalog_csv(catalog: &Catalog) -> Result<Vec<u8>, CatalogError> {
    let path = Path::new("catalog.csv");
    let names = catalog.class_names();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_err = |source| CatalogError::Csv {
        path: path.to_path_buf(),
        source,
    };
    for image in &catalog.images {
        let bbox = image.bbox;
        writer
            .serialize(Row {
                path: image.path.clone(),
                class_id: image.class_id,
                class_name: names
                    .get(&image.class_id)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                bbox_x: bbox.map(|b| b.x),
                bbox_y: bbox.map(|b| b.y),
                bbox_w: bbox.map(|b| b.width),
                bbox_h: bbox.map(|b| b.height),
                official: image.official,
            })
            .map_err(csv_err)?;
    }
    writer.into_inner().map_err(|e| CatalogError::Write {
        path: path.to_path_buf(),
        source: e.into_error(),
    })
}

/// Reads a `catalog.csv` written by [`write_catalog_csv`].
///
/// # Errors
/// [`CatalogError::Read`] when `path` cannot be read, and whatever [`parse_catalog_csv`] returns.
pub fn read_catalog_csv(path: &Path, dataset: &str, root: &Path) -> Result<Catalog, CatalogError> {
    let bytes = std::fs::read(path).map_err(|source| CatalogError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_catalog_csv(&bytes, path, dataset, root)
}

/// Parses the bytes of a `catalog.csv` (read from `path`, named in errors).
///
/// # Errors
/// [`CatalogError::Csv`] when a row is not valid CSV or does not have the columns and value types
/// of `catalog.csv`.
pub fn parse_catalog_csv(
    bytes: &[u8],
    path: &Path,
    dataset: &str,
    root: &Path,
) -> Result<Catalog, CatalogError> {
    let csv_err = |source| CatalogError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_reader(crate::fsutil::strip_bom_bytes(bytes));
    let mut classes = BTreeMap::new();
    let mut images = Vec::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(csv_err)?;
        classes.entry(row.class_id).or_insert(row.class_name);
        let bbox = match (row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h) {
            (Some(x), Some(y), Some(width), Some(height)) => Some(BBox {
                x,
                y,
                width,
                height,
            }),
            _ => None,
        };
        images.push(ImageRecord {
            path: row.path,
            class_id: row.class_id,
            bbox,
            official: row.official,
        });
    }
    Ok(Catalog {
        dataset: dataset.to_string(),
        root: root.to_path_buf(),
        classes: classes
            .into_iter()
            .map(|(id, name)| ClassInfo { id, name })
            .collect(),
        images,
        notes: Vec::new(),
    })
}
