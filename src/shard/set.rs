//! A packed folder opened for reading: every shard mapped and validated, samples reachable by
//! global index and by class, without copying.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::Mmap;

use super::index::ShardIndex;
use super::layout::{Encoding, Header};
use super::view::ShardView;
use super::{ShardError, mmap};
use crate::imageio::{DecodeError, Rgb8Image, decode_rgb8};

/// One mapped, validated shard.
struct MappedShard {
    name: String,
    map: Mmap,
    header: Header,
}

impl MappedShard {
    fn view(&self) -> ShardView<'_> {
        ShardView::trusted(&self.map, self.header)
    }
}

/// The samples of one class, as ranges of global indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSamples {
    /// The class id.
    pub class_id: u32,
    /// Its samples (a class may span shards, hence several ranges).
    pub ranges: Vec<Range<usize>>,
}

impl ClassSamples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ranges.iter().map(|r| r.len()).sum()
    }

    /// Whether the class has no samples (never true in a valid set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The global indices, in order.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.ranges.iter().flat_map(|r| r.clone())
    }
}

/// A sample: its metadata and its bytes, borrowed from the mapping.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Global index.
    pub index: usize,
    /// Class id.
    pub class_id: u32,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Position in the index's `sources`.
    pub source_index: u32,
    /// How the bytes are encoded.
    pub encoding: Encoding,
    /// The stored bytes (checked against their CRC).
    pub bytes: &'a [u8],
}

impl Sample<'_> {
    /// The sample's pixels.
    ///
    /// # Errors
    /// For a JPEG sample, whatever [`decode_rgb8`] returns; a raw sample does not fail.
    pub fn decode(&self) -> Result<Rgb8Image, DecodeError> {
        match self.encoding {
            Encoding::Jpeg => decode_rgb8(self.bytes),
            Encoding::Raw => Ok(Rgb8Image {
                width: u32::from(self.width),
                height: u32::from(self.height),
                pixels: self.bytes.to_vec(),
            }),
        }
    }
}

/// Bytes of fault-around windows that reads through [`ShardSet::sample`] may touch before the
/// set drops its mapped pages from the process's resident set (see [`ShardSet`]).
pub const RESIDENT_BUDGET: u64 = 8 << 20;

/// How much of a file Linux maps on one page fault when the pages are cached ("fault-around",
/// 64 KiB by default): a read of a few bytes can make this much resident.
const FAULT_AROUND: u64 = 64 << 10;

/// A packed folder: `index.json` and its shards.
///
/// Memory: every page of a mapped file that has been read counts towards the process's
/// resident set size (RSS), so reading a 20 GB dataset would show as 20 GB of RSS although the
/// pages belong to the kernel's page cache. The set therefore counts the pages its sample reads
/// can have mapped (whole 64 KiB fault-around windows) and, once they reach
/// [`RESIDENT_BUDGET`], drops its view of all of them; they stay cached, and reading them again
/// costs a minor page fault. The kernel maps more than the windows count (about four
/// times as much, measured), so the mapped share of RSS peaks at a few times the budget,
/// whatever the dataset's size.
pub struct ShardSet {
    dir: PathBuf,
    index: ShardIndex,
    shards: Vec<MappedShard>,
    /// Global index of each shard's first sample, plus the total at the end.
    starts: Vec<usize>,
    classes: Vec<ClassSamples>,
    /// Bytes of fault-around windows read since the mapped pages were last dropped.
    read_since_release: AtomicU64,
}

