//! `lifted pack`, `verify` and `inspect`: every image kind decodes to the right pixels, resizing
//! matches Pillow's, packs are byte-identical whatever the thread count or interruption, and
//! shards split at the size limit read back correctly.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifted::Progress;
use lifted::dataset::DatasetRef;
use lifted::pack::{self, CropMode, PackOptions, Preprocess, ResizeMode};
use lifted::shard::{Encoding, ShardSet};
use lifted::split::{Part, Selection};

use crate::support::images::{fixture, fixtures, jpeg};
use crate::support::{lifted, prepare_options, stderr, stdout, tree, write};

/// An image folder with every fixture kind, prepared under `data`; returns its name.
fn prepared_folder(root: &Path, data: &Path) -> String {
    let folder = root.join("kinds");
    let files: [(&str, Vec<u8>); 9] = [
        ("a/rgb.jpg", fixture("rgb.jpg")),
        ("a/gray.jpg", fixture("gray.jpg")),
        ("a/progressive.jpg", fixture("progressive.jpg")),
        ("b/cmyk.jpg", fixture("cmyk.jpg")),
        ("b/rgb.png", fixture("rgb.png")),
        ("c/rgba.png", fixture("rgba.png")),
        ("c/gray16.png", fixture("gray16.png")),
        ("d/photo1.jpg", jpeg(1)),
        ("d/photo2.jpg", jpeg(2)),
    ];
    for (name, bytes) in files {
        write(&folder, name, &bytes);
    }
    lifted::prepare::prepare(&DatasetRef::Path(folder), &prepare_options(data)).unwrap();
    "kinds".to_string()
}

fn options(data: &Path, out: &Path, preprocess: Preprocess, threads: usize) -> PackOptions {
    PackOptions {
        data_dir: data.to_path_buf(),
        part: Selection::All,
        split_dir: None,
        preprocess,
        threads,
        strict: false,
        shard_bytes: 1 << 30,
        out: Some(out.to_path_buf()),
        force: false,
        progress: Progress::hidden(),
    }
}

fn raw(size: u32, resize: ResizeMode) -> Preprocess {
    Preprocess {
        size,
        resize,
        crop: CropMode::None,
        encoding: Encoding::Raw,
        quality: None,
    }
}

fn jpeg_settings() -> Preprocess {
    Preprocess {
        encoding: Encoding::Jpeg,
        quality: Some(90),
        ..raw(24, ResizeMode::ShortSide)
    }
}

fn reference(name: &str) -> (u32, u32, Vec<u8>) {
    let text = std::fs::read_to_string(fixtures().join("images/reference.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let case = cases.iter().find(|c| c["name"] == name).unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
    for c in case["rgb"].as_str().unwrap().bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | alphabet.iter().position(|&a| a == c).unwrap() as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    (
        case["width"].as_u64().unwrap() as u32,
        case["height"].as_u64().unwrap() as u32,
        out,
    )
}

fn sample_of<'a>(set: &'a ShardSet, path: &str) -> lifted::shard::Sample<'a> {
    (0..set.len())
        .map(|i| set.sample(i).unwrap())
        .find(|s| set.source_path(s) == path)
        .unwrap_or_else(|| panic!("{path} was packed"))
}

#[test]
fn every_image_kind_is_packed_and_resizing_matches_pillow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = prepared_folder(dir.path(), &data);
    for (resize, size, expected) in [
        (ResizeMode::ShortSide, 20, "rgb.png@short-side-20"),
        (ResizeMode::PadSquare, 24, "rgb.png@pad-square-24"),
    ] {
        let out = dir.path().join(format!("out-{size}"));
        let summary = pack::pack(
            &DatasetRef::Named(name.clone()),
            &options(&data, &out, raw(size, resize), 2),
        )
        .unwrap();
        assert_eq!(
            (summary.samples, summary.rejected.len()),
            (9, 0),
            "{:?}",
            summary.rejected
        );
        let set = ShardSet::open(&out).unwrap();
        let (w, h, pixels) = reference(expected);
        let sample = sample_of(&set, "b/rgb.png");
        assert_eq!((u32::from(sample.width), u32::from(sample.height)), (w, h));
        let worst = sample
            .bytes
            .iter()
            .zip(&pixels)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(
            worst <= 1,
            "{expected}: worst difference {worst} from Pillow"
        );
        // Every kind becomes RGB8 of the expected shape.
        for i in 0..set.len() {
            let s = set.sample(i).unwrap();
            assert_eq!(
                s.bytes.len(),
                usize::from(s.width) * usize::from(s.height) * 3
            );
            let (w, h) = (u32::from(s.width), u32::from(s.height));
            match resize {
                ResizeMode::ShortSide => assert_eq!(w.min(h), size, "{}", set.source_path(&s)),
                ResizeMode::PadSquare => {
                    assert_eq!((w, h), (size, size), "{}", set.source_path(&s))
                }
            }
        }
    }
}

