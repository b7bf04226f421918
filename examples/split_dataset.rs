//! Splits a folder of images (one sub-folder per class) or a CSV file (`path,label`) into
//! class-disjoint train and test parts, holds out one of four folds of the training classes
//! for validation, and writes `split.csv` (`path,class_id,class_name,split`) and `split.json`.
//!
//! Needs no features: `lifted` with `default-features = false` has catalogues and splits.
//!
//! ```text
//! cargo run --example split_dataset --no-default-features -- PHOTOS_DIR_OR_CSV OUT_DIR [SEED]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use lifted::catalog::generic::{read_csv, read_folder};
use lifted::split::{Folds, SplitMethod, SplitSpec, make_split, write_split};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, out, seed) = match args.as_slice() {
        [input, out] => (input, out, Ok(0)),
        [input, out, seed] => (input, out, seed.parse::<u64>()),
        _ => {
            eprintln!("usage: split_dataset PHOTOS_DIR_OR_CSV OUT_DIR [SEED]");
            return ExitCode::from(2);
        }
    };
    let Ok(seed) = seed else {
        eprintln!("SEED must be a whole number");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(input), PathBuf::from(out), seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: PathBuf, out: PathBuf, seed: u64) -> Result<(), Box<dyn std::error::Error>> {
    // A folder is catalogued by its class sub-folders, a CSV by its rows; no image is opened.
    let catalog = if input.is_dir() {
        read_folder(&input)?
    } else {
        read_csv(&input)?
    };
    let spec = SplitSpec {
        method: SplitMethod::Seeded { seed, ratio: 0.5 },
        folds: Some(Folds { count: 4, fold: 0 }),
    };
    let split = make_split(&catalog, None, spec)?;
    let files = write_split(&catalog, &split, &out)?;
    println!(
        "{} images in {} classes, split {}:",
        catalog.images.len(),
        catalog.classes.len(),
        spec.name()
    );
    for (part, counts) in split.counts(&catalog) {
        println!(
            "  {part:5} {} images, {} classes",
            counts.images, counts.classes
        );
    }
    println!("wrote {} (SHA-256 {})", files.csv.display(), files.hash);
    Ok(())
}
