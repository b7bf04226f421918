//! An unpacked copy of a dataset's files, given instead of its archives: copied into the
//! extraction folder through the same checks as an archive's entries.
//!
//! Files are hard-linked when the folder is on the same file system (no bytes are copied, and
//! the user's files are never written), otherwise copied. Symbolic links are followed only
//! when they lead inside the folder; one that leads outside refuses the folder. macOS metadata
//! is skipped, and the manifest's limits on entries and bytes apply.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ArchiveError, Budget, ExtractReport, Sink};
use crate::progress::Progress;

/// Copies (or hard-links) everything under `folder` into `dest`.
///
/// # Errors
/// [`ArchiveError::Write`] when `folder` cannot be resolved or a file or folder cannot be made in
/// `dest`; [`ArchiveError::Corrupt`] when a folder, a file's metadata or a link under `folder`
/// cannot be read; [`ArchiveError::UnsafePath`] when a symbolic link leads outside `folder` or a
/// name is unsafe; and [`ArchiveError::TooManyEntries`], [`ArchiveError::EntryTooLarge`] or
/// [`ArchiveError::TotalTooLarge`] when the copy goes over `budget`'s limits.
pub fn copy_folder(
    folder: &Path,
    dest: &Path,
    budget: &mut Budget,
    progress: Progress,
) -> Result<ExtractReport, ArchiveError> {
    let real = fs::canonicalize(folder).map_err(|source| ArchiveError::Write {
        path: folder.to_path_buf(),
        source,
    })?;
    let mut sink = Sink::new(folder, dest, budget);
    let bar = progress.items(0, format!("copying {}", folder.display()));
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let here = folder.join(&rel);
        let mut entries: Vec<_> = fs::read_dir(&here)
            .map_err(|e| sink.corrupt(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| sink.corrupt(e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let child = rel.join(entry.file_name());
            let raw = child.to_string_lossy().into_owned();
            let meta = fs::metadata(entry.path()).map_err(|e| sink.corrupt(e))?;
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                let target = fs::canonicalize(entry.path()).map_err(|e| sink.corrupt(e))?;
                if !target.starts_with(&real) {
                    return Err(ArchiveError::UnsafePath {
                        archive: folder.to_path_buf(),
                        entry: raw,
                        reason: format!("it links to {}, outside the folder", target.display()),
                    });
                }
            }
            if meta.is_dir() {
                sink.dir(raw.as_bytes())?;
                pending.push(child);
            } else if meta.is_file() {
                sink.linked_file(raw.as_bytes(), &entry.path(), meta.len())?;
                bar.inc(1);
            } else {
                sink.skip("not a regular file or folder")?;
            }
        }
    }
    bar.finish_and_clear();
    sink.finish()
}

/// A digest of what `folder` holds: every file's relative path, size and modification time,
/// in path order (so a later run can tell whether it changed).
pub fn folder_digest(folder: &Path) -> String {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => pending.push(path),
                Ok(meta) => {
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    let rel = path.strip_prefix(folder).unwrap_or(&path).to_path_buf();
                    files.push((rel, meta.len(), mtime));
                }
                Err(_) => {}
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for (rel, size, mtime) in files {
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(format!("\0{size}\0{mtime}\n"));
    }
    hex::encode(hasher.finalize())
}
