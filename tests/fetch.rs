//! Downloads against the local fault-injecting server: resume, ignored ranges, mirrors,
//! HTML pages, wrong sizes and hashes, stalls; nothing corrupted is ever accepted.

use std::path::Path;
use std::time::Duration;

use lifted::Progress;
use lifted::fetch::{FetchError, Fetched, Verification, digest_bytes, fetch_file};
use lifted::manifest::{FileKind, Source, SourceFile};

use crate::support::http::{Fault, Server};
use crate::support::{fast_fetch, write};

/// 64 KiB that start like a gzip file.
fn body() -> Vec<u8> {
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00];
    let mut x: u32 = 12345;
    while bytes.len() < 65536 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((x >> 16) as u8);
    }
    bytes
}

fn entry(bytes: &[u8], urls: &[String]) -> SourceFile {
    let digests = digest_bytes(bytes, true);
    SourceFile {
        name: "data.tgz".to_string(),
        size: Some(digests.size),
        sha256: Some(digests.sha256),
        md5: digests.md5,
        sha256_prefix: None,
        kind: FileKind::TarGz,
        sources: urls
            .iter()
            .map(|url| Source {
                url: url.clone(),
                note: None,
            })
            .collect(),
    }
}

fn fetch(file: &SourceFile, dir: &Path) -> Result<Fetched, FetchError> {
    fetch_file(
        file,
        dir,
        &fast_fetch(),
        false,
        &|_| None,
        Progress::hidden(),
    )
}

fn ranges(server: &Server, path: &str) -> Vec<Option<String>> {
    server
        .requests_for(path)
        .into_iter()
        .map(|r| r.range)
        .collect()
}

