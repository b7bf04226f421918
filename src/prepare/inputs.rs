//! Matching the files given with `--archive` to the files a manifest lists.

use std::path::{Path, PathBuf};

use super::PrepareError;
use crate::manifest::{Manifest, SourceFile};

/// Pairs each manifest file with the `--archive` file given for it, if any.
pub(super) fn assign_archives(
    manifest: &Manifest,
    archives: &[PathBuf],
) -> Result<Vec<Option<PathBuf>>, PrepareError> {
    let expected = || {
        manifest
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut assigned: Vec<Option<PathBuf>> = vec![None; manifest.files.len()];
    for path in archives {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(meta) => {
                return Err(PrepareError::ArchiveNotFile {
                    path: path.clone(),
                    what: crate::fsutil::kind_of(&meta.file_type()),
                });
            }
            Err(source) => {
                return Err(PrepareError::ArchiveUnreadable {
                    path: path.clone(),
                    source,
                });
            }
        }
        let Some(index) = match_archive(&manifest.files, path) else {
            return Err(PrepareError::UnmatchedArchive {
                path: path.clone(),
                dataset: manifest.name.clone(),
                expected: expected(),
            });
        };
        if let Some(first) = &assigned[index] {
            return Err(PrepareError::DuplicateArchive {
                name: manifest.files[index].name.clone(),
                first: first.clone(),
                second: path.clone(),
            });
        }
        assigned[index] = Some(path.clone());
    }
    Ok(assigned)
}

/// The manifest file an archive stands for: same file name, else the only file of its kind.
fn match_archive(files: &[SourceFile], path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_string_lossy();
    if let Some(i) = files.iter().position(|f| f.name == name) {
        return Some(i);
    }
    let mut head = [0u8; 32];
    let n = std::io::Read::read(&mut std::fs::File::open(path).ok()?, &mut head).ok()?;
    let same_kind: Vec<usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| head[..n].starts_with(f.kind.magic()))
        .map(|(i, _)| i)
        .collect();
    match same_kind.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}
