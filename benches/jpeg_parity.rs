//! How far lifted's JPEG decoding is from Pillow's, pixel by pixel: decodes each JPEG under a
//! folder with `lifted::imageio::decode_rgb8` and compares it with Pillow's decode of the same
//! file (written as PNG by `tools/bench/jpeg_parity.py`). Prints one JSON line: images, the
//! largest difference in levels, the mean absolute difference, the share of channel values
//! that differ, and whether libjpeg was built with its SIMD code (NASM present at build).
//!
//! ```text
//! python3 tools/bench/jpeg_parity.py data/bench/photos2k /tmp/pillow-png 300
//! cargo bench --bench jpeg_parity -- data/bench/photos2k /tmp/pillow-png
//! ```

use std::path::{Path, PathBuf};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (photos, pngs) = match args.as_slice() {
        [photos, pngs] => (PathBuf::from(photos), PathBuf::from(pngs)),
        _ => {
            eprintln!("usage: jpeg_parity PHOTOS_DIR PILLOW_PNG_DIR");
            std::process::exit(2);
        }
    };
    let mut references = Vec::new();
    collect_pngs(&pngs, &mut references);
    references.sort();
    let (mut images, mut worst, mut total, mut differing, mut values) =
        (0usize, 0u8, 0u64, 0u64, 0u64);
    for png in &references {
        let jpeg = photos.join(png.strip_prefix(&pngs).unwrap().with_extension("jpg"));
        let ours = lifted::imageio::decode_rgb8(&std::fs::read(&jpeg).unwrap()).unwrap();
        let pillow = image::open(png).unwrap().to_rgb8();
        assert_eq!(
            (ours.width, ours.height),
            pillow.dimensions(),
            "{}",
            jpeg.display()
        );
        for (a, b) in ours.pixels.iter().zip(pillow.as_raw()) {
            let d = a.abs_diff(*b);
            worst = worst.max(d);
            total += u64::from(d);
            differing += u64::from(d > 0);
        }
        values += ours.pixels.len() as u64;
        images += 1;
    }
    println!(
        "{{\"images\": {images}, \"max_diff\": {worst}, \"mean_abs_diff\": {:.6}, \"share_differing\": {:.6}, \"simd\": {}}}",
        total as f64 / values.max(1) as f64,
        differing as f64 / values.max(1) as f64,
        lifted::imageio::jpeg::simd()
    );
}

fn collect_pngs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_pngs(&path, out);
        } else if path.extension().is_some_and(|e| e == "png") {
            out.push(path);
        }
    }
}
