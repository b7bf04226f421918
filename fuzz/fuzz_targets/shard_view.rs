//! Feeds arbitrary bytes to the shard reader: it must return an error or a view whose every
//! sample and class entry can be read, never panic or read out of bounds.
//!
//! Each input is parsed twice: as given, and "resealed" (the header's CRCs recomputed over the
//! mutated bytes), so that mutations reach the layout checks behind the checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifted::shard::ShardView;

fn check(data: &[u8]) {
    if let Ok(view) = ShardView::parse(data, "fuzz") {
        for i in 0..view.len() {
            let (record, bytes) = view.sample(i).expect("a valid view has every sample");
            assert_eq!(bytes.len(), record.length as usize);
        }
        assert_eq!(view.classes().map(|c| c.record_count as usize).sum::<usize>(), view.len());
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 64 {
        let mut sealed = data.to_vec();
        let tables = u64::from_le_bytes(sealed[32..40].try_into().unwrap());
        if let Some(tail) = usize::try_from(tables).ok().and_then(|t| sealed.get(t..)) {
            let crc = crc32c::crc32c(tail);
            sealed[56..60].copy_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32c::crc32c(&sealed[..60]);
        sealed[60..64].copy_from_slice(&crc.to_le_bytes());
        check(&sealed);
    }
});
