//! Catalogues for any dataset: a folder with one sub-folder per class, or a CSV file.
//!
//! - **Folder**: every sub-folder of the root is a class; every `.jpg`, `.jpeg` or `.png` file
//!   below it (at any depth) is an image of that class. Hidden entries are ignored; other
//!   files are ignored with a note.
//! - **CSV**: a header row naming a `path` column and either a `label` column or a `class_id`
//!   column (with an optional `class_name`); other columns are ignored. Paths are relative to
//!   the CSV file's folder (absolute paths are kept as they are). A `split.csv` written by
//!   `lifted split` is therefore a valid input.
//!
//! Class ids: with `class_id` they are taken as given. With labels or folder names, if every
//! label is a non-negative integer (and no two spell the same number) that integer is the id;
//! otherwise the labels are sorted and numbered from 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Catalog, CatalogError, ClassInfo, ImageRecord};

/// File extensions taken as images (compared case-insensitively).
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// Whether a path names an image file by its extension.
pub fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The dataset name a folder or file gives: its file stem, reduced to safe characters.
pub fn name_for(path: &Path) -> String {
    let stem = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "dataset".to_string()
    } else {
        name
    }
}

/// Reads an image folder with one sub-folder per class.
///
/// Symbolic links are followed when they lead to a place inside `root` (a class folder linked
/// from elsewhere in the dataset counts as a class); one that leads outside is an error, as is
/// a file or folder name that is not valid UTF-8 (catalogues store paths as text).
///
/// # Errors
/// [`CatalogError::Read`] when `root` or a folder below it cannot be listed or resolved,
/// [`CatalogError::LinkOutside`] when a symbolic link leads outside `root`,
/// [`CatalogError::UndecodableNames`] when names are not valid UTF-8, and [`CatalogError::Empty`]
/// when no class folder holds an image.
pub fn read_folder(root: &Path) -> Result<Catalog, CatalogError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CatalogError::Read { path, source }
    };
    let real_root = root.canonicalize().map_err(read_err(root))?;
    let mut walk = Walk {
        root,
        real_root: &real_root,
        visited: std::collections::HashSet::from([real_root.clone()]),
        ignored: 0,
        undecodable: Vec::new(),
    };
    let mut class_dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(read_err(root))? {
        let entry = entry.map_err(read_err(root))?;
        let Some(name) = walk.name_of(&entry) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match walk.kind(&entry.path())? {
            Kind::Dir => class_dirs.push((name, entry.path())),
            Kind::Other => walk.ignored += 1,
        }
    }
    class_dirs.sort();
    let mut labelled: Vec<(String, String)> = Vec::new();
    for (class, dir) in &class_dirs {
        let mut files = Vec::new();
        walk.collect(dir, &mut files)?;
        files.sort();
        for file in files {
            let rel = file.strip_prefix(root).unwrap_or(&file);
            labelled.push((rel.to_string_lossy().replace('\\', "/"), class.clone()));
        }
    }
    if !walk.undecodable.is_empty() {
        walk.undecodable.sort();
        return Err(CatalogError::UndecodableNames {
            root: root.to_path_buf(),
            names: walk.undecodable,
        });
    }
    let mut catalog = from_labels(root, labelled, &root.display().to_string())?;
    if walk.ignored > 0 {
        catalog.notes.push(format!(
            "ignored {} files that are not .jpg/.jpeg/.png or not inside a class folder",
            walk.ignored
        ));
    }
    Ok(catalog)
}

/// What an entry is, once links are followed.
enum Kind {
    Dir,
    Other,
}

/// The state of a folder walk.
struct Walk<'a> {
    root: &'a Path,
    real_root: &'a Path,
    /// Folders already walked (by real path), so a link loop is walked once.
    visited: std::collections::HashSet<PathBuf>,
    ignored: usize,
    /// Names that are not UTF-8, escaped, relative to the root.
    undecodable: Vec<String>,
}

