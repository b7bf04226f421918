//! Getting a dataset's files onto disk, verified: download with mirrors, resume and retries,
//! or take a file the user downloaded by hand.
//!
//! A download goes to `<name>.part` and is renamed to `<name>` only after its size and every
//! published hash match, so a file under its final name is always one that passed. Even so, a
//! file is never trusted because it exists: every run hashes it again.

mod digest;
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
use crate::manifest::{SourceFile, SourceScheme};
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
#[derive(Debug)]
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
    #[error("{0}")]
    Options(String),
    /// The HTTP client could not be set up.
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
pub fn fetch_file(
    file: &SourceFile,
    dir: &Path,
    options: &FetchOptions,
    allow_unverified: bool,
    bundled: &dyn Fn(&str) -> Option<&'static [u8]>,
    progress: Progress,
) -> Result<Fetched, FetchError> {
    if options.retries > MAX_RETRIES
        || options.connect_timeout.is_zero()
        || options.read_timeout.is_zero()
    {
        return Err(FetchError::Options(format!(
            "retries must be 0 to {MAX_RETRIES} and timeouts above 0 (got {} retries, timeouts \
             {:?} and {:?})",
            options.retries, options.connect_timeout, options.read_timeout
        )));
    }
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let destination = dir.join(&file.name);
    if destination.exists() {
        return verify_local(file, &destination, "downloads/", allow_unverified, progress);
    }
    let part = fsutil::with_suffix(&destination, ".part");
    let aside = fsutil::with_suffix(&destination, ".unverified");
    let mut failures = Vec::new();
    let mut kept_aside: Option<(String, Digests, Vec<Mismatch>)> = None;
    let mut client = None;
    for source in &file.sources {
        let mut obtain = |part: &Path| -> Result<Result<bool, String>, FetchError> {
            Ok(match source.scheme() {
                SourceScheme::Unsupported => Err(format!(
                    "{} URLs cannot be fetched by lifted; download it by hand",
                    source.url.split(':').next().unwrap_or("this kind of")
                )),
                SourceScheme::Bundled(name) => match bundled(&name) {
                    Some(bytes) => {
                        fsutil::write_atomic(part, bytes).map_err(io_error(part))?;
                        Ok(false)
                    }
                    None => Err(format!("no bundled file named `{name}` in this build")),
                },
                SourceScheme::Http => {
                    if client.is_none() {
                        client = Some(build_client(options)?);
                    }
                    let client = client.as_ref().expect("the client was just built");
                    download(client, &source.url, part, file, options, progress)
                }
            })
        };
        let resumed = match obtain(&part)? {
            Ok(resumed) => resumed,
            Err(reason) => {
                failures.push(SourceFailure {
                    url: source.url.clone(),
                    reason,
                });
                continue;
            }
        };
        let (mut digests, mut mismatches) = examine(file, &part, progress)?;
        if !mismatches.is_empty() && resumed {
            // The bytes may come from several attempts or mirrors: judge this source on a
            // fresh copy before blaming it.
            fs::remove_file(&part).map_err(io_error(&part))?;
            if let Err(reason) = obtain(&part)? {
                failures.push(SourceFailure {
                    url: source.url.clone(),
                    reason,
                });
                continue;
            }
            (digests, mismatches) = examine(file, &part, progress)?;
        }
        if mismatches.is_empty() && file.has_hash() {
            if kept_aside.is_some() {
                fs::remove_file(&aside).map_err(io_error(&aside))?;
            }
            fsutil::rename_durable(&part, &destination).map_err(io_error(&destination))?;
            return Ok(Fetched {
                name: file.name.clone(),
                path: destination,
                origin: source.url.clone(),
                digests,
                verification: Verification::Verified,
            });
        }
        if !file.has_hash() && !allow_unverified {
            return Err(FetchError::NoChecksum {
                name: file.name.clone(),
                path: part,
            });
        }
        failures.push(SourceFailure {
            url: source.url.clone(),
            reason: if mismatches.is_empty() {
                "downloaded, but the manifest publishes no hash to verify it".to_string()
            } else {
                format!("wrong file: {}", join_mismatches(&mismatches))
            },
        });
        if allow_unverified && kept_aside.is_none() {
            fsutil::rename_durable(&part, &aside).map_err(io_error(&aside))?;
            kept_aside = Some((source.url.clone(), digests, mismatches));
        } else {
            fs::remove_file(&part).map_err(io_error(&part))?;
        }
    }
    if let Some((origin, digests, mismatches)) = kept_aside {
        fsutil::rename_durable(&aside, &destination).map_err(io_error(&destination))?;
        return Ok(Fetched {
            name: file.name.clone(),
            path: destination,
            origin,
            digests,
            verification: unverified(&mismatches),
        });
    }
    let kept = fs::metadata(&part).ok().map(|m| m.len()).filter(|&n| n > 0);
    Err(FetchError::AllSourcesFailed {
        file: file.name.clone(),
        failures,
        destination,
        kept,
    })
}

/// Verifies a file that is already on disk (given with `--archive`, or downloaded earlier).
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

/// Tries one HTTP source, with retries and exponential backoff on connection failures; an
/// attempt that made the part file longer does not use up a retry. Returns whether the
/// download resumed from bytes kept earlier.
fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    file: &SourceFile,
    options: &FetchOptions,
    progress: Progress,
) -> Result<bool, String> {
    let length = || fs::metadata(part).map_or(0, |m| m.len());
    let bar = progress.bytes(file.size, format!("downloading {}", file.name));
    let mut failed_tries = 0u32;
    let mut resumed = false;
    let result = loop {
        let before = length();
        resumed |= before > 0;
        match http::attempt(client, url, part, file, &bar) {
            Ok(()) => break Ok(resumed),
            Err(http::AttemptError::Local { path, source }) => {
                break Err(format!("cannot write {path}: {source}"));
            }
            Err(e) if e.is_retryable() => {
                let progressed = length() > before;
                if !progressed {
                    failed_tries += 1;
                    if failed_tries > options.retries {
                        break Err(chain(&e));
                    }
                }
                let delay = (options.backoff * 2u32.saturating_pow(failed_tries.saturating_sub(1)))
                    .min(MAX_BACKOFF);
                bar.println(format!("{url}: {}; retrying in {delay:?}", chain(&e)));
                std::thread::sleep(delay);
            }
            Err(e) => break Err(chain(&e)),
        }
    };
    bar.finish_and_clear();
    result
}

fn build_client(options: &FetchOptions) -> Result<reqwest::blocking::Client, FetchError> {
    // reqwest is built without a default TLS crypto provider; install ring's once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .user_agent(options.user_agent.clone())
        .connect_timeout(options.connect_timeout)
        .timeout(options.read_timeout)
        .build()
        .map_err(FetchError::Client)
}

/// An error and its sources, joined with `: `.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verification::Verified => f.write_str("verified"),
            Verification::Unverified { reason } => write!(f, "UNVERIFIED ({reason})"),
        }
    }
}
