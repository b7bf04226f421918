//! Safe extraction of zip (ZIP64 included) and tar.gz archives.
//!
//! Archives are untrusted input, whatever their checksum. Extraction therefore:
//! - refuses the whole archive on an absolute path, a `..` component or a link whose target
//!   leaves the extraction folder ([`entry`]);
//! - counts entries and bytes against the manifest's [`ExtractLimits`] while writing, not only
//!   from the sizes the archive declares, so a bomb stops at the limit;
//! - skips macOS metadata (`__MACOSX/`, `._*`) and device nodes, and reports what it skipped;
//! - writes files and folders first and creates links last, so no file is ever written
//!   through a link the archive made;
//! - never writes outside the folder it is given. Callers extract into a temporary sibling
//!   folder and rename it into place, so an interrupted run leaves nothing a later run trusts.

pub mod entry;
mod folder;
mod tar_gz;
mod zip;
mod zip_count;

pub use folder::{copy_folder, folder_digest};

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::{ExtractLimits, FileKind};
use crate::progress::Progress;
use entry::EntryName;

/// Errors from extracting an archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The archive is damaged or cut short (what the reader found is the source).
    #[error(
        "{archive} is truncated or corrupt (delete it and download it again, or check the copy \
         you gave)"
    )]
    Corrupt {
        /// The archive.
        archive: PathBuf,
        /// What the reader found.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The archive can be read in more than one way (two entries with one name or one body,
    /// local headers that disagree with the central directory, entries the directory does not
    /// list); which file a tool extracts would depend on the tool.
    #[error(
        "refusing to extract {archive}: it is ambiguous ({detail}); this is not a genuine copy \
         of the dataset"
    )]
    Ambiguous {
        /// The archive.
        archive: PathBuf,
        /// What is ambiguous.
        detail: String,
    },
    /// A zip's end record counts fewer entries than its central directory holds (a zip of
    /// more than 65,535 entries written without ZIP64); read by its count it would be short.
    #[error(
        "{archive} says it holds {declared} entries but its central directory lists {found} \
         (a zip of more than 65,535 entries written without ZIP64); it is not read short. \
         Unpack it with a tool that reads the whole directory (7-Zip, Info-ZIP unzip 6) and \
         give the unpacked folder instead"
    )]
    MiscountedZip {
        /// The archive.
        archive: PathBuf,
        /// The count in the end record.
        declared: u64,
        /// The entries in the central directory.
        found: u64,
    },
    /// An entry would land outside the extraction folder.
    #[error(
        "refusing to extract {archive}: entry `{entry}` is unsafe ({reason}); this is not a \
         genuine copy of the dataset"
    )]
    UnsafePath {
        /// The archive.
        archive: PathBuf,
        /// The entry's name as stored.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The archive holds more entries than the manifest allows.
    #[error(
        "refusing to extract {archive}: more than {limit} entries (the manifest's \
         limits.max_entries); the archive is not the expected one, or is an archive bomb"
    )]
    TooManyEntries {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// One entry unpacks to more bytes than the manifest allows.
    #[error(
        "refusing to extract {archive}: entry `{entry}` unpacks to more than {limit} bytes (the \
         manifest's limits.max_entry_bytes); the archive is not the expected one, or is an \
         archive bomb"
    )]
    EntryTooLarge {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// All entries together unpack to more bytes than the manifest allows.
    #[error(
        "refusing to extract {archive}: it unpacks to more than {limit} bytes (the manifest's \
         limits.max_total_bytes); the archive is not the expected one, or is an archive bomb"
    )]
    TotalTooLarge {
        /// The archive.
        archive: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The archive uses a feature `lifted` does not extract.
    #[error("cannot extract entry `{entry}` of {archive}: {what}")]
    Unsupported {
        /// The archive.
        archive: PathBuf,
        /// The entry.
        entry: String,
        /// The feature.
        what: String,
    },
    /// Writing the extracted data failed.
    #[error("cannot write {path}")]
    Write {
        /// The path being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// What an extraction did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ExtractReport {
    /// Regular files written.
    pub files: u64,
    /// Folders created.
    pub dirs: u64,
    /// Links created.
    pub links: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Entries skipped, counted by reason.
    pub skipped: BTreeMap<String, u64>,
}

impl ExtractReport {
    /// Adds another extraction's counts to these.
    pub fn add(&mut self, other: ExtractReport) {
        self.files += other.files;
        self.dirs += other.dirs;
        self.links += other.links;
        self.bytes += other.bytes;
        for (reason, count) in other.skipped {
            *self.skipped.entry(reason).or_insert(0) += count;
        }
    }
}

/// Counts entries and bytes across every archive of a dataset against its limits. Skipped
/// entries (macOS metadata) have their own allowance of `max_entries`, so a genuine archive
/// with an AppleDouble twin of every file still extracts, and a flood of them still stops.
#[derive(Debug)]
pub struct Budget {
    limits: ExtractLimits,
    entries: u64,
    skipped: u64,
    bytes: u64,
}

impl Budget {
    /// A fresh budget.
    pub fn new(limits: ExtractLimits) -> Budget {
        Budget {
            limits,
            entries: 0,
            skipped: 0,
            bytes: 0,
        }
    }
}

/// Extracts `archive` into the folder `dest` (which must exist and should be empty). A plain
/// file (a MAT-file) is copied in as `name`, the name the dataset expects.
///
/// # Errors
/// [`ArchiveError::Corrupt`] when the archive cannot be opened, is damaged or cut short, an entry
/// holds another number of bytes than it declares, or a hard link points to no file extracted
/// earlier; [`ArchiveError::Ambiguous`] when two entries extract to one path or a zip's local
/// headers disagree with its central directory; [`ArchiveError::MiscountedZip`] when a zip's end
/// record counts fewer entries than its central directory lists; [`ArchiveError::UnsafePath`] when
/// an entry's name or a link leads outside `dest`, or a link's path goes through another link;
/// [`ArchiveError::TooManyEntries`], [`ArchiveError::EntryTooLarge`] or
/// [`ArchiveError::TotalTooLarge`] when the archive goes over `budget`'s limits;
/// [`ArchiveError::Unsupported`] for an encrypted zip entry or a GNU sparse file;
/// [`ArchiveError::Write`] when a file, folder or link cannot be made in `dest`.
pub fn extract(
    archive: &Path,
    kind: FileKind,
    name: &str,
    dest: &Path,
    budget: &mut Budget,
    progress: Progress,
) -> Result<ExtractReport, ArchiveError> {
    let mut sink = Sink::new(archive, dest, budget);
    match kind {
        FileKind::Zip => zip::extract(archive, &mut sink, progress)?,
        FileKind::TarGz => tar_gz::extract(archive, &mut sink, progress)?,
        // Files that are not archives are copied as they are.
        FileKind::Mat | FileKind::Pth | FileKind::Safetensors => {
            let mut reader = File::open(archive).map_err(|e| sink.corrupt(e))?;
            sink.file(name.as_bytes(), None, &mut reader)?;
        }
    }
    sink.finish()
}

/// A link waiting to be created once every file and folder exists.
#[derive(Debug)]
struct PendingLink {
    entry: String,
    path: PathBuf,
    target: PathBuf,
    hard: bool,
}

/// Where entries go: checks names and limits, writes files, and defers links.
pub(crate) struct Sink<'a> {
    archive: &'a Path,
    dest: &'a Path,
    budget: &'a mut Budget,
    report: ExtractReport,
    links: Vec<PendingLink>,
    /// Paths of the files written so far, to refuse a second entry with the same path.
    written: std::collections::HashSet<PathBuf>,
}

