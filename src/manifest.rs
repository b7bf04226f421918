//! Dataset manifests: what a dataset is made of and how to check it.
//!
//! A manifest (`manifests/<name>.toml`) lists every file a dataset needs, each with its mirrors
//! in preference order, exact byte size, hashes and archive kind, plus the limits extraction
//! must respect, the expected image and class counts, and the canonical train/test split. The
//! manifests of the built-in datasets are compiled into the binary; `--manifest FILE` loads
//! another one. Everything is validated on load, so later stages can trust the values.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The built-in manifests, by dataset name.
const BUILT_IN: &[(&str, &str)] = &[
    ("sop", include_str!("../manifests/sop.toml")),
    ("cars196", include_str!("../manifests/cars196.toml")),
    ("cub200", include_str!("../manifests/cub200.toml")),
    ("sample", include_str!("../manifests/sample.toml")),
];

/// Names of the datasets that have a built-in manifest.
pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(name, _)| *name)
}

/// Errors from reading or validating a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read manifest {path}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML or does not match the schema.
    #[error("manifest {origin} is not valid")]
    Parse {
        /// Where the manifest came from (a path or `built-in <name>`).
        origin: String,
        /// The underlying error.
        #[source]
        source: toml::de::Error,
    },
    /// The manifest parsed but breaks a rule.
    #[error("manifest {origin}: {problem}")]
    Invalid {
        /// Where the manifest came from.
        origin: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// No built-in manifest has this name.
    #[error(
        "unknown dataset `{name}`; known datasets are {known}, or pass a folder of images \
         (one sub-folder per class) or a CSV file (path,label)"
    )]
    Unknown {
        /// The name that was asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
}

/// A dataset manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name, used as the folder name under the data dir (`sop`, `cub200`, ...).
    pub name: String,
    /// Human-readable title.
    pub title: String,
    /// Where the dataset is described.
    #[serde(default)]
    pub homepage: Option<String>,
    /// Free-form remarks shown with the summary.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The files that make up the dataset.
    pub files: Vec<SourceFile>,
    /// How to read the annotations.
    pub catalog: CatalogSpec,
    /// Extraction limits (guards against archive bombs).
    pub limits: ExtractLimits,
    /// The counts a complete copy has.
    pub expected: ExpectedCounts,
    /// The canonical train/test split.
    pub split: CanonicalSplit,
    /// Paths (relative to the extracted root) that an unpacked copy of `files` holds; a folder
    /// given instead of the files is recognised by them.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Another set of files that makes the same dataset, as published elsewhere in another
    /// layout, converted to this one when extracted.
    #[serde(default)]
    pub alternative: Option<Alternative>,
}

/// Another layout of a dataset: its own files (with their own hashes) and how it is converted
/// to the manifest's main layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    /// A short name (`devkit`).
    pub name: String,
    /// What it is and where it comes from.
    pub note: String,
    /// Its files.
    pub files: Vec<SourceFile>,
    /// How its extracted files become the main layout.
    pub convert: Conversion,
    /// Paths an unpacked copy of these files holds.
    #[serde(default)]
    pub contains: Vec<String>,
}

/// A conversion from an alternative layout to a dataset's main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conversion {
    /// CARS-196's devkit layout (`cars_train/`, `cars_test/`, the devkit's annotations) to
    /// `car_ims/` with `cars_annos.mat`'s names.
    CarsDevkit,
}

/// One way to get a dataset: the main files, or the alternative's.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// `main`, or the alternative's name.
    pub name: &'a str,
    /// The files.
    pub files: &'a [SourceFile],
    /// The conversion to apply after extraction (none for the main layout).
    pub convert: Option<Conversion>,
    /// Paths an unpacked copy holds.
    pub contains: &'a [String],
}

