//! Keeping freed memory for reuse. A training step allocates and frees activations of tens of
//! megabytes; glibc's malloc serves blocks that large with fresh `mmap`s and returns them at
//! `free`, so every step faults in and zeroes its working set again (a third of the CPU time of
//! a GoogLeNet step, by `perf`). PyTorch avoids this with its caching allocators.

/// Tells glibc's malloc to serve every block from its heap and to keep what is freed, so that a
/// step reuses the pages of the one before. Process-wide: the `lifted` binary calls it at
/// start; a program that uses the trainer as a library may call it once, before its threads
/// start. Peak memory stays that of the largest step; it is not returned to the system until
/// the process exits. Elsewhere than glibc, it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets malloc's tuning parameters, which glibc reads under its arena
    // locks; the values are in the documented ranges (0 maps at most, trim threshold and top
    // pad up to `INT_MAX` bytes).
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
