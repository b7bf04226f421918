//! Choosing what to pack: one part of a split, read from its `split.csv`, joined with the
//! catalogue (for bounding boxes) and ordered by class, then by row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::preprocess::CropMode;
use crate::catalog::{BBox, Catalog};
use crate::shard::SplitRef;

/// Which images of a split to pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Training classes.
    Train,
    /// Validation classes.
    Val,
    /// Test classes.
    Test,
    /// Every image.
    All,
}

impl Part {
    /// The name used in `split.csv` and folder names.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
            Part::All => "all",
        }
    }
}

/// Errors from reading and selecting a split.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// The split folder has no `split.csv`.
    #[error("no split.csv in {0}; write one with `lifted split` or pass --split-dir")]
    MissingSplit(PathBuf),
    /// `split.csv` could not be parsed.
    #[error("cannot read {path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// A row names an image the catalogue does not have.
    #[error(
        "{split_csv} lists {path} (class {class_id}), which is not in the dataset's catalogue; the split belongs to another dataset or an older preparation"
    )]
    Unknown {
        /// The split file.
        split_csv: PathBuf,
        /// The row's path.
        path: String,
        /// The row's class.
        class_id: u32,
    },
    /// The chosen part has no images.
    #[error("the split in {dir} has no `{part}` images (it has: {present})")]
    EmptyPart {
        /// The split folder.
        dir: PathBuf,
        /// The part asked for.
        part: &'static str,
        /// The parts it has.
        present: String,
    },
    /// `--crop bbox` on a dataset without boxes.
    #[error(
        "--crop bbox needs bounding boxes, and {0} has none for some images (CUB-200 and CARS-196 have them)"
    )]
    NoBoxes(String),
}

/// An image to pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// Path relative to the dataset root.
    pub path: String,
    /// Class id.
    pub class_id: u32,
    /// Bounding box, if the dataset has one.
    pub bbox: Option<BBox>,
}

/// The images to pack, in packing order, and the split they come from.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The split and part.
    pub split: SplitRef,
    /// The images.
    pub images: Vec<Selected>,
}

#[derive(Deserialize)]
struct Row {
    path: String,
    class_id: u32,
    split: String,
}

#[derive(Deserialize)]
struct SplitJson {
    name: String,
}

/// Reads `split_dir/split.csv` and selects `part`.
pub fn select(
    catalog: &Catalog,
    split_dir: &Path,
    part: Part,
    crop: CropMode,
) -> Result<Selection, SelectError> {
    let csv_path = split_dir.join("split.csv");
    let bytes = match std::fs::read(&csv_path) {
        Ok(bytes) => bytes,
        Err(_) => return Err(SelectError::MissingSplit(split_dir.to_path_buf())),
    };
    let hash = hex::encode(Sha256::digest(&bytes));
    let name = std::fs::read(split_dir.join("split.json"))
        .ok()
        .and_then(|json| serde_json::from_slice::<SplitJson>(&json).ok())
        .map(|s| s.name)
        .unwrap_or_else(|| {
            split_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    let boxes: HashMap<&str, (u32, Option<BBox>)> = catalog
        .images
        .iter()
        .map(|i| (i.path.as_str(), (i.class_id, i.bbox)))
        .collect();
    let mut present = std::collections::BTreeSet::new();
    let mut images = Vec::new();
    for row in csv::Reader::from_reader(&bytes[..]).deserialize::<Row>() {
        let row = row.map_err(|source| SelectError::Csv {
            path: csv_path.clone(),
            source,
        })?;
        present.insert(row.split.clone());
        if part != Part::All && row.split != part.as_str() {
            continue;
        }
        let Some(&(class_id, bbox)) = boxes
            .get(row.path.as_str())
            .filter(|(c, _)| *c == row.class_id)
        else {
            return Err(SelectError::Unknown {
                split_csv: csv_path,
                path: row.path,
                class_id: row.class_id,
            });
        };
        if crop == CropMode::BBox && bbox.is_none() {
            return Err(SelectError::NoBoxes(catalog.dataset.clone()));
        }
        images.push(Selected {
            path: row.path,
            class_id,
            bbox,
        });
    }
    if images.is_empty() {
        return Err(SelectError::EmptyPart {
            dir: split_dir.to_path_buf(),
            part: part.as_str(),
            present: present.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    // Stable: within a class, split.csv order.
    images.sort_by_key(|i| i.class_id);
    Ok(Selection {
        split: SplitRef {
            name,
            hash,
            part: part.as_str().to_string(),
        },
        images,
    })
}
