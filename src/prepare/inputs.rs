//! What a preparation starts from: which layout of the dataset, and which of its files (or
//! unpacked folders) the user gave with `--archive`.
//!
//! A file given is matched to a manifest file by name, else by being the only file of its kind
//! (zip, tar.gz, MAT) in a layout. A folder given is an unpacked copy: it stands for a layout
//! whose `contains` paths it holds. Everything given must belong to one layout.

use std::path::{Path, PathBuf};

use super::PrepareError;
use crate::manifest::{Layout, Manifest, SourceFile};

/// What was given for one layout.
#[derive(Debug, Clone)]
pub(super) struct Given<'a> {
    /// The layout.
    pub layout: Layout<'a>,
    /// For each of its files, the path given for it, if any.
    pub files: Vec<Option<PathBuf>>,
    /// Unpacked folders given.
    pub folders: Vec<PathBuf>,
}

impl Given<'_> {
    /// Whether anything at all was given.
    pub fn any(&self) -> bool {
        !self.folders.is_empty() || self.files.iter().any(Option::is_some)
    }
}

/// Matches the `--archive` paths to one layout of `manifest` (the main one when none is given,
/// and the first one every path fits, since a file such as CARS's `cars_annos.mat` belongs to
/// both).
pub(super) fn assign<'a>(
    manifest: &'a Manifest,
    archives: &[PathBuf],
) -> Result<Given<'a>, PrepareError> {
    let layouts = manifest.layouts();
    // For each path, where it fits in each layout: None if not at all, Some(None) as a folder,
    // Some(Some(i)) as file i.
    let mut fits: Vec<Vec<Option<Option<usize>>>> = Vec::new();
    for path in archives {
        let meta = std::fs::metadata(path).map_err(|source| PrepareError::ArchiveUnreadable {
            path: path.clone(),
            source,
        })?;
        let place: Vec<Option<Option<usize>>> = if meta.is_dir() {
            layouts
                .iter()
                .map(|l| holds(path, l.contains).then_some(None))
                .collect()
        } else if meta.is_file() {
            // A file named as a manifest file is that file, in whichever layouts list it; only
            // a file named otherwise is matched by its kind.
            let by_name: Vec<Option<Option<usize>>> = layouts
                .iter()
                .map(|l| match_name(l.files, path).map(Some))
                .collect();
            if by_name.iter().any(Option::is_some) {
                by_name
            } else {
                layouts
                    .iter()
                    .map(|l| match_kind(l.files, path).map(Some))
                    .collect()
            }
        } else {
            return Err(PrepareError::ArchiveNotFile {
                path: path.clone(),
                what: crate::fsutil::kind_of(&meta.file_type()),
            });
        };
        if place.iter().all(Option::is_none) {
            return Err(PrepareError::UnmatchedArchive {
                path: path.clone(),
                dataset: manifest.name.clone(),
                expected: expected(&layouts),
            });
        }
        fits.push(place);
    }
    let chosen = (0..layouts.len())
        .find(|&l| fits.iter().all(|f| f[l].is_some()))
        .ok_or_else(|| {
            // Two paths that share no layout: name them.
            let first = fits[0].iter().position(Option::is_some).unwrap_or(0);
            let clash = fits.iter().position(|f| f[first].is_none()).unwrap_or(0);
            let second = fits[clash].iter().position(Option::is_some).unwrap_or(0);
            PrepareError::MixedLayouts {
                path: archives[clash].clone(),
                first: layouts[first].name.to_string(),
                second: layouts[second].name.to_string(),
            }
        })?;
    let layout = layouts[chosen];
    let mut given = Given {
        layout,
        files: vec![None; layout.files.len()],
        folders: Vec::new(),
    };
    for (path, place) in archives.iter().zip(&fits) {
        match place[chosen].expect("every path fits the chosen layout") {
            None => given.folders.push(path.clone()),
            Some(index) => {
                if let Some(first) = &given.files[index] {
                    return Err(PrepareError::DuplicateArchive {
                        name: layout.files[index].name.clone(),
                        first: first.clone(),
                        second: path.clone(),
                    });
                }
                given.files[index] = Some(path.clone());
            }
        }
    }
    Ok(given)
}

/// Every layout's files, for messages.
fn expected(layouts: &[Layout<'_>]) -> String {
    layouts
        .iter()
        .map(|l| {
            let names: Vec<&str> = l.files.iter().map(|f| f.name.as_str()).collect();
            let folder = if l.contains.is_empty() {
                String::new()
            } else {
                format!(", or a folder holding {}", l.contains.join(", "))
            };
            format!("{} ({}{folder})", names.join(", "), l.name)
        })
        .collect::<Vec<_>>()
        .join("; or ")
}

/// Whether `folder` holds every path of `contains` (none means the layout has no folder form).
fn holds(folder: &Path, contains: &[String]) -> bool {
    !contains.is_empty() && contains.iter().all(|p| folder.join(p).exists())
}

/// The manifest file with `path`'s file name.
fn match_name(files: &[SourceFile], path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_string_lossy();
    files.iter().position(|f| f.name == name)
}

/// The only manifest file of `path`'s kind (by its first bytes), if there is exactly one.
fn match_kind(files: &[SourceFile], path: &Path) -> Option<usize> {
    let mut head = [0u8; 32];
    let n = std::io::Read::read(&mut std::fs::File::open(path).ok()?, &mut head).ok()?;
    let same_kind: Vec<usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind.matches(&head[..n]))
        .map(|(i, _)| i)
        .collect();
    match same_kind.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}
