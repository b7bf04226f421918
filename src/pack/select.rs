//! Choosing what to pack: one part of a split, read and checked from its folder
//! ([`crate::split::read_split`]), joined with the catalogue (for bounding boxes) and ordered
//! by class, then by row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalog::{BBox, Catalog};
use crate::shard::{CropMode, SplitRef};
use crate::split::{self, Selection, StoredSplitError};

/// Errors from reading and selecting a split.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// The split folder could not be read, or failed its checks.
    #[error(transparent)]
    Split(#[from] StoredSplitError),
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
    /// Cropping to boxes on a dataset without boxes.
    #[error(
        "cropping to bounding boxes needs them, and {0} has none for some images (CUB-200 and CARS-196 have them)"
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
pub struct Chosen {
    /// The split and part.
    pub split: SplitRef,
    /// The images.
    pub images: Vec<Selected>,
}

/// Reads the split in `split_dir` and selects `part`.
pub fn select(
    catalog: &Catalog,
    split_dir: &Path,
    part: Selection,
    crop: CropMode,
) -> Result<Chosen, SelectError> {
    let stored = split::read_split(split_dir)?;
    let boxes: HashMap<&str, (u32, Option<BBox>)> = catalog
        .images
        .iter()
        .map(|i| (i.path.as_str(), (i.class_id, i.bbox)))
        .collect();
    let mut present = std::collections::BTreeSet::new();
    let mut images = Vec::new();
    for row in stored.rows {
        present.insert(row.part.as_str());
        if !part.takes(row.part) {
            continue;
        }
        let Some(&(class_id, bbox)) = boxes
            .get(row.path.as_str())
            .filter(|(c, _)| *c == row.class_id)
        else {
            return Err(SelectError::Unknown {
                split_csv: split_dir.join("split.csv"),
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
    Ok(Chosen {
        split: SplitRef {
            name: stored.name,
            hash: stored.hash,
            part: part.as_str().to_string(),
        },
        images,
    })
}