#[test]
fn packing_is_byte_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = prepared_folder(dir.path(), &data);
    let mut trees = Vec::new();
    for threads in [1, 2, 3] {
        let out = dir.path().join(format!("t{threads}"));
        let mut settings = options(&data, &out, jpeg_settings(), threads);
        settings.shard_bytes = 2000; // several shards
        let summary = pack::pack(&DatasetRef::Named(name.clone()), &settings).unwrap();
        assert!(summary.shards > 1, "{} shards", summary.shards);
        trees.push(tree(&out));
    }
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
}

#[test]
fn shards_split_at_the_size_limit_read_back_by_index_and_class() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = prepared_folder(dir.path(), &data);
    let out = dir.path().join("out");
    let mut settings = options(&data, &out, raw(16, ResizeMode::ShortSide), 2);
    settings.shard_bytes = 2500; // about three 16x21 raw samples per shard
    pack::pack(&DatasetRef::Named(name), &settings).unwrap();
    let set = ShardSet::open(&out).unwrap();
    assert!(set.shard_count() >= 3, "{} shards", set.shard_count());
    assert_eq!(set.len(), 9);
    // Classes in id order, samples grouped, each class's samples carry its id.
    let ids: Vec<u32> = set.classes().iter().map(|c| c.class_id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let mut seen = Vec::new();
    for class in set.classes() {
        for index in class.indices() {
            let sample = set.sample(index).unwrap();
            assert_eq!(sample.class_id, class.class_id);
            seen.push(index);
        }
    }
    assert_eq!(seen, (0..9).collect::<Vec<_>>());
    assert_eq!(set.index().sources.len(), 9);
    assert!(set.sample(9).is_err());
    let report = lifted::shard::verify::verify(&set, Progress::hidden()).unwrap();
    assert_eq!((report.samples, report.shards), (9, set.shard_count()));
}

#[test]
fn bounding_boxes_crop_before_scaling() {
    use crate::support::datasets;
    let dir = tempfile::tempdir().unwrap();
    let fixture = datasets::cub();
    let tgz = write(
        dir.path(),
        "CUB_200_2011.tgz",
        &datasets::pack(&fixture, lifted::manifest::FileKind::TarGz),
    );
    let data = dir.path().join("data");
    let mut prep = prepare_options(&data);
    prep.archives = vec![tgz];
    prep.allow_unverified = true;
    lifted::prepare::prepare(&DatasetRef::parse("cub200"), &prep).unwrap();
    let out = dir.path().join("bbox");
    let mut settings = options(&data, &out, raw(10, ResizeMode::ShortSide), 2);
    settings.preprocess.crop = CropMode::BBox;
    settings.part = Selection::Only(Part::Train);
    let summary = pack::pack(&DatasetRef::parse("cub200"), &settings).unwrap();
    assert_eq!(summary.samples, fixture.counts.train_images);
    let set = ShardSet::open(&out).unwrap();
    // Image 1's box is (1, 2, 10 wide, 9 high) (see datasets::cub): short side 9 -> 10, so
    // the crop scales to 11x10 whatever the whole image's shape.
    let sample = sample_of(
        &set,
        "images/001.Black_footed_Albatross/Bird_0001_796001.jpg",
    );
    assert_eq!((sample.width, sample.height), (11, 10));
    assert_eq!(set.index().preprocess.crop, CropMode::BBox);
    // A dataset without boxes says so.
    let name = prepared_folder(dir.path(), &data);
    let mut settings = options(
        &data,
        &dir.path().join("x"),
        raw(10, ResizeMode::ShortSide),
        1,
    );
    settings.preprocess.crop = CropMode::BBox;
    let err = pack::pack(&DatasetRef::Named(name), &settings).unwrap_err();
    assert!(
        err.to_string()
            .contains("cropping to bounding boxes needs them"),
        "{err}"
    );
}

#[test]
fn an_image_that_breaks_after_prepare_is_listed_or_stops_a_strict_pack() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = prepared_folder(dir.path(), &data);
    write(
        &dir.path().join("kinds"),
        "d/photo2.jpg",
        &fixture("truncated.jpg"),
    );
    let out = dir.path().join("out");
    let summary = pack::pack(
        &DatasetRef::Named(name.clone()),
        &options(&data, &out, jpeg_settings(), 2),
    )
    .unwrap();
    assert_eq!(summary.samples, 8);
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].path, "d/photo2.jpg");
    assert!(
        summary.rejected[0].reason.contains("truncated JPEG"),
        "{}",
        summary.rejected[0].reason
    );
    let set = ShardSet::open(&out).unwrap();
    assert_eq!(set.index().rejected, summary.rejected);

    let before = tree(&out);
    let mut strict = options(&data, &out, jpeg_settings(), 2);
    strict.strict = true;
    let err = pack::pack(&DatasetRef::Named(name), &strict).unwrap_err();
    assert!(
        err.to_string().contains("d/photo2.jpg cannot be packed"),
        "{err}"
    );
    assert_eq!(
        tree(&out),
        before,
        "a failed pack leaves the previous output as it was"
    );
}

