//! Naming datasets and finding their files: the data dir, the folder of each prepared
//! dataset, and opening a prepared dataset (or any image folder or CSV) as a catalogue.
//!
//! Layout of a prepared dataset, `<data>/<name>/`:
//!
//! | Path | What |
//! |---|---|
//! | `downloads/` | verified downloads (`<file>.part` while downloading) |
//! | `root/` | the extracted archives, renamed into place when complete |
//! | `catalog.csv` | every image with its class (and box) |
//! | `image-check.json` | full lists of missing, unreadable and unlisted images |
//! | `splits/<name>/split.{csv,json}` | splits |
//! | `prepared.json` | the summary of the last successful `prepare-data`, with the digests of `catalog.csv` and `root/` it was written for |
//! | `.staged/` | a preparation in progress (it replaces the pieces above only once complete) |

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{self, Catalog, CatalogError};
use crate::manifest::CanonicalSplit;

/// The environment variable that sets the data dir when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "LIFTED_DATA";

/// The data dir: `explicit` (from `--data-dir`), else `$LIFTED_DATA`, else `data/`.
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(DATA_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// What the user named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetRef {
    /// A dataset name (`sop`, `cub200`, `cars196`, `sample`, or a prepared folder's name).
    Named(String),
    /// An image folder (one sub-folder per class) or a CSV file.
    Path(PathBuf),
}

impl DatasetRef {
    /// Reads a command-line argument that may not be text: one that is not valid UTF-8 can
    /// only be a path.
    pub fn parse_os(arg: &std::ffi::OsStr) -> DatasetRef {
        match arg.to_str() {
            Some(text) => DatasetRef::parse(text),
            None => DatasetRef::Path(PathBuf::from(arg)),
        }
    }

    /// Reads a command-line argument by one rule, whatever is in the current folder: a bare
    /// word is a dataset's name (built-in or prepared); a path has a `/` (`./photos`,
    /// `~/photos/`) or ends in `.csv`.
    pub fn parse(arg: &str) -> DatasetRef {
        if arg.contains(['/', '\\']) || arg.to_ascii_lowercase().ends_with(".csv") {
            DatasetRef::Path(PathBuf::from(arg))
        } else {
            DatasetRef::Named(arg.to_string())
        }
    }
}

/// The folder of one dataset under the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetDir {
    /// `<data>/<name>`.
    pub dir: PathBuf,
}

impl DatasetDir {
    /// The folder of dataset `name` under `data_dir`.
    pub fn new(data_dir: &Path, name: &str) -> DatasetDir {
        DatasetDir {
            dir: data_dir.join(name),
        }
    }
    /// Verified downloads.
    pub fn downloads(&self) -> PathBuf {
        self.dir.join("downloads")
    }
    /// The extracted archives.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// The stored catalogue.
    pub fn catalog_csv(&self) -> PathBuf {
        self.dir.join("catalog.csv")
    }
    /// The image check report.
    pub fn image_check(&self) -> PathBuf {
        self.dir.join("image-check.json")
    }
    /// The folder of a split.
    pub fn split(&self, name: &str) -> PathBuf {
        self.dir.join("splits").join(name)
    }
    /// The summary of the last successful preparation.
    pub fn prepared_json(&self) -> PathBuf {
        self.dir.join("prepared.json")
    }
    /// Where `prepare-data` assembles a new preparation before it replaces the current one.
    pub fn staged(&self) -> PathBuf {
        self.dir.join(".staged")
    }
}

/// What later stages need to know about a prepared dataset (stored in `prepared.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedInfo {
    /// The dataset's name.
    pub dataset: String,
    /// The folder image paths are relative to: relative to the dataset's folder for a dataset
    /// extracted from archives (`root/…`, so a copied data dir reads its own copy), absolute
    /// for an image folder or CSV prepared in place.
    pub root: PathBuf,
    /// The canonical split rule, if the dataset has one.
    pub canonical_split: Option<CanonicalSplit>,
    /// The split `prepare-data` wrote, by name (`canonical` or a seeded one).
    pub default_split: String,
    /// SHA-256 of `catalog.csv`.
    pub catalog_sha256: String,
    /// SHA-256 of the extraction stamp in `root/` (datasets extracted from archives).
    pub root_stamp: Option<String>,
}

