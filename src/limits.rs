//! Limits on sizes that come from flags, files and archives, stated once. Every stage checks
//! a number it did not compute itself against these before allocating for it.

/// Most worker threads any stage starts.
pub const MAX_THREADS: usize = 512;

/// Largest image file read, in bytes (a 16,384-pixel-square PNG is about this size at most).
pub const MAX_IMAGE_FILE_BYTES: u64 = 1 << 30;