fn run_pack(data: &Path, name: &str, out: &Path) -> std::process::Command {
    let mut command = lifted();
    command
        .args([
            "pack",
            name,
            "--quiet",
            "--split",
            "all",
            "--threads",
            "2",
            "--shard-size",
            "1",
            "--data-dir",
        ])
        .arg(data)
        .arg("--out")
        .arg(out);
    command
}

#[test]
fn a_pack_killed_part_way_then_rerun_gives_the_same_bytes() {
    // 3,000 photos in 1 MiB shards: long enough to interrupt after the first shards.
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("many");
    for i in 0..3000u32 {
        write(&folder, &format!("c{}/{i}.jpg", i % 7), &jpeg(i));
    }
    let data = dir.path().join("data");
    lifted::prepare::prepare(&DatasetRef::Path(folder), &prepare_options(&data)).unwrap();
    let out = dir.path().join("shards");
    let parent = dir.path();
    let mut caught = false;
    for _attempt in 0..5 {
        let mut child = run_pack(&data, "many", &out).spawn().unwrap();
        let start = Instant::now();
        let staging = || -> Option<PathBuf> {
            std::fs::read_dir(parent)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(".shards.tmp-")
                        && p.join("shard-00000.lfs").exists()
                })
        };
        while staging().is_none() && start.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if !out.exists() {
            caught = true;
            break;
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
    assert!(caught, "could not interrupt the pack in 5 attempts");
    let output = run_pack(&data, "many", &out).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let leftovers: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".shards.tmp-") || n.starts_with(".shards.old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let clean = dir.path().join("clean");
    let output = run_pack(&data, "many", &clean).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(tree(&out), tree(&clean));
}

#[test]
fn pack_verify_and_inspect_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = prepared_folder(dir.path(), &data);
    let d = data.to_str().unwrap();
    let output = lifted()
        .args([
            "pack",
            &name,
            "--data-dir",
            d,
            "--split",
            "train",
            "--size",
            "32",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let out = PathBuf::from(summary["out"].as_str().unwrap());
    assert!(
        out.ends_with("kinds/shards/seed0-ratio0.5-train-jpeg32"),
        "{out:?}"
    );
    assert_eq!(summary["split"]["part"], "train");
    let shards = out.to_str().unwrap();
    let output = lifted().args(["verify", shards]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("ok: index.json is the one the 1 shards were sealed with"),
        "{}",
        stdout(&output)
    );
    let dump = dir.path().join("dump");
    let output = lifted()
        .args([
            "inspect",
            shards,
            "--dump",
            "3",
            "--out",
            dump.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("preprocess  JPEG 32, short-side, crop none, quality 90"),
        "{}",
        stdout(&output)
    );
    let dumped = std::fs::read_dir(&dump).unwrap().count();
    assert_eq!(dumped, summary["samples"].as_u64().unwrap().min(3) as usize);
    // A damaged shard fails verify with the shard's name.
    let shard = out.join("shard-00000.lfs");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let output = lifted().args(["verify", shards]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("shard-00000.lfs: tables checksum"),
        "{}",
        stderr(&output)
    );
    // Wrong flags are usage errors.
    let output = lifted()
        .args(["pack", &name, "--data-dir", d, "--encoding", "webp"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = lifted()
        .args(["pack", &name, "--data-dir", d, "--quality", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("'--quality <QUALITY>': 0 is not in 1..=100"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn stream_through_the_command_line_delivers_whole_epochs_and_draws_its_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let name = prepared_folder(dir.path(), &data);
    let output = lifted()
        .args(["pack", &name, "--data-dir", data.to_str().unwrap()])
        .args(["--split", "all", "--size", "40", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let shards = summary["out"].as_str().unwrap().to_string();
    let classes = summary["classes"].as_u64().unwrap();
    assert_eq!(classes, 4);
    let grid = dir.path().join("grid.png");
    let output = lifted()
        .args(["stream", &shards, "--classes", "3", "--per-class", "2"])
        .args(["--epochs", "2", "--size", "32", "--threads", "2", "--json"])
        .arg("--grid")
        .arg(&grid)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    // An epoch is ⌈C/P⌉ = ⌈4/3⌉ = 2 batches of P×K = 6 images.
    assert_eq!(report["epochs"], 2, "{report}");
    assert_eq!(report["batches"], 4, "{report}");
    assert_eq!(report["batch_size"], 6, "{report}");
    assert_eq!(report["images"], 24, "{report}");
    assert!(report["images_per_s"].as_f64().unwrap() > 0.0, "{report}");
    let picture = image::open(&grid).unwrap();
    assert!(
        picture.width() >= 32 * 2 && picture.height() >= 32 * 3,
        "{:?}",
        (picture.width(), picture.height())
    );
    // The text report names the same counts.
    let output = lifted()
        .args([
            "stream",
            &shards,
            "--classes",
            "4",
            "--per-class",
            "1",
            "--size",
            "32",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("1 batches"), "{}", stdout(&output));
    // A folder that is not a pack is named.
    let output = lifted()
        .args(["stream", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("index.json"),
        "{}",
        stderr(&output)
    );
}
