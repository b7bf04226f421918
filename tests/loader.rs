//! The loader: sampler properties, determinism across thread counts, error propagation, prompt
//! shutdown, and the centre crop against an independent reference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lifted::loader::{
    Augment, Layout, Loader, LoaderConfig, LoaderError, Normalize, Pixels, PkSampler, SampleError,
    SamplerConfig, SamplerError, SmallClasses, sampler,
};
use lifted::shard::{
    ClassSummary, Encoding, IndexShard, Preprocess, ShardIndex, ShardSet, ShardWriter, SplitRef,
};
use proptest::prelude::*;

use crate::support::images::{fixture, fixtures};

/// Classes with the given sizes; sample indices are consecutive, class ids 10, 20, ...
fn classes(sizes: &[usize]) -> Vec<(u32, Vec<usize>)> {
    let mut next = 0;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let ids = (next..next + n).collect();
            next += n;
            ((i as u32 + 1) * 10, ids)
        })
        .collect()
}

fn class_of(classes: &[(u32, Vec<usize>)]) -> BTreeMap<usize, u32> {
    classes
        .iter()
        .flat_map(|(c, ids)| ids.iter().map(move |&i| (i, *c)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batches_have_p_distinct_classes_of_k_and_every_class_is_drawn_each_epoch(
        sizes in proptest::collection::vec(1usize..12, 4..40),
        p in 1usize..5,
        k in 1usize..5,
        seed in any::<u64>(),
        epoch in 0u64..1000,
    ) {
        let classes = classes(&sizes);
        let owner = class_of(&classes);
        let config = SamplerConfig { classes_per_batch: p, per_class: k, seed, ..Default::default() };
        let sampler = match PkSampler::new(classes.clone(), config) {
            Ok(s) => s,
            Err(SamplerError::TooFewClasses { .. }) => { prop_assert!(sizes.len() < p); return Ok(()); }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let batches = sampler.epoch(epoch);
        // ⌈C / P⌉ batches: the last is completed from the start of the epoch's class order.
        prop_assert_eq!(batches.len(), sizes.len().div_ceil(p));
        let mut uses: BTreeMap<u32, Vec<Vec<usize>>> = BTreeMap::new();
        for batch in &batches {
            prop_assert_eq!(batch.len(), p * k);
            let mut in_batch = BTreeSet::new();
            for run in batch.chunks(k) {
                let class = owner[&run[0]];
                prop_assert!(run.iter().all(|i| owner[i] == class), "a run mixes classes");
                prop_assert!(in_batch.insert(class), "class {} twice in one batch", class);
                let size = classes.iter().find(|(c, _)| *c == class).unwrap().1.len();
                let distinct: BTreeSet<_> = run.iter().collect();
                // Without replacement while the class has enough images.
                prop_assert_eq!(distinct.len(), k.min(size));
                uses.entry(class).or_default().push(run.to_vec());
            }
        }
        // Every class at least once; P·⌈C/P⌉ − C classes twice, none more.
        prop_assert_eq!(uses.len(), sizes.len());
        let twice = uses.values().filter(|u| u.len() == 2).count();
        prop_assert!(uses.values().all(|u| u.len() <= 2));
        prop_assert_eq!(twice, p * batches.len() - sizes.len());
        // A class drawn twice shows other images the second time when it has 2K of them.
        for (class, runs) in &uses {
            let size = classes.iter().find(|(c, _)| c == class).unwrap().1.len();
            if runs.len() == 2 && size >= 2 * k {
                let first: BTreeSet<_> = runs[0].iter().collect();
                prop_assert!(runs[1].iter().all(|i| !first.contains(i)), "class {} repeats images", class);
            }
        }
        // Deterministic, and resumable at any step.
        prop_assert_eq!(&sampler.epoch(epoch), &batches);
        for (step, batch) in batches.iter().enumerate() {
            let again = sampler.batch(epoch, step);
            prop_assert_eq!(again.as_ref(), Some(batch));
        }
        prop_assert!(sampler.batch(epoch, batches.len()).is_none());
    }

    #[test]
    fn ranks_split_every_global_batch_and_together_see_what_one_process_sees(
        n_classes in 8usize..60,
        world in 1usize..5,
        seed in any::<u64>(),
    ) {
        let p = 2 * world;
        let classes = classes(&vec![4; n_classes]);
        let single = SamplerConfig { classes_per_batch: p, per_class: 2, seed, ..Default::default() };
        let one = match PkSampler::new(classes.clone(), single) {
            Ok(s) => s,
            Err(SamplerError::TooFewClasses { .. }) => { prop_assert!(n_classes < p); return Ok(()); }
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let mut steps = Vec::new();
        let mut shares: Vec<Vec<Vec<usize>>> = Vec::new();
        for rank in 0..world {
            let config = SamplerConfig { rank, world_size: world, ..single };
            let sampler = PkSampler::new(classes.clone(), config).unwrap();
            prop_assert_eq!(sampler.batch_size(), p / world * 2);
            prop_assert_eq!(sampler.rank_offset(), rank * p / world * 2);
            let epoch = sampler.epoch(3);
            steps.push(epoch.len());
            shares.push(epoch);
        }
        prop_assert!(steps.iter().all(|&c| c == one.batches_per_epoch()), "{:?}", steps);
        for step in 0..one.batches_per_epoch() {
            let joined: Vec<usize> = shares.iter().flat_map(|s| s[step].clone()).collect();
            prop_assert_eq!(Some(joined), one.global_batch_samples(3, step));
            prop_assert_eq!(one.batch(3, step), one.global_batch_samples(3, step));
        }
    }
}

#[test]
fn a_batch_that_ranks_cannot_split_evenly_is_refused() {
    let err = PkSampler::new(
        classes(&[4; 20]),
        SamplerConfig {
            classes_per_batch: 6,
            per_class: 2,
            world_size: 4,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, SamplerError::Indivisible { .. }), "{err:?}");
    assert!(err.to_string().contains("4 divides"), "{err}");
}

#[test]
fn too_few_classes_after_dropping_small_ones_says_why_without_ranks() {
    let err = PkSampler::new(
        classes(&[1, 1, 8, 8]),
        SamplerConfig {
            classes_per_batch: 3,
            per_class: 4,
            small_classes: SmallClasses::Drop,
            ..Default::default()
        },
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("2 classes can be sampled (2 more have fewer than 4 images")
            && !text.contains("rank"),
        "{text}"
    );
}

#[test]
fn small_classes_are_filled_with_replacement_or_dropped() {
    let classes = classes(&[2, 6, 6, 1]);
    let base = SamplerConfig {
        classes_per_batch: 2,
        per_class: 4,
        seed: 9,
        ..Default::default()
    };
    let sampler = PkSampler::new(classes.clone(), base).unwrap();
    assert_eq!(sampler.eligible_classes(), 4);
    for epoch in 0..20 {
        for batch in sampler.epoch(epoch) {
            for run in batch.chunks(4) {
                if run.contains(&0) || run.contains(&1) {
                    // Class 10 has 2 images: both appear, and 2 more draws repeat them.
                    assert!(run.contains(&0) && run.contains(&1), "{run:?}");
                }
            }
        }
    }
    let dropping = PkSampler::new(
        classes,
        SamplerConfig {
            small_classes: SmallClasses::Drop,
            ..base
        },
    )
    .unwrap();
    assert_eq!(dropping.eligible_classes(), 2);
    assert!(
        dropping
            .epoch(0)
            .iter()
            .flatten()
            .all(|&i| (2..14).contains(&i))
    );
}

#[test]
fn epochs_differ_and_the_sequential_order_covers_everything_once() {
    let sampler = PkSampler::new(
        classes(&[5; 20]),
        SamplerConfig {
            classes_per_batch: 4,
            per_class: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(sampler.epoch(0), sampler.epoch(1));
    let ranges: Vec<_> = sampler::sequential(10, 4).collect();
    assert_eq!(ranges, vec![0..4, 4..8, 8..10]);
    assert!(
        PkSampler::new(
            classes(&[5; 3]),
            SamplerConfig {
                rank: 2,
                world_size: 2,
                ..Default::default()
            }
        )
        .is_err()
    );
}

/// A raw shard set of small generated images: `per_class` images in each of `classes` classes,
/// each `w`×`h`. Returns the folder.
fn raw_set(dir: &Path, n_classes: u32, per_class: u32, w: u16, h: u16) -> Arc<ShardSet> {
    let mut writer = ShardWriter::create(dir, "shard-00000.lfs", 0, Encoding::Raw, 12).unwrap();
    let mut sources = Vec::new();
    for class in 1..=n_classes {
        for i in 0..per_class {
            let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
                .map(|j| (j as u32 * 7 + class * 31 + i * 13) as u8)
                .collect();
            writer
                .push(class, w, h, sources.len() as u32, &pixels)
                .unwrap();
            sources.push(format!("c{class}/{i}.png"));
        }
    }
    let written = writer.finish().unwrap();
    index(
        dir,
        Encoding::Raw,
        written,
        n_classes,
        per_class as usize,
        sources,
    );
    Arc::new(ShardSet::open(dir).unwrap())
}

pub(crate) fn index(
    dir: &Path,
    encoding: Encoding,
    written: lifted::shard::Unsealed,
    n_classes: u32,
    per_class: usize,
    sources: Vec<String>,
) {
    let index = ShardIndex {
        format: lifted::shard::INDEX_FORMAT.to_string(),
        dataset: "test".to_string(),
        split: SplitRef {
            name: "t".to_string(),
            hash: "0".repeat(64),
            part: "train".to_string(),
        },
        preprocess: Preprocess {
            encoding,
            quality: (encoding == Encoding::Jpeg).then_some(90),
            ..Preprocess::raw(32)
        },
        made_from: lifted::shard::MadeFrom {
            prepared: "0".repeat(64),
            sources: "0".repeat(64),
        },
        samples: written.samples(),
        classes: (1..=n_classes)
            .map(|id| ClassSummary {
                id,
                name: format!("c{id}"),
                samples: per_class,
            })
            .collect(),
        shards: vec![IndexShard {
            file: written.file(),
            samples: written.samples(),
            bytes: written.bytes(),
        }],
        sources,
        rejected: vec![],
        created_by: "test".to_string(),
    };
    lifted::shard::seal_folder(dir, &index, vec![written]).unwrap();
}

fn sampler_for(set: &ShardSet, p: usize, k: usize, seed: u64) -> PkSampler {
    let classes = set
        .classes()
        .iter()
        .map(|c| (c.class_id, c.indices().collect()))
        .collect();
    PkSampler::new(
        classes,
        SamplerConfig {
            classes_per_batch: p,
            per_class: k,
            seed,
            ..Default::default()
        },
    )
    .unwrap()
}

fn collect(
    loader: &Loader,
    sampler: &PkSampler,
    epoch: u64,
    augment: Augment,
) -> Vec<(Vec<u32>, Vec<usize>, Vec<f32>)> {
    loader
        .epoch(sampler, epoch, 0, augment)
        .map(|b| {
            let b = b.unwrap();
            let Pixels::F32(v) = b.pixels() else {
                panic!("f32 layout")
            };
            (b.labels.clone(), b.indices.clone(), v.clone())
        })
        .collect()
}

#[test]
fn output_is_the_same_whatever_the_thread_count_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let set = raw_set(dir.path(), 12, 5, 20, 14);
    let sampler = sampler_for(&set, 3, 2, 42);
    let augment = Augment::RandomResizedCrop {
        size: 12,
        scale: (0.3, 1.0),
        ratio: (0.75, 1.333),
        flip: true,
    };
    let run = |threads, prefetch| {
        let config = LoaderConfig {
            threads,
            prefetch,
            seed: 42,
            ..Default::default()
        };
        let loader = Loader::new(set.clone(), config).unwrap();
        collect(&loader, &sampler, 7, augment)
    };
    let one = run(1, 1);
    assert_eq!(one.len(), 4);
    assert_eq!(one, run(3, 5));
    assert_eq!(one, run(2, 2));
    // Resuming at step 2 gives the last two batches.
    let loader = Loader::new(
        set.clone(),
        LoaderConfig {
            threads: 2,
            seed: 42,
            ..Default::default()
        },
    )
    .unwrap();
    let resumed: Vec<Vec<usize>> = loader
        .epoch(&sampler, 7, 2, augment)
        .map(|b| b.unwrap().indices.clone())
        .collect();
    assert_eq!(resumed, vec![one[2].1.clone(), one[3].1.clone()]);
    // One stream over epochs 7..9 from step 2 gives the same batches as the epochs one by one.
    let chained: Vec<Vec<f32>> = loader
        .epochs(&sampler, 7..9, 2, augment)
        .map(|b| match b.unwrap().pixels() {
            Pixels::F32(v) => v.clone(),
            Pixels::U8(_) => panic!("f32 layout"),
        })
        .collect();
    let eighth = collect(&loader, &sampler, 8, augment);
    let expected: Vec<Vec<f32>> = one[2..]
        .iter()
        .chain(&eighth)
        .map(|(_, _, pixels)| pixels.clone())
        .collect();
    assert_eq!(chained, expected);
    // Labels match the sampled indices' classes.
    for (labels, indices, _) in &one {
        for (label, index) in labels.iter().zip(indices) {
            assert_eq!(*label, set.sample(*index).unwrap().class_id);
        }
    }
}

#[test]
fn random_crops_are_windows_of_the_source_flipped_about_half_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let set = raw_set(dir.path(), 8, 4, 10, 7);
    let sampler = sampler_for(&set, 4, 4, 3);
    let config = LoaderConfig {
        threads: 2,
        seed: 3,
        layout: Layout::NhwcU8,
        ..Default::default()
    };
    let loader = Loader::new(set.clone(), config).unwrap();
    let (mut flipped, mut total) = (0, 0);
    for epoch in 0..25 {
        for batch in loader.epoch(
            &sampler,
            epoch,
            0,
            Augment::RandomCrop {
                size: 5,
                flip: true,
            },
        ) {
            let batch = batch.unwrap();
            assert_eq!(batch.shape, [16, 5, 5, 3]);
            let Pixels::U8(v) = batch.pixels() else {
                panic!("u8 layout")
            };
            for (slot, &index) in v.chunks(75).zip(&batch.indices) {
                let src = set.sample(index).unwrap().bytes;
                let window = |x0: usize, y0: usize, flip: bool| {
                    (0..5).all(|y| {
                        (0..5).all(|x| {
                            let sx = if flip { x0 + 4 - x } else { x0 + x };
                            slot[(y * 5 + x) * 3..(y * 5 + x) * 3 + 3]
                                == src[((y0 + y) * 10 + sx) * 3..((y0 + y) * 10 + sx) * 3 + 3]
                        })
                    })
                };
                let plain = (0..=5).any(|x| (0..=2).any(|y| window(x, y, false)));
                let mirror = (0..=5).any(|x| (0..=2).any(|y| window(x, y, true)));
                assert!(
                    plain || mirror,
                    "sample {index} is not a window of its source"
                );
                flipped += usize::from(mirror && !plain);
                total += 1;
            }
        }
    }
    let share = flipped as f64 / total as f64;
    assert!((0.4..0.6).contains(&share), "{flipped} of {total} flipped");
}

#[test]
fn centre_crop_matches_the_independent_reference() {
    let text = std::fs::read_to_string(fixtures().join("loader/center_crop.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for case in cases {
        let (w, h, size) = (
            case["width"].as_u64().unwrap() as u16,
            case["height"].as_u64().unwrap() as u16,
            case["size"].as_u64().unwrap() as u32,
        );
        let pixels: Vec<u8> = case["pixels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let expected: Vec<f32> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut writer =
            ShardWriter::create(dir.path(), "shard-00000.lfs", 0, Encoding::Raw, 12).unwrap();
        writer.push(1, w, h, 0, &pixels).unwrap();
        let written = writer.finish().unwrap();
        index(
            dir.path(),
            Encoding::Raw,
            written,
            1,
            1,
            vec!["x.png".to_string()],
        );
        let set = Arc::new(ShardSet::open(dir.path()).unwrap());
        let loader = Loader::new(
            set,
            LoaderConfig {
                threads: 1,
                normalize: Normalize::IMAGENET,
                ..Default::default()
            },
        )
        .unwrap();
        let batch = loader
            .sequential(8, Augment::CenterCrop { size })
            .next()
            .unwrap()
            .unwrap();
        let Pixels::F32(v) = batch.pixels() else {
            panic!("f32 layout")
        };
        assert_eq!(batch.shape, [1, 3, size as usize, size as usize]);
        let worst = v
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-6,
            "{w}x{h} crop {size}: worst difference {worst}"
        );
    }
}

#[test]
fn a_sample_that_fails_to_decode_is_an_error_naming_it_in_its_batch_place() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture("rgb.jpg");
    let broken = fixture("truncated.jpg");
    let mut writer =
        ShardWriter::create(dir.path(), "shard-00000.lfs", 0, Encoding::Jpeg, 12).unwrap();
    let mut sources = Vec::new();
    for i in 0..8u32 {
        let bytes = if i == 5 { &broken } else { &good };
        writer.push(1 + i / 2, 40, 30, i, bytes).unwrap();
        sources.push(format!("img{i}.jpg"));
    }
    let written = writer.finish().unwrap();
    index(dir.path(), Encoding::Jpeg, written, 4, 2, sources);
    let set = Arc::new(ShardSet::open(dir.path()).unwrap());
    let loader = Loader::new(
        set,
        LoaderConfig {
            threads: 2,
            prefetch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let results: Vec<Result<_, LoaderError>> = loader
        .sequential(2, Augment::CenterCrop { size: 24 })
        .collect();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    match &results[2] {
        Err(LoaderError::Sample {
            index: 5,
            path,
            source: SampleError::Decode(decode),
        }) => {
            assert_eq!(path, "img5.jpg");
            assert!(decode.to_string().contains("truncated JPEG"), "{decode}");
        }
        other => panic!("expected the truncated sample's error, got {other:?}"),
    }
}

#[test]
fn dropping_the_loader_mid_epoch_stops_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let set = raw_set(dir.path(), 64, 40, 96, 96);
    let sampler = sampler_for(&set, 16, 40, 1);
    let loader = Loader::new(
        set,
        LoaderConfig {
            threads: 2,
            prefetch: 4,
            ..Default::default()
        },
    )
    .unwrap();
    // Batches of 640 resized crops: a full epoch takes far longer than the bound below.
    let augment = Augment::RandomResizedCrop {
        size: 200,
        scale: (0.08, 1.0),
        ratio: (0.75, 1.333),
        flip: true,
    };
    {
        let mut batches = loader.epoch(&sampler, 0, 0, augment);
        batches.next().unwrap().unwrap();
    }
    let start = Instant::now();
    drop(loader);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        start.elapsed()
    );
}
