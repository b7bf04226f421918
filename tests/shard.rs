//! The shard format: the example in `docs/FORMAT.md`, write→read round trips, and one test
//! per malformed case, each matching its exact error.

use lifted::shard::Header;

/// Sizes from docs/FORMAT.md: the header, and one record of the record table.
const HEADER_LEN: usize = 128;
const RECORD_LEN: usize = 32;
use lifted::shard::{Encoding, ShardError, ShardView, ShardWriter};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// The bytes of the ```hex block in docs/FORMAT.md.
fn spec_example() -> Vec<u8> {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    let block = spec
        .split("```hex\n")
        .nth(1)
        .expect("a hex block")
        .split("```")
        .next()
        .unwrap();
    let mut bytes = Vec::new();
    for line in block.lines() {
        let (offset, hex) = line.split_once(": ").expect("offset: bytes");
        assert_eq!(
            usize::from_str_radix(offset, 16).unwrap(),
            bytes.len(),
            "line {line}"
        );
        bytes.extend(
            hex.split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap()),
        );
    }
    bytes
}

/// Writes samples with a `ShardWriter` and returns the file's bytes.
fn write(encoding: Encoding, alignment: u8, samples: &[(u32, u16, u16, Vec<u8>)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = ShardWriter::create(dir.path(), "s.lfs", 0, encoding, alignment).unwrap();
    for (i, (class, w, h, bytes)) in samples.iter().enumerate() {
        writer.push(*class, *w, *h, i as u32, bytes).unwrap();
    }
    let written = writer
        .finish()
        .unwrap()
        .seal(Sha256::digest(b"").into())
        .unwrap();
    let bytes = std::fs::read(dir.path().join("s.lfs")).unwrap();
    assert_eq!(written.bytes, bytes.len() as u64);
    assert!(!dir.path().join("s.lfs.tmp").exists());
    bytes
}

/// Writes raw samples as a one-shard set (shard and `index.json`) in `dir`.
fn write_raw_set(dir: &std::path::Path, samples: &[(u32, u16, u16, Vec<u8>)]) {
    let mut writer = ShardWriter::create(dir, "shard-00000.lfs", 0, Encoding::Raw, 6).unwrap();
    for (i, (class, w, h, bytes)) in samples.iter().enumerate() {
        writer.push(*class, *w, *h, i as u32, bytes).unwrap();
    }
    let unsealed = writer.finish().unwrap();
    let mut class_ids: Vec<u32> = samples.iter().map(|s| s.0).collect();
    class_ids.sort_unstable();
    class_ids.dedup();
    let index = lifted::shard::ShardIndex {
        format: lifted::shard::INDEX_FORMAT.to_string(),
        dataset: "example".to_string(),
        split: lifted::shard::SplitRef {
            name: "s".to_string(),
            hash: "0".repeat(64),
            part: "all".to_string(),
        },
        preprocess: lifted::shard::Preprocess::raw(1),
        made_from: lifted::shard::MadeFrom {
            prepared: "0".repeat(64),
            sources: "0".repeat(64),
        },
        samples: samples.len(),
        classes: class_ids
            .iter()
            .map(|&id| lifted::shard::ClassSummary {
                id,
                name: format!("class {id}"),
                samples: samples.iter().filter(|s| s.0 == id).count(),
            })
            .collect(),
        shards: vec![lifted::shard::IndexShard {
            file: unsealed.file(),
            samples: samples.len(),
            bytes: unsealed.bytes(),
        }],
        sources: (0..samples.len()).map(|i| format!("{i}.png")).collect(),
        rejected: vec![],
        created_by: "test".to_string(),
    };
    lifted::shard::seal_folder(dir, &index, vec![unsealed]).unwrap();
}

fn example_samples() -> Vec<(u32, u16, u16, Vec<u8>)> {
    vec![
        (7, 1, 1, vec![0xff, 0, 0]),
        (9, 2, 1, vec![0, 0xff, 0, 0, 0, 0xff]),
    ]
}

/// Recomputes both CRCs after a test edits the tables (so the edit, not a checksum, is found).
fn reseal(bytes: &mut [u8]) {
    let class_table = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let tables_crc = crc32c::crc32c(&bytes[class_table..]);
    bytes[56..60].copy_from_slice(&tables_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[..124]);
    bytes[124..128].copy_from_slice(&header_crc.to_le_bytes());
}

/// Where record `i`'s bytes start.
fn record_at(bytes: &[u8], i: usize) -> usize {
    u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize + i * RECORD_LEN
}

#[test]
fn spec_example_parses() {
    let bytes = spec_example();
    assert_eq!(bytes.len(), 240);
    let view = ShardView::parse(&bytes, "example").unwrap();
    let h: &Header = view.header();
    assert_eq!(
        (h.encoding, h.alignment_log2, h.shard_index),
        (Encoding::Raw, 6, 0)
    );
    assert_eq!((h.sample_count, h.class_count), (2, 2));
    assert_eq!(
        (
            h.data_offset,
            h.class_table_offset,
            h.record_table_offset,
            h.file_length
        ),
        (128, 144, 176, 240)
    );
    assert_eq!(h.index_sha256, <[u8; 32]>::from(Sha256::digest(b"")));
    let classes: Vec<(u32, u32, u32)> = view
        .classes()
        .map(|c| (c.class_id, c.first_record, c.record_count))
        .collect();
    assert_eq!(classes, [(7, 0, 1), (9, 1, 1)]);
    let (r0, d0) = view.sample(0).unwrap();
    assert_eq!(
        (
            r0.offset,
            r0.length,
            r0.width,
            r0.height,
            r0.class_id,
            r0.source_index
        ),
        (128, 3, 1, 1, 7, 0)
    );
    assert_eq!(d0, [0xff, 0, 0]);
    assert_eq!(r0.crc, 0xf16188d2);
    let (r1, d1) = view.sample(1).unwrap();
    assert_eq!(
        (
            r1.offset,
            r1.length,
            r1.width,
            r1.height,
            r1.class_id,
            r1.source_index
        ),
        (131, 6, 2, 1, 9, 1)
    );
    assert_eq!(d1, [0, 0xff, 0, 0, 0, 0xff]);
    assert_eq!(r1.crc, 0x5a3f4178);
    assert!(view.sample(2).is_none());
}

#[test]
fn the_writer_produces_the_spec_example_byte_for_byte() {
    assert_eq!(write(Encoding::Raw, 6, &example_samples()), spec_example());
}

#[test]
fn the_writer_aligns_data_to_a_page() {
    let bytes = write(Encoding::Jpeg, 12, &[(1, 3, 2, vec![1, 2, 3, 4, 5])]);
    let view = ShardView::parse(&bytes, "page").unwrap();
    assert_eq!(view.header().data_offset, 4096);
    assert_eq!(view.sample(0).unwrap().0.offset, 4096);
}

#[test]
fn truncated_file() {
    let bytes = spec_example();
    for cut in [0, 10, 127, 128, 200, 239] {
        let err = ShardView::parse(&bytes[..cut], "t.lfs").unwrap_err();
        match err {
            ShardError::Truncated {
                shard,
                expected,
                actual,
            } => {
                assert_eq!(shard, "t.lfs");
                assert_eq!(actual, cut as u64);
                assert_eq!(expected, if cut < HEADER_LEN { 128 } else { 240 });
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn bad_magic() {
    let mut bytes = spec_example();
    bytes[..8].copy_from_slice(b"PK\x03\x04junk");
    let err = ShardView::parse(&bytes, "m.lfs").unwrap_err();
    assert!(
        matches!(&err, ShardError::BadMagic { found, .. } if found == b"PK\x03\x04junk"),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a lifted shard"), "{err}");
}

#[test]
fn unknown_version() {
    let mut bytes = spec_example();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "v.lfs").unwrap_err();
    assert!(
        matches!(err, ShardError::UnknownVersion { version: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("pack the split again"), "{err}");
}

#[test]
fn header_checksum() {
    let mut bytes = spec_example();
    bytes[12] = 5; // shard index, without resealing
    let err = ShardView::parse(&bytes, "h.lfs").unwrap_err();
    assert!(matches!(err, ShardError::HeaderChecksum { .. }), "{err:?}");
}

#[test]
fn tables_checksum() {
    let mut bytes = spec_example();
    bytes[0xb0 + 20] ^= 1; // a byte of record 0's CRC
    let err = ShardView::parse(&bytes, "c.lfs").unwrap_err();
    assert!(matches!(err, ShardError::TablesChecksum { .. }), "{err:?}");
}

#[test]
fn offset_out_of_range() {
    let mut bytes = spec_example();
    let at = record_at(&bytes, 1);
    bytes[at..at + 8].copy_from_slice(&1000u64.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "o.lfs").unwrap_err();
    assert!(
        matches!(
            err,
            ShardError::OffsetOutOfRange {
                sample: 1,
                offset: 1000,
                length: 6,
                data_start: 128,
                data_end: 144,
                ..
            }
        ),
        "{err:?}"
    );
    // An offset whose end overflows u64 is out of range too, not a panic.
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut bytes);
    assert!(matches!(
        ShardView::parse(&bytes, "o.lfs"),
        Err(ShardError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn overlapping_records() {
    let mut bytes = spec_example();
    let at = record_at(&bytes, 1);
    bytes[at..at + 8].copy_from_slice(&129u64.to_le_bytes()); // sample 0 ends at 131
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "x.lfs").unwrap_err();
    assert!(
        matches!(
            err,
            ShardError::Overlap {
                sample: 1,
                offset: 129,
                previous_end: 131,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_hole_between_records() {
    let mut bytes = spec_example();
    let at = record_at(&bytes, 1);
    bytes[at..at + 8].copy_from_slice(&132u64.to_le_bytes());
    bytes[at + 8..at + 12].copy_from_slice(&5u32.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "x.lfs").unwrap_err();
    assert!(
        matches!(
            err,
            ShardError::Hole {
                sample: 1,
                offset: 132,
                previous_end: 131,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn sample_crc_mismatch() {
    // The data region is not covered by the table CRC: a flipped pixel is found by the
    // sample's own CRC when it is read.
    let dir = tempfile::tempdir().unwrap();
    write_raw_set(dir.path(), &example_samples());
    let path = dir.path().join("shard-00000.lfs");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[132] ^= 0x10; // a byte of sample 1
    std::fs::write(&path, &bytes).unwrap();
    let set = lifted::shard::ShardSet::open(dir.path()).unwrap();
    assert_eq!(set.sample(0).unwrap().bytes, [0xff, 0, 0]);
    let err = set.sample(1).unwrap_err();
    assert!(
        matches!(&err, ShardError::SampleChecksum { shard, sample: 1, stored: 0x5a3f4178, .. } if shard == "shard-00000.lfs"),
        "{err:?}"
    );
    let err = lifted::shard::verify::verify(&set, lifted::Progress::hidden()).unwrap_err();
    assert!(matches!(err, ShardError::ShardHash { .. }), "{err:?}");
}

#[test]
fn class_table_and_record_rules() {
    // Raw length that disagrees with the size.
    let mut bytes = spec_example();
    let at = record_at(&bytes, 0);
    bytes[at + 12..at + 14].copy_from_slice(&2u16.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "r.lfs").unwrap_err();
    assert!(
        matches!(&err, ShardError::BadRecord { sample: 0, reason, .. } if reason.contains("raw 2x1")),
        "{err:?}"
    );
    // Classes out of order.
    let mut bytes = spec_example();
    bytes[0xa0..0xa4].copy_from_slice(&3u32.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "k.lfs").unwrap_err();
    assert!(
        matches!(&err, ShardError::BadClassTable { entry: 1, reason, .. } if reason.contains("does not follow")),
        "{err:?}"
    );
    // A record whose class is not its class table entry's.
    let mut bytes = spec_example();
    let at = record_at(&bytes, 1);
    bytes[at + 16..at + 20].copy_from_slice(&7u32.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "k.lfs").unwrap_err();
    assert!(
        matches!(&err, ShardError::BadRecord { sample: 1, .. }),
        "{err:?}"
    );
    // Non-zero padding between the data and the class table.
    let mut bytes = spec_example();
    bytes[0x8c] = 1;
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "p.lfs").unwrap_err();
    assert!(
        matches!(err, ShardError::NonZeroPadding { offset: 137, .. }),
        "{err:?}"
    );
    // A sample count that does not fit the file.
    let mut bytes = spec_example();
    bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut bytes);
    let err = ShardView::parse(&bytes, "n.lfs").unwrap_err();
    assert!(
        matches!(
            err,
            ShardError::BadHeader {
                field: "file length",
                ..
            }
        ),
        "{err:?}"
    );
}

prop_compose! {
    fn samples(encoding: Encoding)(
        raw in proptest::collection::vec((0u32..6, 1u16..9, 1u16..9, any::<u8>(), 1usize..40), 1..40)
    ) -> Vec<(u32, u16, u16, Vec<u8>)> {
        let mut samples: Vec<(u32, u16, u16, Vec<u8>)> = raw
            .into_iter()
            .map(|(class, w, h, seed, len)| {
                let len = if encoding == Encoding::Raw { usize::from(w) * usize::from(h) * 3 } else { len };
                (class * 3 + 1, w, h, (0..len).map(|i| seed.wrapping_add(i as u8)).collect())
            })
            .collect();
        samples.sort_by_key(|s| s.0);
        samples
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_raw(samples in samples(Encoding::Raw), alignment in 6u8..=13) {
        check_round_trip(Encoding::Raw, alignment, &samples)?;
    }

    #[test]
    fn round_trip_jpeg_bytes(samples in samples(Encoding::Jpeg), alignment in 6u8..=13) {
        check_round_trip(Encoding::Jpeg, alignment, &samples)?;
    }
}

fn check_round_trip(
    encoding: Encoding,
    alignment: u8,
    samples: &[(u32, u16, u16, Vec<u8>)],
) -> Result<(), TestCaseError> {
    let bytes = write(encoding, alignment, samples);
    let view = ShardView::parse(&bytes, "prop").map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(view.len(), samples.len());
    prop_assert_eq!(view.header().data_offset % (1 << alignment), 0);
    for (i, (class, w, h, data)) in samples.iter().enumerate() {
        let (record, stored) = view.sample(i).unwrap();
        prop_assert_eq!(
            (
                record.class_id,
                record.width,
                record.height,
                record.source_index
            ),
            (*class, *w, *h, i as u32)
        );
        prop_assert_eq!(stored, &data[..]);
    }
    let mut classes: Vec<u32> = samples.iter().map(|s| s.0).collect();
    classes.dedup();
    prop_assert_eq!(
        view.classes().map(|c| c.class_id).collect::<Vec<_>>(),
        classes
    );
    Ok(())
}

/// Resident bytes of this process's mappings of `file` (from /proc/self/smaps).
#[cfg(target_os = "linux")]
fn mapped_rss(file: &std::path::Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = file.to_str().unwrap();
    let mut inside = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let is_header = line
            .split_whitespace()
            .next()
            .is_some_and(|range| range.contains('-') && !range.ends_with(':'));
        if is_header {
            inside = line.ends_with(name);
        } else if inside && let Some(value) = line.strip_prefix("Rss:") {
            kib += value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap();
        }
    }
    kib * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn reading_keeps_the_mapped_pages_in_rss_under_the_budget_and_the_bytes_unchanged() {
    // 100 raw 256×256 samples: a 19.7 MB shard, more than twice the budget.
    let samples: Vec<(u32, u16, u16, Vec<u8>)> = (0..100u32)
        .map(|i| {
            let pixels = (0..256 * 256 * 3).map(|p| (p as u32 * 7 + i * 13) as u8);
            (i / 25, 256, 256, pixels.collect())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_raw_set(dir.path(), &samples);
    let shard = dir.path().join("shard-00000.lfs").canonicalize().unwrap();
    let shard_len = std::fs::metadata(&shard).unwrap().len();
    let set = lifted::shard::ShardSet::open(dir.path()).unwrap();

    // A few samples, well under the budget, stay mapped (so the measurement sees them).
    for (i, expected) in samples.iter().enumerate().take(5) {
        assert_eq!(set.sample(i).unwrap().bytes, expected.3);
    }
    assert!(mapped_rss(&shard) >= 5 * 196_608, "{}", mapped_rss(&shard));

    // Reading everything maps at most about the budget, not the whole file.
    for (i, expected) in samples.iter().enumerate() {
        assert_eq!(set.sample(i).unwrap().bytes, expected.3, "sample {i}");
    }
    let resident = mapped_rss(&shard);
    assert!(
        resident <= lifted::shard::RESIDENT_BUDGET + (1 << 20) && resident < shard_len / 2,
        "{resident} bytes of a {shard_len}-byte shard are resident"
    );

    // Dropping the pages while a sample is borrowed leaves its bytes as they were.
    let held = set.sample(42).unwrap();
    set.release_pages();
    assert_eq!(mapped_rss(&shard), 0);
    assert_eq!(held.bytes, samples[42].3);
    assert_eq!(set.sample(99).unwrap().bytes, samples[99].3);
}
