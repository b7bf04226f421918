//! Shared test helpers: a fault-injecting HTTP server, archive and dataset fixtures, and a
//! runner for the `lifted` binary.

#![allow(dead_code)]

pub mod archives;
pub mod datasets;
pub mod http;
pub mod images;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lifted::Progress;
use lifted::fetch::FetchOptions;
use lifted::prepare::PrepareOptions;

/// Fast network settings for tests.
pub fn fast_fetch() -> FetchOptions {
    FetchOptions {
        retries: 2,
        backoff: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(700),
        ..FetchOptions::default()
    }
}

/// Prepare options for tests (hidden progress, fast network).
pub fn prepare_options(data_dir: &Path) -> PrepareOptions {
    PrepareOptions {
        data_dir: data_dir.to_path_buf(),
        manifest: None,
        archives: Vec::new(),
        allow_unverified: false,
        skip_bad_images: false,
        name: None,
        fetch: fast_fetch(),
        progress: Progress::hidden(),
    }
}

/// The `lifted` binary with a clean environment.
pub fn lifted() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lifted"));
    command.env_remove("LIFTED_DATA");
    command
}

/// Runs `lifted` with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    lifted().args(args).output().expect("run lifted")
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes bytes to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every file under `dir` with its content, sorted, for comparing two trees.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if kind.is_dir() {
                walk(root, &path, out);
            } else if kind.is_symlink() {
                out.push((
                    rel,
                    std::fs::read_link(&path)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                        .into_bytes(),
                ));
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `classes` clusters of `per_class` points in `dim` dimensions: centres uniform in
/// [0, spread)^dim, points uniform within ±noise/2 of their centre; fixed seed. Returns the
/// row-major points and their class ids.
pub fn blobs(
    classes: usize,
    per_class: usize,
    dim: usize,
    spread: f32,
    noise: f32,
) -> (Vec<f32>, Vec<i64>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32
    };
    let centres: Vec<f32> = (0..classes * dim).map(|_| uniform() * spread).collect();
    let mut points = Vec::with_capacity(classes * per_class * dim);
    let mut labels = Vec::with_capacity(classes * per_class);
    for c in 0..classes {
        for _ in 0..per_class {
            points.extend((0..dim).map(|j| centres[c * dim + j] + (uniform() - 0.5) * noise));
            labels.push(c as i64);
        }
    }
    (points, labels)
}
