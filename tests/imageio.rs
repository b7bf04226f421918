//! Decoding against an independent reference: Pillow's pixels for the JPEG fixtures (RGB,
//! grayscale, CMYK, progressive) and numpy's for the PNGs (RGBA over white, 16-bit scaled),
//! written by `tools/fixtures/make_images.py` into `tests/fixtures/images/reference.json`.

use lifted::imageio::{DecodeError, decode_rgb8, jpeg};

use crate::support::images::{fixture, fixtures};

fn base64(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut bits = 0u32;
    let mut count = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        bits = (bits << 6) | alphabet.iter().position(|&a| a == c).unwrap() as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[test]
fn decoded_pixels_match_the_reference() {
    let text = std::fs::read_to_string(fixtures().join("images/reference.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let cases: Vec<serde_json::Value> = cases
        .into_iter()
        .filter(|c| !c["name"].as_str().unwrap().contains('@'))
        .collect();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expected = base64(case["rgb"].as_str().unwrap());
        let image = decode_rgb8(&fixture(name)).unwrap();
        assert_eq!(
            (image.width, image.height),
            (
                case["width"].as_u64().unwrap() as u32,
                case["height"].as_u64().unwrap() as u32
            ),
            "{name}"
        );
        assert_eq!(image.pixels.len(), expected.len(), "{name}");
        let worst = image
            .pixels
            .iter()
            .zip(&expected)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        // Both sides use libjpeg-turbo for JPEG, but versions may round the IDCT and
        // upsampling differently: allow 2 levels. PNG must match exactly.
        let tolerance = if name.ends_with(".png") { 0 } else { 2 };
        assert!(worst <= tolerance, "{name}: worst difference {worst}");
    }
}

#[test]
fn damaged_files_are_errors_that_say_so() {
    let err = decode_rgb8(&fixture("truncated.jpg")).unwrap_err();
    assert!(matches!(&err, DecodeError::Truncated { .. }), "{err:?}");
    let png = fixture("rgb.png");
    assert!(matches!(
        decode_rgb8(&png[..png.len() / 2]),
        Err(DecodeError::Image { .. })
    ));
    assert!(matches!(
        decode_rgb8(&fixture("not_an_image.jpg")),
        Err(DecodeError::UnknownFormat { .. })
    ));
}

#[test]
fn harmless_extraneous_bytes_are_accepted() {
    // Garbage between the entropy-coded data and the EOI marker: libjpeg warns "N extraneous
    // bytes before marker 0xd9" and every pixel is intact.
    let clean = fixture("rgb.jpg");
    let mut padded = clean[..clean.len() - 2].to_vec();
    padded.extend_from_slice(&[0x12, 0x34, 0x56, 0xff, 0xd9]);
    assert_eq!(decode_rgb8(&padded).unwrap(), decode_rgb8(&clean).unwrap());
}

#[test]
fn encoded_jpeg_round_trips_closely() {
    // A smooth picture, where JPEG at quality 95 loses little.
    let (w, h) = (64usize, 48usize);
    let pixels: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8]
        })
        .collect();
    let bytes = jpeg::encode(&pixels, w, h, 95).unwrap();
    assert_eq!(jpeg::dimensions(&bytes).unwrap(), (w, h));
    let back = decode_rgb8(&bytes).unwrap();
    let mean_error: f64 = pixels
        .iter()
        .zip(&back.pixels)
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / pixels.len() as f64;
    assert!(mean_error < 1.5, "mean error {mean_error}");
}

/// Issue 12: every file of the crafted corpus (`tools/golden/jpeg_corpus.py`) gets Pillow's
/// verdict, and every accepted one Pillow's pixels within one level.
#[test]
fn damaged_jpegs_are_judged_as_pillow_judges_them() {
    let dir = fixtures().join("jpeg-corpus");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() > 100, "the corpus is there");
    let mut warned = 0;
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let ours = lifted::imageio::decode_checked(&bytes);
        // The image check's cheaper verdict (1/8-scale output) is the full decode's.
        let checked = lifted::imageio::check_decodes(&bytes);
        match (&ours, &checked) {
            (Ok((_, full)), Ok(cheap)) => assert_eq!(full, cheap, "{file}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{file}: decode says {ours:?}, check says {checked:?}"),
        }
        match (case["verdict"].as_str().unwrap(), ours) {
            ("accept", Ok((image, warning))) => {
                let png = dir.join(file.replace(".jpg", ".png"));
                let reference = image::open(&png).unwrap().to_rgb8();
                assert_eq!(
                    (image.width, image.height),
                    reference.dimensions(),
                    "{file}"
                );
                let off: Vec<u8> = image
                    .pixels
                    .iter()
                    .zip(reference.as_raw())
                    .map(|(a, b)| a.abs_diff(*b))
                    .filter(|&d| d > 1)
                    .collect();
                // Pillow's libjpeg-turbo runs its SIMD code, which saturates out-of-range values
                // in the inverse DCT; the plain C build (no NASM) wraps them. On files whose
                // entropy data holds a stray marker, that moves the pixels of the damaged block
                // (at most one 8×8 block here); everywhere else the pixels are Pillow's.
                let damaged_block = !lifted::imageio::jpeg::simd()
                    && case["kind"]
                        .as_str()
                        .unwrap()
                        .ends_with("inside the entropy data")
                    && off.len() <= 8 * 8 * 3;
                assert!(
                    off.is_empty() || damaged_block,
                    "{file}: {} values more than 1 level from Pillow (up to {})",
                    off.len(),
                    off.iter().max().unwrap_or(&0)
                );
                warned += usize::from(warning.is_some());
            }
            ("reject", Err(_)) => {}
            (verdict, ours) => panic!(
                "{file} ({}): Pillow says {verdict} ({}), lifted says {:?}",
                case["kind"],
                case["message"],
                ours.map(|(_, w)| w)
            ),
        }
    }
    // Extraneous bytes, markers and bad codes inside the data are recorded as warnings.
    assert!(warned >= 40, "only {warned} warnings");
}
