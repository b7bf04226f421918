//! The byte layout of a shard (see `docs/FORMAT.md`): the header, class entries and records,
//! their sizes, and how each is read from and written to bytes.

/// Bytes in the header.
pub const HEADER_LEN: usize = 128;
/// Where the header's CRC is: it covers the bytes before it.
const HEADER_CRC_AT: usize = 124;
/// Bytes in one class table entry.
pub const CLASS_ENTRY_LEN: usize = 16;
/// Bytes in one record.
pub const RECORD_LEN: usize = 32;
/// The magic bytes every shard starts with.
pub const MAGIC: [u8; 8] = *b"LFTSHARD";
/// Smallest and largest log2 of the data alignment.
pub const ALIGNMENT_LOG2: std::ops::RangeInclusive<u8> = 6..=16;
/// The alignment `lifted pack` writes: 2^12 = 4096 bytes, a page.
pub const PAGE_ALIGNMENT_LOG2: u8 = 12;

/// The format version this crate reads and writes.
pub const VERSION: u16 = 2;

/// The (magic, version) pairs this reader knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionedMagic {
    /// `LFTSHARD`, version 2: a 128-byte header that carries the SHA-256 of `index.json`.
    V2,
}

/// How sample bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Baseline JPEG, three channels.
    Jpeg,
    /// Raw RGB8, row-major.
    Raw,
}

impl Encoding {
    /// The byte stored in the header.
    pub fn code(self) -> u8 {
        match self {
            Encoding::Jpeg => 1,
            Encoding::Raw => 2,
        }
    }

    /// The encoding a header byte stands for.
    pub fn from_code(code: u8) -> Option<Encoding> {
        match code {
            1 => Some(Encoding::Jpeg),
            2 => Some(Encoding::Raw),
            _ => None,
        }
    }
}

/// A shard header, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format and version.
    pub version: VersionedMagic,
    /// Sample encoding.
    pub encoding: Encoding,
    /// log2 of the data alignment.
    pub alignment_log2: u8,
    /// Position in the index's shard list.
    pub shard_index: u32,
    /// Number of samples.
    pub sample_count: u32,
    /// Number of class table entries.
    pub class_count: u32,
    /// Where the data region starts.
    pub data_offset: u64,
    /// Where the class table starts.
    pub class_table_offset: u64,
    /// Where the record table starts.
    pub record_table_offset: u64,
    /// The file's length.
    pub file_length: u64,
    /// CRC-32C of both tables.
    pub tables_crc: u32,
    /// SHA-256 of the folder's `index.json`, which the shard was sealed with.
    pub index_sha256: [u8; 32],
}

impl Header {
    /// The header bytes, with the header CRC.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&VERSION.to_le_bytes());
        out[10] = self.encoding.code();
        out[11] = self.alignment_log2;
        out[12..16].copy_from_slice(&self.shard_index.to_le_bytes());
        out[16..20].copy_from_slice(&self.sample_count.to_le_bytes());
        out[20..24].copy_from_slice(&self.class_count.to_le_bytes());
        out[24..32].copy_from_slice(&self.data_offset.to_le_bytes());
        out[32..40].copy_from_slice(&self.class_table_offset.to_le_bytes());
        out[40..48].copy_from_slice(&self.record_table_offset.to_le_bytes());
        out[48..56].copy_from_slice(&self.file_length.to_le_bytes());
        out[56..60].copy_from_slice(&self.tables_crc.to_le_bytes());
        out[60..92].copy_from_slice(&self.index_sha256);
        let crc = header_crc(&out);
        out[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// The CRC-32C a header stores: of every header byte before the CRC field.
pub fn header_crc(header: &[u8; HEADER_LEN]) -> u32 {
    crc32c::crc32c(&header[..HEADER_CRC_AT])
}

/// The header CRC as stored.
pub fn stored_header_crc(header: &[u8; HEADER_LEN]) -> u32 {
    u32_at(header, HEADER_CRC_AT)
}

/// Bytes 92..124 of the header, reserved (zero in version 2).
pub fn header_reserved(header: &[u8; HEADER_LEN]) -> &[u8] {
    &header[92..HEADER_CRC_AT]
}

/// A class table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassEntry {
    /// The class id.
    pub class_id: u32,
    /// Its first record in this shard.
    pub first_record: u32,
    /// Its number of records in this shard.
    pub record_count: u32,
}

impl ClassEntry {
    /// The entry's 16 bytes.
    pub fn to_bytes(&self) -> [u8; CLASS_ENTRY_LEN] {
        let mut out = [0u8; CLASS_ENTRY_LEN];
        out[0..4].copy_from_slice(&self.class_id.to_le_bytes());
        out[4..8].copy_from_slice(&self.first_record.to_le_bytes());
        out[8..12].copy_from_slice(&self.record_count.to_le_bytes());
        out
    }

    /// Reads an entry; returns it and its reserved word.
    pub fn from_bytes(bytes: &[u8; CLASS_ENTRY_LEN]) -> (ClassEntry, u32) {
        let entry = ClassEntry {
            class_id: u32_at(bytes, 0),
            first_record: u32_at(bytes, 4),
            record_count: u32_at(bytes, 8),
        };
        (entry, u32_at(bytes, 12))
    }
}

/// A sample record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Where the sample's bytes start.
    pub offset: u64,
    /// How many bytes it has.
    pub length: u32,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Class id.
    pub class_id: u32,
    /// CRC-32C of the bytes.
    pub crc: u32,
    /// Position in the index's `sources`.
    pub source_index: u32,
}

impl Record {
    /// The record's 32 bytes.
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[0..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..12].copy_from_slice(&self.length.to_le_bytes());
        out[12..14].copy_from_slice(&self.width.to_le_bytes());
        out[14..16].copy_from_slice(&self.height.to_le_bytes());
        out[16..20].copy_from_slice(&self.class_id.to_le_bytes());
        out[20..24].copy_from_slice(&self.crc.to_le_bytes());
        out[24..28].copy_from_slice(&self.source_index.to_le_bytes());
        out
    }

    /// Reads a record; returns it and its reserved word.
    pub fn from_bytes(bytes: &[u8; RECORD_LEN]) -> (Record, u32) {
        let record = Record {
            offset: u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes")),
            length: u32_at(bytes, 8),
            width: u16::from_le_bytes([bytes[12], bytes[13]]),
            height: u16::from_le_bytes([bytes[14], bytes[15]]),
            class_id: u32_at(bytes, 16),
            crc: u32_at(bytes, 20),
            source_index: u32_at(bytes, 24),
        };
        (record, u32_at(bytes, 28))
    }
}

/// The little-endian u32 at `at` (the caller guarantees `at + 4 <= bytes.len()`).
pub fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// The little-endian u64 at `at` (the caller guarantees `at + 8 <= bytes.len()`).
pub fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// `value` rounded up to a multiple of `2^log2`, or `None` on overflow.
pub fn align_up(value: u64, log2: u8) -> Option<u64> {
    let mask = (1u64 << log2) - 1;
    value.checked_add(mask).map(|v| v & !mask)
}
