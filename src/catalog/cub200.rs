//! CUB-200-2011: `images.txt`, `image_class_labels.txt`, `classes.txt` and
//! `bounding_boxes.txt` in `CUB_200_2011/`.
//!
//! The files have no header, ids are 1-based and lines are joined by `image_id`. Image paths
//! in `images.txt` are relative to `images/`; each lies in its class's folder, which must be
//! the class name from `classes.txt`. `train_test_split.txt` is the classification split and
//! is not read. The stray top-level `attributes.txt` of the archive is ignored with a note.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::text::TextFile;
use super::{BBox, Catalog, CatalogError, ClassInfo, ImageRecord};

/// Reads CUB's annotations from the `CUB_200_2011` folder.
///
/// # Errors
/// [`CatalogError::MissingFile`] when one of the four annotation files is missing,
/// [`CatalogError::Read`] when one cannot be read, [`CatalogError::Malformed`] when a line has the
/// wrong fields, a bad id, number or box, a duplicate, or an id the other files do not define, and
/// [`CatalogError::Inconsistent`] when an image has no label or no box, or lies in the folder of
/// another class.
pub fn read(root: &Path) -> Result<Catalog, CatalogError> {
    let classes_file = TextFile::open(&root.join("classes.txt"))?;
    let mut classes: BTreeMap<u32, String> = BTreeMap::new();
    for record in classes_file.records(0, &["class_id", "class_name"]) {
        let record = record?;
        let id = record.id(0)?;
        if classes.insert(id, record.text(1).to_string()).is_some() {
            return Err(record.error(format!("class_id {id} is listed twice")));
        }
    }

    let images_file = TextFile::open(&root.join("images.txt"))?;
    let mut order: Vec<u32> = Vec::new();
    let mut paths: HashMap<u32, (String, usize)> = HashMap::new();
    for record in images_file.records(0, &["image_id", "image_name"]) {
        let record = record?;
        let id = record.id(0)?;
        let name = super::relative_path(&record, 1)?;
        if paths.insert(id, (name, record.line)).is_some() {
            return Err(record.error(format!("image_id {id} is listed twice")));
        }
        order.push(id);
    }

    let labels_file = TextFile::open(&root.join("image_class_labels.txt"))?;
    let mut labels: HashMap<u32, u32> = HashMap::new();
    for record in labels_file.records(0, &["image_id", "class_id"]) {
        let record = record?;
        let (image_id, class_id) = (record.id(0)?, record.id(1)?);
        if !paths.contains_key(&image_id) {
            return Err(record.error(format!("image_id {image_id} is not in images.txt")));
        }
        if !classes.contains_key(&class_id) {
            return Err(record.error(format!("class_id {class_id} is not in classes.txt")));
        }
        if labels.insert(image_id, class_id).is_some() {
            return Err(record.error(format!("image_id {image_id} has two labels")));
        }
    }

    let boxes_file = TextFile::open(&root.join("bounding_boxes.txt"))?;
    let form = ["image_id", "x", "y", "width", "height"];
    let mut boxes: HashMap<u32, BBox> = HashMap::new();
    for record in boxes_file.records(0, &form) {
        let record = record?;
        let image_id = record.id(0)?;
        let bbox = BBox {
            x: record.number(1)?,
            y: record.number(2)?,
            width: record.number(3)?,
            height: record.number(4)?,
        };
        if bbox.width <= 0.0 || bbox.height <= 0.0 || bbox.x < 0.0 || bbox.y < 0.0 {
            return Err(record
                .error("the box must have a non-negative corner and a positive size".to_string()));
        }
        if !paths.contains_key(&image_id) {
            return Err(record.error(format!("image_id {image_id} is not in images.txt")));
        }
        if boxes.insert(image_id, bbox).is_some() {
            return Err(record.error(format!("image_id {image_id} has two boxes")));
        }
    }

    let mut images = Vec::with_capacity(order.len());
    for id in order {
        let (name, line) = &paths[&id];
        let inconsistent = |file: &str, reason: String| CatalogError::Inconsistent {
            path: root.join(file),
            reason,
        };
        let class_id = *labels.get(&id).ok_or_else(|| {
            inconsistent(
                "image_class_labels.txt",
                format!("image_id {id} (images.txt line {line}) has no label"),
            )
        })?;
        let bbox = *boxes.get(&id).ok_or_else(|| {
            inconsistent(
                "bounding_boxes.txt",
                format!("image_id {id} (images.txt line {line}) has no box"),
            )
        })?;
        let folder = name.split('/').next().unwrap_or_default();
        if folder != classes[&class_id] {
            return Err(inconsistent(
                "image_class_labels.txt",
                format!(
                    "image_id {id} ({name}) is labelled class {class_id} `{}` but lies in folder `{folder}`",
                    classes[&class_id]
                ),
            ));
        }
        images.push(ImageRecord {
            path: format!("images/{name}"),
            class_id,
            bbox: Some(bbox),
            official: None,
        });
    }

    let mut notes = Vec::new();
    if let Some(parent) = root.parent()
        && parent.join("attributes.txt").is_file()
    {
        notes.push(
            "ignored the archive's top-level attributes.txt (attribute names, not needed)"
                .to_string(),
        );
    }
    Ok(Catalog {
        dataset: "cub200".to_string(),
        root: root.to_path_buf(),
        classes: classes
            .into_iter()
            .map(|(id, name)| ClassInfo { id, name })
            .collect(),
        images,
        notes,
    })
}