impl Manifest {
    /// The layouts the dataset can be had in: the main one first.
    pub fn layouts(&self) -> Vec<Layout<'_>> {
        let mut layouts = vec![Layout {
            name: "main",
            files: &self.files,
            convert: None,
            contains: &self.contains,
        }];
        if let Some(alt) = &self.alternative {
            layouts.push(Layout {
                name: &alt.name,
                files: &alt.files,
                convert: Some(alt.convert),
                contains: &alt.contains,
            });
        }
        layouts
    }
}

/// One file of a dataset: an archive, or a plain file such as `cars_annos.mat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// File name, as published.
    pub name: String,
    /// Exact size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// SHA-256, lower-case hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The start of the SHA-256, lower-case hex, where only that is published (torchvision's
    /// weight files carry 8 hex digits of it in their names, and torch.hub checks those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_prefix: Option<String>,
    /// MD5, lower-case hex.
    #[serde(default)]
    pub md5: Option<String>,
    /// What the file is.
    pub kind: FileKind,
    /// Where to get it, in order of preference.
    pub sources: Vec<Source>,
}

impl SourceFile {
    /// Whether the manifest gives at least one hash for this file.
    pub fn has_hash(&self) -> bool {
        self.sha256.is_some() || self.md5.is_some() || self.sha256_prefix.is_some()
    }
}

/// A place a file can be fetched from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The URL: `http://`, `https://`, `ftp://` (listed for information only) or
    /// `bundled:<name>` (compiled into the binary).
    pub url: String,
    /// Why this source is listed, or what is known about it.
    #[serde(default)]
    pub note: Option<String>,
}

impl Source {
    /// How this source can be used.
    pub fn scheme(&self) -> SourceScheme {
        let url = self.url.to_ascii_lowercase();
        if url.starts_with("http://") || url.starts_with("https://") {
            SourceScheme::Http
        } else if let Some(name) = self.url.strip_prefix("bundled:") {
            SourceScheme::Bundled(name.to_string())
        } else {
            SourceScheme::Unsupported
        }
    }
}

/// How a [`Source`] is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceScheme {
    /// Downloaded over HTTP(S).
    Http,
    /// Compiled into the binary, under this name.
    Bundled(String),
    /// Listed for information (FTP, for instance); the user downloads it by hand.
    Unsupported,
}

/// What a dataset file is, which decides how it is checked and unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    /// A zip archive (ZIP64 included).
    #[serde(rename = "zip")]
    Zip,
    /// A gzip-compressed tar archive.
    #[serde(rename = "tar.gz")]
    TarGz,
    /// A MAT-5 file, copied as is.
    #[serde(rename = "mat")]
    Mat,
    /// A PyTorch checkpoint (`torch.save`: zip, or the legacy pickle format).
    #[serde(rename = "pth")]
    Pth,
    /// A safetensors file.
    #[serde(rename = "safetensors")]
    Safetensors,
}

impl FileKind {
    /// Whether `head`, a file's first bytes (at least 10 of them, if it has them), looks like
    /// this kind of file.
    pub fn matches(self, head: &[u8]) -> bool {
        match self {
            FileKind::Zip => head.starts_with(b"PK\x03\x04"),
            FileKind::TarGz => head.starts_with(b"\x1f\x8b"),
            FileKind::Mat => head.starts_with(b"MATLAB 5.0 MAT-file"),
            // The zip format, or the legacy one's first pickle (protocol 2, a long integer).
            FileKind::Pth => head.starts_with(b"PK\x03\x04") || head.starts_with(b"\x80\x02\x8a"),
            // An 8-byte header length, then the JSON header.
            FileKind::Safetensors => head.len() >= 9 && head[8] == b'{',
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Zip => "zip archive",
            FileKind::TarGz => "tar.gz archive",
            FileKind::Mat => "MAT-file",
            FileKind::Pth => "PyTorch checkpoint",
            FileKind::Safetensors => "safetensors file",
        })
    }
}

