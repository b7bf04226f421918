//! What to do on the command line about an error: the library's errors say what went wrong
//! and what would help in words; this adds the flag that does it (part of the binary).

use std::borrow::Cow;
use std::path::Path;

use lifted::archive::ArchiveError;
use lifted::dataset::DatasetError;
use lifted::fetch::FetchError;
use lifted::manifest::ManifestError;
use lifted::pack::PackError;
use lifted::prepare::PrepareError;
use lifted::split::{ExportError, SplitError};
use lifted::train::TrainError;

/// The command-line advice for `error`, if there is any.
pub fn hint(error: &anyhow::Error) -> Option<Cow<'static, str>> {
    if let Some(name) = unknown_name(error)
        && Path::new(name).exists()
    {
        return Some(Cow::Owned(format!(
            "A bare word is read as a dataset's name. To use the `{name}` here, write it as a \
             path: ./{name}"
        )));
    }
    static_hint(error).map(Cow::Borrowed)
}

/// The name of a dataset the error says is unknown or unprepared.
fn unknown_name(error: &anyhow::Error) -> Option<&str> {
    fn manifest(e: &PrepareError) -> Option<&str> {
        match e {
            PrepareError::Manifest(ManifestError::Unknown { name, .. }) => Some(name),
            _ => None,
        }
    }
    fn dataset(e: &DatasetError) -> Option<&str> {
        match e {
            DatasetError::NotPrepared { name, .. } => Some(name),
            _ => None,
        }
    }
    if let Some(e) = error.downcast_ref::<PrepareError>() {
        return manifest(e);
    }
    if let Some(e) = error.downcast_ref::<DatasetError>() {
        return dataset(e);
    }
    match error.downcast_ref::<PackError>() {
        Some(PackError::Dataset(e)) => return dataset(e),
        Some(_) => return None,
        None => {}
    }
    match error.downcast_ref::<ExportError>() {
        Some(ExportError::Dataset(e)) => return dataset(e),
        Some(_) => return None,
        None => {}
    }
    match error.downcast_ref::<TrainError>() {
        Some(TrainError::Dataset(e)) => dataset(e),
        Some(TrainError::Prepare(e)) => manifest(e),
        _ => None,
    }
}

fn static_hint(error: &anyhow::Error) -> Option<&'static str> {
    if let Some(e) = error.downcast_ref::<PrepareError>() {
        return prepare(e);
    }
    if let Some(e) = error.downcast_ref::<PackError>() {
        return pack(e);
    }
    if let Some(e) = error.downcast_ref::<ExportError>() {
        return match e {
            ExportError::Dataset(e) => dataset(e),
            ExportError::Split(e) => split(e),
            ExportError::RatioWithoutSeed => Some("Pass --seed N along with --ratio R."),
            ExportError::FoldWithoutCount => Some("Pass --folds K along with --fold F."),
            _ => None,
        };
    }
    if let Some(e) = error.downcast_ref::<TrainError>() {
        return train(e);
    }
    None
}

fn prepare(error: &PrepareError) -> Option<&'static str> {
    match error {
        PrepareError::BadImages { advice, .. } if !advice.skipping => Some(
            "Pass --skip-bad-images to leave the missing and unreadable images out (recorded as \
             a warning).",
        ),
        PrepareError::BadName { .. } => {
            Some("Choose the dataset's folder name under the data dir with --name.")
        }
        PrepareError::CountMismatch { .. } => {
            Some("Pass --allow-unverified to accept a copy that differs (recorded as a warning).")
        }
        PrepareError::Fetch(e) => fetch(e),
        PrepareError::Archive(ArchiveError::MiscountedZip { .. }) => {
            Some("Pass the unpacked folder with --archive FOLDER.")
        }
        PrepareError::Split(e) => split(e),
        PrepareError::ManifestName { .. } | PrepareError::ManifestForPath { .. } => {
            Some("--manifest FILE must describe the dataset named on the command line.")
        }
        PrepareError::UnmatchedArchive { .. } | PrepareError::DuplicateArchive { .. } => {
            Some("Give each file of the dataset once with --archive PATH.")
        }
        _ => None,
    }
}

fn fetch(error: &FetchError) -> Option<&'static str> {
    match error {
        FetchError::Rejected { .. } | FetchError::NoChecksum { .. } => {
            Some("Pass --allow-unverified to use the file anyway (recorded as a warning).")
        }
        FetchError::AllSourcesFailed { .. } => {
            Some("Pass a file downloaded by hand with --archive PATH.")
        }
        _ => None,
    }
}

fn pack(error: &PackError) -> Option<&'static str> {
    match error {
        PackError::OtherPack { .. } => Some("Pass --force to replace that pack, or choose --out."),
        PackError::OutputTaken { .. } | PackError::OutputName(_) => {
            Some("Choose another folder with --out.")
        }
        PackError::Rejected { .. } => {
            Some("Without --strict such an image is skipped and listed in index.json.")
        }
        PackError::Dataset(e) => dataset(e),
        _ => None,
    }
}

fn dataset(error: &DatasetError) -> Option<&'static str> {
    match error {
        DatasetError::NotPrepared { .. } | DatasetError::PathNotPrepared(_) => Some(
            "Run `lifted prepare-data NAME` first, or point --data-dir at the data dir that \
             holds it.",
        ),
        DatasetError::Inconsistent { .. } | DatasetError::RootMissing { .. } => {
            Some("Run `lifted prepare-data NAME` again.")
        }
        _ => None,
    }
}

fn split(error: &SplitError) -> Option<&'static str> {
    match error {
        SplitError::NoCanonical { .. } => Some("Add --seed N (and --ratio R, default 0.5)."),
        SplitError::BadRatio(_) => Some("Pass --ratio R with 0 < R < 1."),
        SplitError::TooFewFolds(_)
        | SplitError::NoSuchFold { .. }
        | SplitError::FoldsOverClasses { .. } => {
            Some("Pass --folds K (at least 2) and --fold F (0 to K-1).")
        }
        _ => None,
    }
}

fn train(error: &TrainError) -> Option<&'static str> {
    match error {
        TrainError::NonFinite { .. } => Some("Try a lower --lr, or --normalize-embeddings."),
        TrainError::RunExists(_) => {
            Some("Resume it with --resume RUN_DIR, or start another run with --out RUN_DIR.")
        }
        TrainError::Dataset(e) => dataset(e),
        TrainError::Pack(e) => pack(e),
        TrainError::Prepare(e) => prepare(e),
        _ => None,
    }
}
