//! Writing one shard: samples are streamed into the data region as they arrive; `finish`
//! appends the class and record tables; once the folder's `index.json` is written, `seal`
//! writes the header (which carries the index's SHA-256) at the start, syncs the file and
//! renames it from `<name>.tmp` to `<name>`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::layout::{ClassEntry, Encoding, HEADER_LEN, Header, Record, VersionedMagic, align_up};
use crate::fsutil;

/// A shard being written.
pub struct ShardWriter {
    final_path: PathBuf,
    temp_path: PathBuf,
    out: BufWriter<File>,
    encoding: Encoding,
    alignment_log2: u8,
    shard_index: u32,
    data_offset: u64,
    position: u64,
    records: Vec<Record>,
    classes: Vec<ClassEntry>,
}

/// A finished shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenShard {
    /// File name.
    pub file: String,
    /// Number of samples.
    pub samples: usize,
    /// File size.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl ShardWriter {
    /// Starts `dir/name` (written as `dir/name.tmp` until [`ShardWriter::finish`]).
    ///
    /// # Errors
    /// An error of kind `InvalidInput` when `alignment_log2` is outside the format's range; the I/O
    /// error when `name.tmp` cannot be created or written.
    pub fn create(
        dir: &Path,
        name: &str,
        shard_index: u32,
        encoding: Encoding,
        alignment_log2: u8,
    ) -> io::Result<ShardWriter> {
        if !super::layout::ALIGNMENT_LOG2.contains(&alignment_log2) {
            return Err(invalid(format!(
                "alignment 2^{alignment_log2} is outside the format's range"
            )));
        }
        let final_path = dir.join(name);
        let temp_path = fsutil::with_suffix(&final_path, ".tmp");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp_path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let data_offset = align_up(HEADER_LEN as u64, alignment_log2).expect("small numbers");
        // The header is written last; reserve it and the padding as zeros.
        out.write_all(&vec![0u8; data_offset as usize])?;
        Ok(ShardWriter {
            final_path,
            temp_path,
            out,
            encoding,
            alignment_log2,
            shard_index,
            data_offset,
            position: data_offset,
            records: Vec::new(),
            classes: Vec::new(),
        })
    }

    /// Appends a sample. Classes must come in non-decreasing id order.
    ///
    /// # Errors
    /// An error of kind `InvalidInput` when the sample is empty, has a zero side or is 4 GiB or
    /// larger, a raw sample's length is not `width × height × 3`, the shard already holds 2³²
    /// samples, or `class_id` is below the previous sample's; the I/O error when writing fails.
    pub fn push(
        &mut self,
        class_id: u32,
        width: u16,
        height: u16,
        source_index: u32,
        bytes: &[u8],
    ) -> io::Result<()> {
        let length = u32::try_from(bytes.len())
            .map_err(|_| invalid(format!("a sample of {} bytes is too large", bytes.len())))?;
        if length == 0 || width == 0 || height == 0 {
            return Err(invalid("an empty sample".to_string()));
        }
        if self.encoding == Encoding::Raw
            && bytes.len() != usize::from(width) * usize::from(height) * 3
        {
            return Err(invalid(format!(
                "a raw {width}x{height} sample must have {} bytes",
                usize::from(width) * usize::from(height) * 3
            )));
        }
        let index = u32::try_from(self.records.len())
            .map_err(|_| invalid("too many samples".to_string()))?;
        match self.classes.last_mut() {
            Some(last) if last.class_id == class_id => last.record_count += 1,
            Some(last) if last.class_id > class_id => {
                return Err(invalid(format!(
                    "class {class_id} after class {}",
                    last.class_id
                )));
            }
            _ => self.classes.push(ClassEntry {
                class_id,
                first_record: index,
                record_count: 1,
            }),
        }
        self.out.write_all(bytes)?;
        self.records.push(Record {
            offset: self.position,
            length,
            width,
            height,
            class_id,
            crc: crc32c::crc32c(bytes),
            source_index,
        });
        self.position += u64::from(length);
        Ok(())
    }

    /// Number of samples so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no sample has been pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of sample data so far.
    pub fn data_bytes(&self) -> u64 {
        self.position - self.data_offset
    }

    /// Writes the tables after the data; the header stays zero until [`Unsealed::seal`], which
    /// needs the SHA-256 of the folder's `index.json`.
    ///
    /// # Errors
    /// An error of kind `InvalidInput` when no sample was pushed; the I/O error when the tables
    /// cannot be written.
    pub fn finish(mut self) -> io::Result<Unsealed> {
        if self.records.is_empty() {
            return Err(invalid("a shard needs at least one sample".to_string()));
        }
        let class_table_offset = align_up(self.position, 3).expect("file offsets fit in u64");
        self.out
            .write_all(&vec![0u8; (class_table_offset - self.position) as usize])?;
        let mut tables = Vec::with_capacity(self.classes.len() * 16 + self.records.len() * 32);
        for class in &self.classes {
            tables.extend_from_slice(&class.to_bytes());
        }
        for record in &self.records {
            tables.extend_from_slice(&record.to_bytes());
        }
        self.out.write_all(&tables)?;
        self.out.flush()?;
        let header = Header {
            version: VersionedMagic::V2,
            encoding: self.encoding,
            alignment_log2: self.alignment_log2,
            shard_index: self.shard_index,
            sample_count: self.records.len() as u32,
            class_count: self.classes.len() as u32,
            data_offset: self.data_offset,
            class_table_offset,
            record_table_offset: class_table_offset + self.classes.len() as u64 * 16,
            file_length: class_table_offset + tables.len() as u64,
            tables_crc: crc32c::crc32c(&tables),
            index_sha256: [0; 32],
        };
        Ok(Unsealed {
            final_path: self.final_path,
            temp_path: self.temp_path,
            header,
        })
    }
}

/// A shard whose data and tables are written, waiting for its header.
#[derive(Debug)]
pub struct Unsealed {
    final_path: PathBuf,
    temp_path: PathBuf,
    header: Header,
}

impl Unsealed {
    /// The file name the shard will have.
    pub fn file(&self) -> String {
        self.final_path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.header.sample_count as usize
    }

    /// The file's length.
    pub fn bytes(&self) -> u64 {
        self.header.file_length
    }

    /// Writes the header with `index_sha256` (the SHA-256 of the folder's `index.json`), syncs,
    /// hashes the file and renames it into place.
    ///
    /// # Errors
    /// The I/O error when the temporary file cannot be opened, written, synced or read back, or
    /// cannot be renamed into place.
    pub fn seal(self, index_sha256: [u8; 32]) -> io::Result<WrittenShard> {
        let header = Header {
            index_sha256,
            ..self.header
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.temp_path)?;
        file.write_all(&header.to_bytes())?;
        file.sync_all()?;
        file.seek(SeekFrom::Start(0))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        drop(file);
        fsutil::rename_durable(&self.temp_path, &self.final_path)?;
        Ok(WrittenShard {
            file: self.file(),
            samples: header.sample_count as usize,
            bytes: header.file_length,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}
