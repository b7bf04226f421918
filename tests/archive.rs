//! Extraction of hostile, truncated and oversized archives, and of ZIP64.

use std::io::{Cursor, Write};
use std::path::Path;

use lifted::Progress;
use lifted::archive::{ArchiveError, Budget, ExtractReport, extract};
use lifted::manifest::{ExtractLimits, FileKind};

use crate::support::archives::{Member, Members, file, tar_gz, zip};
use crate::support::{tree, write};

const ROOMY: ExtractLimits = ExtractLimits {
    max_entries: 100_000,
    max_entry_bytes: 1 << 20,
    max_total_bytes: 1 << 24,
};

fn run(
    bytes: &[u8],
    kind: FileKind,
    limits: ExtractLimits,
) -> (tempfile::TempDir, Result<ExtractReport, ArchiveError>) {
    let dir = tempfile::tempdir().unwrap();
    let name = if kind == FileKind::Zip {
        "a.zip"
    } else {
        "a.tgz"
    };
    let archive = write(dir.path(), name, bytes);
    let dest = dir.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let result = extract(
        &archive,
        kind,
        name,
        &dest,
        &mut Budget::new(limits),
        Progress::hidden(),
    );
    (dir, result)
}

fn both(members: &Members) -> [(FileKind, Vec<u8>); 2] {
    [
        (FileKind::TarGz, tar_gz(members)),
        (FileKind::Zip, zip(members, false)),
    ]
}

