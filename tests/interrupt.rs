//! A run killed during download, and one killed during extraction, then run again: each must
//! finish and give exactly what an uninterrupted run gives.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use lifted::manifest::FileKind;

use crate::support::archives::file;
use crate::support::datasets::{self, Fixture, manifest_for, write_manifest};
use crate::support::http::{Fault, Server};
use crate::support::{lifted, stderr, tree, write};

/// The CUB fixture with `count` extra annotation files of `size` pseudo-random bytes.
fn padded_cub(count: usize, size: usize) -> Fixture {
    let mut fixture = datasets::cub();
    let mut x: u64 = 99;
    for i in 0..count {
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                b'a' + (x >> 59) as u8
            })
            .collect();
        fixture.members.push(file(
            &format!("CUB_200_2011/attributes/part_{i:05}.txt"),
            bytes,
        ));
    }
    fixture
}

fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// What a prepared dataset folder holds that must not depend on interruptions.
fn results(data: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = data.join("cub200");
    let mut out = tree(&dir.join("root"));
    for name in [
        "catalog.csv",
        "splits/canonical/split.csv",
        "downloads/CUB_200_2011.tgz",
    ] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            out.push((name.to_string(), bytes));
        }
    }
    out
}

fn prepare(manifest: &Path, data: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = lifted();
    command
        .args(["prepare-data", "cub200", "--quiet", "--manifest"])
        .arg(manifest)
        .arg("--data-dir")
        .arg(data)
        .args(extra);
    command
}

#[test]
fn killed_during_download_then_rerun_gives_identical_results() {
    let fixture = padded_cub(4, 250_000);
    let tgz = datasets::pack(&fixture, FileKind::TarGz);
    assert!(
        tgz.len() > 600_000,
        "the archive is large enough to interrupt"
    );
    let server = Server::start();
    let slow = Fault::Slow {
        chunk: 8192,
        delay: Duration::from_millis(4),
    };
    server.route("/cub.tgz", tgz.clone(), vec![], slow);
    let manifest = manifest_for(
        "cub200",
        &[("CUB_200_2011.tgz", &tgz, vec![server.url("/cub.tgz")])],
        fixture.counts,
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("m.toml");
    write_manifest(&manifest, &manifest_path);

    let interrupted = dir.path().join("interrupted");
    let child = prepare(&manifest_path, &interrupted, &[]).spawn().unwrap();
    wait_until(
        "a third of the archive is sent",
        Duration::from_secs(60),
        || server.bytes_sent("/cub.tgz") > tgz.len() as u64 / 3,
    );
    kill(child);
    let part = interrupted.join("cub200/downloads/CUB_200_2011.tgz.part");
    let kept = std::fs::metadata(&part)
        .expect("the partial download is kept")
        .len();
    assert!(kept > 0 && kept < tgz.len() as u64, "{kept} bytes kept");
    assert!(
        !interrupted
            .join("cub200/downloads/CUB_200_2011.tgz")
            .exists()
    );
    assert!(!interrupted.join("cub200/root").exists());

    server.route("/cub.tgz", tgz.clone(), vec![], Fault::Serve);
    let output = prepare(&manifest_path, &interrupted, &[]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let last = server.requests_for("/cub.tgz").pop().unwrap();
    assert_eq!(
        last.range,
        Some(format!("bytes={kept}-")),
        "the re-run resumed"
    );

    let clean = dir.path().join("clean");
    let output = prepare(&manifest_path, &clean, &[]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(results(&interrupted), results(&clean));
    assert!(!part.exists());
}

#[test]
fn killed_during_extraction_then_rerun_gives_identical_results() {
    // Many small entries make extraction long enough to interrupt.
    let fixture = padded_cub(12_000, 64);
    let tgz_bytes = datasets::pack(&fixture, FileKind::TarGz);
    let mut manifest = manifest_for(
        "cub200",
        &[(
            "CUB_200_2011.tgz",
            &tgz_bytes,
            vec!["http://127.0.0.1:9/unused".to_string()],
        )],
        fixture.counts,
    );
    manifest.limits.max_entries = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("m.toml");
    write_manifest(&manifest, &manifest_path);
    let tgz = write(dir.path(), "CUB_200_2011.tgz", &tgz_bytes);
    let archive = ["--archive", tgz.to_str().unwrap()];

    let interrupted = dir.path().join("interrupted");
    let mut caught = false;
    for _attempt in 0..5 {
        let child = prepare(&manifest_path, &interrupted, &archive)
            .spawn()
            .unwrap();
        let dataset_dir = interrupted.join("cub200");
        let staged = dataset_dir.join(".staged");
        let extracting = || {
            std::fs::read_dir(&staged).ok().and_then(|entries| {
                entries
                    .flatten()
                    .find(|e| e.file_name().to_string_lossy().starts_with(".root.tmp-"))
                    .map(|e| e.path())
            })
        };
        wait_until("extraction has started", Duration::from_secs(60), || {
            extracting().is_some_and(|tmp| tmp.join("CUB_200_2011/attributes").is_dir())
        });
        kill(child);
        if !dataset_dir.join("root").exists() {
            caught = true;
            assert!(
                extracting().is_some(),
                "the half-extracted folder is left under a temporary name"
            );
            break;
        }
        // The run finished before the kill landed: start from scratch and try again.
        std::fs::remove_dir_all(&interrupted).unwrap();
    }
    assert!(caught, "could not interrupt extraction in 5 attempts");

    let output = prepare(&manifest_path, &interrupted, &archive)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let leftovers: Vec<String> = std::fs::read_dir(interrupted.join("cub200"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".root.") || n == ".staged")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let clean = dir.path().join("clean");
    let output = prepare(&manifest_path, &clean, &archive).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(results(&interrupted), results(&clean));
}
