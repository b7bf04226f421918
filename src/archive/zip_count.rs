//! Counts the entries a zip's central directory really holds, to catch an end record that
//! counts fewer: without ZIP64 the count has 16 bits, so a zip of more than 65,535 entries
//! written by an old tool says it holds `n mod 65,536`, and a reader that trusts it reads
//! short. ZIP64 archives carry a 64-bit count and are left to the zip crate.

use std::io::{Read, Seek, SeekFrom};

/// The end-of-central-directory record's signature.
const END_SIGNATURE: &[u8; 4] = b"PK\x05\x06";
/// The ZIP64 end locator's signature, which sits just before the end record.
const ZIP64_LOCATOR_SIGNATURE: &[u8; 4] = b"PK\x06\x07";
/// A central directory header's signature.
const CENTRAL_SIGNATURE: &[u8; 4] = b"PK\x01\x02";
/// Size of the end record without its comment.
const END_LEN: usize = 22;
/// Size of a central directory header without its name, extra field and comment.
const CENTRAL_LEN: usize = 46;

/// What the end record says against what the central directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EntryCount {
    /// The count in the end record.
    pub declared: u64,
    /// The headers found in the central directory.
    pub found: u64,
}

/// For a zip without ZIP64, the declared and the real number of entries; `None` for a ZIP64
/// archive, or one whose end record or central directory cannot be walked (the zip crate
/// then reports what is wrong).
pub(super) fn count_entries(file: &mut (impl Read + Seek)) -> std::io::Result<Option<EntryCount>> {
    let len = file.seek(SeekFrom::End(0))?;
    // The end record and a comment of at most 65,535 bytes, plus room for the ZIP64 locator.
    let tail_len = len.min((END_LEN + 65_535 + 20) as u64);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail)?;
    let Some(end) = (0..=tail.len().saturating_sub(END_LEN))
        .rev()
        .find(|&i| &tail[i..i + 4] == END_SIGNATURE)
    else {
        return Ok(None);
    };
    if end >= 20 && &tail[end - 20..end - 16] == ZIP64_LOCATOR_SIGNATURE {
        return Ok(None);
    }
    let record = &tail[end..end + END_LEN];
    let declared = u64::from(u16::from_le_bytes([record[10], record[11]]));
    let size = u64::from(u32::from_le_bytes(record[12..16].try_into().unwrap()));
    let offset = u64::from(u32::from_le_bytes(record[16..20].try_into().unwrap()));
    if offset.checked_add(size).is_none_or(|stop| stop > len) {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut directory = vec![0u8; size as usize];
    file.read_exact(&mut directory)?;
    let mut found = 0u64;
    let mut at = 0usize;
    while at + CENTRAL_LEN <= directory.len() && &directory[at..at + 4] == CENTRAL_SIGNATURE {
        let field = |i: usize| {
            usize::from(u16::from_le_bytes([
                directory[at + i],
                directory[at + i + 1],
            ]))
        };
        at += CENTRAL_LEN + field(28) + field(30) + field(32);
        found += 1;
    }
    Ok(Some(EntryCount { declared, found }))
}
