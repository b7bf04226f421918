//! Getting a dataset's files onto disk, verified: download with mirrors, resume and retries,
//! or take a file the user downloaded by hand.
//!
//! A download goes to `<name>.part` and is renamed to `<name>` only after its size and every
//! published hash match, so a file under its final name is always one that passed. Even so, a
//! file is never trusted because it exists: every run hashes it again.

mod digest;
#[cfg(feature = "download")]
mod download;
#[cfg(feature = "download")]
mod http;
mod sniff;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use digest::{Digests, Mismatch, compare, digest_bytes, digest_file};
pub use sniff::{Sniffed, sniff};

use crate::fsutil;
use crate::manifest::{Source, SourceFile, SourceScheme};
use crate::progress::Progress;

/// The longest wait between two attempts at one source.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Most retries per source.
pub const MAX_RETRIES: u32 = 20;

/// Network settings for downloads.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Extra attempts per source after a connection failure that made no progress.
    pub retries: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub backoff: Duration,
    /// Longest wait to connect.
    pub connect_timeout: Duration,
    /// Longest wait for the response to start, and for each read of the body.
    pub read_timeout: Duration,
    /// The User-Agent header (some hosts refuse clients that do not look like browsers).
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            retries: 4,
            backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            user_agent: format!(
                "Mozilla/5.0 (X11; Linux x86_64) lifted/{}",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }
}

/// A file ready to use, and how it was checked.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    /// The manifest's file name.
    pub name: String,
    /// Where the file is.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub path: PathBuf,
    /// Where it came from: a URL, `--archive`, or `downloads/` (an earlier run).
    pub origin: String,
    /// Its size and hashes.
    pub digests: Digests,
    /// Whether it matched the manifest.
    pub verification: Verification,
    /// How the download went (absent for a file already on disk or bundled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
    /// The sources tried before the one that served it, and why each failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<SourceFailure>,
}

/// How a download went.
#[derive(Debug, Clone, Serialize)]
pub struct Transfer {
    /// Seconds spent on the source that served the file.
    pub seconds: f64,
    /// Bytes it sent.
    pub bytes: u64,
    /// Its speed.
    pub bytes_per_s: f64,
    /// Where a download kept from an earlier run was resumed, if it was.
    pub resumed_from: Option<u64>,
}

/// Whether a file matched its manifest entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verification {
    /// Size and every published hash matched.
    Verified,
    /// Accepted with `--allow-unverified` although it did not match (or had nothing to match).
    Unverified {
        /// Why it is unverified.
        reason: String,
    },
}

/// One source that did not work, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFailure {
    /// The URL.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

/// Errors from fetching or verifying a dataset file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// No source produced a verified file.
    #[error("{}", all_failed_message(.file, .failures, .destination, *.kept))]
    AllSourcesFailed {
        /// The manifest's file name.
        file: String,
        /// Every source tried, with its failure.
        failures: Vec<SourceFailure>,
        /// Where the file would have gone.
        destination: PathBuf,
        /// Bytes of a partial download kept for the next run, if any.
        kept: Option<u64>,
    },
    /// A file the user supplied does not match the manifest.
    #[error(
        "{path} does not match the manifest entry for {name}: {}\n\
         Consider deleting it and downloading it again (prepare-data downloads a missing file \
         itself); or, if you trust this copy, accept it unverified (recorded as a warning).",
        join_mismatches(.mismatches)
    )]
    Rejected {
        /// The manifest's file name.
        name: String,
        /// The file.
        path: PathBuf,
        /// How it differs.
        mismatches: Vec<Mismatch>,
    },
    /// The manifest has no hash for this file, so it cannot be verified.
    #[error(
        "the manifest publishes no hash for {name}, so {path} cannot be verified; it can only \
         be accepted unverified (recorded as a warning)"
    )]
    NoChecksum {
        /// The manifest's file name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A local file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Network settings that cannot work.
    #[error(
        "retries must be 0 to {MAX_RETRIES} and timeouts above 0 (got {retries} retries, \
         timeouts {connect_timeout:?} and {read_timeout:?})"
    )]
    Options {
        /// Retries per source.
        retries: u32,
        /// The connection time-out.
        connect_timeout: Duration,
        /// The read time-out.
        read_timeout: Duration,
    },
    /// The HTTP client could not be set up.
    #[cfg(feature = "download")]
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
}

