//! Memory-mapped shards: the binary format of `docs/FORMAT.md`, its writer, its validating
//! reader, and `verify`/`inspect`.
//!
//! - [`layout`]: the header, class entries and records, byte for byte.
//! - [`ShardView`]: validation of one shard's bytes, before any use.
//! - [`ShardWriter`]: streams samples into a shard and writes the tables; [`seal_folder`]
//!   then writes `index.json` and seals every shard's header with the index's SHA-256.
//! - [`ShardIndex`]: the `index.json` file; [`Preprocess`]: the settings it records.
//! - [`ShardSet`]: a packed folder opened for reading, with zero-copy access to samples by
//!   global index and by class.
//! - [`verify`]: checks every byte that can be checked.

mod index;
pub mod inspect;
pub(crate) mod layout;
mod mmap;
mod set;
mod settings;
pub mod verify;
mod view;
mod writer;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use index::{
    ClassSummary, INDEX_FILE, INDEX_FORMAT, IndexShard, MadeFrom, Rejected, SUMS_FILE, ShardIndex,
    SplitRef, read_sums, sources_digest,
};
pub use layout::{ClassEntry, Encoding, Header, Record};
pub use set::{ClassSamples, RESIDENT_BUDGET, Sample, ShardSet};
pub use settings::{CropMode, MAX_SIZE, Preprocess, ResizeMode, SettingsError};
pub use view::ShardView;
pub use writer::{ShardWriter, Unsealed, WrittenShard};

/// Finishes a packed folder: writes `index` (whose `shards` must list `unsealed` in order) as
/// `dir/index.json`, seals every shard with the index's SHA-256, and writes `shards.sha256`.
///
/// # Errors
/// [`ShardError::Io`] when `index.json`, a shard's header or `shards.sha256` cannot be written, or
/// a shard cannot be renamed into place.
pub fn seal_folder(
    dir: &Path,
    index: &ShardIndex,
    unsealed: Vec<Unsealed>,
) -> Result<Vec<WrittenShard>, ShardError> {
    let bytes = index.to_bytes();
    let path = dir.join(INDEX_FILE);
    crate::fsutil::write_atomic(&path, &bytes).map_err(|source| ShardError::Io { path, source })?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let mut written = Vec::with_capacity(unsealed.len());
    for shard in unsealed {
        let path = dir.join(shard.file());
        written.push(
            shard
                .seal(digest)
                .map_err(|source| ShardError::Io { path, source })?,
        );
    }
    let sums: Vec<(String, String)> = written
        .iter()
        .map(|w| (w.file.clone(), w.sha256.clone()))
        .collect();
    index::write_sums(dir, &sums)?;
    Ok(written)
}

