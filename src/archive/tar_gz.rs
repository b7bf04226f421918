//! tar.gz extraction through the checks in [`Sink`].
//!
//! The gzip stream (all its members) is read to its end after the last tar entry, so a copy
//! cut short at an entry boundary is still caught by the missing gzip trailer.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use indicatif::ProgressBar;
use tar::EntryType;

use super::{ArchiveError, Sink};
use crate::progress::Progress;

/// Extracts every entry of a gzip-compressed tar archive into `sink`.
pub(super) fn extract(
    archive_path: &Path,
    sink: &mut Sink<'_>,
    progress: Progress,
) -> Result<(), ArchiveError> {
    let file = File::open(archive_path).map_err(|e| sink.corrupt(e))?;
    let length = file.metadata().map_err(|e| sink.corrupt(e))?.len();
    let name = archive_path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let bar = progress.bytes(Some(length), format!("extracting {name}"));
    let counted = Counted {
        inner: BufReader::with_capacity(1 << 16, file),
        bar: bar.clone(),
    };
    let mut archive = tar::Archive::new(MultiGzDecoder::new(counted));
    let entries = archive.entries().map_err(|e| sink.corrupt(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| sink.corrupt(e))?;
        let raw = entry.path_bytes().into_owned();
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {
                let declared = entry.header().size().map_err(|e| sink.corrupt(e))?;
                sink.file(&raw, Some(declared), &mut entry)?;
            }
            EntryType::Directory => sink.dir(&raw)?,
            kind @ (EntryType::Symlink | EntryType::Link) => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| sink.corrupt("a link entry has no target"))?
                    .into_owned();
                sink.link(&raw, &target, kind == EntryType::Link)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                sink.skip("device or FIFO entry")?;
            }
            EntryType::GNUSparse => return Err(sink.unsupported(&raw, "GNU sparse files")),
            _ => sink.skip("tar metadata entry")?,
        }
    }
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(|e| sink.corrupt(e))?;
    bar.finish_and_clear();
    Ok(())
}

/// Advances a progress bar by the compressed bytes read.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}