impl PreparedInfo {
    /// A digest of the prepared dataset: it changes whenever `prepare-data` replaces the
    /// catalogue or the extracted files, so packed shards can tell they are out of date.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"lifted-prepared/1\0");
        hasher.update(self.dataset.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.root.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        hasher.update(self.catalog_sha256.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.root_stamp.as_deref().unwrap_or("").as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// The name of the extraction stamp inside `root/` (see `prepare-data`).
pub const ROOT_STAMP: &str = ".lifted-extracted.json";

/// Errors from opening a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A named dataset has not been prepared in this data dir.
    #[error(
        "dataset `{name}` is not prepared in {data_dir} (no {missing}); run `lifted \
         prepare-data {name}` first (or look in another data dir)"
    )]
    NotPrepared {
        /// The name.
        name: String,
        /// The data dir looked in.
        data_dir: PathBuf,
        /// The file that was looked for.
        missing: PathBuf,
    },
    /// `prepared.json` could not be read.
    #[error("cannot read {path}; prepare the dataset again")]
    BadPrepared {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The pieces of a prepared dataset do not belong together (a preparation was interrupted
    /// while it replaced them, or a file was edited).
    #[error(
        "the prepared dataset in {dir} is inconsistent: {problem}; prepare it again (its \
         downloads are reused)"
    )]
    Inconsistent {
        /// The dataset's folder.
        dir: PathBuf,
        /// What disagrees.
        problem: String,
    },
    /// The images folder `prepared.json` names does not exist.
    #[error(
        "the images of {name} were in {root}, which no longer exists; prepare the dataset again \
         from where its images are now"
    )]
    RootMissing {
        /// The dataset.
        name: String,
        /// The folder.
        root: PathBuf,
    },
    /// An image folder or CSV that has no prepared dataset folder.
    #[error(
        "{0} is not a prepared dataset; run `lifted prepare-data {0}` first and pass the name it \
         prints"
    )]
    PathNotPrepared(PathBuf),
    /// The path is neither a folder nor a CSV file.
    #[error("{0} is neither a folder of class sub-folders nor a .csv file")]
    NotADataset(PathBuf),
    /// Reading the catalogue failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A dataset opened as a catalogue, with its canonical split rule if it has one.
#[derive(Debug, Clone)]
pub struct OpenedDataset {
    /// The images and classes.
    pub catalog: Catalog,
    /// The canonical split rule.
    pub canonical_split: Option<CanonicalSplit>,
}

/// Opens a prepared dataset by name, or reads an image folder or CSV file in place.
///
/// # Errors
/// For a prepared dataset: [`DatasetError::NotPrepared`] when it has no `prepared.json`,
/// [`DatasetError::BadPrepared`] when that file cannot be read or parsed,
/// [`DatasetError::RootMissing`] when its images folder is gone, [`DatasetError::Inconsistent`]
/// when `catalog.csv` or the extracted files are not the ones `prepared.json` was written for, and
/// [`DatasetError::Catalog`] when `catalog.csv` cannot be read or parsed. For a path:
/// [`DatasetError::NotADataset`] when it is neither a folder nor a file, and
/// [`DatasetError::Catalog`] with whatever [`catalog::generic::read_folder`] or
/// [`catalog::generic::read_csv`] returns.
pub fn open(reference: &DatasetRef, data_dir: &Path) -> Result<OpenedDataset, DatasetError> {
    match reference {
        DatasetRef::Named(name) => open_prepared(data_dir, name),
        DatasetRef::Path(path) if path.join("prepared.json").is_file() => {
            let parent = path.parent().unwrap_or(Path::new("."));
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            open_prepared(parent, &name)
        }
        DatasetRef::Path(path) => {
            let mut catalog = if path.is_dir() {
                catalog::generic::read_folder(path)?
            } else if path.is_file() {
                catalog::generic::read_csv(path)?
            } else {
                return Err(DatasetError::NotADataset(path.clone()));
            };
            catalog.dataset = catalog::generic::name_for(path);
            Ok(OpenedDataset {
                catalog,
                canonical_split: None,
            })
        }
    }
}

