//! Catalogues: every image of a dataset with its class, read from the dataset's own
//! annotation files, never from a directory listing.
//!
//! One reader per format ([`sop`], [`cub200`], [`cars196`], [`generic`] for an image folder
//! or a CSV file) builds a [`Catalog`]; [`check`] then makes sure every listed image exists
//! and has a readable image header, and lists files on disk that no annotation mentions.
//! Image paths are relative to [`Catalog::root`] and always use `/`.

pub mod cars196;
pub mod check;
pub mod cub200;
pub mod generic;
mod mat5;
pub mod sop;
mod stored;
mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use check::{ImageCheck, check_images};
pub use stored::{parse_catalog_csv, read_catalog_csv, render_catalog_csv, write_catalog_csv};

use crate::manifest::CatalogFormat;

/// Errors from reading annotations or checking images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// An annotation file the format needs is not there.
    #[error(
        "annotation file {path} is missing; the dataset copy is incomplete or not the expected \
         one (remove the extracted folder and run prepare-data again, or check the archive)"
    )]
    MissingFile {
        /// The file that should exist.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line of an annotation file does not have the documented form.
    #[error("{path} line {line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Annotation files disagree with each other.
    #[error("{path}: {reason}")]
    Inconsistent {
        /// The file where the disagreement shows.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// The MAT-file could not be read.
    #[error("cannot read MAT-file {path}")]
    Mat {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: mat5::MatError,
    },
    /// A CSV catalogue could not be parsed.
    #[error("cannot parse CSV {path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: csv::Error,
    },
    /// File or folder names that are not valid UTF-8.
    #[error(
        "{} file or folder names under {} are not valid UTF-8 (shown with \\xNN for the bytes \
         that are not): {}; catalogues store paths as text, so rename them (for example with \
         `convmv -f latin1 -t utf8`)",
        .names.len(),
        .root.display(),
        .names.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
    )]
    UndecodableNames {
        /// The dataset folder.
        root: PathBuf,
        /// The names, escaped, relative to the root.
        names: Vec<String>,
    },
    /// A symbolic link leads outside the dataset folder.
    #[error(
        "{} links to {}, outside the dataset folder; copy what it links to into the folder, or \
         remove the link", .link.display(), .target.display()
    )]
    LinkOutside {
        /// The link.
        link: PathBuf,
        /// Where it leads.
        target: PathBuf,
    },
    /// The catalogue lists no image.
    #[error("{path}: no images found; {hint}")]
    Empty {
        /// Where images were looked for.
        path: PathBuf,
        /// What the user can do.
        hint: String,
    },
}

/// A dataset's images and classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Dataset name (`sop`, `cub200`, or a folder's name).
    pub dataset: String,
    /// The folder image paths are relative to.
    pub root: PathBuf,
    /// Every class the annotations define, by ascending id.
    pub classes: Vec<ClassInfo>,
    /// Every image, in annotation order.
    pub images: Vec<ImageRecord>,
    /// Remarks made while reading (ignored files and the like).
    pub notes: Vec<String>,
}

/// A class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// The dataset's own class id (1-based for SOP, CUB and CARS).
    pub id: u32,
    /// A readable name.
    pub name: String,
}

/// An image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Path relative to the catalogue root, `/`-separated.
    pub path: String,
    /// Class id.
    pub class_id: u32,
    /// Object bounding box, where the dataset gives one.
    pub bbox: Option<BBox>,
    /// The split the dataset's own annotation files assign (SOP's Ebay_train/Ebay_test).
    pub official: Option<OfficialPart>,
}

/// A pixel bounding box: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge, pixels from the image's left.
    pub x: f32,
    /// Top edge, pixels from the image's top.
    pub y: f32,
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
}

/// A part of a dataset's own split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfficialPart {
    /// Listed for training.
    Train,
    /// Listed for testing.
    Test,
}

impl Catalog {
    /// The number of distinct classes that have at least one image.
    pub fn classes_with_images(&self) -> usize {
        let mut seen: Vec<u32> = self.images.iter().map(|i| i.class_id).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// Class names by id.
    pub fn class_names(&self) -> BTreeMap<u32, &str> {
        self.classes
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect()
    }

    /// The absolute path of an image.
    pub fn image_path(&self, image: &ImageRecord) -> PathBuf {
        self.root.join(&image.path)
    }

    /// Drops images whose path is in `paths`, adding a note that says how many.
    pub fn remove_images(&mut self, paths: &[String], why: &str) {
        if paths.is_empty() {
            return;
        }
        let drop: std::collections::HashSet<&str> = paths.iter().map(String::as_str).collect();
        let before = self.images.len();
        self.images
            .retain(|image| !drop.contains(image.path.as_str()));
        self.notes.push(format!(
            "{} listed images were left out: {why}",
            before - self.images.len()
        ));
    }
}

/// Reads the catalogue of a dataset whose annotations are in `root`.
///
/// # Errors
/// Whatever the reader for `format` returns: [`sop::read`], [`cub200::read`], [`cars196::read`] or
/// [`generic::read_csv`] (on `images.csv`).
pub fn read(format: CatalogFormat, dataset: &str, root: &Path) -> Result<Catalog, CatalogError> {
    let mut catalog = match format {
        CatalogFormat::Sop => sop::read(root)?,
        CatalogFormat::Cub200 => cub200::read(root)?,
        CatalogFormat::Cars196 => cars196::read(root)?,
        CatalogFormat::Csv => generic::read_csv(&root.join("images.csv"))?,
    };
    catalog.dataset = dataset.to_string();
    Ok(catalog)
}

/// Field `field` of an annotation line as a safe relative path (`/`-separated).
pub(crate) fn relative_path(
    record: &text::Record<'_>,
    field: usize,
) -> Result<String, CatalogError> {
    let raw = record.text(field);
    safe_relative(raw).ok_or_else(|| {
        record.error(format!(
            "path `{raw}` must be relative and stay inside the dataset folder"
        ))
    })
}

/// `raw` as a normalised relative path, or `None` if it is absolute or leaves its folder.
pub(crate) fn safe_relative(raw: &str) -> Option<String> {
    match crate::archive::entry::check_name(raw.as_bytes()) {
        crate::archive::entry::EntryName::Path(path) => {
            Some(path.to_string_lossy().replace('\\', "/"))
        }
        _ => None,
    }
}