/// Which annotation reader builds the catalogue, and where its files are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSpec {
    /// The annotation format.
    pub format: CatalogFormat,
    /// The folder, relative to the extracted root, that holds the annotation files.
    #[serde(default = "default_catalog_root")]
    pub root: String,
}

fn default_catalog_root() -> String {
    ".".to_string()
}

/// The annotation formats `lifted` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogFormat {
    /// Stanford Online Products: `Ebay_info.txt`, `Ebay_train.txt`, `Ebay_test.txt`.
    Sop,
    /// CUB-200-2011: `images.txt`, `image_class_labels.txt`, `classes.txt`, `bounding_boxes.txt`.
    Cub200,
    /// CARS-196: `cars_annos.mat`.
    Cars196,
    /// A CSV file `images.csv` with columns `path,class_id,class_name` (the bundled sample).
    Csv,
}

/// Limits on what extraction may write; anything beyond them is treated as an archive bomb.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExtractLimits {
    /// Most entries (files, folders, links) across all archives.
    pub max_entries: u64,
    /// Most bytes one entry may unpack to.
    pub max_entry_bytes: u64,
    /// Most bytes all archives together may unpack to.
    pub max_total_bytes: u64,
}

/// Counts a complete copy of the dataset has.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedCounts {
    /// Number of images.
    pub images: usize,
    /// Number of classes.
    pub classes: usize,
}

/// The dataset's canonical class-disjoint split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CanonicalSplit {
    /// Classes with ids in `train` (inclusive range) train, those in `test` test.
    ClassRange {
        /// First and last training class id.
        train: [u32; 2],
        /// First and last test class id.
        test: [u32; 2],
        /// Expected training images and classes.
        expected_train: ExpectedCounts,
        /// Expected test images and classes.
        expected_test: ExpectedCounts,
    },
    /// The dataset's own annotation files say which image is train and which test (SOP).
    Annotated {
        /// Expected training images and classes.
        expected_train: ExpectedCounts,
        /// Expected test images and classes.
        expected_test: ExpectedCounts,
    },
}

impl Manifest {
    /// The built-in manifest of a dataset.
    ///
    /// # Errors
    /// [`ManifestError::Unknown`] when no built-in manifest has this name; otherwise whatever
    /// [`Manifest::parse`] returns.
    pub fn built_in(name: &str) -> Result<Manifest, ManifestError> {
        let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) else {
            return Err(ManifestError::Unknown {
                name: name.to_string(),
                known: built_in_names().collect::<Vec<_>>().join(", "),
            });
        };
        Manifest::parse(text, &format!("built-in {name}"))
    }

    /// Reads and validates a manifest file.
    ///
    /// # Errors
    /// [`ManifestError::Read`] when the file cannot be read as UTF-8 text; otherwise whatever
    /// [`Manifest::parse`] returns.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(crate::fsutil::strip_bom(&text), &path.display().to_string())
    }

    /// Parses and validates manifest text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ManifestError::Parse`] when `text` is not valid TOML or does not match the schema;
    /// [`ManifestError::Invalid`] when it breaks a rule the schema cannot express (an unsafe name
    /// or path, no files, a file listed twice or without sources, a malformed hash, a zero limit,
    /// split ranges out of order or overlapping).
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|source| ManifestError::Parse {
            origin: origin.to_string(),
            source,
        })?;
        manifest
            .validate()
            .map_err(|problem| ManifestError::Invalid {
                origin: origin.to_string(),
                problem,
            })?;
        Ok(manifest)
    }

    /// Checks the rules serde cannot express.
    fn validate(&self) -> Result<(), String> {
        check_name(&self.name).map_err(|problem| format!("name `{}`: {problem}", self.name))?;
        if self.files.is_empty() {
            return Err("lists no files".to_string());
        }
        for layout in self.layouts() {
            check_files(layout.files)?;
            for path in layout.contains {
                if crate::catalog::safe_relative(path).is_none() {
                    return Err(format!("contains `{path}` must be a relative path"));
                }
            }
        }

        let root = Path::new(&self.catalog.root);
        if root.is_absolute()
            || root
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "catalog.root `{}` must be a relative path inside the dataset",
                self.catalog.root
            ));
        }
        let limits = &self.limits;
        if limits.max_entries == 0 || limits.max_entry_bytes == 0 || limits.max_total_bytes == 0 {
            return Err("limits must all be positive".to_string());
        }
        if let CanonicalSplit::ClassRange { train, test, .. } = &self.split {
            let ordered = |r: &[u32; 2]| r[0] <= r[1];
            let disjoint = train[1] < test[0] || test[1] < train[0];
            if !ordered(train) || !ordered(test) || !disjoint {
                return Err(format!(
                    "split ranges train {train:?} and test {test:?} must be ordered and disjoint"
                ));
            }
        }
        Ok(())
    }
}