fn open_prepared(data_dir: &Path, name: &str) -> Result<OpenedDataset, DatasetError> {
    let prepared = load_prepared(data_dir, name)?;
    Ok(OpenedDataset {
        catalog: prepared.catalog,
        canonical_split: prepared.info.canonical_split,
    })
}

/// A prepared dataset: its folder, what `prepare-data` recorded, and its catalogue.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The dataset's folder.
    pub dir: DatasetDir,
    /// What `prepare-data` recorded.
    pub info: PreparedInfo,
    /// The images and classes.
    pub catalog: Catalog,
}

/// Opens a prepared dataset, by name or by the path of its folder under a data dir. An image
/// folder or CSV that has not been prepared is an error that says to prepare it.
///
/// # Errors
/// [`DatasetError::PathNotPrepared`] when `reference` is a path without a `prepared.json`;
/// otherwise [`DatasetError::NotPrepared`], [`DatasetError::BadPrepared`],
/// [`DatasetError::RootMissing`], [`DatasetError::Inconsistent`] or [`DatasetError::Catalog`], as
/// for [`open`].
pub fn open_prepared_ref(
    reference: &DatasetRef,
    data_dir: &Path,
) -> Result<Prepared, DatasetError> {
    match reference {
        DatasetRef::Named(name) => load_prepared(data_dir, name),
        DatasetRef::Path(path) if path.join("prepared.json").is_file() => {
            let parent = path.parent().unwrap_or(Path::new("."));
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            load_prepared(parent, &name)
        }
        DatasetRef::Path(path) => Err(DatasetError::PathNotPrepared(path.clone())),
    }
}

fn load_prepared(data_dir: &Path, name: &str) -> Result<Prepared, DatasetError> {
    let dir = DatasetDir::new(data_dir, name);
    let info_path = dir.prepared_json();
    let bytes = match std::fs::read(&info_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DatasetError::NotPrepared {
                name: name.to_string(),
                data_dir: data_dir.to_path_buf(),
                missing: info_path,
            });
        }
        Err(source) => {
            return Err(DatasetError::BadPrepared {
                path: info_path,
                source,
            });
        }
    };
    let info: PreparedInfo = serde_json::from_slice::<PreparedSummaryInfo>(&bytes)
        .map_err(|e| DatasetError::BadPrepared {
            path: info_path.clone(),
            source: e.into(),
        })?
        .info;
    let root = if info.root.is_relative() {
        dir.dir.join(&info.root)
    } else {
        info.root.clone()
    };
    if !root.is_dir() {
        return Err(DatasetError::RootMissing {
            name: name.to_string(),
            root,
        });
    }
    let inconsistent = |problem: String| DatasetError::Inconsistent {
        dir: dir.dir.clone(),
        problem,
    };
    let catalog_path = dir.catalog_csv();
    let catalog_bytes = std::fs::read(&catalog_path).map_err(|source| {
        DatasetError::Catalog(CatalogError::Read {
            path: catalog_path.clone(),
            source,
        })
    })?;
    let catalog_sha256 = hex::encode(Sha256::digest(&catalog_bytes));
    if catalog_sha256 != info.catalog_sha256 {
        return Err(inconsistent(format!(
            "catalog.csv has SHA-256 {catalog_sha256}, prepared.json expects {}",
            info.catalog_sha256
        )));
    }
    if let Some(expected) = &info.root_stamp {
        let stamp = std::fs::read(dir.root().join(ROOT_STAMP)).unwrap_or_default();
        let found = hex::encode(Sha256::digest(&stamp));
        if &found != expected {
            return Err(inconsistent(
                "root/ holds other extracted files than the ones prepared.json was written for"
                    .to_string(),
            ));
        }
    }
    let catalog = catalog::parse_catalog_csv(&catalog_bytes, &catalog_path, &info.dataset, &root)?;
    Ok(Prepared { dir, info, catalog })
}

/// The part of `prepared.json` this module reads.
#[derive(Deserialize)]
struct PreparedSummaryInfo {
    info: PreparedInfo,
}
