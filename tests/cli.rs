//! `lifted prepare-data` and `lifted split` end to end through the binary, on fixtures in
//! each dataset's exact layout.

use std::path::{Path, PathBuf};

use lifted::manifest::FileKind;
use serde_json::Value;

use crate::support::datasets::{self, Counts, Fixture, manifest_for, write_manifest};
use crate::support::http::{Fault, Server};
use crate::support::{lifted, run, stderr, stdout, write};

/// Runs `prepare-data --json` and returns the parsed summary (panics with stderr on failure).
fn prepare_json(args: &[&str]) -> Value {
    let output = run(&[&["prepare-data", "--json", "--quiet"], args].concat());
    assert!(
        output.status.success(),
        "prepare-data failed:\n{}",
        stderr(&output)
    );
    serde_json::from_str(&stdout(&output)).unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn assert_parts(summary: &Value, counts: Counts) {
    let parts = &summary["split"]["parts"];
    assert_eq!(parts["train"]["images"], counts.train_images, "{summary}");
    assert_eq!(parts["train"]["classes"], counts.train_classes);
    assert_eq!(parts["test"]["images"], counts.test_images);
    assert_eq!(parts["test"]["classes"], counts.test_classes);
    assert_eq!(summary["images"], counts.images);
    assert_eq!(summary["classes"], counts.classes);
}

/// The fixture archives of a dataset, written to `dir`: (file name, path).
fn archives(dataset: &str, dir: &Path) -> (Vec<PathBuf>, Counts) {
    match dataset {
        "sop" => {
            let fixture = datasets::sop();
            let zip = datasets::pack(&fixture, FileKind::Zip);
            (
                vec![write(dir, "Stanford_Online_Products.zip", &zip)],
                fixture.counts,
            )
        }
        "cub200" => {
            let fixture = datasets::cub();
            let tgz = datasets::pack(&fixture, FileKind::TarGz);
            (vec![write(dir, "CUB_200_2011.tgz", &tgz)], fixture.counts)
        }
        "cars196" => {
            let fixture = datasets::cars();
            let tgz = datasets::pack(&fixture, FileKind::TarGz);
            let mat = datasets::cars_mat();
            (
                vec![
                    write(dir, "car_ims.tgz", &tgz),
                    write(dir, "cars_annos.mat", &mat),
                ],
                fixture.counts,
            )
        }
        other => panic!("no fixture for {other}"),
    }
}

#[test]
fn each_dataset_fixture_gives_its_canonical_split_with_allow_unverified() {
    for dataset in ["sop", "cub200", "cars196"] {
        let dir = tempfile::tempdir().unwrap();
        let (files, counts) = archives(dataset, dir.path());
        let data = dir.path().join("data");
        let mut args = vec![dataset, "--data-dir", s(&data), "--allow-unverified"];
        for file in &files {
            args.extend(["--archive", s(file)]);
        }
        let summary = prepare_json(&args);
        assert_parts(&summary, counts);
        assert_eq!(summary["unverified"], true, "{dataset}");
        assert_eq!(summary["files"][0]["verification"]["status"], "unverified");
        let warnings = summary["warnings"].as_array().unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains("the manifest expects")),
            "{dataset}: {warnings:?}"
        );
        // The split on disk says the same.
        let csv =
            std::fs::read_to_string(data.join(dataset).join("splits/canonical/split.csv")).unwrap();
        let test_rows = csv.lines().filter(|l| l.ends_with(",test")).count();
        assert_eq!(test_rows, counts.test_images, "{dataset}");
        // The human summary names the split and warns loudly.
        let text = stdout(&run(&[&["prepare-data", "--quiet"], &args[..]].concat()));
        assert!(
            text.contains("split      canonical") && text.contains("WARNING"),
            "{text}"
        );
    }
}

