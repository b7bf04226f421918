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
    // SAFETY: see the function's documentation: the file is opened read-only and shard files
    // are immutable once renamed into place, so the mapped bytes do not change under us.
    let map = unsafe { Mmap::map(&file)? };
    #[cfg(unix)]
    map.advise(memmap2::Advice::Random)?;
    Ok(map)
}
