//! `prepare-data`: from a dataset name (or an image folder, or a CSV) to a verified,
//! extracted, catalogued and split dataset under the data dir.
//!
//! The steps: fetch and verify every file ([`crate::fetch`], with `--archive` files matched by
//! [`inputs`]), extract them all-or-nothing ([`extract`]), read the annotations
//! ([`crate::catalog`]), decode every image and compare the counts with the manifest
//! ([`checks`]), and write the catalogue and canonical split ([`crate::split`]). Whatever is
//! accepted despite a problem (`--allow-unverified`, `--skip-bad-images`) is recorded as a
//! warning in the summary and in `prepared.json`. One run at a time may prepare a dataset: a
//! lock file in its folder keeps a second run out.

mod checks;
mod convert;
mod extract;
mod inputs;
mod summary;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use checks::Advice;
pub use extract::ExtractOutcome;
pub use summary::{CheckCounts, PrepareSummary, SplitSummary};

use crate::archive::ArchiveError;
use crate::catalog::{self, Catalog, CatalogError, ImageCheck};
use crate::dataset::{DatasetDir, DatasetRef, PreparedInfo};
use crate::fetch::{self, FetchError, FetchOptions, Fetched};
use crate::fsutil;
use crate::manifest::{self, CanonicalSplit, Manifest, ManifestError};
use crate::progress::Progress;
use crate::split::{self, Part, SplitError, SplitMethod, SplitSpec};
use checks::CountCheck;

/// The split written for datasets without a canonical one.
pub const DEFAULT_SEEDED: SplitMethod = SplitMethod::Seeded {
    seed: 0,
    ratio: 0.5,
};

/// Settings for [`prepare`].
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The data dir.
    pub data_dir: PathBuf,
    /// A manifest to use instead of the built-in one.
    pub manifest: Option<PathBuf>,
    /// Files downloaded by hand, used instead of downloading.
    pub archives: Vec<PathBuf>,
    /// Accept files and counts that do not match the manifest (recorded as warnings).
    pub allow_unverified: bool,
    /// Leave out listed images that are missing or do not decode, instead of failing.
    pub skip_bad_images: bool,
    /// The folder name for an image folder or CSV (default: its file name).
    pub name: Option<String>,
    /// Network settings.
    pub fetch: FetchOptions,
    /// Progress bars.
    pub progress: Progress,
}

