//! Per-stage cost of packing one photo on one thread: decode (libjpeg-turbo), resize
//! (fast_image_resize, bilinear with antialiasing) and encode (libjpeg-turbo, q90 4:2:0).
//! The same stages in Pillow: `tools/bench/pil_stages.py`.
//!
//!     cargo bench --bench pack_stages -- data/bench/photos2k 400

use std::time::Instant;

use lifted::imageio::jpeg;
use lifted::pack::ResizeMode;
use lifted::pack::preprocess::target_size;

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = args.get(1).map_or("data/bench/photos2k", String::as_str);
    let count: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(400);
    let mut files: Vec<_> = walk(std::path::Path::new(dir));
    files.sort();
    let photos: Vec<Vec<u8>> = files
        .iter()
        .take(count)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        !photos.is_empty(),
        "no .jpg files under {dir} (make them with tools/bench/make_photos.py)"
    );
    let (mut decode, mut resize, mut encode, mut bytes) = (0.0, 0.0, 0.0, 0usize);
    let mut resizer = fast_image_resize::Resizer::new();
    let mut pixels = Vec::new();
    for photo in &photos {
        let t = Instant::now();
        let decoded = jpeg::decode_into(photo, &mut pixels).unwrap();
        let (w, h) = (decoded.width, decoded.height);
        decode += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (tw, th) = target_size(w as u32, h as u32, 256, ResizeMode::ShortSide).unwrap();
        let src = fast_image_resize::images::ImageRef::new(
            w as u32,
            h as u32,
            &pixels[..w * h * 3],
            fast_image_resize::PixelType::U8x3,
        )
        .unwrap();
        let mut dst =
            fast_image_resize::images::Image::new(tw, th, fast_image_resize::PixelType::U8x3);
        let options = fast_image_resize::ResizeOptions::new().resize_alg(
            fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Bilinear),
        );
        resizer.resize(&src, &mut dst, &options).unwrap();
        resize += t.elapsed().as_secs_f64();
        let t = Instant::now();
        bytes += jpeg::encode(dst.buffer(), tw as usize, th as usize, 90)
            .unwrap()
            .len();
        encode += t.elapsed().as_secs_f64();
    }
    let n = photos.len() as f64;
    println!(
        "lifted stages over {} photos (ms/image, 1 thread): decode {:.3}  resize {:.3}  encode {:.3}  total {:.3}  ({:.0} bytes/image)",
        photos.len(),
        decode / n * 1e3,
        resize / n * 1e3,
        encode / n * 1e3,
        (decode + resize + encode) / n * 1e3,
        bytes as f64 / n
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "jpg") {
            out.push(path);
        }
    }
    out
}
