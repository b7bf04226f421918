//! The one place a shard file is memory-mapped.

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::Mmap;

/// Maps a shard file read-only.
///
/// The mapping is sound as long as nobody modifies or truncates the file while it is mapped.
/// `lifted` never does: shards are written under a temporary name, synced, and renamed into
/// place, and are not opened for writing again (packing anew writes a new folder and renames
/// it over the old one, which leaves existing mappings of the old files valid). Another
/// program truncating a shard under a running reader would make reads fault (SIGBUS); that is
/// the contract callers of [`super::ShardSet::open`] accept, as with any mapped dataset.
pub(crate) fn map(path: &Path) -> io::Result<Mmap> {
    let file = File::open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a shard file", crate::fsutil::kind_of(&kind)),
        ));
    }
    // SAFETY: see the function's documentation: the file is opened read-only and shard files
    // are immutable once renamed into place, so the mapped bytes do not change under us.
    let map = unsafe { Mmap::map(&file)? };
    #[cfg(unix)]
    map.advise(memmap2::Advice::Random)?;
    Ok(map)
}

/// Drops the process's view of a mapping's pages, so they no longer count towards its
/// resident set; the kernel keeps them in its page cache, so reading them again costs a minor
/// page fault, not disk I/O. Errors are ignored: this only trims memory accounting.
pub(crate) fn release_pages(map: &Mmap) {
    #[cfg(unix)]
    // SAFETY: `map` is a read-only shared mapping of a file that does not change while mapped
    // (see [`map`]). For such a mapping MADV_DONTNEED only unmaps the pages; the next read of any
    // byte faults the same page back in from the file, so the bytes every outstanding borrow
    // sees stay exactly the same. (It would discard data only in private or written mappings.)
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
    #[cfg(not(unix))]
    let _ = map;
}