/// Checks a list of files: plain unique names, well-formed hashes, at least one source each.
///
/// # Errors
/// A message in words naming the first file that breaks a rule.
pub(crate) fn check_files(files: &[SourceFile]) -> Result<(), String> {
    if files.is_empty() {
        return Err("a layout lists no files".to_string());
    }
    for (i, file) in files.iter().enumerate() {
        if file.name.is_empty() || file.name.contains(['/', '\\']) || file.name.starts_with('.') {
            return Err(format!(
                "file name `{}` must be a plain file name",
                file.name
            ));
        }
        if files[..i].iter().any(|f| f.name == file.name) {
            return Err(format!("file `{}` is listed twice", file.name));
        }
        check_hex(&file.name, "sha256", file.sha256.as_deref(), 64)?;
        check_hex(&file.name, "md5", file.md5.as_deref(), 32)?;
        if let Some(prefix) = &file.sha256_prefix {
            // At least torchvision's 8 digits: a shorter prefix would let almost any file pass.
            let len = prefix.len().clamp(MIN_SHA256_PREFIX, 64);
            check_hex(&file.name, "sha256_prefix", Some(prefix), len)?;
        }
        if file.sources.is_empty() {
            return Err(format!("file `{}` has no sources", file.name));
        }
    }
    Ok(())
}

/// Checks that a dataset name can be a folder name under the data dir.
///
/// # Errors
/// A message in words when `name` is empty, starts with `.`, or has a character other than ASCII
/// letters, digits, `-`, `_` and `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if name.is_empty() || name.starts_with('.') || !name.chars().all(safe) {
        return Err(
            "a dataset name must be ASCII letters, digits, `-`, `_` or `.`, not starting with `.`"
                .to_string(),
        );
    }
    Ok(())
}

/// The fewest hex digits a `sha256_prefix` may have.
const MIN_SHA256_PREFIX: usize = 8;

/// Checks that an optional hash is lower-case hex of the right length.
fn check_hex(file: &str, what: &str, value: Option<&str>, len: usize) -> Result<(), String> {
    match value {
        Some(v)
            if v.len() != len
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Err(format!(
                "file `{file}`: {what} must be {len} lower-case hex digits, found `{v}`"
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_manifest_is_valid() {
        for name in built_in_names() {
            let manifest = Manifest::built_in(name).unwrap();
            assert_eq!(manifest.name, name);
        }
    }

    #[test]
    fn unknown_dataset_lists_the_known_ones() {
        let err = Manifest::built_in("imagenet").unwrap_err().to_string();
        assert!(err.contains("sop, cars196, cub200, sample"), "{err}");
    }

    #[test]
    fn bad_hash_is_rejected_with_the_value() {
        let text = Manifest::built_in("cub200").unwrap();
        let mut text = toml::to_string(&text).unwrap();
        text = text.replace("97eceeb196236b17998738112f37df78", "97ECEEB1");
        let err = Manifest::parse(&text, "test").unwrap_err();
        assert!(err.to_string().contains("97ECEEB1"), "{err}");
    }
}