/// Errors from [`prepare`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The manifest could not be loaded.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file could not be fetched or verified.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An archive could not be extracted.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The annotations could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The split could not be made.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// An `--archive` file matches no file of the manifest.
    #[error(
        "the archive {path} matches no file of the {dataset} manifest; expected one of: {expected}"
    )]
    UnmatchedArchive {
        /// The file given.
        path: PathBuf,
        /// The dataset.
        dataset: String,
        /// The manifest's file names.
        expected: String,
    },
    /// An alternative layout could not be converted to the main one.
    #[error("cannot convert the files in {path} to the dataset's main layout: {problem}")]
    Conversion {
        /// The extracted files.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Neither layout of the dataset could be downloaded.
    #[error(
        "{main}\nThe dataset's {alternative_name} layout could not be had either:\n{alternative}"
    )]
    NoLayout {
        /// Why the main layout failed.
        main: Box<FetchError>,
        /// The alternative's name.
        alternative_name: String,
        /// Why it failed.
        alternative: Box<FetchError>,
    },
    /// The archives given belong to different layouts of the dataset.
    #[error(
        "{path} belongs to the dataset's {second} layout, but an earlier archive to its {first} \
         layout; give the files of one layout"
    )]
    MixedLayouts {
        /// The archive.
        path: PathBuf,
        /// The first layout.
        first: String,
        /// This one's.
        second: String,
    },
    /// A file given as an archive does not exist or cannot be read.
    #[error("the archive {path} cannot be opened (check the path)")]
    ArchiveUnreadable {
        /// The file given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A path given as an archive is not a regular file.
    #[error("the archive {path} is {what}, not a file")]
    ArchiveNotFile {
        /// The path given.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Two `--archive` files stand for the same manifest file.
    #[error("the archives {first} and {second} are both {name}; give it once")]
    DuplicateArchive {
        /// The manifest's file name.
        name: String,
        /// The first file given.
        first: PathBuf,
        /// The second file given.
        second: PathBuf,
    },
    /// Listed images are missing or do not decode.
    #[error("{}", checks::bad_images_message(.check, .report, .advice))]
    BadImages {
        /// What the check found.
        check: Box<ImageCheck>,
        /// The full report.
        report: PathBuf,
        /// What the message advises.
        advice: checks::Advice,
    },
    /// The catalogue's counts differ from the manifest's.
    #[error(
        "{what}: found {found}, the manifest expects {expected}; the copy is incomplete or not \
         the published one (it can be accepted unverified, recorded as a warning)"
    )]
    CountMismatch {
        /// What was counted.
        what: String,
        /// The manifest's count.
        expected: usize,
        /// The count found.
        found: usize,
    },
    /// The manifest given names another dataset than the one asked for.
    #[error(
        "the manifest {manifest} describes `{found}`, not `{asked}`; the dataset name and the \
         manifest's `name` must agree"
    )]
    ManifestName {
        /// The manifest file.
        manifest: PathBuf,
        /// The name it gives.
        found: String,
        /// The dataset asked for.
        asked: String,
    },
    /// A manifest was given for an image folder or CSV, which has none.
    #[error(
        "{path} is an image folder or CSV file, which is prepared without a manifest; drop the \
         manifest {manifest}, or name the dataset it describes"
    )]
    ManifestForPath {
        /// The manifest file.
        manifest: PathBuf,
        /// The folder or CSV.
        path: PathBuf,
    },
    /// A path that must be stored as text is not valid UTF-8.
    #[error(
        "{} is not valid UTF-8, so it cannot be recorded in prepared.json; rename it (or a \
         folder above it)", .0.display()
    )]
    NotUtf8(PathBuf),
    /// A folder name is not usable.
    #[error("dataset name `{name}`: {problem}")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Another process is preparing the same dataset.
    #[error(
        "another lifted process is preparing this dataset (it holds {0}); wait for it to finish"
    )]
    Busy(PathBuf),
    /// A local file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Prepares a dataset; see the module documentation.
///
/// # Errors
/// [`PrepareError::ManifestName`] when `manifest` names another dataset than `dataset` (or
/// `dataset` is a path); otherwise the first step that fails, with nothing of the previous
/// preparation replaced.
pub fn prepare(
    dataset: &DatasetRef,
    options: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    let result = prepare_any(dataset, options);
    if result.is_err() {
        // A staging folder with nothing worth keeping (no extracted root, no report) goes.
        let name = match dataset {
            DatasetRef::Named(name) => Some(name.clone()),
            DatasetRef::Path(_) => None,
        };
        if let Some(name) = name {
            let _ = std::fs::remove_dir(DatasetDir::new(&options.data_dir, &name).staged());
        }
    }
    result
}

fn prepare_any(
    dataset: &DatasetRef,
    options: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    let manifest = match (&options.manifest, dataset) {
        (Some(path), DatasetRef::Named(name)) => {
            let manifest = Manifest::load(path)?;
            if &manifest.name != name {
                return Err(PrepareError::ManifestName {
                    manifest: path.clone(),
                    found: manifest.name,
                    asked: name.clone(),
                });
            }
            manifest
        }
        (Some(path), DatasetRef::Path(folder)) => {
            return Err(PrepareError::ManifestForPath {
                manifest: path.clone(),
                path: folder.clone(),
            });
        }
        (None, DatasetRef::Named(name)) => Manifest::built_in(name)?,
        (None, DatasetRef::Path(path)) => return prepare_path(path, options),
    };
    prepare_manifest(&manifest, options)
}