impl ShardSet {
    /// Opens a packed folder: reads `index.json`, maps every shard, validates each shard's
    /// header and tables and checks that they agree with the index. Sample bytes are checked
    /// against their CRC when read; [`super::verify::verify`] checks everything up front.
    ///
    /// The shards must not be modified or truncated while the set is open (see
    /// `docs/FORMAT.md`); `lifted` itself never modifies a shard in place.
    ///
    /// # Errors
    /// Whatever [`ShardIndex::read_with_digest`] returns; [`ShardError::Io`] when a shard cannot be
    /// mapped; whatever [`ShardView::parse`] returns for a shard's bytes;
    /// [`ShardError::IndexMismatch`] when a shard's file name is not a plain name, or the shards
    /// disagree with `index.json` (the index hash they were sealed with, a length, position,
    /// encoding or sample count, class order across shards, the class list, or a source index
    /// beyond the sources).
    pub fn open(dir: &Path) -> Result<ShardSet, ShardError> {
        let (index, index_sha256) = ShardIndex::read_with_digest(dir)?;
        let index_path = dir.join(super::index::INDEX_FILE);
        let mismatch = |problem: String| ShardError::IndexMismatch {
            path: index_path.clone(),
            problem,
        };
        let mut shards = Vec::with_capacity(index.shards.len());
        let mut starts = vec![0usize];
        let mut classes: Vec<ClassSamples> = Vec::new();
        for (position, entry) in index.shards.iter().enumerate() {
            if entry.file.contains(['/', '\\']) || entry.file.starts_with('.') {
                return Err(mismatch(format!(
                    "shard file name `{}` must be a plain file name",
                    entry.file
                )));
            }
            let path = dir.join(&entry.file);
            let map = mmap::map(&path).map_err(|source| ShardError::Io {
                path: path.clone(),
                source,
            })?;
            let header = *ShardView::parse(&map, &entry.file)?.header();
            if header.index_sha256 != index_sha256 {
                return Err(mismatch(format!(
                    "{} was sealed with an index.json whose SHA-256 is {}, but index.json now has {}; \
                     the index was edited or belongs to another pack (pack the split again)",
                    entry.file,
                    hex::encode(header.index_sha256),
                    hex::encode(index_sha256)
                )));
            }
            if header.file_length != entry.bytes {
                return Err(mismatch(format!(
                    "{} has {} bytes, the index says {}",
                    entry.file, header.file_length, entry.bytes
                )));
            }
            if header.shard_index as usize != position {
                return Err(mismatch(format!(
                    "{} says it is shard {}, but it is listed at position {position}",
                    entry.file, header.shard_index
                )));
            }
            if header.encoding != index.preprocess.encoding {
                return Err(mismatch(format!(
                    "{} holds {:?} samples, the index says {:?}",
                    entry.file, header.encoding, index.preprocess.encoding
                )));
            }
            if header.sample_count as usize != entry.samples {
                return Err(mismatch(format!(
                    "{} holds {} samples, the index says {}",
                    entry.file, header.sample_count, entry.samples
                )));
            }
            let shard = MappedShard {
                name: entry.file.clone(),
                map,
                header,
            };
            let start = *starts.last().expect("starts is never empty");
            for class in shard.view().classes() {
                let range = start + class.first_record as usize
                    ..start + (class.first_record + class.record_count) as usize;
                match classes.last_mut() {
                    Some(last) if last.class_id == class.class_id => last.ranges.push(range),
                    Some(last) if last.class_id > class.class_id => {
                        return Err(mismatch(format!(
                            "class {} in {} comes after class {}: samples must be ordered by class across shards",
                            class.class_id, entry.file, last.class_id
                        )));
                    }
                    _ => classes.push(ClassSamples {
                        class_id: class.class_id,
                        ranges: vec![range],
                    }),
                }
            }
            starts.push(start + header.sample_count as usize);
            shards.push(shard);
        }
        let total = *starts.last().expect("starts is never empty");
        if total != index.samples {
            return Err(mismatch(format!(
                "the shards hold {total} samples, the index says {}",
                index.samples
            )));
        }
        let listed: Vec<(u32, usize)> = index.classes.iter().map(|c| (c.id, c.samples)).collect();
        let found: Vec<(u32, usize)> = classes.iter().map(|c| (c.class_id, c.len())).collect();
        if listed != found {
            return Err(mismatch(
                "the class list and sample counts differ from the shards' class tables".to_string(),
            ));
        }
        let set = ShardSet {
            dir: dir.to_path_buf(),
            index,
            shards,
            starts,
            classes,
            read_since_release: AtomicU64::new(0),
        };
        set.check_sources(&index_path)?;
        Ok(set)
    }

