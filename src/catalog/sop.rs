//! Stanford Online Products: `Ebay_info.txt` lists every image; `Ebay_train.txt` and
//! `Ebay_test.txt` give the authors' split.
//!
//! All three files start with the header `image_id class_id super_class_id path`; ids are
//! 1-based; paths are relative to `Stanford_Online_Products/` (upper-case `.JPG`). Images are
//! matched across the files by path, not by `image_id`, whose numbering in the split files is
//! not documented. A class is one eBay product; its name is the category folder plus the
//! listing id shared by the product's image names (`bicycle_final/111085122871`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::text::TextFile;
use super::{Catalog, CatalogError, ClassInfo, ImageRecord, OfficialPart};

const FORM: &[&str] = &["image_id", "class_id", "super_class_id", "path"];

/// Reads SOP's annotations from the `Stanford_Online_Products` folder.
///
/// # Errors
/// [`CatalogError::MissingFile`] when `Ebay_info.txt`, `Ebay_train.txt` or `Ebay_test.txt` is
/// missing, [`CatalogError::Read`] when one cannot be read, [`CatalogError::Malformed`] when a
/// header or line is not in the documented form, an id or path is listed twice, or the split files
/// disagree with `Ebay_info.txt`, and [`CatalogError::Inconsistent`] when an image is in neither
/// split file.
pub fn read(root: &Path) -> Result<Catalog, CatalogError> {
    let info = TextFile::open(&root.join("Ebay_info.txt"))?;
    check_header(&info)?;
    let mut images = Vec::new();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut seen_ids: HashMap<u32, usize> = HashMap::new();
    for record in info.records(1, FORM) {
        let record = record?;
        let image_id = record.id(0)?;
        let class_id = record.id(1)?;
        let super_class = record.id(2)?;
        if super_class > 12 {
            return Err(record.error(format!("super_class_id must be 1-12, found {super_class}")));
        }
        let path = super::relative_path(&record, 3)?;
        if let Some(line) = seen_ids.insert(image_id, record.line) {
            return Err(record.error(format!("image_id {image_id} already on line {line}")));
        }
        if by_path.insert(path.clone(), images.len()).is_some() {
            return Err(record.error(format!("path {path} is listed twice")));
        }
        images.push(ImageRecord {
            path,
            class_id,
            bbox: None,
            official: None,
        });
    }
    for (file, part) in [
        ("Ebay_train.txt", OfficialPart::Train),
        ("Ebay_test.txt", OfficialPart::Test),
    ] {
        let split = TextFile::open(&root.join(file))?;
        check_header(&split)?;
        for record in split.records(1, FORM) {
            let record = record?;
            let class_id = record.id(1)?;
            let path = super::relative_path(&record, 3)?;
            let Some(&index) = by_path.get(&path) else {
                return Err(record.error(format!("{path} is not listed in Ebay_info.txt")));
            };
            let image = &mut images[index];
            if image.class_id != class_id {
                return Err(record.error(format!(
                    "{path} has class {class_id} here but {} in Ebay_info.txt",
                    image.class_id
                )));
            }
            if image.official.replace(part).is_some() {
                return Err(record.error(format!("{path} is listed in both split files")));
            }
        }
    }
    if let Some(unassigned) = images.iter().find(|i| i.official.is_none()) {
        return Err(CatalogError::Inconsistent {
            path: root.join("Ebay_info.txt"),
            reason: format!(
                "{} is in neither Ebay_train.txt nor Ebay_test.txt",
                unassigned.path
            ),
        });
    }
    let mut classes: BTreeMap<u32, String> = BTreeMap::new();
    for image in &images {
        classes
            .entry(image.class_id)
            .or_insert_with(|| product_name(&image.path));
    }
    Ok(Catalog {
        dataset: "sop".to_string(),
        root: root.to_path_buf(),
        classes: classes
            .into_iter()
            .map(|(id, name)| ClassInfo { id, name })
            .collect(),
        images,
        notes: Vec::new(),
    })
}

fn check_header(file: &TextFile) -> Result<(), CatalogError> {
    let found: Vec<&str> = file.first_line().split_whitespace().collect();
    if found != FORM {
        return Err(CatalogError::Malformed {
            path: file.path.clone(),
            line: 1,
            reason: format!(
                "expected the header `{}`, found `{}`",
                FORM.join(" "),
                file.first_line()
            ),
        });
    }
    Ok(())
}

/// `bicycle_final/111085122871_0.JPG` gives `bicycle_final/111085122871`.
fn product_name(path: &str) -> String {
    let stem = path.rsplit_once('.').map_or(path, |(stem, _)| stem);
    stem.rsplit_once('_')
        .map_or(stem, |(product, _)| product)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn product_names() {
        assert_eq!(
            super::product_name("bicycle_final/111085122871_0.JPG"),
            "bicycle_final/111085122871"
        );
        assert_eq!(super::product_name("a/b"), "a/b");
    }
}