/// Takes the dataset folder's lock for the rest of the run.
fn lock(dir: &DatasetDir) -> Result<std::fs::File, PrepareError> {
    let path = dir.dir.join(".lock");
    match fsutil::try_lock(&path) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(PrepareError::Busy(path)),
        Err(source) => Err(PrepareError::Io { path, source }),
    }
}

/// Prepares a dataset described by a manifest.
fn prepare_manifest(
    manifest: &Manifest,
    options: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    let dir = DatasetDir::new(&options.data_dir, &manifest.name);
    let _lock = lock(&dir)?;
    let gathered = gather(manifest, &dir, options)?;
    let staged = dir.staged();
    let extracted = extract::extract_root(
        &dir,
        &staged,
        &gathered.files,
        &gathered.folders,
        gathered.convert,
        manifest.limits,
        options.progress,
    )?;
    let mut files: Vec<Fetched> = gathered.files.into_iter().map(|(f, _)| f).collect();
    files.extend(
        gathered
            .folders
            .iter()
            .map(|folder| fetch::unpacked_folder(folder)),
    );

    let mut catalog = catalog::read(
        manifest.catalog.format,
        &manifest.name,
        &extracted.root.join(&manifest.catalog.root),
    )?;
    let mut warnings = Vec::new();
    let source = checks::Source::Archives;
    let check = checks::check_catalog(&mut catalog, &staged, source, options, &mut warnings)?;

    let spec = SplitSpec {
        method: SplitMethod::Canonical,
        folds: None,
    };
    let split = split::make_split(&catalog, Some(&manifest.split), spec)?;
    compare_counts(manifest, &catalog, &split, options, &mut warnings)?;

    let info = PreparedInfo {
        dataset: manifest.name.clone(),
        root: Path::new("root").join(&manifest.catalog.root),
        canonical_split: Some(manifest.split.clone()),
        default_split: spec.name(),
        catalog_sha256: String::new(),
        root_stamp: Some(extracted.stamp_sha256.clone()),
    };
    let mut notes = manifest.notes.clone();
    if gathered.layout != "main" {
        notes.push(format!(
            "prepared from the {} layout, converted to the main one when extracted",
            gathered.layout
        ));
    }
    notes.extend(extracted.notes.iter().cloned());
    notes.append(&mut catalog.notes);
    let details = Details {
        title: manifest.title.clone(),
        files,
        extraction: Some(extracted.outcome.clone()),
        check,
        warnings,
        notes,
        staged_root: extracted.staged.then_some(extracted.root),
    };
    finish(&dir, catalog, split, info, details)
}

/// The inputs of one preparation, ready to extract.
struct Gathered {
    /// Verified files with their kinds.
    files: Vec<(Fetched, manifest::FileKind)>,
    /// Unpacked folders given instead of files.
    folders: Vec<PathBuf>,
    /// The conversion the layout needs after extraction.
    convert: Option<manifest::Conversion>,
    /// The layout's name (`main` or the alternative's).
    layout: String,
}

/// Gets every file of the layout the user's archives belong to (the main one when none were
/// given; the alternative when the main one cannot be downloaded).
fn gather(
    manifest: &Manifest,
    dir: &DatasetDir,
    options: &PrepareOptions,
) -> Result<Gathered, PrepareError> {
    let given = inputs::assign(manifest, &options.archives)?;
    if given.any() {
        return fetch_layout(&given, dir, options);
    }
    match fetch_layout(&given, dir, options) {
        Err(PrepareError::Fetch(main)) if manifest.alternative.is_some() => {
            let layouts = manifest.layouts();
            let other = inputs::Given {
                layout: layouts[1],
                files: vec![None; layouts[1].files.len()],
                folders: Vec::new(),
            };
            fetch_layout(&other, dir, options).map_err(|e| match e {
                PrepareError::Fetch(alternative) => PrepareError::NoLayout {
                    main: Box::new(main),
                    alternative_name: layouts[1].name.to_string(),
                    alternative: Box::new(alternative),
                },
                other => other,
            })
        }
        other => other,
    }
}

