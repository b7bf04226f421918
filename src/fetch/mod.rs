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
         Consider downloading it again; or, if you trust this copy, pass --allow-unverified to \
         use it anyway.",
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
        "the manifest has no size or hash for {name}, so {path} cannot be verified; pass \
         --allow-unverified to use it anyway"
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
         then pass it with --archive PATH; it is verified like a download."
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
pub fn fetch_file(
    file: &SourceFile,
    dir: &Path,
    options: &FetchOptions,
    allow_unverified: bool,
    bundled: &dyn Fn(&str) -> Option<&'static [u8]>,
    progress: Progress,
) -> Result<Fetched, FetchError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let destination = dir.join(&file.name);
    if destination.exists() {
        return verify_local(file, &destination, "downloads/", allow_unverified, progress);
    }
    let part = fsutil::with_suffix(&destination, ".part");
    let mut failures = Vec::new();
    let mut client = None;
    for source in &file.sources {
        let outcome = match source.scheme() {
            SourceScheme::Unsupported => Err(format!(
                "{} URLs cannot be fetched by lifted; download it by hand",
                source.url.split(':').next().unwrap_or("this kind of")
            )),
            SourceScheme::Bundled(name) => match bundled(&name) {
                Some(bytes) => {
                    fsutil::write_atomic(&part, bytes).map_err(io_err(&part))?;
                    Ok(())
                }
                None => Err(format!("no bundled file named `{name}` in this build")),
            },
            SourceScheme::Http => {
                if client.is_none() {
                    client = Some(build_client(options)?);
                }
                let client = client.as_ref().expect("client was just built");
                download(client, &source.url, &part, file, options, progress)
            }
        };
        if let Err(reason) = outcome {
            failures.push(SourceFailure {
                url: source.url.clone(),
                reason,
            });
            continue;
        }
        let fetched = check(file, &part, &source.url, allow_unverified, progress)?;
        match fetched {
            Ok(mut fetched) => {
                fsutil::rename_durable(&part, &destination).map_err(io_err(&destination))?;
                fetched.path = destination;
                return Ok(fetched);
            }
            Err(mismatches) => {
                fs::remove_file(&part).map_err(io_err(&part))?;
                failures.push(SourceFailure {
                    url: source.url.clone(),
                    reason: format!("wrong file: {}", join_mismatches(&mismatches)),
                });
            }
        }
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
    match check(file, path, origin, allow_unverified, progress)? {
        Ok(fetched) => Ok(fetched),
        Err(mismatches) => Err(FetchError::Rejected {
            name: file.name.clone(),
            path: path.to_path_buf(),
            mismatches,
        }),
    }
}

/// Hashes `path` and compares it with the manifest; a mismatch is `Ok(Err(..))` unless
/// `allow_unverified` turns it into an unverified success.
fn check(
    file: &SourceFile,
    path: &Path,
    origin: &str,
    allow_unverified: bool,
    progress: Progress,
) -> Result<Result<Fetched, Vec<Mismatch>>, FetchError> {
    let size = fs::metadata(path)
        .map_err(|source| FetchError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let bar = progress.bytes(Some(size), format!("verifying {}", file.name));
    let digests = digest_file(path, file.md5.is_some(), &bar).map_err(|source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    bar.finish_and_clear();
    let mismatches = compare(file, &digests);
    let verification = if !file.has_hash() {
        if !allow_unverified {
            return Err(FetchError::NoChecksum {
                name: file.name.clone(),
                path: path.to_path_buf(),
            });
        }
        Verification::Unverified {
            reason: "the manifest publishes no hash for it".to_string(),
        }
    } else if mismatches.is_empty() {
        Verification::Verified
    } else if allow_unverified {
        Verification::Unverified {
            reason: join_mismatches(&mismatches),
        }
    } else {
        return Ok(Err(mismatches));
    };
    Ok(Ok(Fetched {
        name: file.name.clone(),
        path: path.to_path_buf(),
        origin: origin.to_string(),
        digests,
        verification,
    }))
}

/// Tries one HTTP source, with retries and exponential backoff on connection failures.
fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    file: &SourceFile,
    options: &FetchOptions,
    progress: Progress,
) -> Result<(), String> {
    let bar = progress.bytes(file.size, format!("downloading {}", file.name));
    let mut failed_tries = 0u32;
    let result = loop {
        match http::attempt(client, url, part, file, &bar) {
            Ok(()) => break Ok(()),
            Err(http::AttemptError::Local { path, source }) => {
                break Err(format!("cannot write {path}: {source}"));
            }
            Err(e) if e.is_retryable() && (e.made_progress() || failed_tries < options.retries) => {
                if !e.made_progress() {
                    failed_tries += 1;
                }
                let delay = options.backoff * 2u32.saturating_pow(failed_tries.saturating_sub(1));
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
