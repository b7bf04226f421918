//! Zip extraction (ZIP64 included, as the zip crate reads it), through the checks in [`Sink`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::zip_count::count_entries;
use super::{ArchiveError, Sink};
use crate::progress::Progress;

/// Extracts every entry of a zip archive into `sink`.
pub(super) fn extract(
    archive_path: &Path,
    sink: &mut Sink<'_>,
    progress: Progress,
) -> Result<(), ArchiveError> {
    let mut file = File::open(archive_path).map_err(|e| sink.corrupt(e))?;
    if let Some(count) = count_entries(&mut file).map_err(|e| sink.corrupt(e))?
        && count.found != count.declared
    {
        return Err(ArchiveError::MiscountedZip {
            archive: archive_path.to_path_buf(),
            declared: count.declared,
            found: count.found,
        });
    }
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| sink.corrupt(e))?;
    sink.expect_entries(archive.len() as u64)?;
    // Duplicate names, entries sharing their data, local headers that contradict the central
    // directory, and local entries it does not list are all refused here.
    archive.validate_header_consistency().map_err(|e| {
        if e.to_string().contains("inconsistency") {
            sink.ambiguous(e)
        } else {
            sink.corrupt(e)
        }
    })?;
    let name = archive_path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let bar = progress.items(archive.len() as u64, format!("extracting {name}"));
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| sink.corrupt(e))?;
        let raw = match entry.name() {
            Ok(name) => name.into_owned().into_bytes(),
            Err(_) => entry.name_raw().to_vec(),
        };
        if entry.encrypted() {
            return Err(sink.unsupported(&raw, "the entry is encrypted"));
        }
        if entry.is_dir() {
            sink.dir(&raw)?;
        } else if entry.is_symlink() {
            let mut target = Vec::new();
            // A link's target is its content; cap it so a "link" cannot be a bomb.
            (&mut entry)
                .take(4096)
                .read_to_end(&mut target)
                .map_err(|e| sink.corrupt(e))?;
            sink.link(&raw, &target, false)?;
        } else {
            let declared = entry.size();
            sink.file(&raw, Some(declared), &mut entry)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}
