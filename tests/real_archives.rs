//! Issue 12: what the real archives hold and where they can still be had. SOP's GIFs named
//! `.JPG`, CARS-196 in both of its layouts (from downloads, files and unpacked folders), and
//! ZIPs read whole.

use std::path::{Path, PathBuf};

use lifted::manifest::FileKind;
use serde_json::Value;

use crate::support::datasets::{
    self, cars_devkit_files, cars_manifest, manifest_for, write_manifest,
};
use crate::support::http::{Fault, Server};
use crate::support::{run, stderr, stdout, write};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `prepare-data --json --quiet ARGS` and returns the summary (panics with stderr).
fn prepare(args: &[&str]) -> Value {
    let output = run(&[&["prepare-data", "--json", "--quiet"], args].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

#[test]
fn sop_with_the_six_gifs_named_jpg_prepares_verified_with_exact_counts_and_packs() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = datasets::sop();
    let zip = datasets::pack(&fixture, FileKind::Zip);
    let archive = write(dir.path(), "Stanford_Online_Products.zip", &zip);
    let manifest = manifest_for(
        "sop",
        &[(
            "Stanford_Online_Products.zip",
            &zip,
            vec!["http://127.0.0.1:9/x".into()],
        )],
        fixture.counts,
    );
    let manifest_path = dir.path().join("sop.toml");
    write_manifest(&manifest, &manifest_path);
    let data = dir.path().join("d");
    let summary = prepare(&[
        "sop",
        "--data-dir",
        s(&data),
        "--archive",
        s(&archive),
        "--manifest",
        s(&manifest_path),
    ]);
    assert_eq!(summary["unverified"], false, "{summary}");
    assert_eq!(summary["images"], 84);
    assert_eq!(summary["classes"], 30);
    assert_eq!(summary["split"]["parts"]["test"]["images"], 48);
    assert_eq!(summary["image_check"]["unreadable"], 0);
    assert!(
        summary["warnings"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    // pack stores the GIFs like any other image.
    let output = run(&[
        "pack",
        "sop",
        "--split",
        "test",
        "--json",
        "--quiet",
        "--data-dir",
        s(&data),
        "--size",
        "16",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let packed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(packed["samples"], 48);
    assert_eq!(packed["rejected"].as_array().unwrap().len(), 0);
}

/// The main layout's files of the CARS fixture: (name, bytes).
fn car_ims_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "car_ims.tgz",
            datasets::pack(&datasets::cars(), FileKind::TarGz),
        ),
        ("cars_annos.mat", datasets::cars_mat()),
    ]
}

/// What a CARS preparation must agree on: the catalogue and the split, byte for byte.
fn outcome(data: &Path) -> (String, String) {
    let dir = data.join("cars196");
    (
        std::fs::read_to_string(dir.join("catalog.csv")).unwrap(),
        std::fs::read_to_string(dir.join("splits/canonical/split.csv")).unwrap(),
    )
}

/// Writes both layouts' fixture files into `dir`; returns the CARS manifest's path (every source
/// a dead local URL, so nothing is downloaded) and the files' paths.
fn cars_inputs(dir: &Path) -> (PathBuf, Vec<PathBuf>, Vec<PathBuf>) {
    let dead = || vec!["http://127.0.0.1:9/gone".to_string()];
    let main = car_ims_files();
    let devkit = cars_devkit_files();
    let manifest = cars_manifest(
        &main
            .iter()
            .map(|(n, b)| (*n, &b[..], dead()))
            .collect::<Vec<_>>(),
        &devkit
            .iter()
            .map(|(n, b)| (*n, &b[..], dead()))
            .collect::<Vec<_>>(),
    );
    let manifest_path = dir.join("cars196.toml");
    write_manifest(&manifest, &manifest_path);
    let main_paths = main
        .iter()
        .map(|(n, b)| write(&dir.join("main"), n, b))
        .collect();
    let devkit_paths = devkit
        .iter()
        .map(|(n, b)| write(&dir.join("devkit"), n, b))
        .collect();
    (manifest_path, main_paths, devkit_paths)
}

fn archive_args(paths: &[PathBuf]) -> Vec<&str> {
    paths.iter().flat_map(|p| ["--archive", s(p)]).collect()
}

/// Unpacks every `.tgz` of `files` into `folder` and copies the other files there.
fn unpack(files: &[PathBuf], folder: &Path) {
    std::fs::create_dir_all(folder).unwrap();
    for file in files {
        if file.extension().is_some_and(|e| e == "tgz") {
            let status = std::process::Command::new("tar")
                .arg("-xzf")
                .arg(file)
                .arg("-C")
                .arg(folder)
                .status()
                .unwrap();
            assert!(status.success());
        } else {
            std::fs::copy(file, folder.join(file.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn cars_gives_the_same_catalogue_and_split_from_either_layout_files_or_folders() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, main, devkit) = cars_inputs(dir.path());
    let m = s(&manifest);
    let reference = dir.path().join("d-main");
    let summary = prepare(
        &[
            &["cars196", "--manifest", m, "--data-dir", s(&reference)],
            &archive_args(&main)[..],
        ]
        .concat(),
    );
    assert_eq!(summary["unverified"], false);
    assert_eq!(summary["images"], 16);
    let expected = outcome(&reference);

    let from_devkit = dir.path().join("d-devkit");
    let summary = prepare(
        &[
            &["cars196", "--manifest", m, "--data-dir", s(&from_devkit)],
            &archive_args(&devkit)[..],
        ]
        .concat(),
    );
    assert_eq!(summary["unverified"], false, "{summary}");
    let notes = summary["notes"].to_string();
    assert!(notes.contains("prepared from the devkit layout"), "{notes}");
    assert!(
        notes.contains("16 images were given cars_annos.mat's names"),
        "{notes}"
    );
    assert_eq!(
        outcome(&from_devkit),
        expected,
        "identical catalogue and split files"
    );
    // The images under each name are the same bytes in both preparations.
    for n in 1..=16 {
        let name = format!("cars196/root/car_ims/{n:06}.jpg");
        assert_eq!(
            std::fs::read(reference.join(&name)).unwrap(),
            std::fs::read(from_devkit.join(&name)).unwrap(),
            "{name}"
        );
    }

    // Unpacked folders of either layout, given with --archive.
    for (label, files) in [("main", &main), ("devkit", &devkit)] {
        let folder = dir.path().join(format!("unpacked-{label}"));
        unpack(files, &folder);
        let data = dir.path().join(format!("d-folder-{label}"));
        let summary = prepare(&[
            "cars196",
            "--manifest",
            m,
            "--data-dir",
            s(&data),
            "--archive",
            s(&folder),
        ]);
        assert_eq!(outcome(&data), expected, "{label} folder");
        assert_eq!(
            summary["unverified"], true,
            "a folder has no archive hash to check"
        );
        // The user's folder is left as it was (its files were linked or copied, not moved).
        assert!(
            folder
                .join(if label == "main" {
                    "car_ims/000001.jpg"
                } else {
                    "cars_train/00001.jpg"
                })
                .is_file()
        );
    }
}

#[test]
fn cars_falls_back_to_the_devkit_layout_when_car_ims_cannot_be_downloaded() {
    let server = Server::start();
    let devkit = cars_devkit_files();
    let main = car_ims_files();
    for (name, bytes) in &devkit {
        server.route(
            &format!("/devkit/{name}"),
            bytes.clone(),
            vec![],
            Fault::Serve,
        );
    }
    let manifest = cars_manifest(
        &main
            .iter()
            .map(|(n, b)| (*n, &b[..], vec![server.url(&format!("/gone/{n}"))]))
            .collect::<Vec<_>>(),
        &devkit
            .iter()
            .map(|(n, b)| (*n, &b[..], vec![server.url(&format!("/devkit/{n}"))]))
            .collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("cars196.toml");
    write_manifest(&manifest, &manifest_path);
    let data = dir.path().join("d");
    let summary = prepare(&[
        "cars196",
        "--manifest",
        s(&manifest_path),
        "--data-dir",
        s(&data),
    ]);
    assert_eq!(summary["unverified"], false);
    assert_eq!(summary["images"], 16);
    let files: Vec<&str> = summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"cars_train.tgz") && files.contains(&"car_devkit.tgz"),
        "{files:?}"
    );

    // Compared with the main layout prepared from its files: the same split.
    let (manifest2, main_paths, _) = cars_inputs(dir.path());
    let reference = dir.path().join("d-main");
    prepare(
        &[
            &[
                "cars196",
                "--manifest",
                s(&manifest2),
                "--data-dir",
                s(&reference),
            ],
            &archive_args(&main_paths)[..],
        ]
        .concat(),
    );
    assert_eq!(outcome(&data), outcome(&reference));
}

#[test]
fn archives_of_two_layouts_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (manifest, main, devkit) = cars_inputs(dir.path());
    let output = run(&[
        "prepare-data",
        "cars196",
        "--quiet",
        "--manifest",
        s(&manifest),
        "--data-dir",
        s(&dir.path().join("d")),
        "--archive",
        s(&main[0]),
        "--archive",
        s(&devkit[0]),
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("belongs to the dataset's devkit layout"),
        "{err}"
    );
}