impl Walk<'_> {
    /// The entry's name as text, or `None` (recorded) if it is not UTF-8.
    fn name_of(&mut self, entry: &std::fs::DirEntry) -> Option<String> {
        match entry.file_name().into_string() {
            Ok(name) => Some(name),
            Err(_) => {
                let path = entry.path();
                let rel = path.strip_prefix(self.root).unwrap_or(&path);
                self.undecodable.push(escaped(rel));
                None
            }
        }
    }

    /// Whether `path` is (or links to) a folder; a link leading outside the root is an error.
    fn kind(&self, path: &Path) -> Result<Kind, CatalogError> {
        let meta = std::fs::symlink_metadata(path).map_err(|source| CatalogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.file_type().is_symlink() {
            let target = path.canonicalize().map_err(|source| CatalogError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            if !target.starts_with(self.real_root) {
                return Err(CatalogError::LinkOutside {
                    link: path.to_path_buf(),
                    target,
                });
            }
            return Ok(if target.is_dir() {
                Kind::Dir
            } else {
                Kind::Other
            });
        }
        Ok(if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        })
    }

    /// Collects image files below `dir` (following links inside the root), counting the
    /// other files.
    fn collect(&mut self, dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
        let read_err = |source| CatalogError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let real = dir.canonicalize().map_err(read_err)?;
        if !self.visited.insert(real) && dir != self.root {
            return Ok(());
        }
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let entry = entry.map_err(|source| CatalogError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
            let Some(name) = self.name_of(&entry) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            match self.kind(&path)? {
                Kind::Dir => self.collect(&path, files)?,
                Kind::Other if is_image_name(&path) => files.push(path),
                Kind::Other => self.ignored += 1,
            }
        }
        Ok(())
    }
}

/// A path as text, with every byte that is not UTF-8 written as `\xNN`.
pub fn escaped(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut text = String::new();
        for chunk in path.as_os_str().as_bytes().utf8_chunks() {
            text.push_str(chunk.valid());
            for byte in chunk.invalid() {
                text.push_str(&format!("\\x{byte:02x}"));
            }
        }
        text
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().into_owned()
    }
}

/// Reads a CSV catalogue (see the module documentation for its columns).
///
/// # Errors
/// [`CatalogError::MissingFile`] when `csv_path` does not exist, [`CatalogError::Read`] when it is
/// not a regular file, is too large or cannot be read, [`CatalogError::Csv`] when it is not valid
/// CSV, [`CatalogError::Malformed`] when the header lacks the columns it needs or a row has an
/// empty path, an empty label or a bad `class_id`, [`CatalogError::Inconsistent`] when one
/// `class_id` has two names, and [`CatalogError::Empty`] when it has no rows.
pub fn read_csv(csv_path: &Path) -> Result<Catalog, CatalogError> {
    let csv_err = |source| CatalogError::Csv {
        path: csv_path.to_path_buf(),
        source,
    };
    let bytes = match crate::fsutil::read_regular(csv_path, crate::limits::MAX_IMAGE_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(crate::fsutil::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CatalogError::MissingFile {
                path: csv_path.to_path_buf(),
            });
        }
        Err(e) => {
            return Err(CatalogError::Read {
                path: csv_path.to_path_buf(),
                source: e.into_io(),
            });
        }
    };
    let root = csv_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let headers = reader.headers().map_err(csv_err)?.clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let malformed = |line: usize, reason: String| CatalogError::Malformed {
        path: csv_path.to_path_buf(),
        line,
        reason,
    };
    let path_col = find("path").ok_or_else(|| {
        malformed(
            1,
            "the header must name a `path` column and a `label` or `class_id` column".to_string(),
        )
    })?;
    let (label_col, id_col, name_col) = (find("label"), find("class_id"), find("class_name"));
    if label_col.is_none() && id_col.is_none() {
        return Err(malformed(
            1,
            "the header must name a `label` or `class_id` column".to_string(),
        ));
    }
    let mut labelled = Vec::new();
    let mut with_ids: Vec<(String, u32, Option<String>)> = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let row = row.map_err(csv_err)?;
        let line = row.position().map_or(index + 2, |p| p.line() as usize);
        let cell = |col: usize| row.get(col).unwrap_or("").trim().to_string();
        let path = cell(path_col).replace('\\', "/");
        if path.is_empty() {
            return Err(malformed(line, "the path is empty".to_string()));
        }
        if let Some(col) = id_col {
            let id = cell(col).parse::<u32>().map_err(|_| {
                malformed(
                    line,
                    format!("class_id `{}` is not a non-negative integer", cell(col)),
                )
            })?;
            with_ids.push((path, id, name_col.map(cell)));
        } else if let Some(col) = label_col {
            let label = cell(col);
            if label.is_empty() {
                return Err(malformed(line, "the label is empty".to_string()));
            }
            labelled.push((path, label));
        }
    }
    let origin = csv_path.display().to_string();
    if id_col.is_some() {
        from_ids(&root, with_ids, csv_path)
    } else {
        from_labels(&root, labelled, &origin)
    }
}

