//! Small file-system helpers: writing things so that a crash never leaves a half-written file
//! or folder under its final name, and reading untrusted files without hanging.
//!
//! The pattern everywhere is: write to a sibling temporary path, `fsync` it, rename it into
//! place, then `fsync` the parent folder so the rename itself survives a power cut. Folders are
//! staged as `.<name>.tmp-*` next to their target and swapped in by [`replace_dir`], which
//! parks the previous folder as `.<name>.old-*` until the new one is in place; a run killed in
//! between leaves such folders, which [`remove_leftovers`] clears.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Flushes a folder's entry list to disk (a no-op where folders cannot be opened).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Renames `from` to `to` and makes the rename durable.
pub fn rename_durable(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// Writes `bytes` to `path` atomically: a sibling temporary file, `fsync`, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(parent)?;
    temp.write_all(bytes)?;
    // Temporary files are private (0600); the files written here are ordinary data.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(parent)
}

/// `path` with `suffix` appended to its file name (`a/b.zip` + `.part` = `a/b.zip.part`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Flushes every file written under `dir` to disk, so a folder can be marked complete and
/// survive a power cut. On Linux this is one `syncfs` of the file system holding `dir`;
/// elsewhere each file under `dir` is synced.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let handle = File::open(dir)?;
        // SAFETY: `syncfs` only reads the file descriptor, which `handle` keeps open for the
        // duration of the call; it touches no memory of this process.
        let status = unsafe { libc::syncfs(handle.as_raw_fd()) };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                sync_tree(&entry.path())?;
            } else if kind.is_file() {
                File::open(entry.path())?.sync_all()?;
            }
        }
        sync_dir(dir)
    }
}

/// An exclusive lock on `path` (created if needed), held until the returned file is dropped.
/// The operating system releases it when the process ends, so a killed run leaves no stale
/// lock. Returns `Ok(None)` if another process holds it.
pub fn try_lock(path: &Path) -> io::Result<Option<File>> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// A fresh temporary folder next to `target`, named `.<name>.tmp-*`, for staging what will
/// replace `target` (deleted when dropped, unless kept).
pub fn staging_dir(target: &Path) -> io::Result<tempfile::TempDir> {
    let parent = parent_of(target);
    fs::create_dir_all(parent)?;
    tempfile::Builder::new()
        .prefix(&format!(".{}.tmp-", file_name(target)))
        .tempdir_in(parent)
}

/// Replaces the folder `target` (if any) by the folder `staged`, which must be on the same file
/// system: the old folder is renamed aside, the new one renamed into place (durably), and the
/// old one removed. A crash leaves either folder under `target`, never a mix.
pub fn replace_dir(staged: &Path, target: &Path) -> io::Result<()> {
    match fs::symlink_metadata(target) {
        Ok(_) => {
            let old =
                target.with_file_name(format!(".{}.old-{}", file_name(target), std::process::id()));
            fs::rename(target, &old)?;
            rename_durable(staged, target)?;
            fs::remove_dir_all(&old)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => rename_durable(staged, target),
        Err(e) => Err(e),
    }
}

/// Removes the `.<name>.tmp-*` and `.<name>.old-*` folders that interrupted runs left next to
/// `target`; a folder is removed only if `is_ours` says it holds what lifted stages there.
pub fn remove_leftovers(target: &Path, is_ours: impl Fn(&Path) -> bool) -> io::Result<()> {
    let parent = parent_of(target);
    let name = file_name(target);
    let prefixes = [format!(".{name}.tmp-"), format!(".{name}.old-")];
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let Some(entry_name) = entry_name.to_str() else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && prefixes.iter().any(|p| entry_name.starts_with(p)) && is_ours(&entry.path()) {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// Why [`read_regular`] refused a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The path is a folder, a FIFO, a socket or a device, not a regular file.
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// The file is larger than the limit.
    #[error("it has {size} bytes, more than the {limit} bytes lifted reads from one file")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl ReadError {
    /// The error as an `io::Error`, for callers that report I/O errors with a path.
    pub fn into_io(self) -> io::Error {
        match self {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

/// Reads a whole file that must be a regular file of at most `limit` bytes. The file is opened
/// without blocking, so a FIFO or device named like an image is refused instead of waiting
/// forever for a writer.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let mut file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    io::Read::read_to_end(&mut io::Read::take(&mut file, limit + 1), &mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// A file type in words (for messages).
pub fn kind_of(kind: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// `text` without a leading UTF-8 byte-order mark (which Windows tools write).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// `bytes` without a leading UTF-8 byte-order mark.
pub fn strip_bom_bytes(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// Serialises a path for display in a report: as text, with any bytes that are not UTF-8
/// replaced (`serialize_with = "crate::fsutil::lossy_path"`), so a report never fails on an
/// unusual name. Paths that are read back use exact text instead.
pub fn lossy_path<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}
