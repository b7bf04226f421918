//! Downloading one source over HTTP(S) into the part file (the `download` feature): retries
//! with backoff, waits for busy servers, resumes with ranges (see `docs/prepare-data.md`).

use std::fs;
use std::path::Path;

use super::{Download, FetchError, FetchOptions, MAX_BACKOFF, http};
use crate::chain::chain;
use crate::manifest::SourceFile;
use crate::progress::Progress;

/// Tries one HTTP source. Connection failures are retried with exponential backoff (an attempt
/// that made the part file longer does not use up a retry); a busy or failing server (429, 5xx)
/// is asked again after the wait its `Retry-After` names (or the backoff), up to the same number
/// of times, unless it asks for more than [`MAX_BACKOFF`]. A server that ignores a range request
/// starts the file over, and the download no longer counts as resumed.
pub(super) fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    file: &SourceFile,
    options: &FetchOptions,
    progress: Progress,
) -> Result<Download, String> {
    let length = || fs::metadata(part).map_or(0, |m| m.len());
    let bar = progress.bytes(file.size, format!("downloading {}", file.name));
    let started = std::time::Instant::now();
    let kept_at_start = length();
    let (mut failed_tries, mut busy_tries) = (0u32, 0u32);
    let mut mixed = false;
    let mut resumed_from = None;
    let result = loop {
        let before = length();
        let mut appended = false;
        let outcome = http::attempt(client, url, part, file, &bar, &mut appended);
        if appended {
            mixed |= before > 0;
            resumed_from = resumed_from.or(Some(before));
        } else if before > 0 {
            mixed = false; // the server sent the file from its start again
            resumed_from = None;
        }
        match outcome {
            Ok(()) => break Ok(()),
            Err(http::AttemptError::Local { path, source }) => {
                break Err(format!("cannot write {path}: {source}"));
            }
            Err(http::AttemptError::Busy {
                status,
                retry_after,
            }) => {
                busy_tries += 1;
                let asked = retry_after
                    .unwrap_or(options.backoff * 2u32.saturating_pow(busy_tries.saturating_sub(1)));
                if busy_tries > options.retries {
                    break Err(format!(
                        "HTTP {status}, still after {} tries",
                        options.retries + 1
                    ));
                }
                if asked > MAX_BACKOFF {
                    break Err(format!(
                        "HTTP {status}; the server asks to wait {} s, more than lifted waits ({} s)",
                        asked.as_secs(),
                        MAX_BACKOFF.as_secs()
                    ));
                }
                bar.set_message(format!(
                    "downloading {}: HTTP {status}, waiting {} s (try {} of {})",
                    file.name,
                    asked.as_secs_f64().ceil(),
                    busy_tries + 1,
                    options.retries + 1
                ));
                std::thread::sleep(asked);
                bar.set_message(format!("downloading {}", file.name));
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
    result.map(|()| {
        let end = length();
        let received = if resumed_from.is_some() {
            end.saturating_sub(kept_at_start)
        } else {
            end
        };
        Download {
            mixed,
            resumed_from: resumed_from.filter(|&b| b > 0),
            received,
            seconds: started.elapsed().as_secs_f64(),
        }
    })
}

pub(super) fn build_client(
    options: &FetchOptions,
) -> Result<reqwest::blocking::Client, FetchError> {
    // reqwest is built without a default TLS crypto provider; install ring's once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .user_agent(options.user_agent.clone())
        .connect_timeout(options.connect_timeout)
        .timeout(options.read_timeout)
        .build()
        .map_err(FetchError::Client)
}