fn join_mismatches(mismatches: &[Mismatch]) -> String {
    mismatches
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn all_failed_message(
    file: &str,
    failures: &[SourceFailure],
    destination: &Path,
    kept: Option<u64>,
) -> String {
    let mut text = format!("could not get a verified copy of {file} from any source:");
    for failure in failures {
        text.push_str(&format!("\n  - {}: {}", failure.url, failure.reason));
    }
    text.push_str(&format!(
        "\nDownload {file} by hand (from any source above, with a browser or an FTP client), \
         then give lifted its path as an archive; it is verified like a download."
    ));
    if let Some(bytes) = kept {
        text.push_str(&format!(
            " The {bytes} bytes received so far are kept in {}.part; running the same command \
             again resumes from there.",
            destination.display()
        ));
    }
    text
}

/// Makes sure `file` is in `dir`, verified: an earlier verified download is re-hashed, otherwise
/// the sources are tried in order. `bundled` resolves `bundled:` sources.
///
/// With `allow_unverified`, a copy that does not match is kept aside while the remaining
/// sources are tried for a verified one, and used only if none has it.
///
/// # Errors
/// [`FetchError::Options`] for settings out of range; [`FetchError::AllSourcesFailed`] listing
/// every source's failure; [`FetchError::NoChecksum`] when the manifest has no hash and
/// unverified files are not accepted; [`FetchError::Io`] for local files.
pub fn fetch_file(
    file: &SourceFile,
    dir: &Path,
    options: &FetchOptions,
    allow_unverified: bool,
    bundled: &dyn Fn(&str) -> Option<&'static [u8]>,
    progress: Progress,
) -> Result<Fetched, FetchError> {
    check_options(options)?;
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let destination = dir.join(&file.name);
    if destination.exists() {
        return verify_local(file, &destination, "downloads/", allow_unverified, progress);
    }
    let mut run = SourceRun {
        file,
        part: fsutil::with_suffix(&destination, ".part"),
        aside: fsutil::with_suffix(&destination, ".unverified"),
        destination,
        #[cfg(feature = "download")]
        options,
        bundled,
        progress,
        allow_unverified,
        failures: Vec::new(),
        kept_aside: None,
        #[cfg(feature = "download")]
        client: None,
    };
    for source in &file.sources {
        if let Some(fetched) = run.try_source(source)? {
            return Ok(fetched);
        }
    }
    run.finish()
}

fn check_options(options: &FetchOptions) -> Result<(), FetchError> {
    if options.retries > MAX_RETRIES
        || options.connect_timeout.is_zero()
        || options.read_timeout.is_zero()
    {
        return Err(FetchError::Options {
            retries: options.retries,
            connect_timeout: options.connect_timeout,
            read_timeout: options.read_timeout,
        });
    }
    Ok(())
}

/// What one HTTP source gave.
struct Download {
    /// Whether the part file holds bytes from more than one attempt.
    mixed: bool,
    /// Where the kept bytes ended when this source's first attempt resumed them.
    resumed_from: Option<u64>,
    /// Bytes received from this source.
    received: u64,
    /// Seconds spent on this source.
    seconds: f64,
}

/// A copy that did not match, kept aside in case no source has a verified one.
struct KeptAside {
    origin: String,
    digests: Digests,
    mismatches: Vec<Mismatch>,
    transfer: Option<Transfer>,
}

/// The state of one file's walk through its sources.
struct SourceRun<'a> {
    file: &'a SourceFile,
    destination: PathBuf,
    part: PathBuf,
    aside: PathBuf,
    #[cfg(feature = "download")]
    options: &'a FetchOptions,
    bundled: &'a dyn Fn(&str) -> Option<&'static [u8]>,
    progress: Progress,
    allow_unverified: bool,
    failures: Vec<SourceFailure>,
    kept_aside: Option<KeptAside>,
    #[cfg(feature = "download")]
    client: Option<reqwest::blocking::Client>,
}

