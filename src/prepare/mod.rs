//! `prepare-data`: from a dataset name (or an image folder, or a CSV) to a verified,
//! extracted, catalogued and split dataset under the data dir.
//!
//! The steps, each in its own module: fetch and verify every file ([`crate::fetch`]), extract
//! them all-or-nothing ([`extract`]), read the annotations ([`crate::catalog`]), check every
//! image on disk, compare the counts with the manifest, and write the canonical split
//! ([`crate::split`]). Whatever is accepted despite a problem (`--allow-unverified`,
//! `--allow-missing`) is recorded as a warning in the summary and in `prepared.json`.

mod extract;
mod summary;

use std::path::{Path, PathBuf};

pub use extract::ExtractOutcome;
pub use summary::{CheckCounts, PrepareSummary, SplitSummary};

use crate::archive::ArchiveError;
use crate::catalog::{self, Catalog, CatalogError, ImageCheck};
use crate::dataset::{DatasetDir, DatasetRef, PreparedInfo};
use crate::fetch::{self, FetchError, FetchOptions, Fetched};
use crate::fsutil;
use crate::manifest::{self, CanonicalSplit, ExpectedCounts, Manifest, ManifestError, SourceFile};
use crate::progress::Progress;
use crate::split::{self, Part, SplitError, SplitMethod, SplitSpec};

/// How many paths an error message lists before saying "and N more".
const LISTED_IN_MESSAGES: usize = 10;

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
    /// Accept files that do not match the manifest (recorded as a warning).
    pub allow_unverified: bool,
    /// Leave out listed images that are missing or unreadable instead of failing.
    pub allow_missing: bool,
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
        "--archive {path} matches no file of the {dataset} manifest; expected one of: {expected}"
    )]
    UnmatchedArchive {
        /// The file given.
        path: PathBuf,
        /// The dataset.
        dataset: String,
        /// The manifest's file names.
        expected: String,
    },
    /// Listed images are missing or unreadable.
    #[error("{}", bad_images_message(.check, .report))]
    BadImages {
        /// What the check found.
        check: Box<ImageCheck>,
        /// The full report.
        report: PathBuf,
    },
    /// The catalogue's counts differ from the manifest's.
    #[error(
        "{what}: found {found}, the manifest expects {expected}; the copy is incomplete or not \
         the published one (pass --allow-unverified to accept it, recorded as a warning)"
    )]
    CountMismatch {
        /// What was counted.
        what: String,
        /// The manifest's count.
        expected: usize,
        /// The count found.
        found: usize,
    },
    /// A folder's name clashes with a built-in dataset.
    #[error("`{0}` is the name of a built-in dataset; choose another folder name with --name")]
    NameClash(String),
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

fn bad_images_message(check: &ImageCheck, report: &Path) -> String {
    let mut text = String::new();
    let mut list = |title: String, paths: Vec<String>| {
        if paths.is_empty() {
            return;
        }
        text.push_str(&format!("{title} ({}):", paths.len()));
        for path in paths.iter().take(LISTED_IN_MESSAGES) {
            text.push_str(&format!("\n  {path}"));
        }
        if paths.len() > LISTED_IN_MESSAGES {
            text.push_str(&format!(
                "\n  … and {} more",
                paths.len() - LISTED_IN_MESSAGES
            ));
        }
        text.push('\n');
    };
    list(
        "listed images are missing".to_string(),
        check.missing.clone(),
    );
    list(
        "listed images are unreadable".to_string(),
        check
            .unreadable
            .iter()
            .map(|(p, why)| format!("{p}: {why}"))
            .collect(),
    );
    list(
        "paths are listed twice".to_string(),
        check.duplicates.clone(),
    );
    text.push_str(&format!(
        "The full list is in {}. Consider removing the dataset's root/ folder and running \
         prepare-data again (to re-extract), downloading the archive again, or passing \
         --allow-missing to leave these images out.",
        report.display()
    ));
    text
}

/// Prepares a dataset; see the module documentation.
pub fn prepare(
    dataset: &DatasetRef,
    options: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    match dataset {
        DatasetRef::Named(name) => {
            let manifest = match &options.manifest {
                Some(path) => Manifest::load(path)?,
                None => Manifest::built_in(name)?,
            };
            prepare_manifest(&manifest, options)
        }
        DatasetRef::Path(path) => match &options.manifest {
            Some(manifest) => prepare_manifest(&Manifest::load(manifest)?, options),
            None => prepare_path(path, options),
        },
    }
}

