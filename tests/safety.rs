//! Issue 11: no command may delete, overwrite or mislabel a user's data, panic, or hang. One
//! test per finding of the adversarial review, each run as the finding describes it.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifted::Progress;
use lifted::archive::{ArchiveError, Budget};
use lifted::dataset::DatasetRef;
use lifted::manifest::{ExtractLimits, FileKind, Manifest};
use lifted::shard::{ShardError, ShardSet};

use crate::support::datasets::{self, manifest_for, write_manifest};
use crate::support::http::{Fault, Server};
use crate::support::images::{fixtures, jpeg};
use crate::support::{fast_fetch, lifted, run, stderr, stdout, tree, write};
use crate::train::{request, tiny_config, tiny_dataset};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A temp dir with the 12-class `shapes` folder dataset prepared under `<dir>/data`.
fn shapes() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_dataset(dir.path(), &data);
    (dir, data)
}

/// Runs `lifted pack shapes --quiet --data-dir DATA ARGS…`.
fn pack(data: &Path, args: &[&str]) -> std::process::Output {
    run(&[&["pack", "shapes", "--quiet", "--data-dir", s(data)], args].concat())
}

// §1. Data loss and writes outside the data dir.

#[test]
fn pack_out_never_replaces_what_pack_did_not_make() {
    let (dir, data) = shapes();
    let first = pack(&data, &["--size", "16", "--encoding", "raw"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let mine = dir.path().join("mine");
    write(&mine, "notes.txt", b"keep me");
    write(&mine, "sub/more.txt", b"and me");
    let a_file = write(dir.path(), "file.txt", b"a file");
    let images = dir.path().join("shapes");
    let targets = [
        (
            mine.clone(),
            "a folder that is not a lifted pack (it holds notes.txt, sub)",
        ),
        (data.join("shapes"), "a folder that is not a lifted pack"),
        (
            data.join("shapes/shards"),
            "a folder that is not a lifted pack",
        ),
        (images.clone(), "a folder that is not a lifted pack"),
        (a_file.clone(), "is a regular file"),
    ];
    let listing = |dir: &Path| -> Vec<(String, usize)> {
        tree(dir).into_iter().map(|(p, b)| (p, b.len())).collect()
    };
    let before = listing(dir.path());
    for (out, what) in &targets {
        for force in [false, true] {
            let mut args = vec!["--size", "16", "--encoding", "raw", "--out", s(out)];
            if force {
                args.push("--force");
            }
            let output = pack(&data, &args);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{out:?}: {err}");
            assert!(err.contains(what) && err.contains(s(out)), "{out:?}: {err}");
            assert!(err.contains("--out"), "{err}");
        }
    }
    assert_eq!(listing(dir.path()), before, "nothing changed anywhere");
}

#[test]
fn pack_replaces_an_earlier_pack_of_the_same_part_and_another_only_with_force() {
    let (dir, data) = shapes();
    let out = dir.path().join("packed");
    let o = s(&out);
    let test = pack(&data, &["--size", "16", "--split", "test", "--out", o]);
    assert!(test.status.success(), "{}", stderr(&test));
    let again = pack(&data, &["--size", "16", "--split", "test", "--out", o]);
    assert!(again.status.success(), "{}", stderr(&again));
    let other = pack(&data, &["--size", "16", "--split", "train", "--out", o]);
    assert_eq!(other.status.code(), Some(1));
    let err = stderr(&other);
    assert!(
        err.contains("holds the packed `test` part of shapes"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(ShardSet::open(&out).unwrap().index().split.part, "test");
    let forced = pack(
        &data,
        &["--size", "16", "--split", "train", "--out", o, "--force"],
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(ShardSet::open(&out).unwrap().index().split.part, "train");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_split_name_read_from_split_json_cannot_leave_the_data_dir() {
    let (dir, data) = shapes();
    let split = dir.path().join("s7");
    let made = run(&[
        "split",
        "shapes",
        "--seed",
        "7",
        "--out",
        s(&split),
        "--data-dir",
        s(&data),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let json_path = split.join("split.json");
    let original = std::fs::read_to_string(&json_path).unwrap();
    for hostile in ["../../../evil", "/tmp/evil-absolute", ".hidden", "a/b"] {
        let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
        json["name"] = serde_json::Value::from(hostile);
        std::fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
        let output = pack(&data, &["--size", "16", "--split-dir", s(&split)]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{hostile}: {err}");
        assert!(err.contains("not usable as a folder name"), "{err}");
    }
    assert!(!dir.path().join("evil").exists() && !Path::new("/tmp/evil-absolute").exists());
    let shards = data.join("shapes/shards");
    assert!(!shards.exists() || std::fs::read_dir(&shards).unwrap().count() == 0);
}

#[test]
fn prepare_data_refuses_a_manifest_for_another_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let manifest = dir.path().join("m.toml");
    write_manifest(&Manifest::built_in("sop").unwrap(), &manifest);
    let folder = dir.path().join("photos");
    write(&folder, "a/1.jpg", &jpeg(1));
    write(&folder, "b/1.jpg", &jpeg(2));
    for dataset in ["cub200", "foo", s(&folder)] {
        let output = run(&[
            "prepare-data",
            dataset,
            "--quiet",
            "--data-dir",
            s(&data),
            "--manifest",
            s(&manifest),
        ]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{dataset}: {err}");
        let expected = if dataset.contains('/') {
            "is prepared without a manifest"
        } else {
            "describes `sop`, not"
        };
        assert!(
            err.contains(expected) && err.contains("--manifest"),
            "{err}"
        );
    }
    assert!(!data.join("sop").exists() && !data.join("photos").exists());
}

// §2. Silent corruption.

/// CUB fixture archive and its manifest in `dir`: (archive, manifest).
fn cub_files(dir: &Path, fixture: &datasets::Fixture, tag: &str) -> (PathBuf, PathBuf) {
    let tgz = datasets::pack(fixture, FileKind::TarGz);
    let archive = write(&dir.join(tag), "CUB_200_2011.tgz", &tgz);
    let manifest = manifest_for(
        "cub200",
        &[(
            "CUB_200_2011.tgz",
            &tgz,
            vec!["http://127.0.0.1:9/x".to_string()],
        )],
        fixture.counts,
    );
    let path = dir.join(format!("{tag}.toml"));
    write_manifest(&manifest, &path);
    (archive, path)
}

fn prepare_cub(data: &Path, archive: &Path, manifest: &Path) -> std::process::Output {
    run(&[
        "prepare-data",
        "cub200",
        "--quiet",
        "--data-dir",
        s(data),
        "--archive",
        s(archive),
        "--manifest",
        s(manifest),
    ])
}

#[test]
fn a_failed_preparation_leaves_the_previous_one_whole_and_a_torn_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let good = datasets::cub();
    let (archive, manifest) = cub_files(dir.path(), &good, "good");
    let output = prepare_cub(&data, &archive, &manifest);
    assert!(output.status.success(), "{}", stderr(&output));
    let cub = data.join("cub200");
    let before = tree(&cub);

    // Another copy: other pixels for every image, and one listed image missing.
    let mut other = datasets::cub();
    let names: Vec<String> = other
        .members
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    for (i, name) in names.iter().enumerate() {
        other.replace(name, jpeg(5000 + i as u32));
    }
    other.remove(&names[4]);
    let (archive, manifest) = cub_files(dir.path(), &other, "other");
    let output = prepare_cub(&data, &archive, &manifest);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("listed images are missing"));
    let after: Vec<_> = tree(&cub)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".staged/") && p != ".lock")
        .collect();
    let before: Vec<_> = before.into_iter().filter(|(p, _)| p != ".lock").collect();
    assert_eq!(after, before, "the prepared dataset is exactly as it was");
    let packed = run(&[
        "pack",
        "cub200",
        "--quiet",
        "--data-dir",
        s(&data),
        "--size",
        "16",
    ]);
    assert!(packed.status.success(), "{}", stderr(&packed));

    // A preparation torn between its pieces (here: a catalogue from elsewhere) is refused.
    let catalog = cub.join("catalog.csv");
    let text = std::fs::read_to_string(&catalog).unwrap();
    std::fs::write(&catalog, text.replacen(",1,", ",2,", 1)).unwrap();
    let packed = run(&[
        "pack",
        "cub200",
        "--quiet",
        "--data-dir",
        s(&data),
        "--size",
        "16",
    ]);
    let err = stderr(&packed);
    assert_eq!(packed.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is inconsistent") && err.contains("catalog.csv"),
        "{err}"
    );
    assert!(err.contains("prepare-data"), "{err}");
}

#[test]
fn training_packs_again_when_an_image_changes_and_not_otherwise() {
    let (dir, data) = shapes();
    let config = tiny_config(&data, 1);
    let first = lifted::train::data::data_for(&config, Progress::hidden()).unwrap();
    let made_from = first.train.index().made_from.clone();
    let sources = first.train.index().sources.clone();
    let again = lifted::train::data::data_for(&config, Progress::hidden()).unwrap();
    assert_eq!(
        again.train.index().made_from,
        made_from,
        "nothing changed: reused"
    );

    // Edit one training image in place: other pixels, a new modification time.
    let edited = &sources[0];
    let path = dir.path().join("shapes").join(edited);
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([1, 2, 3]));
    img.save(&path).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    let repacked = lifted::train::data::data_for(&config, Progress::hidden()).unwrap();
    assert_ne!(repacked.train.index().made_from.sources, made_from.sources);
    let sample = (0..repacked.train.len())
        .map(|i| repacked.train.sample(i).unwrap())
        .find(|smp| repacked.train.source_path(smp) == edited)
        .unwrap();
    let pixels = sample.decode().unwrap().pixels;
    let near = |p: &[u8]| p.iter().zip([1u8, 2, 3]).all(|(a, b)| a.abs_diff(b) <= 4);
    assert!(pixels.chunks(3).all(near), "the new pixels");
}

#[test]
fn any_edit_of_index_json_is_found_by_open_and_verify() {
    let (_dir, data) = shapes();
    let output = pack(&data, &["--size", "16", "--encoding", "raw"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&run(&[
        "pack",
        "shapes",
        "--quiet",
        "--json",
        "--data-dir",
        s(&data),
        "--size",
        "16",
        "--encoding",
        "raw",
    ])))
    .unwrap();
    let out = PathBuf::from(summary["out"].as_str().unwrap());
    let index_path = out.join("index.json");
    let original = std::fs::read(&index_path).unwrap();
    let mut edits = 0;
    for at in 0..original.len() {
        let replacement = match original[at] {
            b'0'..=b'8' => original[at] + 1,
            b'9' => b'0',
            b'a'..=b'y' => original[at] + 1,
            b'z' => b'a',
            b'A'..=b'Z' => original[at].to_ascii_lowercase(),
            _ => continue,
        };
        let mut bytes = original.clone();
        bytes[at] = replacement;
        if serde_json::from_slice::<lifted::shard::ShardIndex>(&bytes).is_err() {
            continue; // Not an index any more: any reader refuses it.
        }
        std::fs::write(&index_path, &bytes).unwrap();
        edits += 1;
        match ShardSet::open(&out) {
            Err(ShardError::IndexMismatch { problem, .. }) => {
                let named = problem.contains("was sealed with an index.json")
                    || problem.contains("not a lifted shard index")
                    || problem.contains("this lifted reads `lifted-shards/2`");
                assert!(named, "{problem}");
            }
            // An edited shard name points at no file: found as well.
            Err(ShardError::Io { path, .. }) => assert!(!path.exists(), "byte {at}"),
            Err(other) => panic!("byte {at}: unexpected error {other}"),
            Ok(set) => panic!(
                "byte {at} ({:?} → {:?}) went unnoticed; verify says {:?}",
                original[at] as char,
                replacement as char,
                lifted::shard::verify::verify(&set, Progress::hidden()).map(|_| ())
            ),
        }
    }
    std::fs::write(&index_path, &original).unwrap();
    assert!(edits > 200, "only {edits} edits kept the index valid");
    let set = ShardSet::open(&out).unwrap();
    lifted::shard::verify::verify(&set, Progress::hidden()).unwrap();
    // The shards' own hashes are checked too.
    let sums = out.join("shards.sha256");
    let text = std::fs::read_to_string(&sums).unwrap();
    let flipped = if text.starts_with('0') { "1" } else { "0" };
    std::fs::write(&sums, format!("{flipped}{}", &text[1..])).unwrap();
    let err = lifted::shard::verify::verify(&set, Progress::hidden()).unwrap_err();
    assert!(matches!(err, ShardError::ShardHash { .. }), "{err:?}");
}

/// A stored (uncompressed) zip built byte by byte: (local name, central name, data), with
/// `alias` central entries pointing at an earlier entry's local header.
fn raw_zip(entries: &[(&str, &str, &[u8])], alias: Option<(usize, &str)>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let mut offsets = Vec::new();
    let mut count = 0u16;
    for (local, name, data) in entries {
        let crc = crc32fast_like(data);
        offsets.push((out.len() as u32, crc, data.len() as u32));
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(local.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(local.as_bytes());
        out.extend_from_slice(data);
        let (offset, crc, size) = *offsets.last().unwrap();
        central_entry(&mut central, name, offset, crc, size);
        count += 1;
    }
    if let Some((target, name)) = alias {
        let (offset, crc, size) = offsets[target];
        central_entry(&mut central, name, offset, crc, size);
        count += 1;
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn central_entry(central: &mut Vec<u8>, name: &str, offset: u32, crc: u32, size: u32) {
    central.extend_from_slice(b"PK\x01\x02");
    central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(&crc.to_le_bytes());
    central.extend_from_slice(&size.to_le_bytes());
    central.extend_from_slice(&size.to_le_bytes());
    central.extend_from_slice(&(name.len() as u16).to_le_bytes());
    central.extend_from_slice(&[0; 8]);
    central.extend_from_slice(&0o100644u32.wrapping_shl(16).to_le_bytes());
    central.extend_from_slice(&offset.to_le_bytes());
    central.extend_from_slice(name.as_bytes());
}

/// CRC-32 (zip's, IEEE), bit by bit: test data is tiny.
fn crc32fast_like(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn extract_zip(bytes: &[u8]) -> Result<(), ArchiveError> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.zip", bytes);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let limits = ExtractLimits {
        max_entries: 200_000,
        max_entry_bytes: 1 << 20,
        max_total_bytes: 1 << 30,
    };
    lifted::archive::extract(
        &path,
        FileKind::Zip,
        "a.zip",
        &out,
        &mut Budget::new(limits),
        Progress::hidden(),
    )
    .map(drop)
}

#[test]
fn ambiguous_zips_are_refused() {
    let train = "Stanford_Online_Products/Ebay_train.txt";
    let plain = raw_zip(&[(train, train, b"1 1 1 a.JPG\n")], None);
    extract_zip(&plain).expect("a plain zip extracts");
    let cases = [
        (
            "a second entry with the same name",
            raw_zip(
                &[(train, train, b"good\n"), (train, train, b"evil\n")],
                None,
            ),
        ),
        (
            "two names for one body",
            raw_zip(
                &[(train, train, b"good\n")],
                Some((0, "Stanford_Online_Products/x.txt")),
            ),
        ),
        (
            "a local name that differs from the directory's",
            raw_zip(
                &[("Stanford_Online_Products/other.txt", train, b"good\n")],
                None,
            ),
        ),
    ];
    for (what, bytes) in cases {
        let err = extract_zip(&bytes).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Ambiguous { .. }),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains("ambiguous"), "{what}: {err}");
    }
}

#[test]
fn a_zip_whose_end_record_counts_too_few_entries_is_not_read_short() {
    // 65,537 entries without ZIP64: the end record's 16-bit count says 1.
    let names: Vec<String> = (0..65_537).map(|i| format!("e/{i:05}.txt")).collect();
    let entries: Vec<(&str, &str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), n.as_str(), &b"x"[..]))
        .collect();
    let bytes = raw_zip(&entries, None);
    let end = bytes.len() - 22;
    assert_eq!(u16::from_le_bytes([bytes[end + 10], bytes[end + 11]]), 1);
    let err = extract_zip(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::MiscountedZip {
                declared: 1,
                found: 65_537,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("without ZIP64"), "{err}");
}

#[test]
fn tar_entries_that_extract_to_one_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let members = vec![
        crate::support::archives::file("r/Ebay_train.txt", "good\n"),
        crate::support::archives::file("r/./Ebay_train.txt", "evil\n"),
    ];
    let path = write(
        dir.path(),
        "a.tgz",
        &crate::support::archives::tar_gz(&members),
    );
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let limits = ExtractLimits {
        max_entries: 10,
        max_entry_bytes: 1 << 20,
        max_total_bytes: 1 << 20,
    };
    let err = lifted::archive::extract(
        &path,
        FileKind::TarGz,
        "a.tgz",
        &out,
        &mut Budget::new(limits),
        Progress::hidden(),
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::Ambiguous { .. }), "{err:?}");
}

#[test]
fn pack_refuses_a_split_csv_that_was_edited_truncated_or_is_not_class_disjoint() {
    let (dir, data) = shapes();
    let split = dir.path().join("s");
    let made = run(&[
        "split",
        "shapes",
        "--seed",
        "3",
        "--out",
        s(&split),
        "--data-dir",
        s(&data),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let csv = split.join("split.csv");
    let original = std::fs::read_to_string(&csv).unwrap();
    let first_train = original
        .lines()
        .position(|l| l.ends_with(",train"))
        .unwrap();
    let moved: String = original
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == first_train {
                format!("{}test\n", l.strip_suffix("train").unwrap())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let half: String = original
        .lines()
        .take(original.lines().count() / 2)
        .map(|l| format!("{l}\n"))
        .collect();
    for edited in [moved.clone(), half] {
        std::fs::write(&csv, &edited).unwrap();
        let output = pack(&data, &["--size", "16", "--split-dir", s(&split)]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.contains("edited, truncated or copied"), "{err}");
    }
    // Without split.json there is no hash to check, but class-disjointness still is.
    std::fs::remove_file(split.join("split.json")).unwrap();
    std::fs::write(&csv, &moved).unwrap();
    let output = pack(&data, &["--size", "16", "--split-dir", s(&split)]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("is not class-disjoint"), "{err}");
}

#[test]
fn folder_datasets_follow_links_inside_refuse_links_outside_and_name_undecodable_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root, "a/1.jpg", &jpeg(1));
    write(&root, "a/2.jpg", &jpeg(2));
    write(&root, "b/1.jpg", &jpeg(3));
    write(&root, "b/2.jpg", &jpeg(4));
    write(&root, "stash/c/1.jpg", &jpeg(5));
    write(&root, "stash/c/2.jpg", &jpeg(6));
    std::fs::remove_dir_all(root.join("stash/c")).ok();
    write(&root, ".stash/1.jpg", &jpeg(5));
    write(&root, ".stash/2.jpg", &jpeg(6));
    std::os::unix::fs::symlink(root.join(".stash"), root.join("c")).unwrap();
    std::fs::remove_dir_all(root.join("stash")).unwrap();
    let catalog = lifted::catalog::generic::read_folder(&root).unwrap();
    let names: Vec<&str> = catalog.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "the linked class folder is a class");
    assert_eq!(catalog.images.len(), 6);

    let outside = dir.path().join("elsewhere");
    write(&outside, "1.jpg", &jpeg(7));
    std::os::unix::fs::symlink(&outside, root.join("d")).unwrap();
    let err = lifted::catalog::generic::read_folder(&root)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("outside the dataset folder") && err.contains("elsewhere"),
        "{err}"
    );
    std::fs::remove_file(root.join("d")).unwrap();

    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::write(root.join("a").join(latin1), jpeg(8)).unwrap();
    let data = dir.path().join("data");
    let output = run(&["prepare-data", s(&root), "--quiet", "--data-dir", s(&data)]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not valid UTF-8") && err.contains("a/caf\\xe9.jpg"),
        "{err}"
    );
    assert!(
        !err.contains("missing") && !err.contains("listed twice"),
        "{err}"
    );
    assert!(!data.join("photos/prepared.json").exists());
}