#[test]
fn a_mismatching_archive_is_refused_with_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = archives("cub200", dir.path());
    let output = run(&[
        "prepare-data",
        "cub200",
        "--quiet",
        "--data-dir",
        s(&dir.path().join("d")),
        "--archive",
        s(&files[0]),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let actual = lifted::fetch::digest_bytes(&std::fs::read(&files[0]).unwrap(), false).sha256;
    assert!(err.contains("SHA-256 mismatch: expected 0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081"), "{err}");
    assert!(
        err.contains(&format!("actual {actual}")) && err.contains("--allow-unverified"),
        "{err}"
    );
    // The user's file is untouched and nothing was extracted.
    assert!(files[0].exists());
    assert!(!dir.path().join("d/cub200/root").exists());
}

#[test]
fn downloads_through_faults_and_verifies_against_a_manifest() {
    let server = Server::start();
    let fixture = datasets::cub();
    let tgz = datasets::pack(&fixture, FileKind::TarGz);
    server.route(
        "/official/CUB_200_2011.tgz",
        tgz.clone(),
        vec![],
        Fault::Status(404),
    );
    server.route(
        "/mirror/CUB_200_2011.tgz",
        tgz.clone(),
        vec![Fault::DropAfter(tgz.len() / 3)],
        Fault::Serve,
    );
    let urls = vec![
        server.url("/official/CUB_200_2011.tgz"),
        server.url("/mirror/CUB_200_2011.tgz"),
    ];
    let manifest = manifest_for(
        "cub200",
        &[("CUB_200_2011.tgz", &tgz, urls)],
        fixture.counts,
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("cub.toml");
    write_manifest(&manifest, &manifest_path);
    let data = dir.path().join("data");
    let summary = prepare_json(&[
        "cub200",
        "--manifest",
        s(&manifest_path),
        "--data-dir",
        s(&data),
    ]);
    assert_parts(&summary, fixture.counts);
    assert_eq!(summary["unverified"], false);
    assert_eq!(
        summary["warnings"].as_array().unwrap().len(),
        0,
        "{summary}"
    );
    assert_eq!(summary["files"][0]["verification"]["status"], "verified");
    assert_eq!(
        summary["image_check"]["unlisted"], 1,
        "the stray _rgb.jpg is reported"
    );
    let resumed = server.requests_for("/mirror/CUB_200_2011.tgz");
    assert_eq!(resumed.len(), 2);
    assert_eq!(
        resumed[1].range.as_deref(),
        Some(format!("bytes={}-", tgz.len() / 3).as_str())
    );
    assert_eq!(
        std::fs::read(data.join("cub200/downloads/CUB_200_2011.tgz")).unwrap(),
        tgz
    );

    // A second run re-verifies the download, reuses the extraction, and gives the same split.
    let again = prepare_json(&[
        "cub200",
        "--manifest",
        s(&manifest_path),
        "--data-dir",
        s(&data),
    ]);
    assert_eq!(again["extraction"]["reused"], true);
    assert_eq!(again["split"]["hash"], summary["split"]["hash"]);
    assert_eq!(server.requests().len(), 3, "nothing was downloaded again");
}

#[test]
fn a_truncated_archive_fails_cleanly_and_leaves_nothing_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = archives("sop", dir.path());
    let bytes = std::fs::read(&files[0]).unwrap();
    let cut = write(
        dir.path(),
        "cut/Stanford_Online_Products.zip",
        &bytes[..bytes.len() * 2 / 3],
    );
    let data = dir.path().join("d");
    let output = run(&[
        "prepare-data",
        "sop",
        "--quiet",
        "--data-dir",
        s(&data),
        "--archive",
        s(&cut),
        "--allow-unverified",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("truncated or corrupt"),
        "{}",
        stderr(&output)
    );
    let leftovers: Vec<_> = std::fs::read_dir(data.join("sop"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|name| name != ".lock")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn prepare_broken_cub(
    fixture: &Fixture,
    extra: &[&str],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tgz = write(
        dir.path(),
        "CUB_200_2011.tgz",
        &datasets::pack(fixture, FileKind::TarGz),
    );
    let data = dir.path().join("d");
    let args = [
        &[
            "prepare-data",
            "cub200",
            "--quiet",
            "--data-dir",
            s(&data),
            "--archive",
            s(&tgz),
            "--allow-unverified",
        ],
        extra,
    ]
    .concat();
    (run(&args), dir)
}

#[test]
fn a_listed_image_that_is_missing_is_named() {
    let mut fixture = datasets::cub();
    let missing = "images/050.Eared_Grebe/Bird_0002_796006.jpg";
    fixture.remove(&format!("CUB_200_2011/{missing}"));
    let (output, dir) = prepare_broken_cub(&fixture, &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("listed images are missing (1)") && err.contains(missing),
        "{err}"
    );
    assert!(err.contains("--skip-bad-images"), "{err}");
    // The failed run's report is with the rest of the preparation it did not finish.
    assert!(err.contains("d/cub200/.staged/image-check.json"), "{err}");
    let report =
        std::fs::read_to_string(dir.path().join("d/cub200/.staged/image-check.json")).unwrap();
    assert!(report.contains(missing));
    // With --skip-bad-images the image is left out and the summary says so.
    let (output, _dir) = prepare_broken_cub(&fixture, &["--skip-bad-images", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(summary["images"], 15);
    assert_eq!(summary["image_check"]["missing"], 1);
}

#[test]
fn a_missing_annotation_file_and_a_malformed_line_are_errors() {
    let mut fixture = datasets::cub();
    fixture.remove("CUB_200_2011/classes.txt");
    let (output, _dir) = prepare_broken_cub(&fixture, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("annotation file") && stderr(&output).contains("classes.txt"),
        "{}",
        stderr(&output)
    );

    let mut fixture = datasets::cub();
    let text = fixture
        .text("CUB_200_2011/images.txt")
        .replace("5 050.", "5 050.extra ");
    fixture.replace("CUB_200_2011/images.txt", text);
    let (output, _dir) = prepare_broken_cub(&fixture, &[]);
    let err = stderr(&output);
    assert!(
        err.contains("images.txt line 5: expected 2 fields"),
        "{err}"
    );
}

#[test]
fn an_archive_that_matches_no_manifest_file_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let stray = write(dir.path(), "notes.txt", b"hello");
    let output = run(&[
        "prepare-data",
        "cars196",
        "--quiet",
        "--data-dir",
        s(dir.path()),
        "--archive",
        s(&stray),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("expected one of: car_ims.tgz, cars_annos.mat"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_image_folder_is_prepared_and_split_exported() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("birds");
    for class in 0..6 {
        for i in 0..3 {
            write(
                &images,
                &format!("species_{class}/{i}.jpg"),
                &crate::support::images::jpeg(class * 10 + i),
            );
        }
    }
    let data = dir.path().join("d");
    let summary = prepare_json(&[s(&images), "--data-dir", s(&data)]);
    assert_eq!(summary["info"]["dataset"], "birds");
    assert_eq!(summary["split"]["name"], "seed0-ratio0.5");
    assert_eq!(summary["images"], 18);

    // `lifted split` works on the prepared name and directly on the folder, with the same result.
    let out_a = dir.path().join("a");
    let out_b = dir.path().join("b");
    for (target, out) in [("birds", &out_a), (s(&images), &out_b)] {
        let output = run(&[
            "split",
            target,
            "--data-dir",
            s(&data),
            "--seed",
            "4",
            "--ratio",
            "0.5",
            "--folds",
            "3",
            "--fold",
            "2",
            "--out",
            s(out),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let csv_a = std::fs::read_to_string(out_a.join("split.csv")).unwrap();
    assert_eq!(
        csv_a,
        std::fs::read_to_string(out_b.join("split.csv")).unwrap()
    );
    assert!(csv_a.starts_with("path,class_id,class_name,split\n"));
    let parts: std::collections::BTreeSet<&str> = csv_a
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    assert_eq!(parts, ["test", "train", "val"].into_iter().collect());
}

#[test]
fn split_of_a_prepared_dataset_defaults_to_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let (files, counts) = archives("cars196", dir.path());
    let data = dir.path().join("d");
    prepare_json(&[
        "cars196",
        "--data-dir",
        s(&data),
        "--allow-unverified",
        "--archive",
        s(&files[0]),
        "--archive",
        s(&files[1]),
    ]);
    let out = dir.path().join("out");
    let output = run(&[
        "split",
        "cars196",
        "--data-dir",
        s(&data),
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["name"], "canonical");
    assert_eq!(report["parts"]["train"]["images"], counts.train_images);
    let prepared = std::fs::read(data.join("cars196/splits/canonical/split.csv")).unwrap();
    assert_eq!(std::fs::read(out.join("split.csv")).unwrap(), prepared);
    let row = String::from_utf8(prepared)
        .unwrap()
        .lines()
        .nth(11)
        .unwrap()
        .to_string();
    assert_eq!(
        row,
        "car_ims/000011.jpg,100,Ram C/V Cargo Van Minivan 2012,test"
    );
}

#[test]
fn the_data_dir_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let output = lifted()
        .args(["prepare-data", "sample", "--quiet"])
        .env("LIFTED_DATA", dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        dir.path()
            .join("sample/splits/canonical/split.csv")
            .is_file()
    );
}

#[test]
fn wrong_usage_is_a_usage_error() {
    for args in [
        &["prepare-data"][..],
        &["prepare-data", "sample", "--retries", "many"],
        &["split", "sample"],
        &["frobnicate"],
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let output = run(&[
        "split",
        "sample",
        "--out",
        "/tmp/never",
        "--fold",
        "1",
        "--data-dir",
        "/nonexistent",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--folds <K>"),
        "{}",
        stderr(&output)
    );
    let output = run(&[
        "split",
        "sop",
        "--out",
        "/tmp/never",
        "--data-dir",
        "/nonexistent",
    ]);
    assert!(
        stderr(&output).contains("run `lifted prepare-data sop` first"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_renamed_mat_file_is_matched_by_content_and_used_under_its_real_name() {
    let dir = tempfile::tempdir().unwrap();
    let (files, counts) = archives("cars196", dir.path());
    let renamed = dir.path().join("cars_annos (1).mat");
    std::fs::rename(&files[1], &renamed).unwrap();
    let data = dir.path().join("d");
    let summary = prepare_json(&[
        "cars196",
        "--data-dir",
        s(&data),
        "--allow-unverified",
        "--archive",
        s(&files[0]),
        "--archive",
        s(&renamed),
    ]);
    assert_parts(&summary, counts);
    assert!(data.join("cars196/root/cars_annos.mat").is_file());
}

#[test]
fn a_folder_name_outside_the_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("imgs");
    write(&images, "a/1.jpg", &crate::support::images::jpeg(1));
    write(&images, "b/1.jpg", &crate::support::images::jpeg(2));
    let data = dir.path().join("d");
    for name in ["../escape", ".hidden", "sop"] {
        let output = run(&[
            "prepare-data",
            s(&images),
            "--quiet",
            "--data-dir",
            s(&data),
            "--name",
            name,
        ]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let err = stderr(&output);
        assert!(
            err.contains(&format!("dataset name `{name}`")) && err.contains("--name"),
            "{err}"
        );
    }
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn a_second_run_on_the_same_dataset_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    // Hold the dataset's lock as a running prepare-data does (an advisory lock on `.lock`).
    std::fs::create_dir_all(dir.path().join("sample")).unwrap();
    let lock = std::fs::File::create(dir.path().join("sample/.lock")).unwrap();
    lock.try_lock().expect("the lock is free");
    let output = run(&[
        "prepare-data",
        "sample",
        "--quiet",
        "--data-dir",
        s(dir.path()),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("another lifted process is preparing this dataset"),
        "{}",
        stderr(&output)
    );
    drop(lock);
    let output = run(&[
        "prepare-data",
        "sample",
        "--quiet",
        "--data-dir",
        s(dir.path()),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_bare_word_is_a_name_and_a_path_needs_a_slash_whatever_the_working_folder_holds() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("work");
    // Folders named like the built-in sample and like the dataset prepared from `./photos`.
    for folder in ["sample", "photos"] {
        write(
            &cwd.join(folder),
            "a/1.jpg",
            &crate::support::images::jpeg(1),
        );
        write(
            &cwd.join(folder),
            "b/1.jpg",
            &crate::support::images::jpeg(2),
        );
    }
    let in_cwd = |args: &[&str]| {
        lifted()
            .current_dir(&cwd)
            .args(args)
            .args(["--data-dir", "data"])
            .output()
            .unwrap()
    };
    // `sample` is the built-in sample, not the folder beside it.
    let output = in_cwd(&["prepare-data", "sample", "--json", "--quiet"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(summary["images"].as_u64().unwrap() > 4, "{summary}");
    // `./photos` is the folder; afterwards `photos` names the prepared dataset.
    let output = in_cwd(&["prepare-data", "./photos", "--json", "--quiet"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(summary["info"]["dataset"], "photos", "{summary}");
    assert_eq!(summary["images"], 2, "{summary}");
    let output = in_cwd(&["pack", "photos", "--quiet", "--size", "16"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(cwd.join("data/photos/shards").is_dir());
    // A bare word that is neither a built-in nor prepared says how to mean the folder.
    std::fs::rename(cwd.join("photos"), cwd.join("albums")).unwrap();
    let output = in_cwd(&["prepare-data", "albums", "--quiet"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown dataset `albums`"), "{err}");
    assert!(err.contains("./albums"), "{err}");
    let output = in_cwd(&["pack", "albums", "--quiet"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("./albums"), "{err}");
}
