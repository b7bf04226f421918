//! One HTTP download attempt into a `.part` file, resuming from what the file already holds.
//!
//! The resume rules are strict, because appending the wrong bytes corrupts a multi-gigabyte
//! download silently until the final hash check:
//! - a request for `bytes=N-` is appended only when the answer is `206` with a
//!   `Content-Range: bytes N-(T-1)/T` that starts exactly at `N` (and `T` is the manifest size);
//! - a `200` means the server ignored the range: the part file is truncated and refilled;
//! - a `416` (or a `206` whose range does not match) discards the part; the next attempt
//!   starts over. A part that already has the manifest size is not requested at all.
//!
//! The first bytes of a fresh body are sniffed before the part file is touched, so an HTML
//! page served instead of the archive is named as such and the bytes kept from earlier
//! attempts (perhaps from another mirror) survive.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use indicatif::ProgressBar;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_RANGE, RANGE};

use super::sniff::{SNIFF_LEN, Sniffed, sniff};
use crate::manifest::SourceFile;

/// Why one attempt failed, and whether trying the same source again can help.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    /// The server answered 404.
    #[error("not found (HTTP 404)")]
    NotFound,
    /// The server answered another error status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The server is busy or failing for now (429, or a 5xx): worth waiting and asking again.
    #[error("HTTP {status}{}", .retry_after.map_or(String::new(), |d| format!(" (Retry-After {} s)", d.as_secs())))]
    Busy {
        /// The status.
        status: u16,
        /// How long the server asked to wait, if it said.
        retry_after: Option<std::time::Duration>,
    },
    /// The server sent something other than the expected file.
    #[error("the server sent {0} instead of the file")]
    WrongContent(Sniffed),
    /// The server announced or sent a different size than the manifest's.
    #[error("the server has {actual} bytes, but the manifest says {expected}")]
    WrongSize {
        /// The manifest size.
        expected: u64,
        /// The size the server announced or sent.
        actual: u64,
    },
    /// The request failed before a response arrived (refused, timed out, reset).
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    /// The body stopped part-way; the bytes received so far are kept for the next attempt.
    #[error("connection lost after {received} new bytes")]
    Interrupted {
        /// Bytes appended to the part file by this attempt.
        received: u64,
        /// What broke.
        #[source]
        source: io::Error,
    },
    /// The server's answer to a resume cannot be appended; the part file was discarded.
    #[error("cannot resume: {0}; starting over")]
    Restart(String),
    /// Reading or writing the part file failed (a local problem, not the server's).
    #[error("cannot write {path}")]
    Local {
        /// The part file.
        path: String,
        /// What broke.
        #[source]
        source: io::Error,
    },
}

impl AttemptError {
    /// Whether another attempt at the same source may succeed.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            AttemptError::Request(_) | AttemptError::Interrupted { .. } | AttemptError::Restart(_)
        )
    }
}

/// Downloads `url` into `part`, resuming from its current length; returns when the body ended
/// cleanly. `appended` is set once the server has answered: whether its bytes go after ones
/// kept from earlier (a real resume), or replace them (a fresh start, as when a server ignores
/// the range). The caller verifies size and hashes afterwards.
pub(crate) fn attempt(
    client: &Client,
    url: &str,
    part: &Path,
    file: &SourceFile,
    bar: &ProgressBar,
    appended: &mut bool,
) -> Result<(), AttemptError> {
    let local = |source| AttemptError::Local {
        path: part.display().to_string(),
        source,
    };
    let mut have = match std::fs::metadata(part) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(local(e)),
    };
    if file.size.is_some_and(|size| have > size) {
        truncate(part).map_err(local)?;
        have = 0;
    }
    if have > 0 && file.size == Some(have) {
        *appended = true;
        return Ok(());
    }

    let mut request = client.get(url);
    if have > 0 {
        request = request.header(RANGE, format!("bytes={have}-"));
    }
    let response = request.send().map_err(AttemptError::Request)?;
    let status = response.status();
    let total = match status {
        StatusCode::PARTIAL_CONTENT => match content_range(&response) {
            Some((start, end, total)) if start == have && end.checked_add(1) == Some(total) => {
                Some(total)
            }
            other => {
                truncate(part).map_err(local)?;
                return Err(AttemptError::Restart(format!(
                    "asked for bytes from {have}, got Content-Range {}",
                    other.map_or("(missing or unreadable)".to_string(), |(s, e, t)| {
                        format!("bytes {s}-{e}/{t}")
                    })
                )));
            }
        },
        StatusCode::OK => {
            have = 0;
            response.content_length()
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            truncate(part).map_err(local)?;
            return Err(AttemptError::Restart(format!(
                "the server cannot send bytes from {have} (HTTP 416)"
            )));
        }
        StatusCode::NOT_FOUND => return Err(AttemptError::NotFound),
        other if other == StatusCode::TOO_MANY_REQUESTS || other.is_server_error() => {
            return Err(AttemptError::Busy {
                status: other.as_u16(),
                retry_after: retry_after(&response),
            });
        }
        other => return Err(AttemptError::Status(other.as_u16())),
    };
    if let (Some(expected), Some(actual)) = (file.size, total)
        && expected != actual
    {
        // Name an HTML page as such rather than by its size.
        let mut response = response;
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let _ = fill(&mut response, &mut head, SNIFF_LEN);
        if let looks @ Sniffed::Html { .. } = sniff(&head, file.kind) {
            return Err(AttemptError::WrongContent(looks));
        }
        return Err(AttemptError::WrongSize { expected, actual });
    }
    bar.set_length(total.or(file.size).unwrap_or(0));
    bar.set_position(have);
    *appended = have > 0;
    receive(response, part, have, file, bar)
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date (RFC 9110).
fn retry_after(response: &Response) -> Option<std::time::Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(value, std::time::SystemTime::now())
}

fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<std::time::Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(std::time::Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

/// Streams the body into the part file, starting at byte `have`.
fn receive(
    mut response: Response,
    part: &Path,
    have: u64,
    file: &SourceFile,
    bar: &ProgressBar,
) -> Result<(), AttemptError> {
    let local = |source| AttemptError::Local {
        path: part.display().to_string(),
        source,
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    let mut out = if have == 0 {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        fill(&mut response, &mut head, SNIFF_LEN)
            .map_err(|source| AttemptError::Interrupted { received, source })?;
        let looks = sniff(&head, file.kind);
        if looks != Sniffed::Expected {
            return Err(AttemptError::WrongContent(looks));
        }
        let mut out = File::create(part).map_err(local)?;
        out.write_all(&head).map_err(local)?;
        received += head.len() as u64;
        bar.inc(head.len() as u64);
        out
    } else {
        OpenOptions::new().append(true).open(part).map_err(local)?
    };
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                out.sync_data().map_err(local)?;
                return Err(AttemptError::Interrupted { received, source });
            }
        };
        received += n as u64;
        if let Some(expected) = file.size
            && have + received > expected
        {
            // A body without (or with a false) Content-Length that runs past the manifest's
            // size is not the file: stop at once instead of writing on.
            drop(out);
            truncate(part).map_err(local)?;
            return Err(AttemptError::WrongSize {
                expected,
                actual: have + received,
            });
        }
        out.write_all(&buf[..n]).map_err(local)?;
        bar.inc(n as u64);
    }
    out.sync_all().map_err(local)?;
    let length = have + received;
    match file.size {
        Some(expected) if length > expected => Err(AttemptError::WrongSize {
            expected,
            actual: length,
        }),
        Some(expected) if length < expected => Err(AttemptError::Interrupted {
            received,
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the body ended at byte {length} of {expected}"),
            ),
        }),
        _ => Ok(()),
    }
}

/// Reads into `head` until it holds `want` bytes or the body ends.
fn fill(reader: &mut impl Read, head: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = [0u8; SNIFF_LEN];
    while head.len() < want {
        match reader.read(&mut chunk[..want - head.len()]) {
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Empties the part file (creating it if needed).
fn truncate(part: &Path) -> io::Result<()> {
    File::create(part).map(drop)
}

/// Parses `Content-Range: bytes START-END/TOTAL`.
fn content_range(response: &Response) -> Option<(u64, u64, u64)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    parse_content_range(value)
}

fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end).then_some((start, end, total))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        use std::time::{Duration, UNIX_EPOCH};
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            super::parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            super::parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            super::parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(super::parse_retry_after("soon", now), None);
    }

    #[test]
    fn content_range_forms() {
        assert_eq!(parse_content_range("bytes 10-99/100"), Some((10, 99, 100)));
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("bytes 10-99/*"), None);
        assert_eq!(parse_content_range("bytes 99-10/100"), None);
    }
}