#[test]
fn cars_boxes_that_are_not_finite_are_refused() {
    for (file, what) in [
        ("cars_annos_nan_box.mat", "bbox_x1 is NaN"),
        ("cars_annos_inf_box.mat", "bbox_y2 is inf"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tgz = datasets::pack(&datasets::cars(), FileKind::TarGz);
        let ims = write(dir.path(), "car_ims.tgz", &tgz);
        let mat = write(
            dir.path(),
            "cars_annos.mat",
            &std::fs::read(fixtures().join("cars196").join(file)).unwrap(),
        );
        let output = run(&[
            "prepare-data",
            "cars196",
            "--quiet",
            "--allow-unverified",
            "--data-dir",
            s(&dir.path().join("d")),
            "--archive",
            s(&ims),
            "--archive",
            s(&mat),
        ]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{file}: {err}");
        assert!(
            err.contains(what) && err.contains("not a finite pixel coordinate"),
            "{err}"
        );
    }
}

// §3. Panics and aborts: every size from a flag or a file is checked before use.

#[test]
fn flags_out_of_range_are_usage_errors() {
    let cases: &[&[&str]] = &[
        &["stream", "x", "--size", "0"],
        &["stream", "x", "--size", "65535"],
        &["stream", "x", "--per-class", "1000000"],
        &["stream", "x", "--threads", "10000"],
        &["train", "x", "--embedding", "0"],
        &["train", "x", "--margin", "NaN"],
        &["train", "x", "--lr", "0"],
        &["train", "x", "--lr", "inf"],
        &["train", "x", "--step-every", "0"],
        &["pack", "x", "--size", "65535", "--resize", "pad-square"],
        &["pack", "x", "--threads", "0"],
        &["prepare-data", "x", "--retries", "4294967295"],
        &["prepare-data", "x", "--timeout", "0"],
        &[
            "eval",
            "--embeddings",
            "x.npy",
            "--labels",
            "y.npy",
            "--recall-at",
            "0",
        ],
    ];
    for args in cases {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("invalid value"),
            "{}",
            stderr(&output)
        );
    }
}

/// A one-shard raw set of 8 samples (4 classes) in `dir`.
fn small_set(dir: &Path) -> std::sync::Arc<ShardSet> {
    let mut writer = lifted::shard::ShardWriter::create(
        dir,
        "shard-00000.lfs",
        0,
        lifted::shard::Encoding::Raw,
        12,
    )
    .unwrap();
    let mut sources = Vec::new();
    for i in 0..8u32 {
        writer.push(1 + i / 2, 4, 4, i, &[i as u8; 48]).unwrap();
        sources.push(format!("{i}.png"));
    }
    crate::loader::index(
        dir,
        lifted::shard::Encoding::Raw,
        writer.finish().unwrap(),
        4,
        2,
        sources,
    );
    std::sync::Arc::new(ShardSet::open(dir).unwrap())
}

#[test]
fn the_loader_refuses_impossible_sizes_instead_of_panicking_or_hanging() {
    use lifted::loader::{Augment, Loader, LoaderConfig, PkSampler, SamplerConfig};
    let dir = tempfile::tempdir().unwrap();
    let set = small_set(dir.path());
    let loader = Loader::new(
        set.clone(),
        LoaderConfig {
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let results: Vec<_> = loader
        .sequential(4, Augment::CenterCrop { size: 0 })
        .collect();
    assert_eq!(results.len(), 1);
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("output side must be 1 to 4096"), "{err}");
    let classes = set
        .classes()
        .iter()
        .map(|c| (c.class_id, c.indices().collect()))
        .collect();
    let config = SamplerConfig {
        classes_per_batch: 4,
        per_class: 1_000_000,
        ..Default::default()
    };
    let sampler = PkSampler::new(classes, config).unwrap();
    let mut batches = loader.epoch(
        &sampler,
        0,
        0,
        Augment::RandomCrop {
            size: 227,
            flip: true,
        },
    );
    let err = batches.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("more than the") && err.contains("bytes a batch may take"),
        "{err}"
    );
    assert!(batches.next().is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Writes a `.npy` file with this header dict and data.
fn npy(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = header.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn eval_refuses_empty_and_lying_npy_files_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("y.npy");
    npy(
        &labels,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }",
        &[0; 40],
    );
    let cases = [
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 0), }",
            0usize,
            "N and D at least 1",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 128), }",
            20,
            "promises shape",
        ),
    ];
    for (header, data, message) in cases {
        let x = dir.path().join("x.npy");
        npy(&x, header, &vec![0u8; data]);
        let output = run(&["eval", "--embeddings", s(&x), "--labels", s(&labels)]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn data_dirs_and_working_folders_that_are_not_utf8_work_or_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"d\xffata"));
    let output = lifted()
        .args(["prepare-data", "sample", "--quiet", "--data-dir"])
        .arg(&odd)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(odd.join("sample/prepared.json").is_file());
    let cwd = dir.path().join(std::ffi::OsStr::from_bytes(b"w\xfeork"));
    std::fs::create_dir_all(&cwd).unwrap();
    let output = lifted()
        .current_dir(&cwd)
        .args(["prepare-data", "sample", "--quiet", "--data-dir", "rel"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let packed = lifted()
        .current_dir(&cwd)
        .args([
            "pack",
            "sample",
            "--quiet",
            "--data-dir",
            "rel",
            "--size",
            "16",
        ])
        .output()
        .unwrap();
    assert!(packed.status.success(), "{}", stderr(&packed));
    // An image folder is prepared in place, so its path must be text.
    let folder = dir.path().join(std::ffi::OsStr::from_bytes(b"ph\xf6tos"));
    write(&folder, "a/1.jpg", &jpeg(1));
    write(&folder, "b/1.jpg", &jpeg(2));
    let output = lifted()
        .arg("prepare-data")
        .arg(&folder)
        .args(["--quiet", "--name", "photos", "--data-dir"])
        .arg(dir.path().join("d2"))
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(!dir.path().join("d2/photos/catalog.csv").exists());
}

// §4. Hangs and unbounded work.

#[test]
fn a_fifo_named_like_an_image_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root, "a/1.jpg", &jpeg(1));
    write(&root, "a/2.jpg", &jpeg(2));
    write(&root, "b/1.jpg", &jpeg(3));
    let fifo = root.join("b/x.jpg");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let csv = write(
        dir.path(),
        "list.csv",
        b"path,label\nphotos/a/1.jpg,a\nphotos/b/x.jpg,b\n",
    );
    for dataset in [&root, &csv] {
        let started = Instant::now();
        let output = run(&[
            "prepare-data",
            s(dataset),
            "--quiet",
            "--data-dir",
            s(&dir.path().join("d")),
        ]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "it did not hang"
        );
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{err}");
        assert!(
            err.contains("x.jpg: it is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
    }
    let output = run(&[
        "prepare-data",
        s(&root),
        "--quiet",
        "--skip-bad-images",
        "--json",
        "--data-dir",
        s(&dir.path().join("d")),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(summary["images"], 3);
}

#[test]
fn a_body_without_length_stops_at_the_manifests_size() {
    let server = Server::start();
    let mut body = vec![0x1f, 0x8b, 8, 0];
    body.extend(std::iter::repeat_n(7u8, 60_000));
    server.route("/endless.tgz", body, vec![], Fault::Endless);
    let size = 100_000u64;
    let file = lifted::manifest::SourceFile {
        name: "data.tgz".to_string(),
        size: Some(size),
        sha256: Some("0".repeat(64)),
        md5: None,
        sha256_prefix: None,
        kind: FileKind::TarGz,
        sources: vec![lifted::manifest::Source {
            url: server.url("/endless.tgz"),
            note: None,
        }],
    };
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = lifted::fetch::fetch_file(
        &file,
        dir.path(),
        &fast_fetch(),
        false,
        &|_| None,
        Progress::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.contains("but the manifest says 100000"), "{err}");
    let part = dir.path().join("data.tgz.part");
    let kept = std::fs::metadata(&part).map_or(0, |m| m.len());
    assert!(
        kept <= size,
        "{kept} bytes were written for a {size}-byte file"
    );
    // One attempt: a wrong size is not retried.
    assert_eq!(server.requests_for("/endless.tgz").len(), 1);
}

#[test]
fn network_settings_out_of_range_are_refused_by_the_library() {
    let file = lifted::manifest::SourceFile {
        name: "x.tgz".to_string(),
        size: Some(1),
        sha256: Some("0".repeat(64)),
        md5: None,
        sha256_prefix: None,
        kind: FileKind::TarGz,
        sources: vec![],
    };
    let dir = tempfile::tempdir().unwrap();
    for options in [
        lifted::fetch::FetchOptions {
            retries: u32::MAX,
            ..fast_fetch()
        },
        lifted::fetch::FetchOptions {
            read_timeout: Duration::ZERO,
            ..fast_fetch()
        },
    ] {
        let err = lifted::fetch::fetch_file(
            &file,
            dir.path(),
            &options,
            false,
            &|_| None,
            Progress::hidden(),
        )
        .unwrap_err();
        assert!(
            matches!(err, lifted::fetch::FetchError::Options { .. }),
            "{err:?}"
        );
    }
}

// §5. Messages that mislead.

#[test]
fn a_run_folder_without_a_checkpoint_can_be_used_again() {
    let (dir, data) = shapes();
    let out = dir.path().join("run");
    let mut bad = tiny_config(&data, 1);
    bad.sampler.classes_per_batch = 12; // more than the 6 training classes
    let err = lifted::train::run(&request(bad, Some(out.clone()), None, None)).unwrap_err();
    assert!(
        err.to_string()
            .contains("fewer than the 12 distinct classes"),
        "{err}"
    );
    let good = lifted::train::run(&request(
        tiny_config(&data, 1),
        Some(out.clone()),
        None,
        None,
    ));
    assert!(good.is_ok(), "{:?}", good.err());
    assert!(out.join("checkpoint/state.json").is_file());
}

/// A PNG of `width`×`height` with only its signature and header (decoders read the size first).
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32fast_like(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn large_images_within_pillows_limit_decode_and_larger_ones_are_named_with_their_size() {
    let wide = image::RgbImage::from_fn(20_000, 1, |x, _| image::Rgb([(x % 256) as u8, 0, 9]));
    let mut png = Vec::new();
    wide.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let decoded = lifted::imageio::decode_rgb8(&png).unwrap();
    assert_eq!((decoded.width, decoded.height), (20_000, 1));
    let err = lifted::imageio::decode_rgb8(&png_header_only(20_000, 20_000))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("20000x20000") && err.contains("178956970 pixels"),
        "{err}"
    );
    assert!(!err.contains("damaged"), "{err}");
}

#[test]
fn an_empty_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root, "a/1.jpg", &jpeg(1));
    write(&root, "a/2.jpg", b"");
    write(&root, "b/1.jpg", &jpeg(3));
    let output = run(&[
        "prepare-data",
        s(&root),
        "--quiet",
        "--data-dir",
        s(&dir.path().join("d")),
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a/2.jpg: the file is empty (0 bytes)"),
        "{err}"
    );
    // An image folder gets advice about the folder, and the flag that leaves images out.
    assert!(
        err.contains("repairing or removing these files in the folder"),
        "{err}"
    );
    assert!(
        err.contains("--skip-bad-images") && !err.contains("root/"),
        "{err}"
    );
}

#[test]
fn advice_already_taken_is_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root, "a/1.jpg", &jpeg(1));
    write(&root, "b/1.jpg", &jpeg(2));
    let csv = write(
        &root,
        "list.csv",
        b"path,label\na/1.jpg,a\na/1.jpg,a\nb/1.jpg,b\nb/2.jpg,b\n",
    );
    let output = run(&[
        "prepare-data",
        s(&csv),
        "--quiet",
        "--skip-bad-images",
        "--data-dir",
        s(&dir.path().join("d")),
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("paths are listed twice") && err.contains("listed once"),
        "{err}"
    );
    assert!(!err.contains("--skip-bad-images"), "{err}");
}

#[test]
fn byte_order_marks_are_accepted_in_text_inputs() {
    let bom = |text: &str| format!("\u{feff}{text}");
    // CUB's annotation files.
    let mut fixture = datasets::cub();
    for name in [
        "CUB_200_2011/images.txt",
        "CUB_200_2011/classes.txt",
        "CUB_200_2011/image_class_labels.txt",
    ] {
        let text = fixture.text(name);
        fixture.replace(name, bom(&text));
    }
    let dir = tempfile::tempdir().unwrap();
    let (archive, manifest) = cub_files(dir.path(), &fixture, "bom");
    let output = prepare_cub(&dir.path().join("d"), &archive, &manifest);
    assert!(output.status.success(), "{}", stderr(&output));
    // A CSV dataset, a labels CSV and a manifest.
    let root = dir.path().join("photos");
    write(&root, "1.jpg", &jpeg(1));
    write(&root, "2.jpg", &jpeg(2));
    let csv = write(
        &root,
        "list.csv",
        bom("path,label\n1.jpg,a\n2.jpg,b\n").as_bytes(),
    );
    let catalog = lifted::catalog::generic::read_csv(&csv).unwrap();
    assert_eq!(catalog.images.len(), 2);
    let labels = write(dir.path(), "labels.csv", bom("label\n1\n2\n").as_bytes());
    assert_eq!(lifted::eval::io::read_labels(&labels).unwrap(), [1, 2]);
    let text = toml::to_string(&Manifest::built_in("cub200").unwrap()).unwrap();
    let path = write(dir.path(), "m.toml", bom(&text).as_bytes());
    assert_eq!(Manifest::load(&path).unwrap().name, "cub200");
}

#[test]
fn missing_files_are_named_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("Downloads/CUB_200_201.tgz");
    let output = run(&[
        "prepare-data",
        "cub200",
        "--quiet",
        "--data-dir",
        s(&dir.path().join("d")),
        "--archive",
        s(&typo),
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("the archive {} cannot be opened", typo.display())),
        "{err}"
    );
    assert!(!err.contains("matches no file"), "{err}");

    let (dir2, data) = shapes();
    let mut config = tiny_config(&data, 1);
    let weights = dir2.path().join("nowhere/resnet18.safetensors");
    config.weights = Some(lifted::weights::WeightsSpec::File(weights.clone()));
    let err =
        lifted::train::run(&request(config, Some(dir2.path().join("r")), None, None)).unwrap_err();
    assert!(
        err.to_string().contains(&weights.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_shard_replaced_by_a_folder_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path());
    let shard = dir.path().join("shard-00000.lfs");
    std::fs::remove_file(&shard).unwrap();
    std::fs::create_dir(&shard).unwrap();
    let err = ShardSet::open(dir.path()).err().unwrap();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        text.contains("shard-00000.lfs") && text.contains("it is a folder, not a shard file"),
        "{text}"
    );
}

#[test]
fn a_copied_data_dir_reads_its_own_images() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("d1");
    let output = run(&[
        "prepare-data",
        "sample",
        "--quiet",
        "--data-dir",
        s(&original),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let copy = dir.path().join("d2");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&original)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(&original).unwrap();
    let prepared: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("sample/prepared.json")).unwrap())
            .unwrap();
    let root = prepared["info"]["root"].as_str().unwrap();
    assert!(
        root.starts_with("root/"),
        "relative to the dataset's folder: {root}"
    );
    let packed = run(&[
        "pack",
        "sample",
        "--quiet",
        "--data-dir",
        s(&copy),
        "--size",
        "16",
    ]);
    assert!(packed.status.success(), "{}", stderr(&packed));
    let opened =
        lifted::dataset::open_prepared_ref(&DatasetRef::Named("sample".into()), &copy).unwrap();
    assert!(opened.catalog.root.starts_with(&copy));
}