/// Verifies the files given and fetches the others of one layout (an unpacked folder stands
/// for every file not given).
fn fetch_layout(
    given: &inputs::Given<'_>,
    dir: &DatasetDir,
    options: &PrepareOptions,
) -> Result<Gathered, PrepareError> {
    let mut files = Vec::new();
    for (file, local) in given.layout.files.iter().zip(&given.files) {
        let fetched = match local {
            Some(path) => fetch::verify_local(
                file,
                path,
                "--archive",
                options.allow_unverified,
                options.progress,
            )?,
            None if !given.folders.is_empty() => continue,
            None => fetch::fetch_file(
                file,
                &dir.downloads(),
                &options.fetch,
                options.allow_unverified,
                &crate::sample::bundled,
                options.progress,
            )?,
        };
        files.push((fetched, file.kind));
    }
    Ok(Gathered {
        files,
        folders: given.folders.clone(),
        convert: given.layout.convert,
        layout: given.layout.name.to_string(),
    })
}

/// Compares the catalogue's and the split's counts with the manifest's.
fn compare_counts(
    manifest: &Manifest,
    catalog: &Catalog,
    split: &split::Split,
    options: &PrepareOptions,
    warnings: &mut Vec<String>,
) -> Result<(), PrepareError> {
    let mut counts = CountCheck::default();
    counts.compare(
        "images in the catalogue",
        manifest.expected.images,
        catalog.images.len(),
    );
    counts.compare(
        "classes with images",
        manifest.expected.classes,
        catalog.classes_with_images(),
    );
    let (CanonicalSplit::ClassRange {
        expected_train,
        expected_test,
        ..
    }
    | CanonicalSplit::Annotated {
        expected_train,
        expected_test,
    }) = &manifest.split;
    let found = split.counts(catalog);
    for (part, wanted) in [(Part::Train, expected_train), (Part::Test, expected_test)] {
        let got = found.get(&part).cloned().unwrap_or_default();
        counts.compare(format!("{part} images"), wanted.images, got.images);
        counts.compare(format!("{part} classes"), wanted.classes, got.classes);
    }
    counts.settle(options.allow_unverified, warnings)
}

/// Prepares an image folder or CSV file in place (images are not copied).
fn prepare_path(path: &Path, options: &PrepareOptions) -> Result<PrepareSummary, PrepareError> {
    let name = match &options.name {
        Some(name) => {
            manifest::check_name(name).map_err(|problem| PrepareError::BadName {
                name: name.clone(),
                problem,
            })?;
            name.clone()
        }
        None => catalog::generic::name_for(path),
    };
    if manifest::built_in_names().any(|n| n == name) {
        return Err(PrepareError::BadName {
            name,
            problem: "it is the name of a built-in dataset; choose another".to_string(),
        });
    }
    let root = absolute(if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    });
    if root.to_str().is_none() {
        return Err(PrepareError::NotUtf8(root));
    }
    let dir = DatasetDir::new(&options.data_dir, &name);
    let _lock = lock(&dir)?;
    let mut catalog = if path.is_dir() {
        catalog::generic::read_folder(path)?
    } else {
        catalog::generic::read_csv(path)?
    };
    catalog.dataset = name.clone();
    catalog.root = absolute(&catalog.root);
    let mut warnings = Vec::new();
    let staged = dir.staged();
    let source = checks::Source::InPlace;
    let check = checks::check_catalog(&mut catalog, &staged, source, options, &mut warnings)?;
    let spec = SplitSpec {
        method: DEFAULT_SEEDED,
        folds: None,
    };
    let split = split::make_split(&catalog, None, spec)?;
    let info = PreparedInfo {
        dataset: name,
        root: catalog.root.clone(),
        canonical_split: None,
        default_split: spec.name(),
        catalog_sha256: String::new(),
        root_stamp: None,
    };
    let mut notes = vec![format!(
        "{} has no canonical split; wrote the seeded split {} (write others with `lifted split`)",
        path.display(),
        spec.name()
    )];
    notes.append(&mut catalog.notes);
    let details = Details {
        title: format!("images from {}", path.display()),
        files: Vec::new(),
        extraction: None,
        check,
        warnings,
        notes,
        staged_root: None,
    };
    finish(&dir, catalog, split, info, details)
}

