//! Feeds arbitrary bytes to the MAT-5 reader, through the CARS-196 annotation reader that uses
//! it (the reader itself is private): an error or a value, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.mat");
    let _ = lifted::catalog::cars196::parse_rows(data, path, "relative_im_path", true);
    let _ = lifted::catalog::cars196::parse_rows(data, path, "fname", false);
});