impl<'a> Sink<'a> {
    fn new(archive: &'a Path, dest: &'a Path, budget: &'a mut Budget) -> Sink<'a> {
        Sink {
            archive,
            dest,
            budget,
            report: ExtractReport::default(),
            links: Vec::new(),
            written: std::collections::HashSet::new(),
        }
    }

    /// A [`ArchiveError::Ambiguous`] for this archive.
    pub(crate) fn ambiguous(&self, detail: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Ambiguous {
            archive: self.archive.to_path_buf(),
            detail: detail.to_string(),
        }
    }

    /// A [`ArchiveError::Corrupt`] for this archive, caused by `source` (an error, or a
    /// description of the damage).
    pub(crate) fn corrupt(
        &self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ArchiveError {
        ArchiveError::Corrupt {
            archive: self.archive.to_path_buf(),
            source: source.into(),
        }
    }

    /// A [`ArchiveError::Unsupported`] for this archive.
    pub(crate) fn unsupported(&self, raw: &[u8], what: &str) -> ArchiveError {
        ArchiveError::Unsupported {
            archive: self.archive.to_path_buf(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            what: what.to_string(),
        }
    }

    /// Fails early when an archive declares more entries than the budget could ever allow.
    pub(crate) fn expect_entries(&self, declared: u64) -> Result<(), ArchiveError> {
        let allowance = self.budget.limits.max_entries.saturating_mul(2);
        let used = self.budget.entries + self.budget.skipped;
        if used.saturating_add(declared) > allowance {
            return Err(ArchiveError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit: self.budget.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Checks an entry's name and counts it; `None` means skip it.
    fn admit(&mut self, raw: &[u8]) -> Result<Option<PathBuf>, ArchiveError> {
        match entry::check_name(raw) {
            EntryName::Path(path) => {
                self.budget.entries += 1;
                self.check_entries()?;
                Ok(Some(path))
            }
            EntryName::Skip(reason) => {
                self.skip(reason)?;
                Ok(None)
            }
            EntryName::Unsafe(reason) => Err(self.unsafe_entry(raw, reason)),
        }
    }

    fn check_entries(&self) -> Result<(), ArchiveError> {
        let limit = self.budget.limits.max_entries;
        if self.budget.entries > limit || self.budget.skipped > limit {
            return Err(ArchiveError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit,
            });
        }
        Ok(())
    }

    fn unsafe_entry(&self, raw: &[u8], reason: &str) -> ArchiveError {
        ArchiveError::UnsafePath {
            archive: self.archive.to_path_buf(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            reason: reason.to_string(),
        }
    }

    /// Records a skipped entry.
    pub(crate) fn skip(&mut self, reason: &str) -> Result<(), ArchiveError> {
        self.budget.skipped += 1;
        *self.report.skipped.entry(reason.to_string()).or_insert(0) += 1;
        self.check_entries()
    }

    /// Creates a folder entry.
    pub(crate) fn dir(&mut self, raw: &[u8]) -> Result<(), ArchiveError> {
        if let Some(rel) = self.admit(raw)? {
            let path = self.dest.join(rel);
            fs::create_dir_all(&path).map_err(|source| ArchiveError::Write { path, source })?;
            self.report.dirs += 1;
        }
        Ok(())
    }

    /// Writes a regular file entry from `reader`; `declared` is the size the archive claims.
    pub(crate) fn file(
        &mut self,
        raw: &[u8],
        declared: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let Some(rel) = self.admit(raw)? else {
            return Ok(());
        };
        let entry_name = || String::from_utf8_lossy(raw).into_owned();
        if !self.written.insert(rel.clone()) {
            return Err(self.ambiguous(format!(
                "two entries extract to `{}`, and only one of them can be the dataset's",
                rel.display()
            )));
        }
        let limits = self.budget.limits;
        if declared.is_some_and(|size| size > limits.max_entry_bytes) {
            return Err(ArchiveError::EntryTooLarge {
                archive: self.archive.to_path_buf(),
                entry: entry_name(),
                limit: limits.max_entry_bytes,
            });
        }
        let path = self.dest.join(&rel);
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArchiveError::Write { path, source }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        let mut out = File::create(&path).map_err(write_err(&path))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(EntryError(entry_name(), e))),
            };
            written += n as u64;
            if written > limits.max_entry_bytes {
                return Err(ArchiveError::EntryTooLarge {
                    archive: self.archive.to_path_buf(),
                    entry: entry_name(),
                    limit: limits.max_entry_bytes,
                });
            }
            if self.budget.bytes + written > limits.max_total_bytes {
                return Err(ArchiveError::TotalTooLarge {
                    archive: self.archive.to_path_buf(),
                    limit: limits.max_total_bytes,
                });
            }
            out.write_all(&buf[..n]).map_err(write_err(&path))?;
        }
        if declared.is_some_and(|size| size != written) {
            return Err(self.corrupt(format!(
                "entry `{}` declares {} bytes but holds {written}",
                entry_name(),
                declared.unwrap_or_default()
            )));
        }
        self.budget.bytes += written;
        self.report.bytes += written;
        self.report.files += 1;
        Ok(())
    }

    /// Puts a file of an unpacked folder at entry `raw`: a hard link to `source` where the file
    /// system allows it, else a copy; `size` counts against the limits either way.
    pub(crate) fn linked_file(
        &mut self,
        raw: &[u8],
        source: &Path,
        size: u64,
    ) -> Result<(), ArchiveError> {
        let Some(rel) = self.admit(raw)? else {
            return Ok(());
        };
        let limits = self.budget.limits;
        let entry = || String::from_utf8_lossy(raw).into_owned();
        if size > limits.max_entry_bytes {
            return Err(ArchiveError::EntryTooLarge {
                archive: self.archive.to_path_buf(),
                entry: entry(),
                limit: limits.max_entry_bytes,
            });
        }
        if self.budget.bytes + size > limits.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                archive: self.archive.to_path_buf(),
                limit: limits.max_total_bytes,
            });
        }
        if !self.written.insert(rel.clone()) {
            return Err(self.ambiguous(format!("two entries go to `{}`", rel.display())));
        }
        let path = self.dest.join(&rel);
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArchiveError::Write { path, source }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        if fs::hard_link(source, &path).is_err() {
            fs::copy(source, &path).map_err(write_err(&path))?;
        }
        self.budget.bytes += size;
        self.report.bytes += size;
        self.report.files += 1;
        Ok(())
    }