impl SourceRun<'_> {
    /// Gets the file from `source` into the part file: the transfer for a download, `None` for
    /// a bundled file, or why the source did not work.
    fn obtain(&mut self, source: &Source) -> Result<Result<Option<Download>, String>, FetchError> {
        Ok(match source.scheme() {
            SourceScheme::Unsupported => Err(format!(
                "{} URLs cannot be fetched by lifted; download it by hand",
                source.url.split(':').next().unwrap_or("this kind of")
            )),
            SourceScheme::Bundled(name) => match (self.bundled)(&name) {
                Some(bytes) => {
                    fsutil::write_atomic(&self.part, bytes).map_err(io_error(&self.part))?;
                    Ok(None)
                }
                None => Err(format!(
                    "no bundled file named `{name}` in this build (the sample is compiled in \
                     with the `sample` feature)"
                )),
            },
            #[cfg(feature = "download")]
            SourceScheme::Http => {
                if self.client.is_none() {
                    self.client = Some(download::build_client(self.options)?);
                }
                let client = self.client.as_ref().expect("the client was just built");
                download::download(
                    client,
                    &source.url,
                    &self.part,
                    self.file,
                    self.options,
                    self.progress,
                )
                .map(Some)
            }
            #[cfg(not(feature = "download"))]
            SourceScheme::Http => Err(
                "this build of lifted cannot download (it was built without the `download` \
                 feature); download the file by hand"
                    .to_string(),
            ),
        })
    }

    /// Tries one source: the verified file, or `None` to go on with the next source.
    fn try_source(&mut self, source: &Source) -> Result<Option<Fetched>, FetchError> {
        let fail = |run: &mut Self, reason: String| {
            run.failures.push(SourceFailure {
                url: source.url.clone(),
                reason,
            });
        };
        let mut download = match self.obtain(source)? {
            Ok(download) => download,
            Err(reason) => {
                fail(self, reason);
                return Ok(None);
            }
        };
        let (mut digests, mut mismatches) = examine(self.file, &self.part, self.progress)?;
        if !mismatches.is_empty() && download.as_ref().is_some_and(|d| d.mixed) {
            // The bytes come from several attempts or mirrors: judge this source on a fresh
            // copy before blaming it.
            fs::remove_file(&self.part).map_err(io_error(&self.part))?;
            download = match self.obtain(source)? {
                Ok(download) => download,
                Err(reason) => {
                    fail(self, reason);
                    return Ok(None);
                }
            };
            (digests, mismatches) = examine(self.file, &self.part, self.progress)?;
        }
        let transfer = download.map(|d| Transfer {
            seconds: d.seconds,
            bytes: d.received,
            bytes_per_s: d.received as f64 / d.seconds.max(1e-9),
            resumed_from: d.resumed_from,
        });
        if mismatches.is_empty() && self.file.has_hash() {
            if self.kept_aside.is_some() {
                fs::remove_file(&self.aside).map_err(io_error(&self.aside))?;
            }
            fsutil::rename_durable(&self.part, &self.destination)
                .map_err(io_error(&self.destination))?;
            return Ok(Some(Fetched {
                name: self.file.name.clone(),
                path: self.destination.clone(),
                origin: source.url.clone(),
                digests,
                verification: Verification::Verified,
                transfer,
                failed: std::mem::take(&mut self.failures),
            }));
        }
        if !self.file.has_hash() && !self.allow_unverified {
            return Err(FetchError::NoChecksum {
                name: self.file.name.clone(),
                path: self.part.clone(),
            });
        }
        fail(
            self,
            if mismatches.is_empty() {
                "downloaded, but the manifest publishes no hash to verify it".to_string()
            } else {
                format!("wrong file: {}", join_mismatches(&mismatches))
            },
        );
        if self.allow_unverified && self.kept_aside.is_none() {
            fsutil::rename_durable(&self.part, &self.aside).map_err(io_error(&self.aside))?;
            self.kept_aside = Some(KeptAside {
                origin: source.url.clone(),
                digests,
                mismatches,
                transfer,
            });
        } else {
            fs::remove_file(&self.part).map_err(io_error(&self.part))?;
        }
        Ok(None)
    }

    /// After the last source: the copy kept aside, or the error listing every failure.
    fn finish(mut self) -> Result<Fetched, FetchError> {
        if let Some(kept) = self.kept_aside.take() {
            fsutil::rename_durable(&self.aside, &self.destination)
                .map_err(io_error(&self.destination))?;
            return Ok(Fetched {
                name: self.file.name.clone(),
                path: self.destination,
                origin: kept.origin,
                digests: kept.digests,
                verification: unverified(&kept.mismatches),
                transfer: kept.transfer,
                failed: self.failures,
            });
        }
        let kept = fs::metadata(&self.part)
            .ok()
            .map(|m| m.len())
            .filter(|&n| n > 0);
        Err(FetchError::AllSourcesFailed {
            file: self.file.name.clone(),
            failures: self.failures,
            destination: self.destination,
            kept,
        })
    }
}

