//! The single writer of a pack: takes preprocessed samples in packing order, appends them to
//! shards (starting a new one at the size limit), and keeps the counts for `index.json`.

use std::path::{Path, PathBuf};

use super::select::Selected;
use super::{ImageError, PackError, Processed};
use crate::shard::layout::PAGE_ALIGNMENT_LOG2;
use crate::shard::{Encoding, Rejected, ShardWriter, Unsealed};

/// What the writer produced.
pub(super) struct Written {
    /// Every shard, waiting to be sealed with the index.
    pub shards: Vec<Unsealed>,
    pub rejected: Vec<Rejected>,
    /// (class id, samples), by class.
    pub class_counts: Vec<(u32, usize)>,
    /// Bytes of sample data.
    pub data_bytes: u64,
}

pub(super) struct Sink<'a> {
    dir: &'a Path,
    encoding: Encoding,
    shard_bytes: u64,
    strict: bool,
    writer: Option<ShardWriter>,
    written: Written,
}

impl<'a> Sink<'a> {
    pub fn new(dir: &'a Path, encoding: Encoding, shard_bytes: u64, strict: bool) -> Sink<'a> {
        Sink {
            dir,
            encoding,
            shard_bytes,
            strict,
            writer: None,
            written: Written {
                shards: Vec::new(),
                rejected: Vec::new(),
                class_counts: Vec::new(),
                data_bytes: 0,
            },
        }
    }

    fn io(&self, path: PathBuf) -> impl FnOnce(std::io::Error) -> PackError + use<> {
        move |source| PackError::Io { path, source }
    }

    /// Takes the result for one image (`source_index` is its position in packing order).
    pub fn accept(
        &mut self,
        image: &Selected,
        source_index: u32,
        result: Result<Processed, ImageError>,
    ) -> Result<(), PackError> {
        let processed = match result {
            Ok(processed) => processed,
            Err(reason) if self.strict => {
                return Err(PackError::Rejected {
                    path: image.path.clone(),
                    reason,
                });
            }
            Err(reason) => {
                self.written.rejected.push(Rejected {
                    path: image.path.clone(),
                    reason: crate::chain::chain(&reason),
                });
                return Ok(());
            }
        };
        let length = processed.bytes.len() as u64;
        let full = self
            .writer
            .as_ref()
            .is_some_and(|w| !w.is_empty() && w.data_bytes() + length > self.shard_bytes);
        if full {
            self.close_shard()?;
        }
        if self.writer.is_none() {
            let number = self.written.shards.len();
            let name = format!("shard-{number:05}.lfs");
            let created = ShardWriter::create(
                self.dir,
                &name,
                number as u32,
                self.encoding,
                PAGE_ALIGNMENT_LOG2,
            )
            .map_err(self.io(self.dir.join(&name)))?;
            self.writer = Some(created);
        }
        let io = self.io(self.dir.to_path_buf());
        let writer = self.writer.as_mut().expect("created above");
        writer
            .push(
                image.class_id,
                processed.width,
                processed.height,
                source_index,
                &processed.bytes,
            )
            .map_err(io)?;
        self.written.data_bytes += length;
        match self.written.class_counts.last_mut() {
            Some((id, count)) if *id == image.class_id => *count += 1,
            _ => self.written.class_counts.push((image.class_id, 1)),
        }
        Ok(())
    }

    fn close_shard(&mut self) -> Result<(), PackError> {
        if let Some(writer) = self.writer.take() {
            let finished = writer.finish().map_err(self.io(self.dir.to_path_buf()))?;
            self.written.shards.push(finished);
        }
        Ok(())
    }

    /// Finishes the last shard.
    pub fn finish(mut self) -> Result<Written, PackError> {
        if self.writer.is_none() {
            let first = self.written.rejected.first().cloned().unwrap_or(Rejected {
                path: "(none)".to_string(),
                reason: "the split part is empty".to_string(),
            });
            return Err(PackError::Nothing {
                path: first.path,
                reason: first.reason,
            });
        }
        self.close_shard()?;
        Ok(self.written)
    }
}