#[test]
fn downloads_and_verifies() {
    let server = Server::start();
    let bytes = body();
    server.route("/a", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let fetched = fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap();
    assert_eq!(fetched.verification, Verification::Verified);
    assert_eq!(fetched.origin, server.url("/a"));
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
    assert!(!dir.path().join("data.tgz.part").exists());
}

#[test]
fn dropped_connection_is_resumed_with_range() {
    let server = Server::start();
    let bytes = body();
    server.route(
        "/a",
        bytes.clone(),
        vec![Fault::DropAfter(20_000)],
        Fault::Serve,
    );
    let dir = tempfile::tempdir().unwrap();
    fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap();
    assert_eq!(
        ranges(&server, "/a"),
        vec![None, Some("bytes=20000-".to_string())]
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn server_ignoring_range_restarts_cleanly() {
    let server = Server::start();
    let bytes = body();
    server.route(
        "/a",
        bytes.clone(),
        vec![Fault::DropAfter(20_000)],
        Fault::IgnoreRange,
    );
    let dir = tempfile::tempdir().unwrap();
    fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap();
    // The resume was asked for, answered with the whole file, and not appended.
    assert_eq!(
        ranges(&server, "/a"),
        vec![None, Some("bytes=20000-".to_string())]
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn mismatched_content_range_is_not_appended() {
    let server = Server::start();
    let bytes = body();
    let faults = vec![Fault::DropAfter(20_000), Fault::WrongContentRange];
    server.route("/a", bytes.clone(), faults, Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap();
    assert_eq!(
        ranges(&server, "/a"),
        vec![None, Some("bytes=20000-".to_string()), None]
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn range_not_satisfiable_starts_over() {
    // The manifest gives no size, and the part file already has every byte: the server
    // answers 416, the part is discarded and downloaded again, then checked by hash.
    let server = Server::start();
    let bytes = body();
    server.route("/a", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let mut file = entry(&bytes, &[server.url("/a")]);
    file.size = None;
    write(dir.path(), "data.tgz.part", &bytes);
    fetch(&file, dir.path()).unwrap();
    assert_eq!(
        ranges(&server, "/a"),
        vec![Some("bytes=65536-".to_string()), None]
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn leftover_part_file_is_resumed() {
    let server = Server::start();
    let bytes = body();
    server.route("/a", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data.tgz.part", &bytes[..30_000]);
    fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap();
    assert_eq!(
        ranges(&server, "/a"),
        vec![Some("bytes=30000-".to_string())]
    );
    assert_eq!(server.bytes_sent("/a"), 65536 - 30_000);
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn not_found_on_first_mirror_falls_back_to_next() {
    let server = Server::start();
    let bytes = body();
    server.route("/good", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let urls = [server.url("/missing"), server.url("/good")];
    let fetched = fetch(&entry(&bytes, &urls), dir.path()).unwrap();
    assert_eq!(fetched.origin, server.url("/good"));
    assert_eq!(
        server.requests_for("/missing").len(),
        1,
        "a 404 is not retried"
    );
}

#[test]
fn server_error_falls_back_to_next_mirror() {
    let server = Server::start();
    let bytes = body();
    server.route("/broken", bytes.clone(), vec![], Fault::Status(500));
    server.route("/good", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let fetched = fetch(
        &entry(&bytes, &[server.url("/broken"), server.url("/good")]),
        dir.path(),
    )
    .unwrap();
    assert_eq!(fetched.origin, server.url("/good"));
}

#[test]
fn html_page_instead_of_archive_is_named() {
    let server = Server::start();
    let bytes = body();
    server.route("/drive", bytes.clone(), vec![], Fault::Html);
    server.route("/good", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&entry(&bytes, &[server.url("/drive")]), dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("the server sent an HTML page titled \"Google Drive - Virus scan warning\""),
        "{text}"
    );
    assert!(!dir.path().join("data.tgz").exists() && !dir.path().join("data.tgz.part").exists());
    // With a working mirror after it, the page is skipped.
    let fetched = fetch(
        &entry(&bytes, &[server.url("/drive"), server.url("/good")]),
        dir.path(),
    )
    .unwrap();
    assert_eq!(fetched.origin, server.url("/good"));
}

#[test]
fn wrong_size_is_refused() {
    let server = Server::start();
    let bytes = body();
    server.route("/short", bytes[..40_000].to_vec(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&entry(&bytes, &[server.url("/short")]), dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("the server has 40000 bytes, but the manifest says 65536"),
        "{err}"
    );
    assert!(!dir.path().join("data.tgz").exists());
}

#[test]
fn wrong_hash_is_refused_and_partial_data_removed() {
    let server = Server::start();
    let bytes = body();
    let mut corrupted = bytes.clone();
    corrupted[50_000] ^= 0xff;
    server.route("/bad", corrupted.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let file = entry(&bytes, &[server.url("/bad")]);
    let err = fetch(&file, dir.path()).unwrap_err().to_string();
    let actual = digest_bytes(&corrupted, false).sha256;
    let expected = file.sha256.clone().unwrap();
    assert!(
        err.contains(&format!(
            "SHA-256 mismatch: expected {expected}, actual {actual}"
        )),
        "{err}"
    );
    assert!(!dir.path().join("data.tgz").exists() && !dir.path().join("data.tgz.part").exists());
}

#[test]
fn stalled_server_times_out_then_next_mirror() {
    let server = Server::start();
    let bytes = body();
    server.route(
        "/stall",
        bytes.clone(),
        vec![],
        Fault::Stall(Duration::from_secs(5)),
    );
    server.route("/good", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let fetched = fetch(
        &entry(&bytes, &[server.url("/stall"), server.url("/good")]),
        dir.path(),
    )
    .unwrap();
    assert_eq!(fetched.origin, server.url("/good"));
    // The stalled mirror was tried once plus fast_fetch().retries times.
    assert_eq!(server.requests_for("/stall").len(), 3);
}

#[test]
fn when_every_source_fails_each_is_listed_with_what_to_do() {
    let server = Server::start();
    let bytes = body();
    server.route("/e500", bytes.clone(), vec![], Fault::Status(500));
    server.route("/html", bytes.clone(), vec![], Fault::Html);
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        server.url("/gone"),
        server.url("/e500"),
        server.url("/html"),
        "ftp://cs.example.edu/data.tgz".to_string(),
    ];
    let text = fetch(&entry(&bytes, &urls), dir.path())
        .unwrap_err()
        .to_string();
    for needle in [
        format!("{}: not found (HTTP 404)", urls[0]),
        format!("{}: HTTP 500", urls[1]),
        format!("{}: the server sent an HTML page", urls[2]),
        "ftp://cs.example.edu/data.tgz: ftp URLs cannot be fetched by lifted".to_string(),
        "then give lifted its path as an archive".to_string(),
    ] {
        assert!(text.contains(&needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn an_existing_download_is_hashed_again_and_never_trusted() {
    let server = Server::start();
    let bytes = body();
    server.route("/a", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let mut damaged = bytes.clone();
    damaged[10] ^= 1;
    write(dir.path(), "data.tgz", &damaged);
    let err = fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap_err();
    assert!(matches!(err, FetchError::Rejected { .. }), "{err}");
    // Nothing is deleted or overwritten, and the server was not asked.
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), damaged);
    assert!(server.requests().is_empty());
}

#[test]
fn allow_unverified_accepts_a_mismatch_and_says_why() {
    let server = Server::start();
    let bytes = body();
    let mut other = bytes.clone();
    other[100] ^= 1;
    server.route("/a", other, vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let file = entry(&bytes, &[server.url("/a")]);
    let fetched = fetch_file(
        &file,
        dir.path(),
        &fast_fetch(),
        true,
        &|_| None,
        Progress::hidden(),
    )
    .unwrap();
    match fetched.verification {
        Verification::Unverified { reason } => {
            assert!(reason.contains("SHA-256 mismatch"), "{reason}")
        }
        Verification::Verified => panic!("a mismatch was reported as verified"),
    }
}

#[test]
fn a_file_without_published_hash_needs_allow_unverified() {
    let server = Server::start();
    let bytes = body();
    server.route("/a", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let mut file = entry(&bytes, &[server.url("/a")]);
    file.sha256 = None;
    file.md5 = None;
    let err = fetch(&file, dir.path()).unwrap_err();
    assert!(matches!(err, FetchError::NoChecksum { .. }), "{err}");
}

#[test]
fn a_server_that_ignores_range_and_keeps_dropping_gives_up() {
    // Each attempt restarts from zero and breaks at the same byte: no attempt makes the part
    // file longer, so the retries run out instead of looping forever.
    let server = Server::start();
    let bytes = body();
    server.route(
        "/a",
        bytes.clone(),
        vec![Fault::DropAfter(20_000)],
        Fault::IgnoreRangeDropAfter(20_000),
    );
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap_err();
    assert!(matches!(err, FetchError::AllSourcesFailed { .. }), "{err}");
    assert_eq!(
        server.requests_for("/a").len(),
        2 + fast_fetch().retries as usize
    );
    assert!(
        err.to_string()
            .contains("20000 bytes received so far are kept"),
        "{err}"
    );
}

#[test]
fn an_html_mirror_does_not_destroy_bytes_kept_from_another() {
    let server = Server::start();
    let bytes = body();
    server.route(
        "/first",
        bytes.clone(),
        vec![Fault::DropAfter(20_000)],
        Fault::Status(404),
    );
    server.route("/drive", bytes.clone(), vec![], Fault::Html);
    server.route("/third", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let urls = [
        server.url("/first"),
        server.url("/drive"),
        server.url("/third"),
    ];
    let fetched = fetch(&entry(&bytes, &urls), dir.path()).unwrap();
    assert_eq!(fetched.origin, server.url("/third"));
    assert_eq!(
        ranges(&server, "/third"),
        vec![Some("bytes=20000-".to_string())]
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn a_resumed_copy_that_fails_its_hash_is_fetched_again_from_zero() {
    // A stale part file from another copy: resuming it gives a wrong hash, so the same mirror
    // is asked once more for the whole file before it is blamed.
    let server = Server::start();
    let bytes = body();
    server.route("/a", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let mut stale = bytes[..30_000].to_vec();
    stale[5] ^= 0xff;
    write(dir.path(), "data.tgz.part", &stale);
    let fetched = fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap();
    assert_eq!(fetched.verification, Verification::Verified);
    assert_eq!(
        ranges(&server, "/a"),
        vec![Some("bytes=30000-".to_string()), None]
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
}

#[test]
fn allow_unverified_still_prefers_a_verified_mirror() {
    let server = Server::start();
    let bytes = body();
    let mut other = bytes.clone();
    other[7] ^= 1;
    server.route("/bad", other, vec![], Fault::Serve);
    server.route("/good", bytes.clone(), vec![], Fault::Serve);
    let dir = tempfile::tempdir().unwrap();
    let file = entry(&bytes, &[server.url("/bad"), server.url("/good")]);
    let fetched = fetch_file(
        &file,
        dir.path(),
        &fast_fetch(),
        true,
        &|_| None,
        Progress::hidden(),
    )
    .unwrap();
    assert_eq!(
        (fetched.verification, fetched.origin),
        (Verification::Verified, server.url("/good"))
    );
    assert_eq!(std::fs::read(dir.path().join("data.tgz")).unwrap(), bytes);
    assert!(!dir.path().join("data.tgz.unverified").exists());
}

#[test]
fn a_body_longer_than_the_manifest_size_is_refused() {
    // Without Content-Length the size is only known at the end of the body.
    let server = Server::start();
    let bytes = body();
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"trailing bytes");
    server.route("/a", longer, vec![], Fault::NoLength);
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&entry(&bytes, &[server.url("/a")]), dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("the server has 65550 bytes, but the manifest says 65536"),
        "{err}"
    );
    assert!(!dir.path().join("data.tgz").exists());
}

/// Issue 12: a busy server (429, 503 with `Retry-After` in seconds or as a date) is asked again
/// after the wait it names, and the same source serves the file.
#[test]
fn a_busy_server_is_asked_again_after_the_wait_it_names() {
    let server = Server::start();
    let bytes = body();
    // An HTTP date has whole seconds: 3 s ahead is at least 2 s ahead.
    let in_three_seconds =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    server.route(
        "/busy",
        bytes.clone(),
        vec![
            Fault::RetryAfter(429, "1".to_string()),
            Fault::RetryAfter(503, in_three_seconds),
        ],
        Fault::Serve,
    );
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let fetched = fetch(&entry(&bytes, &[server.url("/busy")]), dir.path()).unwrap();
    // 1 s for the first answer, then until the date (at least 1 s more).
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    assert_eq!(fetched.origin, server.url("/busy"));
    assert_eq!(fetched.verification, Verification::Verified);
    assert!(fetched.failed.is_empty());
    assert_eq!(server.requests_for("/busy").len(), 3);
    let transfer = fetched.transfer.unwrap();
    assert_eq!(transfer.bytes, bytes.len() as u64);
    assert!(transfer.resumed_from.is_none());
}

/// A source that stays failing, or asks for a longer wait than lifted gives, is left for the
/// next one, and the summary says which served the file and why the others did not.
#[test]
fn a_failing_source_is_left_for_the_next_and_recorded() {
    let server = Server::start();
    let bytes = body();
    server.route("/down", bytes.clone(), vec![], Fault::Status(503));
    server.route(
        "/later",
        bytes.clone(),
        vec![],
        Fault::RetryAfter(429, "3600".to_string()),
    );
    server.route("/ok", bytes.clone(), vec![], Fault::Serve);
    let urls = [server.url("/down"), server.url("/later"), server.url("/ok")];
    let dir = tempfile::tempdir().unwrap();
    let fetched = fetch(&entry(&bytes, &urls), dir.path()).unwrap();
    assert_eq!(fetched.origin, urls[2]);
    assert_eq!(fetched.failed.len(), 2);
    assert_eq!(fetched.failed[0].url, urls[0]);
    assert!(
        fetched.failed[0]
            .reason
            .contains("HTTP 503, still after 3 tries"),
        "{:?}",
        fetched.failed
    );
    assert!(
        fetched.failed[1].reason.contains("asks to wait 3600 s"),
        "{:?}",
        fetched.failed
    );
    // retries = 2: three tries of the failing source, one of the one that asks for an hour.
    assert_eq!(server.requests_for("/down").len(), 3);
    assert_eq!(server.requests_for("/later").len(), 1);
}

/// A real resume is recorded as one; a server that ignores the range starts the file over, and
/// that is not called a resume.
#[test]
fn only_a_real_resume_is_reported_as_one() {
    let bytes = body();
    for (fault, resumed) in [(Fault::Serve, true), (Fault::IgnoreRange, false)] {
        let server = Server::start();
        server.route("/f", bytes.clone(), vec![], fault.clone());
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "data.tgz.part", &bytes[..20_000]);
        let fetched = fetch(&entry(&bytes, &[server.url("/f")]), dir.path()).unwrap();
        assert_eq!(fetched.verification, Verification::Verified, "{fault:?}");
        let transfer = fetched.transfer.unwrap();
        if resumed {
            assert_eq!(transfer.resumed_from, Some(20_000));
            assert_eq!(transfer.bytes, bytes.len() as u64 - 20_000);
        } else {
            assert_eq!(transfer.resumed_from, None, "{fault:?}");
            assert_eq!(transfer.bytes, bytes.len() as u64);
        }
    }
}
