//! Parsing and validating one shard's bytes: [`ShardView`] checks every header field, table
//! entry, offset and length (with checked arithmetic) before any sample is handed out.
//!
//! It works on a borrowed `&[u8]`, so it is the same code for a memory-mapped file, a test's
//! byte vector and the fuzz target.

use super::ShardError;
use super::layout::{
    ALIGNMENT_LOG2, CLASS_ENTRY_LEN, ClassEntry, Encoding, HEADER_LEN, Header, MAGIC, RECORD_LEN,
    Record, VERSION, VersionedMagic, align_up, header_crc, header_reserved, stored_header_crc,
    u32_at, u64_at,
};

/// A validated shard.
#[derive(Debug, Clone, Copy)]
pub struct ShardView<'a> {
    bytes: &'a [u8],
    header: Header,
}

impl<'a> ShardView<'a> {
    /// Validates `bytes` as a whole shard; `shard` names it in errors.
    ///
    /// # Errors
    /// [`ShardError::Truncated`] when the bytes are shorter than the header or than the header
    /// says; [`ShardError::BadMagic`] when they do not start with `LFTSHARD`;
    /// [`ShardError::UnknownVersion`] for a format version this lifted does not read;
    /// [`ShardError::HeaderChecksum`] or [`ShardError::TablesChecksum`] when a CRC does not match;
    /// [`ShardError::BadHeader`] when a header field breaks a rule of the format;
    /// [`ShardError::NonZeroPadding`] when padding is not zero; [`ShardError::BadClassTable`] when
    /// a class table entry is out of order or miscounts its records;
    /// [`ShardError::OffsetOutOfRange`], [`ShardError::Overlap`] or [`ShardError::Hole`] when a
    /// sample is not where the previous one ends inside the data region; [`ShardError::BadRecord`]
    /// when a record is empty, has the wrong length for a raw sample, a non-zero reserved word, or
    /// a class that disagrees with the class table.
    pub fn parse(bytes: &'a [u8], shard: &str) -> Result<ShardView<'a>, ShardError> {
        let header = parse_header(bytes, shard)?;
        let view = ShardView { bytes, header };
        view.check_tables(shard)?;
        Ok(view)
    }

    /// A view of bytes that [`ShardView::parse`] has already accepted with this header.
    pub(crate) fn trusted(bytes: &'a [u8], header: Header) -> ShardView<'a> {
        ShardView { bytes, header }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.header.sample_count as usize
    }

    /// Whether the shard has no samples (never true for a valid shard).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Record `i`, if `i < len()`.
    pub fn record(&self, i: usize) -> Option<Record> {
        if i >= self.len() {
            return None;
        }
        let at = self.header.record_table_offset as usize + i * RECORD_LEN;
        let bytes: &[u8; RECORD_LEN] = self.bytes[at..at + RECORD_LEN].try_into().ok()?;
        Some(Record::from_bytes(bytes).0)
    }

    /// The bytes of sample `i`, with its record.
    pub fn sample(&self, i: usize) -> Option<(Record, &'a [u8])> {
        let record = self.record(i)?;
        let start = record.offset as usize;
        Some((record, &self.bytes[start..start + record.length as usize]))
    }

    /// The class table entries.
    pub fn classes(&self) -> impl Iterator<Item = ClassEntry> + '_ {
        (0..self.header.class_count as usize).map(move |k| {
            let at = self.header.class_table_offset as usize + k * CLASS_ENTRY_LEN;
            let bytes: &[u8; CLASS_ENTRY_LEN] = self.bytes[at..at + CLASS_ENTRY_LEN]
                .try_into()
                .expect("validated class table");
            ClassEntry::from_bytes(bytes).0
        })
    }

    /// Checks both tables and the data region against the (already checked) header.
    fn check_tables(&self, shard: &str) -> Result<(), ShardError> {
        let h = &self.header;
        let bad_class = |entry: usize, reason: String| ShardError::BadClassTable {
            shard: shard.to_string(),
            entry: entry as u32,
            reason,
        };
        let mut classes = Vec::with_capacity(h.class_count as usize);
        let mut next_first = 0u64;
        for k in 0..h.class_count as usize {
            let at = h.class_table_offset as usize + k * CLASS_ENTRY_LEN;
            let bytes: &[u8; CLASS_ENTRY_LEN] = self.bytes[at..at + CLASS_ENTRY_LEN]
                .try_into()
                .expect("the header check bounds the class table");
            let (entry, reserved) = ClassEntry::from_bytes(bytes);
            if reserved != 0 {
                return Err(bad_class(k, format!("reserved word is {reserved}, not 0")));
            }
            if let Some(previous) = classes.last().map(|c: &ClassEntry| c.class_id)
                && entry.class_id <= previous
            {
                return Err(bad_class(
                    k,
                    format!("class id {} does not follow {previous}", entry.class_id),
                ));
            }
            if u64::from(entry.first_record) != next_first {
                return Err(bad_class(
                    k,
                    format!(
                        "first record is {}, expected {next_first}",
                        entry.first_record
                    ),
                ));
            }
            if entry.record_count == 0 {
                return Err(bad_class(k, "record count is 0".to_string()));
            }
            next_first += u64::from(entry.record_count);
            classes.push(entry);
        }
        if next_first != u64::from(h.sample_count) {
            return Err(bad_class(
                classes.len().saturating_sub(1),
                format!(
                    "record counts sum to {next_first}, the header says {} samples",
                    h.sample_count
                ),
            ));
        }

        let mut expected_offset = h.data_offset;
        let mut class_index = 0usize;
        for i in 0..h.sample_count as usize {
            let at = h.record_table_offset as usize + i * RECORD_LEN;
            let bytes: &[u8; RECORD_LEN] = self.bytes[at..at + RECORD_LEN]
                .try_into()
                .expect("the header check bounds the record table");
            let (record, reserved) = Record::from_bytes(bytes);
            let sample = i as u32;
            let end = record.offset.checked_add(u64::from(record.length));
            if record.offset < h.data_offset || end.is_none_or(|end| end > h.class_table_offset) {
                return Err(ShardError::OffsetOutOfRange {
                    shard: shard.to_string(),
                    sample,
                    offset: record.offset,
                    length: record.length,
                    data_start: h.data_offset,
                    data_end: h.class_table_offset,
                });
            }
            if record.offset != expected_offset {
                let error = if record.offset < expected_offset {
                    ShardError::Overlap {
                        shard: shard.to_string(),
                        sample,
                        offset: record.offset,
                        previous_end: expected_offset,
                    }
                } else {
                    ShardError::Hole {
                        shard: shard.to_string(),
                        sample,
                        offset: record.offset,
                        previous_end: expected_offset,
                    }
                };
                return Err(error);
            }
            let bad_record = |reason: String| ShardError::BadRecord {
                shard: shard.to_string(),
                sample,
                reason,
            };
            if record.length == 0 || record.width == 0 || record.height == 0 {
                return Err(bad_record(format!(
                    "empty sample ({} bytes, {}x{})",
                    record.length, record.width, record.height
                )));
            }
            let raw_length = u64::from(record.width) * u64::from(record.height) * 3;
            if h.encoding == Encoding::Raw && u64::from(record.length) != raw_length {
                return Err(bad_record(format!(
                    "a raw {}x{} sample has {} bytes, not {raw_length}",
                    record.width, record.height, record.length
                )));
            }
            if reserved != 0 {
                return Err(bad_record(format!("reserved word is {reserved}, not 0")));
            }
            while class_index + 1 < classes.len()
                && i as u64 >= u64::from(classes[class_index + 1].first_record)
            {
                class_index += 1;
            }
            if record.class_id != classes[class_index].class_id {
                return Err(bad_record(format!(
                    "class id {} but it falls in class table entry {class_index} (class {})",
                    record.class_id, classes[class_index].class_id
                )));
            }
            expected_offset = end.expect("checked above");
        }
        let padded = align_up(expected_offset, 3).expect("bounded by the file length");
        if padded != h.class_table_offset {
            return Err(ShardError::BadHeader {
                shard: shard.to_string(),
                field: "class table offset",
                found: h.class_table_offset,
                expected: format!("{padded} (the end of the last sample, rounded up to 8)"),
            });
        }
        let padding = &self.bytes[expected_offset as usize..h.class_table_offset as usize];
        if padding.iter().any(|&b| b != 0) {
            return Err(ShardError::NonZeroPadding {
                shard: shard.to_string(),
                offset: expected_offset,
            });
        }
        Ok(())
    }
}

/// Checks the header and everything it promises about the file's size and tables.
fn parse_header(bytes: &[u8], shard: &str) -> Result<Header, ShardError> {
    let name = || shard.to_string();
    let Some(head) = bytes.get(..HEADER_LEN) else {
        return Err(ShardError::Truncated {
            shard: name(),
            expected: HEADER_LEN as u64,
            actual: bytes.len() as u64,
        });
    };
    let magic: [u8; 8] = head[0..8].try_into().expect("8 bytes");
    if magic != MAGIC {
        return Err(ShardError::BadMagic {
            shard: name(),
            found: magic,
        });
    }
    let head: &[u8; HEADER_LEN] = head.try_into().expect("HEADER_LEN bytes");
    let version = u16::from_le_bytes([head[8], head[9]]);
    let version = match version {
        VERSION => VersionedMagic::V2,
        other => {
            return Err(ShardError::UnknownVersion {
                shard: name(),
                version: other,
            });
        }
    };
    let stored = stored_header_crc(head);
    let computed = header_crc(head);
    if stored != computed {
        return Err(ShardError::HeaderChecksum {
            shard: name(),
            stored,
            computed,
        });
    }
    let bad = |field: &'static str, found: u64, expected: String| ShardError::BadHeader {
        shard: name(),
        field,
        found,
        expected,
    };
    let encoding = Encoding::from_code(head[10]).ok_or_else(|| {
        bad(
            "encoding",
            u64::from(head[10]),
            "1 (JPEG) or 2 (raw RGB8)".to_string(),
        )
    })?;
    let alignment_log2 = head[11];
    if !ALIGNMENT_LOG2.contains(&alignment_log2) {
        return Err(bad(
            "alignment",
            u64::from(alignment_log2),
            format!("{ALIGNMENT_LOG2:?}"),
        ));
    }
    let header = Header {
        version,
        encoding,
        alignment_log2,
        shard_index: u32_at(head, 12),
        sample_count: u32_at(head, 16),
        class_count: u32_at(head, 20),
        data_offset: u64_at(head, 24),
        class_table_offset: u64_at(head, 32),
        record_table_offset: u64_at(head, 40),
        file_length: u64_at(head, 48),
        tables_crc: u32_at(head, 56),
        index_sha256: head[60..92].try_into().expect("32 bytes"),
    };
    if header_reserved(head).iter().any(|&b| b != 0) {
        return Err(ShardError::NonZeroPadding {
            shard: name(),
            offset: 92,
        });
    }
    let actual = bytes.len() as u64;
    if header.file_length > actual {
        return Err(ShardError::Truncated {
            shard: name(),
            expected: header.file_length,
            actual,
        });
    }
    if header.file_length < actual {
        return Err(bad(
            "file length",
            header.file_length,
            format!("{actual}, the file's length"),
        ));
    }
    if header.sample_count == 0 || header.class_count == 0 {
        let field = if header.sample_count == 0 {
            "sample count"
        } else {
            "class count"
        };
        return Err(bad(field, 0, "at least 1".to_string()));
    }
    let data_offset = align_up(HEADER_LEN as u64, alignment_log2).expect("small numbers");
    if header.data_offset != data_offset {
        return Err(bad(
            "data offset",
            header.data_offset,
            data_offset.to_string(),
        ));
    }
    let record_table = u64::from(header.class_count)
        .checked_mul(CLASS_ENTRY_LEN as u64)
        .and_then(|n| header.class_table_offset.checked_add(n));
    if record_table != Some(header.record_table_offset) {
        let expected = record_table.map_or("an offset that does not overflow".to_string(), |v| {
            v.to_string()
        });
        return Err(bad(
            "record table offset",
            header.record_table_offset,
            expected,
        ));
    }
    let end = u64::from(header.sample_count)
        .checked_mul(RECORD_LEN as u64)
        .and_then(|n| header.record_table_offset.checked_add(n));
    if end != Some(header.file_length) {
        let expected = end.map_or("an offset that does not overflow".to_string(), |v| {
            v.to_string()
        });
        return Err(bad("file length", header.file_length, expected));
    }
    if header.class_table_offset < header.data_offset {
        return Err(bad(
            "class table offset",
            header.class_table_offset,
            format!("at least the data offset {}", header.data_offset),
        ));
    }
    if bytes[HEADER_LEN..header.data_offset as usize]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(ShardError::NonZeroPadding {
            shard: name(),
            offset: HEADER_LEN as u64,
        });
    }
    let computed = crc32c::crc32c(&bytes[header.class_table_offset as usize..]);
    if computed != header.tables_crc {
        return Err(ShardError::TablesChecksum {
            shard: name(),
            stored: header.tables_crc,
            computed,
        });
    }
    Ok(header)
}