/// The parts of a summary gathered along the way.
struct Details {
    title: String,
    files: Vec<Fetched>,
    extraction: Option<ExtractOutcome>,
    check: CheckCounts,
    warnings: Vec<String>,
    notes: Vec<String>,
    /// A freshly extracted `root/` in the staging folder, to swap in.
    staged_root: Option<PathBuf>,
}

/// Writes the catalogue, split and summary into the staging folder, then replaces the
/// dataset's pieces with them (`prepared.json` last), and returns the summary.
fn finish(
    dir: &DatasetDir,
    catalog: Catalog,
    split: split::Split,
    mut info: PreparedInfo,
    details: Details,
) -> Result<PrepareSummary, PrepareError> {
    let staged = dir.staged();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PrepareError::Io { path, source }
    };
    let catalog_bytes = catalog::render_catalog_csv(&catalog)?;
    info.catalog_sha256 = hex::encode(Sha256::digest(&catalog_bytes));
    fsutil::write_atomic(&staged.join("catalog.csv"), &catalog_bytes).map_err(io(&staged))?;
    let split_name = info.default_split.clone();
    let written = split::write_split(&catalog, &split, &staged.join("split"))?;
    let summary = PrepareSummary {
        title: details.title,
        dir: dir.dir.clone(),
        unverified: !PrepareSummary::all_verified(&details.files),
        images: catalog.images.len(),
        classes: catalog.classes_with_images(),
        catalog_csv: dir.catalog_csv(),
        split: SplitSummary {
            name: split_name.clone(),
            hash: written.hash,
            csv: dir.split(&split_name).join("split.csv"),
            json: dir.split(&split_name).join("split.json"),
            parts: split.counts(&catalog),
        },
        info,
        files: details.files,
        extraction: details.extraction,
        image_check: CheckCounts {
            report: dir.image_check(),
            ..details.check
        },
        warnings: details.warnings,
        notes: details.notes,
    };
    let json = serde_json::to_vec_pretty(&summary).expect("a summary has only text keys");
    fsutil::write_atomic(&staged.join("prepared.json"), &json).map_err(io(&staged))?;
    commit(dir, details.staged_root.as_deref(), &split_name).map_err(io(&dir.dir))?;
    Ok(summary)
}

/// Replaces the dataset's pieces with the staged ones; `prepared.json` goes last, so until it
/// is in place the old one describes (and, through its digests, refuses) a mix.
fn commit(dir: &DatasetDir, staged_root: Option<&Path>, split_name: &str) -> std::io::Result<()> {
    let staged = dir.staged();
    if let Some(root) = staged_root {
        fsutil::replace_dir(root, &dir.root())?;
    }
    fsutil::rename_durable(&staged.join("catalog.csv"), &dir.catalog_csv())?;
    fsutil::rename_durable(&staged.join("image-check.json"), &dir.image_check())?;
    let split_dir = dir.split(split_name);
    std::fs::create_dir_all(split_dir.parent().unwrap_or(&dir.dir))?;
    fsutil::replace_dir(&staged.join("split"), &split_dir)?;
    fsutil::rename_durable(&staged.join("prepared.json"), &dir.prepared_json())?;
    std::fs::remove_dir_all(&staged)
}

/// `path` made absolute against the current folder (without resolving links).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