/// Prepares a dataset described by a manifest.
fn prepare_manifest(
    manifest: &Manifest,
    options: &PrepareOptions,
) -> Result<PrepareSummary, PrepareError> {
    let dir = DatasetDir::new(&options.data_dir, &manifest.name);
    let assigned = assign_archives(manifest, &options.archives)?;
    let mut files = Vec::new();
    for (file, local) in manifest.files.iter().zip(assigned) {
        let fetched = match local {
            Some(path) => fetch::verify_local(
                file,
                &path,
                "--archive",
                options.allow_unverified,
                options.progress,
            )?,
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
    let extraction = extract::extract_root(&dir, &files, manifest.limits, options.progress)?;
    let files: Vec<Fetched> = files.into_iter().map(|(f, _)| f).collect();
    let verified = PrepareSummary::all_verified(&files);

    let catalog_root = dir.root().join(&manifest.catalog.root);
    let mut catalog = catalog::read(manifest.catalog.format, &manifest.name, &catalog_root)?;
    let mut warnings = Vec::new();
    let check = check_catalog(&mut catalog, &dir, options, &mut warnings)?;

    let mut count_problems = Vec::new();
    let expected = manifest.expected;
    compare_counts(
        "images in the catalogue",
        expected.images,
        catalog.images.len(),
        &mut count_problems,
    );
    compare_counts(
        "classes with images",
        expected.classes,
        catalog.classes_with_images(),
        &mut count_problems,
    );

    let spec = SplitSpec {
        method: SplitMethod::Canonical,
        folds: None,
    };
    let split = split::make_split(&catalog, Some(&manifest.split), spec)?;
    let counts = split.counts(&catalog);
    let (expected_train, expected_test) = match &manifest.split {
        CanonicalSplit::ClassRange {
            expected_train,
            expected_test,
            ..
        }
        | CanonicalSplit::Annotated {
            expected_train,
            expected_test,
        } => (*expected_train, *expected_test),
    };
    for (part, wanted) in [(Part::Train, expected_train), (Part::Test, expected_test)] {
        let got = counts.get(&part).cloned().unwrap_or_default();
        let ExpectedCounts { images, classes } = wanted;
        compare_counts(
            &format!("{part} images"),
            images,
            got.images,
            &mut count_problems,
        );
        compare_counts(
            &format!("{part} classes"),
            classes,
            got.classes,
            &mut count_problems,
        );
    }
    if let Some(problem) = count_problems.first() {
        if verified && !options.allow_unverified {
            return Err(problem.clone().into_error());
        }
        warnings.extend(count_problems.iter().map(CountProblem::warning));
    }

    let info = PreparedInfo {
        dataset: manifest.name.clone(),
        root: absolute(&catalog_root),
        canonical_split: Some(manifest.split.clone()),
        default_split: spec.name(),
    };
    let mut notes = manifest.notes.clone();
    notes.append(&mut catalog.notes);
    let details = Details {
        title: manifest.title.clone(),
        files,
        extraction: Some(extraction),
        check,
        warnings,
        notes,
    };
    finish(&dir, catalog, split, info, details)
}

/// Prepares an image folder or CSV file in place (images are not copied).
fn prepare_path(path: &Path, options: &PrepareOptions) -> Result<PrepareSummary, PrepareError> {
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| catalog::generic::name_for(path));
    if manifest::built_in_names().any(|n| n == name) {
        return Err(PrepareError::NameClash(name));
    }
    let dir = DatasetDir::new(&options.data_dir, &name);
    let mut catalog = if path.is_dir() {
        catalog::generic::read_folder(path)?
    } else {
        catalog::generic::read_csv(path)?
    };
    catalog.dataset = name.clone();
    catalog.root = absolute(&catalog.root);
    let mut warnings = Vec::new();
    let check = check_catalog(&mut catalog, &dir, options, &mut warnings)?;
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
    };
    let notes = vec![format!(
        "{} has no canonical split; wrote the seeded split {} (change it with `lifted split`)",
        path.display(),
        spec.name()
    )];
    let mut all_notes = notes;
    all_notes.append(&mut catalog.notes);
    let title = format!("images from {}", path.display());
    let details = Details {
        title,
        files: Vec::new(),
        extraction: None,
        check,
        warnings,
        notes: all_notes,
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
}

/// Writes the catalogue, split and summary, and returns the summary.
fn finish(
    dir: &DatasetDir,
    catalog: Catalog,
    split: split::Split,
    info: PreparedInfo,
    details: Details,
) -> Result<PrepareSummary, PrepareError> {
    let Details {
        title,
        files,
        extraction,
        check,
        warnings,
        notes,
    } = details;
    catalog::write_catalog_csv(&catalog, &dir.catalog_csv())?;
    let written = split::write_split(&catalog, &split, &dir.split(&info.default_split))?;
    let unverified = !PrepareSummary::all_verified(&files);
    let summary = PrepareSummary {
        title,
        dir: dir.dir.clone(),
        unverified,
        images: catalog.images.len(),
        classes: catalog.classes_with_images(),
        catalog_csv: dir.catalog_csv(),
        split: SplitSummary {
            name: info.default_split.clone(),
            hash: written.hash,
            csv: written.csv,
            json: written.json,
            parts: split.counts(&catalog),
        },
        info,
        files,
        extraction,
        image_check: check,
        warnings,
        notes,
    };
    let json = serde_json::to_vec_pretty(&summary).expect("a summary serialises");
    let path = dir.prepared_json();
    fsutil::write_atomic(&path, &json).map_err(|source| PrepareError::Io { path, source })?;
    Ok(summary)
}

/// Checks every image; writes `image-check.json`; fails or drops bad images per the options.
fn check_catalog(
    catalog: &mut Catalog,
    dir: &DatasetDir,
    options: &PrepareOptions,
    warnings: &mut Vec<String>,
) -> Result<CheckCounts, PrepareError> {
    let check = catalog::check_images(catalog, options.progress);
    let report = dir.image_check();
    let json = serde_json::to_vec_pretty(&check).expect("a check serialises");
    fsutil::write_atomic(&report, &json).map_err(|source| PrepareError::Io {
        path: report.clone(),
        source,
    })?;
    let has_bad = !check.missing.is_empty() || !check.unreadable.is_empty();
    if !check.duplicates.is_empty() || (has_bad && !options.allow_missing) {
        return Err(PrepareError::BadImages {
            check: Box::new(check),
            report,
        });
    }
    let mut bad: Vec<String> = check.missing.clone();
    bad.extend(check.unreadable.iter().map(|(p, _)| p.clone()));
    if !bad.is_empty() {
        catalog.remove_images(
            &bad,
            "missing or unreadable, left out because of --allow-missing",
        );
        warnings.push(format!(
            "{} missing and {} unreadable images were left out (--allow-missing); see {}",
            check.missing.len(),
            check.unreadable.len(),
            report.display()
        ));
    }
    Ok(CheckCounts {
        missing: check.missing.len(),
        unreadable: check.unreadable.len(),
        unlisted: check.unlisted.len(),
        report,
    })
}

/// Pairs each manifest file with the `--archive` file given for it, if any.
fn assign_archives(
    manifest: &Manifest,
    archives: &[PathBuf],
) -> Result<Vec<Option<PathBuf>>, PrepareError> {
    let mut assigned: Vec<Option<PathBuf>> = vec![None; manifest.files.len()];
    for path in archives {
        let index = match_archive(&manifest.files, path).filter(|&i| assigned[i].is_none());
        match index {
            Some(i) => assigned[i] = Some(path.clone()),
            None => {
                return Err(PrepareError::UnmatchedArchive {
                    path: path.clone(),
                    dataset: manifest.name.clone(),
                    expected: manifest
                        .files
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
    }
    Ok(assigned)
}

/// The manifest file an archive stands for: same file name, else the only file of its kind.
fn match_archive(files: &[SourceFile], path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_string_lossy();
    if let Some(i) = files.iter().position(|f| f.name == name) {
        return Some(i);
    }
    let mut head = [0u8; 32];
    let n = std::io::Read::read(&mut std::fs::File::open(path).ok()?, &mut head).ok()?;
    let same_kind: Vec<usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| head[..n].starts_with(f.kind.magic()))
        .map(|(i, _)| i)
        .collect();
    match same_kind.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

/// A count that differs from the manifest.
#[derive(Debug, Clone)]
struct CountProblem {
    what: String,
    expected: usize,
    found: usize,
}

impl CountProblem {
    fn into_error(self) -> PrepareError {
        PrepareError::CountMismatch {
            what: self.what,
            expected: self.expected,
            found: self.found,
        }
    }

    fn warning(&self) -> String {
        format!(
            "{}: found {}, the manifest expects {}",
            self.what, self.found, self.expected
        )
    }
}

fn compare_counts(what: &str, expected: usize, found: usize, problems: &mut Vec<CountProblem>) {
    if expected != found {
        problems.push(CountProblem {
            what: what.to_string(),
            expected,
            found,
        });
    }
}

/// `path` made absolute against the current folder (without resolving links).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