/// Errors from reading or checking shards; each names the shard (and sample) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `index.json` could not be parsed.
    #[error("{path} is not a valid lifted shard index")]
    Index {
        /// The index file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// `index.json` and the shards disagree.
    #[error("{path}: {problem}")]
    IndexMismatch {
        /// The index file.
        path: PathBuf,
        /// What disagrees.
        problem: String,
    },
    /// The file is shorter than its header says (or than a header).
    #[error("{shard} is truncated: {actual} bytes, expected {expected}; pack the split again")]
    Truncated {
        /// The shard.
        shard: String,
        /// The length the header gives (or the header's own length).
        expected: u64,
        /// The file's length.
        actual: u64,
    },
    /// The file does not start with `LFTSHARD`.
    #[error("{shard} is not a lifted shard (it starts with {found:02x?}, not \"LFTSHARD\")")]
    BadMagic {
        /// The shard.
        shard: String,
        /// The first 8 bytes.
        found: [u8; 8],
    },
    /// The shard has a version this reader does not know.
    #[error(
        "{shard} has format version {version}, which this lifted does not read (it reads version 2); pack the split again with this lifted, or use the lifted that wrote it"
    )]
    UnknownVersion {
        /// The shard.
        shard: String,
        /// The version found.
        version: u16,
    },
    /// The header's CRC does not match.
    #[error(
        "{shard}: header checksum is {computed:08x}, the header says {stored:08x}; the file is damaged"
    )]
    HeaderChecksum {
        /// The shard.
        shard: String,
        /// The stored CRC.
        stored: u32,
        /// The computed CRC.
        computed: u32,
    },
    /// A header field breaks a rule of the format.
    #[error("{shard}: {field} is {found}, expected {expected}")]
    BadHeader {
        /// The shard.
        shard: String,
        /// The field.
        field: &'static str,
        /// Its value.
        found: u64,
        /// What the format requires.
        expected: String,
    },
    /// Padding bytes are not zero.
    #[error("{shard}: padding at byte {offset} is not zero")]
    NonZeroPadding {
        /// The shard.
        shard: String,
        /// Where the padding starts.
        offset: u64,
    },
    /// The tables' CRC does not match.
    #[error(
        "{shard}: tables checksum is {computed:08x}, the header says {stored:08x}; the file is damaged"
    )]
    TablesChecksum {
        /// The shard.
        shard: String,
        /// The stored CRC.
        stored: u32,
        /// The computed CRC.
        computed: u32,
    },
    /// A class table entry breaks a rule.
    #[error("{shard}: class table entry {entry}: {reason}")]
    BadClassTable {
        /// The shard.
        shard: String,
        /// The entry's position.
        entry: u32,
        /// What is wrong.
        reason: String,
    },
    /// A sample lies outside the data region.
    #[error(
        "{shard}: sample {sample} at offset {offset} with {length} bytes lies outside the data region {data_start}..{data_end}"
    )]
    OffsetOutOfRange {
        /// The shard.
        shard: String,
        /// The sample (record number in the shard).
        sample: u32,
        /// Its offset.
        offset: u64,
        /// Its length.
        length: u32,
        /// Where the data region starts.
        data_start: u64,
        /// Where it ends.
        data_end: u64,
    },
    /// A sample starts before the previous one ends.
    #[error(
        "{shard}: sample {sample} at offset {offset} overlaps the previous sample, which ends at {previous_end}"
    )]
    Overlap {
        /// The shard.
        shard: String,
        /// The sample.
        sample: u32,
        /// Its offset.
        offset: u64,
        /// Where the previous sample ends.
        previous_end: u64,
    },
    /// A sample starts after the previous one ends.
    #[error(
        "{shard}: sample {sample} at offset {offset} leaves a hole after the previous sample, which ends at {previous_end}"
    )]
    Hole {
        /// The shard.
        shard: String,
        /// The sample.
        sample: u32,
        /// Its offset.
        offset: u64,
        /// Where the previous sample ends.
        previous_end: u64,
    },
    /// A record breaks another rule.
    #[error("{shard}: sample {sample}: {reason}")]
    BadRecord {
        /// The shard.
        shard: String,
        /// The sample.
        sample: u32,
        /// What is wrong.
        reason: String,
    },
    /// A sample's bytes do not match its CRC.
    #[error(
        "{shard}: sample {sample} is damaged (CRC {computed:08x}, the record says {stored:08x})"
    )]
    SampleChecksum {
        /// The shard.
        shard: String,
        /// The sample.
        sample: u32,
        /// The stored CRC.
        stored: u32,
        /// The computed CRC.
        computed: u32,
    },
    /// A shard's SHA-256 differs from the one `shards.sha256` records.
    #[error("{shard}: SHA-256 is {actual}, shards.sha256 says {expected}; the file is damaged")]
    ShardHash {
        /// The shard.
        shard: String,
        /// The index's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// A sample does not decode, or decodes to something its record and settings deny.
    #[error("{shard}: sample {sample} does not decode as its record says")]
    Undecodable {
        /// The shard.
        shard: String,
        /// The sample.
        sample: u32,
        /// The decoder's error, or what disagrees.
        #[source]
        problem: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A global sample index beyond the set.
    #[error("sample {index} does not exist; the shards hold {len} samples")]
    OutOfBounds {
        /// The index asked for.
        index: usize,
        /// The number of samples.
        len: usize,
    },
}