/// The record of an unpacked folder given instead of a dataset's files: there is no archive,
/// so no hash to check (the images themselves are checked by the preparation).
pub fn unpacked_folder(folder: &Path) -> Fetched {
    Fetched {
        name: folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        path: folder.to_path_buf(),
        origin: "--archive (an unpacked folder)".to_string(),
        digests: Digests::default(),
        verification: Verification::Unverified {
            reason: "an unpacked folder: there is no archive whose hash could be checked"
                .to_string(),
        },
        transfer: None,
        failed: Vec::new(),
    }
}

/// Verifies a file that is already on disk (given with `--archive`, or downloaded earlier).
///
/// # Errors
/// [`FetchError::Io`] when `path` cannot be read; without `allow_unverified`,
/// [`FetchError::NoChecksum`] when the manifest has no hash for the file and
/// [`FetchError::Rejected`] when the file does not match it.
pub fn verify_local(
    file: &SourceFile,
    path: &Path,
    origin: &str,
    allow_unverified: bool,
    progress: Progress,
) -> Result<Fetched, FetchError> {
    let (digests, mismatches) = examine(file, path, progress)?;
    let verification = if mismatches.is_empty() && file.has_hash() {
        Verification::Verified
    } else if !allow_unverified && !file.has_hash() {
        return Err(FetchError::NoChecksum {
            name: file.name.clone(),
            path: path.to_path_buf(),
        });
    } else if !allow_unverified {
        return Err(FetchError::Rejected {
            name: file.name.clone(),
            path: path.to_path_buf(),
            mismatches,
        });
    } else {
        unverified(&mismatches)
    };
    Ok(Fetched {
        name: file.name.clone(),
        path: path.to_path_buf(),
        origin: origin.to_string(),
        digests,
        verification,
        transfer: None,
        failed: Vec::new(),
    })
}

/// Why an accepted file is unverified.
fn unverified(mismatches: &[Mismatch]) -> Verification {
    Verification::Unverified {
        reason: if mismatches.is_empty() {
            "the manifest publishes no hash for it".to_string()
        } else {
            join_mismatches(mismatches)
        },
    }
}

/// Hashes `path` and compares it with the manifest entry.
fn examine(
    file: &SourceFile,
    path: &Path,
    progress: Progress,
) -> Result<(Digests, Vec<Mismatch>), FetchError> {
    let size = fs::metadata(path).map_err(io_error(path))?.len();
    let bar = progress.bytes(Some(size), format!("verifying {}", file.name));
    let digests = digest_file(path, file.md5.is_some(), &bar).map_err(io_error(path))?;
    bar.finish_and_clear();
    let mismatches = compare(file, &digests);
    Ok((digests, mismatches))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + use<> {
    let path = path.to_path_buf();
    move |source| FetchError::Io { path, source }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::Verified => f.write_str("verified"),
            Verification::Unverified { reason } => write!(f, "UNVERIFIED ({reason})"),
        }
    }
}