/// Every path under `dir`, for checking that nothing was written outside `out/`.
fn listing(dir: &Path) -> Vec<String> {
    tree(dir).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn extracts_files_and_folders_exactly() {
    let members = vec![
        ("d/".to_string(), Member::Dir),
        file("d/a.txt", "alpha"),
        file("./d/sub/b.bin", vec![0u8, 1, 2, 3]),
        file("top.txt", ""),
    ];
    for (kind, bytes) in both(&members) {
        let (dir, result) = run(&bytes, kind, ROOMY);
        let report = result.unwrap();
        assert_eq!((report.files, report.bytes), (3, 9), "{kind}");
        assert_eq!(
            tree(&dir.path().join("out")),
            vec![
                ("d/a.txt".to_string(), b"alpha".to_vec()),
                ("d/sub/b.bin".to_string(), vec![0, 1, 2, 3]),
                ("top.txt".to_string(), vec![]),
            ]
        );
    }
}

#[test]
fn parent_dir_entries_are_refused() {
    let members = vec![file("ok.txt", "x"), file("d/../../evil.txt", "pwned")];
    for (kind, bytes) in both(&members) {
        let (dir, result) = run(&bytes, kind, ROOMY);
        match result {
            Err(ArchiveError::UnsafePath { entry, reason, .. }) => {
                assert_eq!(entry, "d/../../evil.txt");
                assert!(reason.contains(".."), "{reason}");
            }
            other => panic!("{kind}: expected UnsafePath, got {other:?}"),
        }
        assert!(!listing(dir.path()).iter().any(|p| p.contains("evil")));
    }
}

#[test]
fn absolute_paths_are_refused() {
    let target = tempfile::tempdir().unwrap();
    let evil = target.path().join("evil.txt");
    let members = vec![file(evil.to_str().unwrap(), "pwned")];
    for (kind, bytes) in both(&members) {
        let (_dir, result) = run(&bytes, kind, ROOMY);
        assert!(
            matches!(&result, Err(ArchiveError::UnsafePath { reason, .. }) if reason.contains("absolute")),
            "{kind}: {result:?}"
        );
        assert!(!evil.exists());
    }
}

#[test]
fn symlinks_escaping_the_target_are_refused() {
    for target in ["../../etc", "/etc", "a/../../.."] {
        let members = vec![
            ("link".to_string(), Member::Symlink(target.to_string())),
            file("link/passwd", "pwned"),
        ];
        for (kind, bytes) in both(&members) {
            let (dir, result) = run(&bytes, kind, ROOMY);
            assert!(
                matches!(&result, Err(ArchiveError::UnsafePath { entry, .. }) if entry == "link"),
                "{kind} {target}: {result:?}"
            );
            let made = std::fs::symlink_metadata(dir.path().join("out/link"));
            assert!(made.is_err(), "{kind} {target}: the link was created");
        }
    }
}

#[test]
fn links_inside_the_target_are_made_after_the_files() {
    // The file is written into a real folder `d/`; the link is created last and points inside.
    let members = vec![
        ("alias".to_string(), Member::Symlink("d".to_string())),
        file("d/a.txt", "alpha"),
        (
            "d/hard.txt".to_string(),
            Member::HardLink("d/a.txt".to_string()),
        ),
    ];
    let (dir, result) = run(&tar_gz(&members), FileKind::TarGz, ROOMY);
    let report = result.unwrap();
    assert_eq!(report.links, 2);
    let out = dir.path().join("out");
    assert!(
        std::fs::symlink_metadata(out.join("alias"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        out.join("d").is_dir()
            && !std::fs::symlink_metadata(out.join("d"))
                .unwrap()
                .file_type()
                .is_symlink()
    );
    assert_eq!(std::fs::read(out.join("alias/hard.txt")).unwrap(), b"alpha");
}

#[test]
fn a_link_through_another_link_is_refused() {
    // `p -> .` is harmless alone, but `p/q/r -> ../..` would resolve to the parent of the root.
    let members = vec![
        ("p".to_string(), Member::Symlink(".".to_string())),
        ("q/".to_string(), Member::Dir),
        ("p/q/r".to_string(), Member::Symlink("../..".to_string())),
    ];
    let (_dir, result) = run(&tar_gz(&members), FileKind::TarGz, ROOMY);
    assert!(
        matches!(&result, Err(ArchiveError::UnsafePath { entry, .. }) if entry == "p/q/r"),
        "{result:?}"
    );
}

#[test]
fn a_chain_of_links_that_climbs_out_is_refused() {
    // Each name stays inside on its own (`d` is `.`, and `d/..` looks like `.`), but `e`
    // resolves to the parent of the extraction folder.
    let members = vec![
        ("d".to_string(), Member::Symlink(".".to_string())),
        ("e".to_string(), Member::Symlink("d/..".to_string())),
    ];
    for (kind, bytes) in both(&members) {
        let (_dir, result) = run(&bytes, kind, ROOMY);
        assert!(
            matches!(&result, Err(ArchiveError::UnsafePath { entry, reason, .. }) if entry == "e" && reason.contains("does not resolve inside")),
            "{kind}: {result:?}"
        );
    }
}

#[test]
fn a_dangling_link_is_refused() {
    let members = vec![("l".to_string(), Member::Symlink("missing/file".to_string()))];
    let (_dir, result) = run(&tar_gz(&members), FileKind::TarGz, ROOMY);
    assert!(
        matches!(result, Err(ArchiveError::UnsafePath { .. })),
        "{result:?}"
    );
}

#[test]
fn skipped_entries_have_their_own_allowance() {
    // An AppleDouble twin for every file must not eat the entry limit...
    let mut members: Members = Vec::new();
    for i in 0..8 {
        members.push(file(&format!("d/f{i}.jpg"), "x"));
        members.push(file(&format!("d/._f{i}.jpg"), "fork"));
    }
    let limits = ExtractLimits {
        max_entries: 10,
        ..ROOMY
    };
    let (_dir, result) = run(&tar_gz(&members), FileKind::TarGz, limits);
    assert_eq!(result.unwrap().files, 8);
    // ...but a flood of them still stops.
    let flood: Members = (0..50)
        .map(|i| file(&format!("__MACOSX/._{i}"), "fork"))
        .collect();
    let (_dir, result) = run(&tar_gz(&flood), FileKind::TarGz, limits);
    assert!(
        matches!(result, Err(ArchiveError::TooManyEntries { .. })),
        "{result:?}"
    );
}

#[test]
fn a_multi_member_gzip_is_read_to_the_end() {
    // Concatenated gzip members (as bgzip or `cat a.gz b.gz` make) are one valid stream.
    let whole = tar_gz(&vec![file("a.txt", "alpha"), file("b.txt", "beta")]);
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&whole[..]), &mut plain).unwrap();
    let (head, tail) = plain.split_at(1024);
    let mut bytes = Vec::new();
    for part in [head, tail] {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(part).unwrap();
        bytes.extend(encoder.finish().unwrap());
    }
    let (dir, result) = run(&bytes, FileKind::TarGz, ROOMY);
    assert_eq!(result.unwrap().files, 2);
    assert_eq!(
        std::fs::read(dir.path().join("out/b.txt")).unwrap(),
        b"beta"
    );
}

#[test]
fn hard_links_outside_the_archive_are_refused() {
    let members = vec![(
        "h".to_string(),
        Member::HardLink("../../etc/passwd".to_string()),
    )];
    let (_dir, result) = run(&tar_gz(&members), FileKind::TarGz, ROOMY);
    assert!(
        matches!(result, Err(ArchiveError::UnsafePath { .. })),
        "{result:?}"
    );
}

#[test]
fn mac_metadata_is_skipped_and_counted() {
    let members = vec![
        file("__MACOSX/d/._a.txt", "fork"),
        file("d/._a.txt", "double"),
        file("d/a.txt", "alpha"),
    ];
    for (kind, bytes) in both(&members) {
        let (dir, result) = run(&bytes, kind, ROOMY);
        let report = result.unwrap();
        assert_eq!(report.files, 1);
        assert_eq!(
            report.skipped.values().sum::<u64>(),
            2,
            "{:?}",
            report.skipped
        );
        assert_eq!(listing(&dir.path().join("out")), vec!["d/a.txt"]);
    }
}

#[test]
fn truncated_tar_gz_is_reported_corrupt() {
    let members: Members = (0..20)
        .map(|i| file(&format!("f{i}.bin"), vec![i as u8; 5000]))
        .collect();
    let bytes = tar_gz(&members);
    for cut in [bytes.len() / 2, bytes.len() - 4] {
        let (_dir, result) = run(&bytes[..cut], FileKind::TarGz, ROOMY);
        match result {
            Err(err @ ArchiveError::Corrupt { .. }) => {
                assert!(err.to_string().contains("truncated or corrupt"), "{err}")
            }
            other => panic!("cut at {cut}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn truncated_or_damaged_zip_is_reported_corrupt() {
    let members: Members = (0..20)
        .map(|i| file(&format!("f{i}.txt"), format!("file {i} ").repeat(200)))
        .collect();
    let bytes = zip(&members, false);
    let (_dir, result) = run(&bytes[..bytes.len() / 2], FileKind::Zip, ROOMY);
    assert!(
        matches!(result, Err(ArchiveError::Corrupt { .. })),
        "{result:?}"
    );
    // Flip a byte inside the first entry's compressed data: decompression or its CRC fails.
    let mut damaged = bytes.clone();
    damaged[60] ^= 0x55;
    let (_dir, result) = run(&damaged, FileKind::Zip, ROOMY);
    assert!(
        matches!(result, Err(ArchiveError::Corrupt { .. })),
        "{result:?}"
    );
}

#[test]
fn too_many_entries_is_a_bomb() {
    let members: Members = (0..50).map(|i| file(&format!("f{i}"), "x")).collect();
    let limits = ExtractLimits {
        max_entries: 10,
        ..ROOMY
    };
    for (kind, bytes) in both(&members) {
        let (dir, result) = run(&bytes, kind, limits);
        assert!(
            matches!(result, Err(ArchiveError::TooManyEntries { limit: 10, .. })),
            "{kind}: {result:?}"
        );
        assert!(listing(&dir.path().join("out")).len() <= 10);
    }
}

#[test]
fn an_entry_beyond_the_size_limit_is_a_bomb() {
    // 4 MiB of zeros compress to a few KiB: the limit must stop it, not the archive size.
    let members = vec![file("zeros.bin", vec![0u8; 4 << 20])];
    let limits = ExtractLimits {
        max_entry_bytes: 1 << 20,
        ..ROOMY
    };
    for (kind, bytes) in both(&members) {
        assert!(bytes.len() < 64 << 10, "the fixture is a compressed bomb");
        let (dir, result) = run(&bytes, kind, limits);
        assert!(
            matches!(result, Err(ArchiveError::EntryTooLarge { .. })),
            "{kind}: {result:?}"
        );
        let written = std::fs::metadata(dir.path().join("out/zeros.bin")).map_or(0, |m| m.len());
        assert!(written <= 1 << 20, "{written} bytes written");
    }
}

#[test]
fn the_total_size_limit_spans_entries() {
    let members: Members = (0..8)
        .map(|i| file(&format!("f{i}"), vec![0u8; 300_000]))
        .collect();
    let limits = ExtractLimits {
        max_total_bytes: 1_000_000,
        ..ROOMY
    };
    for (kind, bytes) in both(&members) {
        let (_dir, result) = run(&bytes, kind, limits);
        assert!(
            matches!(result, Err(ArchiveError::TotalTooLarge { .. })),
            "{kind}: {result:?}"
        );
    }
}

#[test]
fn zip64_archives_with_more_than_65535_entries_extract() {
    // More entries than a classic end-of-central-directory record can count forces the
    // ZIP64 end records, as in SOP's 120,053-image zip.
    let count = 65_600;
    let mut writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Stored);
    for i in 0..count {
        writer
            .start_file(format!("d{}/{i}.txt", i / 1000), options)
            .unwrap();
        writer.write_all(format!("{i}").as_bytes()).unwrap();
    }
    let bytes = writer.finish().unwrap().into_inner();
    let eocd64 = bytes.windows(4).any(|w| w == [0x50, 0x4b, 0x06, 0x06]);
    assert!(
        eocd64,
        "the fixture has a ZIP64 end of central directory record"
    );
    let (dir, result) = run(&bytes, FileKind::Zip, ROOMY);
    assert_eq!(result.unwrap().files, count);
    assert_eq!(
        std::fs::read(dir.path().join("out/d65/65599.txt")).unwrap(),
        b"65599"
    );
}

#[test]
fn zip64_extra_fields_are_read() {
    let members = vec![file("a.txt", "alpha"), file("b/c.txt", "gamma")];
    let (dir, result) = run(&zip(&members, true), FileKind::Zip, ROOMY);
    assert_eq!(result.unwrap().files, 2);
    assert_eq!(
        std::fs::read(dir.path().join("out/b/c.txt")).unwrap(),
        b"gamma"
    );
}
