//! Feeds arbitrary bytes to the MAT-5 reader: an error or a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lifted::catalog::mat5::parse(data);
});