    fn check_sources(&self, index_path: &Path) -> Result<(), ShardError> {
        let sources = self.index.sources.len();
        for shard in &self.shards {
            let view = shard.view();
            for i in 0..view.len() {
                let record = view.record(i).expect("i < len");
                if record.source_index as usize >= sources {
                    return Err(ShardError::IndexMismatch {
                        path: index_path.to_path_buf(),
                        problem: format!(
                            "{} sample {i} has source index {}, but the index lists {sources} sources",
                            shard.name, record.source_index
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> &ShardIndex {
        &self.index
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        *self.starts.last().expect("starts is never empty")
    }

    /// Whether there are no samples (never true for a valid set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The classes, by ascending id, with their samples.
    pub fn classes(&self) -> &[ClassSamples] {
        &self.classes
    }

    /// Number of shard files.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The header of shard `i`.
    pub fn shard_header(&self, i: usize) -> Option<&Header> {
        self.shards.get(i).map(|s| &s.header)
    }

    /// Sample `index` (global), with its bytes checked against their CRC.
    ///
    /// # Errors
    /// [`ShardError::OutOfBounds`] when `index` is not below [`ShardSet::len`];
    /// [`ShardError::SampleChecksum`] when the bytes do not match their CRC.
    pub fn sample(&self, index: usize) -> Result<Sample<'_>, ShardError> {
        if index >= self.len() {
            return Err(ShardError::OutOfBounds {
                index,
                len: self.len(),
            });
        }
        let shard_no = self.starts.partition_point(|&start| start <= index) - 1;
        let shard = &self.shards[shard_no];
        let local = index - self.starts[shard_no];
        let (record, bytes) = shard.view().sample(local).expect("local < shard length");
        let computed = crc32c::crc32c(bytes);
        self.count_read(record.offset, bytes.len());
        if computed != record.crc {
            return Err(ShardError::SampleChecksum {
                shard: shard.name.clone(),
                sample: local as u32,
                stored: record.crc,
                computed,
            });
        }
        Ok(Sample {
            index,
            class_id: record.class_id,
            width: record.width,
            height: record.height,
            source_index: record.source_index,
            encoding: shard.header.encoding,
            bytes,
        })
    }

    /// Counts the fault-around windows that reading `len` bytes at `offset` of a shard touches,
    /// and drops the mapped pages once they reach [`RESIDENT_BUDGET`].
    fn count_read(&self, offset: u64, len: usize) {
        let (first, end) = (offset, offset + len.max(1) as u64);
        let windows = (end - 1) / FAULT_AROUND - first / FAULT_AROUND + 1;
        let charge = windows * FAULT_AROUND;
        let read = self.read_since_release.fetch_add(charge, Ordering::Relaxed) + charge;
        // Of the threads that see the budget reached, only the first to reset the count
        // releases the pages.
        if read >= RESIDENT_BUDGET
            && self.read_since_release.swap(0, Ordering::Relaxed) >= RESIDENT_BUDGET
        {
            self.release_pages();
        }
    }

    /// Drops the process's view of every shard's mapped pages (see [`ShardSet`]); the bytes
    /// read through any outstanding [`Sample`] stay the same.
    pub fn release_pages(&self) {
        for shard in &self.shards {
            mmap::release_pages(&shard.map);
        }
    }

    /// The source index of sample `index` (global), read from its record without touching the
    /// sample's bytes.
    ///
    /// # Errors
    /// [`ShardError::OutOfBounds`] when `index` is not below [`ShardSet::len`].
    pub fn source_index(&self, index: usize) -> Result<u32, ShardError> {
        if index >= self.len() {
            return Err(ShardError::OutOfBounds {
                index,
                len: self.len(),
            });
        }
        let shard_no = self.starts.partition_point(|&start| start <= index) - 1;
        let local = index - self.starts[shard_no];
        let record = self.shards[shard_no]
            .view()
            .record(local)
            .expect("local < shard length");
        Ok(record.source_index)
    }

    /// The source path of a sample.
    pub fn source_path(&self, sample: &Sample<'_>) -> &str {
        &self.index.sources[sample.source_index as usize]
    }

    /// Which shard and record a global index is (for messages).
    pub fn locate(&self, index: usize) -> Option<(&str, usize)> {
        if index >= self.len() {
            return None;
        }
        let shard_no = self.starts.partition_point(|&start| start <= index) - 1;
        Some((&self.shards[shard_no].name, index - self.starts[shard_no]))
    }
}