/// Builds a catalogue from (path, label) pairs.
fn from_labels(
    root: &Path,
    labelled: Vec<(String, String)>,
    origin: &str,
) -> Result<Catalog, CatalogError> {
    if labelled.is_empty() {
        return Err(CatalogError::Empty {
            path: PathBuf::from(origin),
            hint: "a folder needs one sub-folder of .jpg/.png images per class; a CSV needs rows of path,label".to_string(),
        });
    }
    let mut labels: Vec<&str> = labelled.iter().map(|(_, l)| l.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    // Integer labels are their own ids, unless two spellings name one number ("1", "01").
    let numeric: Option<Vec<u32>> = labels.iter().map(|l| l.parse::<u32>().ok()).collect();
    let distinct = |numbers: &Vec<u32>| {
        numbers
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == numbers.len()
    };
    let ids: BTreeMap<&str, u32> = match numeric {
        Some(numbers) if distinct(&numbers) => labels.iter().copied().zip(numbers).collect(),
        _ => labels
            .iter()
            .enumerate()
            .map(|(i, l)| (*l, i as u32 + 1))
            .collect(),
    };
    let mut classes: Vec<ClassInfo> = ids
        .iter()
        .map(|(name, id)| ClassInfo {
            id: *id,
            name: name.to_string(),
        })
        .collect();
    classes.sort_by_key(|c| c.id);
    let images = labelled
        .iter()
        .map(|(path, label)| ImageRecord {
            path: path.clone(),
            class_id: ids[label.as_str()],
            bbox: None,
            official: None,
        })
        .collect();
    Ok(Catalog {
        dataset: String::new(),
        root: root.to_path_buf(),
        classes,
        images,
        notes: Vec::new(),
    })
}

/// Builds a catalogue from (path, class id, optional name) rows.
fn from_ids(
    root: &Path,
    rows: Vec<(String, u32, Option<String>)>,
    csv_path: &Path,
) -> Result<Catalog, CatalogError> {
    if rows.is_empty() {
        return Err(CatalogError::Empty {
            path: csv_path.to_path_buf(),
            hint: "the CSV has a header but no rows".to_string(),
        });
    }
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for (_, id, name) in &rows {
        let name = name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.to_string());
        match names.get(id) {
            Some(known) if *known != name => {
                return Err(CatalogError::Inconsistent {
                    path: csv_path.to_path_buf(),
                    reason: format!("class_id {id} is named both `{known}` and `{name}`"),
                });
            }
            Some(_) => {}
            None => {
                names.insert(*id, name);
            }
        }
    }
    Ok(Catalog {
        dataset: String::new(),
        root: root.to_path_buf(),
        classes: names
            .into_iter()
            .map(|(id, name)| ClassInfo { id, name })
            .collect(),
        images: rows
            .into_iter()
            .map(|(path, class_id, _)| ImageRecord {
                path,
                class_id,
                bbox: None,
                official: None,
            })
            .collect(),
        notes: Vec::new(),
    })
}