    /// Queues a symbolic (`hard == false`) or hard link, after checking where it points.
    pub(crate) fn link(
        &mut self,
        raw: &[u8],
        target: &[u8],
        hard: bool,
    ) -> Result<(), ArchiveError> {
        let Some(rel) = self.admit(raw)? else {
            return Ok(());
        };
        let entry = String::from_utf8_lossy(raw).into_owned();
        let target_text = String::from_utf8_lossy(target).into_owned();
        let escapes = || {
            self.unsafe_entry(
                raw,
                &format!("it links to `{target_text}`, outside the extraction folder"),
            )
        };
        let target = if hard {
            // Hard-link targets are archive member names, relative to the archive root.
            match entry::check_name(target) {
                EntryName::Path(path) => path,
                _ => return Err(escapes()),
            }
        } else {
            if target.contains(&0) || !entry::link_stays_inside(&rel, Path::new(&target_text)) {
                return Err(escapes());
            }
            PathBuf::from(&target_text)
        };
        self.links.push(PendingLink {
            entry,
            path: rel,
            target,
            hard,
        });
        Ok(())
    }

    /// Creates the deferred links, checks where each really leads, and returns the report.
    fn finish(mut self) -> Result<ExtractReport, ArchiveError> {
        let links = std::mem::take(&mut self.links);
        for link in &links {
            self.make_link(link)?;
        }
        // Names alone cannot judge a chain (`d -> .`, then `e -> d/..`): resolve every symbolic
        // link now that all exist, and refuse any that dangles or leads outside.
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ArchiveError::Write { path, source }
        };
        let root = fs::canonicalize(self.dest).map_err(write_err(self.dest))?;
        for link in links.iter().filter(|l| !l.hard) {
            let inside = fs::canonicalize(self.dest.join(&link.path))
                .is_ok_and(|real| real.starts_with(&root));
            if !inside {
                let target = link.target.display();
                return Err(self.unsafe_entry(
                    link.entry.as_bytes(),
                    &format!("it links to `{target}`, which does not resolve inside the extraction folder"),
                ));
            }
        }
        Ok(self.report)
    }

    fn make_link(&mut self, link: &PendingLink) -> Result<(), ArchiveError> {
        let raw = link.entry.as_bytes();
        let through_link = |rel: &Path| -> bool {
            let mut at = self.dest.to_path_buf();
            let parents = rel.parent().map(|p| p.components().collect::<Vec<_>>());
            parents.unwrap_or_default().into_iter().any(|c| {
                at.push(c);
                fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
            })
        };
        if through_link(&link.path) || (link.hard && through_link(&link.target)) {
            return Err(self.unsafe_entry(raw, "its path goes through another link"));
        }
        let path = self.dest.join(&link.path);
        let write_err = |source| ArchiveError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(write_err)?;
        }
        if link.hard {
            let target = self.dest.join(&link.target);
            let is_file = fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_file());
            if !is_file {
                return Err(self.corrupt(format!(
                    "hard link `{}` points to `{}`, which is not a file extracted earlier",
                    link.entry,
                    link.target.display()
                )));
            }
            fs::hard_link(&target, &path).map_err(write_err)?;
        } else {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&link.target, &path).map_err(write_err)?;
            #[cfg(not(unix))]
            {
                return self.skip("symbolic link (not supported on this platform)");
            }
        }
        self.report.links += 1;
        Ok(())
    }
}

/// A read error inside one entry: the entry's name, then the error as the source.
#[derive(Debug, thiserror::Error)]
#[error("entry `{0}`")]
struct EntryError(String, #[source] io::Error);
