//! From a folder of images to class-balanced P×K batches in a plain training loop, with no
//! deep-learning framework: prepares the folder (catalogue, image check, a seeded class-disjoint
//! split), packs its training part into memory-mapped shards, and streams two epochs of
//! decoded, augmented, normalised batches as `&[f32]` (NCHW).
//!
//! Needs the `shards` feature (no candle):
//!
//! ```text
//! cargo run --release --example stream_batches --no-default-features --features shards -- \
//!     PHOTOS_DIR DATA_DIR
//! ```
//!
//! `PHOTOS_DIR` holds one sub-folder per class; `DATA_DIR` receives the prepared dataset and
//! its shards (as `lifted prepare-data` and `lifted pack` would write them).

use std::path::PathBuf;
use std::sync::Arc;

use lifted::dataset::DatasetRef;
use lifted::loader::{Augment, Loader, LoaderConfig, Pixels, PkSampler, SamplerConfig};
use lifted::pack::{PackOptions, Preprocess};
use lifted::prepare::{PrepareOptions, prepare};
use lifted::shard::ShardSet;
use lifted::split::{Part, Selection};
use lifted::{Progress, pack};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [photos, data_dir] = args.as_slice() else {
        eprintln!("usage: stream_batches PHOTOS_DIR DATA_DIR");
        std::process::exit(2);
    };
    let dataset = DatasetRef::Path(photos.clone());

    // 1. Catalogue, check and split the folder (no downloads: it is a local folder).
    let prepared = prepare(
        &dataset,
        &PrepareOptions {
            data_dir: data_dir.clone(),
            manifest: None,
            archives: vec![],
            allow_unverified: false,
            skip_bad_images: false,
            name: None,
            fetch: Default::default(),
            progress: Progress::hidden(),
        },
    )?;
    println!(
        "prepared {} images in {} classes",
        prepared.images, prepared.classes
    );

    // 2. Pack the training part: short side 144, JPEG quality 90.
    let packed = pack::pack(
        &DatasetRef::Named(prepared.info.dataset.clone()),
        &PackOptions {
            data_dir: data_dir.clone(),
            part: Selection::Only(Part::Train),
            split_dir: None,
            preprocess: Preprocess::jpeg(144, 90),
            threads: 2,
            strict: true,
            shard_bytes: 1 << 30,
            out: None,
            force: false,
            progress: Progress::hidden(),
        },
    )?;
    println!(
        "packed {} samples into {}",
        packed.samples,
        packed.out.display()
    );

    // 3. Stream P×K batches: P classes, K images each, random 128-pixel crops.
    let set = Arc::new(ShardSet::open(&packed.out)?);
    let classes = set
        .classes()
        .iter()
        .map(|class| (class.class_id, class.indices().collect()))
        .collect();
    let sampler = PkSampler::new(
        classes,
        SamplerConfig {
            classes_per_batch: 4,
            per_class: 2,
            ..Default::default()
        },
    )?;
    let loader = Loader::new(set, LoaderConfig::default())?;
    let augment = Augment::RandomCrop {
        size: 128,
        flip: true,
    };
    // A stand-in for a training step: the mean of each image's normalised pixels.
    for epoch in 0..2 {
        for (step, batch) in loader.epoch(&sampler, epoch, 0, augment).enumerate() {
            let batch = batch?;
            let Pixels::F32(pixels) = batch.pixels() else {
                unreachable!("LoaderConfig::default() gives NCHW floats");
            };
            let [n, _, _, _] = batch.shape;
            let per_image = pixels.len() / n;
            let means: Vec<f32> = pixels
                .chunks_exact(per_image)
                .map(|image| image.iter().sum::<f32>() / per_image as f32)
                .collect();
            println!(
                "epoch {epoch} step {step}: shape {:?}, labels {:?}, first mean {:+.3}",
                batch.shape, batch.labels, means[0]
            );
        }
    }
    Ok(())
}
