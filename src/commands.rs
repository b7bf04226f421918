//! What each subcommand does with its arguments: turn them into the library's options, call the
//! library, print the result (part of the `lifted` binary, not the library).

use std::time::Duration;

use anyhow::Context;
use lifted::Progress;
use lifted::dataset::{self, DatasetRef};
use lifted::eval::{self, EvalOptions, Metric};
use lifted::fetch::FetchOptions;
use lifted::loader::stream::{self, StreamOptions};
use lifted::loader::{Augment, Layout, LoaderConfig, Normalize, SamplerConfig, SmallClasses};
use lifted::loss::LossKind;
use lifted::pack::{self, CropMode, PackOptions, Preprocess, ResizeMode};
use lifted::plot::{self, grid::GridOptions, tsne::TsneOptions};
use lifted::prepare::{self, PrepareOptions};
use lifted::shard::{self, Encoding, ShardSet};
use lifted::split::{self, SplitRequest};
use lifted::split::{Part, Selection};
use lifted::train::model::{Architecture, BnMode};
use lifted::train::optim::{OptimizerKind, Schedule};
use lifted::train::{self, Protocol, TrainConfig, TrainRequest};
use lifted::weights::WeightsSpec;

use crate::args::{
    self, AugmentArg, CropArg, EncodingArg, LayoutArg, LossArg, MetricArg, ModelArg, OptimizerArg,
    PartArg, ProtocolArg, ResizeArg, ScheduleArg,
};
use crate::print;

pub fn progress(quiet: bool, json: bool) -> Progress {
    if quiet || json {
        Progress::hidden()
    } else {
        Progress::visible()
    }
}

pub fn prepare_data(a: args::PrepareArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(a.timeout);
    let options = PrepareOptions {
        data_dir: dataset::data_dir(a.common.data_dir.as_deref()),
        manifest: a.manifest,
        archives: a.archives,
        allow_unverified: a.allow_unverified,
        skip_bad_images: a.skip_bad_images,
        name: a.name,
        fetch: FetchOptions {
            retries: a.retries,
            connect_timeout: timeout,
            read_timeout: timeout,
            ..FetchOptions::default()
        },
        progress: progress(a.common.quiet, a.common.json),
    };
    let summary = prepare::prepare(&DatasetRef::parse_os(&a.dataset), &options)
        .with_context(|| format!("prepare-data {} failed", a.dataset.to_string_lossy()))?;
    print(&summary, a.common.json)
}

pub fn split(a: args::SplitArgs) -> anyhow::Result<()> {
    let request = SplitRequest {
        dataset: DatasetRef::parse_os(&a.dataset),
        data_dir: dataset::data_dir(a.common.data_dir.as_deref()),
        seed: a.seed,
        ratio: a.ratio,
        folds: a.folds,
        fold: a.fold,
        out: a.out,
    };
    let report = split::export_split(&request)
        .with_context(|| format!("split {} failed", a.dataset.to_string_lossy()))?;
    print(&report, a.common.json)
}

pub fn pack(a: args::PackArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = PackOptions {
        data_dir: dataset::data_dir(a.common.data_dir.as_deref()),
        part: match a.split {
            PartArg::Train => Selection::Only(Part::Train),
            PartArg::Val => Selection::Only(Part::Val),
            PartArg::Test => Selection::Only(Part::Test),
            PartArg::All => Selection::All,
        },
        split_dir: a.split_dir,
        preprocess: Preprocess {
            size: a.size,
            resize: match a.resize {
                ResizeArg::ShortSide => ResizeMode::ShortSide,
                ResizeArg::PadSquare => ResizeMode::PadSquare,
            },
            crop: match a.crop {
                CropArg::None => CropMode::None,
                CropArg::Bbox => CropMode::BBox,
            },
            encoding: match a.encoding {
                EncodingArg::Jpeg => Encoding::Jpeg,
                EncodingArg::Raw => Encoding::Raw,
            },
            quality: Some(a.quality),
        }
        .normalized(),
        threads: a.threads.unwrap_or(cores).min(lifted::limits::MAX_THREADS),
        strict: a.strict,
        shard_bytes: a.shard_size.saturating_mul(1 << 20),
        out: a.out,
        force: a.force,
        progress: progress(a.common.quiet, a.common.json),
    };
    let summary = pack::pack(&DatasetRef::parse(&a.dataset), &options)
        .with_context(|| format!("pack {} failed", a.dataset))?;
    print(&summary, a.common.json)
}

pub fn verify(a: args::ShardsArgs) -> anyhow::Result<()> {
    let set = ShardSet::open(&a.shards)
        .with_context(|| format!("{} is not a valid packed folder", a.shards.display()))?;
    let report = shard::verify::verify(&set, progress(a.quiet, a.json))
        .with_context(|| format!("verify {} failed", a.shards.display()))?;
    print(&report, a.json)
}

pub fn inspect(a: args::InspectArgs) -> anyhow::Result<()> {
    let dir = &a.shards.shards;
    let set = ShardSet::open(dir)
        .with_context(|| format!("{} is not a valid packed folder", dir.display()))?;
    print(&shard::inspect::inspect(&set), a.shards.json)?;
    if let (Some(count), Some(out)) = (a.dump, a.out) {
        let written = shard::inspect::dump(&set, count, &out).context("dump failed")?;
        eprintln!("wrote {} samples to {}", written.len(), out.display());
    }
    Ok(())
}

pub fn stream_batches(a: args::StreamArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = StreamOptions {
        shards: a.shards.clone(),
        sampler: SamplerConfig {
            classes_per_batch: a.classes,
            per_class: a.per_class,
            seed: a.seed,
            small_classes: if a.drop_small_classes {
                SmallClasses::Drop
            } else {
                SmallClasses::WithReplacement
            },
            rank: 0,
            world_size: 1,
        },
        loader: LoaderConfig {
            threads: a.threads.unwrap_or(cores),
            prefetch: a.prefetch,
            normalize: Normalize::IMAGENET,
            layout: match a.layout {
                LayoutArg::F32 => Layout::NchwF32,
                LayoutArg::U8 => Layout::NhwcU8,
            },
            seed: a.seed,
        },
        augment: match a.augment {
            AugmentArg::Paper => Augment::RandomCrop {
                size: a.size,
                flip: !a.no_flip,
            },
            AugmentArg::Rrc => Augment::RandomResizedCrop {
                size: a.size,
                scale: (0.08, 1.0),
                ratio: (0.75, 4.0 / 3.0),
                flip: !a.no_flip,
            },
            AugmentArg::Center => Augment::CenterCrop { size: a.size },
        },
        epochs: a.epochs,
        grid: a.grid,
    };
    let report = stream::stream(&options)
        .with_context(|| format!("stream {} failed", a.shards.display()))?;
    print(&report, a.json)
}

pub fn train(a: args::TrainArgs) -> anyhow::Result<()> {
    lifted::train::allocator::keep_freed_memory();
    // With --resume the run's config.json decides everything; the dataset only names it.
    let name = match (&a.dataset, &a.resume) {
        (Some(dataset), _) => dataset.clone(),
        (None, Some(run)) => run.display().to_string(),
        (None, None) => anyhow::bail!("give a dataset, or --resume RUN_DIR"),
    };
    let data_dir = dataset::data_dir(a.common.data_dir.as_deref());
    let protocol = match a.protocol {
        Some(ProtocolArg::Paper) => Protocol::Paper,
        Some(ProtocolArg::Sample) => Protocol::Sample,
        None => Protocol::for_dataset(&name),
    };
    let arch = match a.model {
        Some(ModelArg::Small) => Architecture::Small,
        Some(ModelArg::Resnet18) => Architecture::ResNet18,
        Some(ModelArg::Resnet50) => Architecture::ResNet50,
        Some(ModelArg::Googlenet) => Architecture::GoogLeNet,
        Some(ModelArg::Bninception) => Architecture::BnInception,
        None => protocol.network(),
    };
    let mut config = TrainConfig::defaults(protocol, &name, data_dir, arch);
    if let Some(weights) = &a.weights {
        config.weights = WeightsSpec::parse(weights);
    }
    config.weights_manifest = a.weights_manifest.clone();
    config.model.embedding = a.embedding.unwrap_or(config.model.embedding);
    config.model.width = a.width.unwrap_or(config.model.width);
    if let Some(frozen) = a.freeze_bn {
        config.model.bn = if frozen {
            BnMode::Frozen
        } else {
            BnMode::Train
        };
    }
    config.loss = match a.loss {
        LossArg::Lifted => LossKind::Lifted,
        LossArg::Contrastive => LossKind::Contrastive,
        LossArg::Triplet => LossKind::Triplet,
        LossArg::GeneralizedLifted => LossKind::GeneralizedLifted,
    };
    config.margin = a.margin;
    config.normalize_embeddings = a.normalize_embeddings;
    config.sampler.classes_per_batch = a.classes;
    config.sampler.per_class = a.per_class;
    config.sampler.seed = a.seed;
    if let Some(kind) = a.optimizer {
        config.optim.kind = match kind {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adamw => OptimizerKind::AdamW,
        };
    }
    config.optim.lr = a.lr.unwrap_or(config.optim.lr);
    config.optim.momentum = a.momentum.unwrap_or(config.optim.momentum);
    config.optim.weight_decay = a.weight_decay.unwrap_or(config.optim.weight_decay);
    config.optim.head_lr_mult = a.embedding_lr_mult.unwrap_or(config.optim.head_lr_mult);
    config.epochs = a.epochs.unwrap_or(config.epochs);
    config.eval_every = a.eval_every;
    config.check_every = a.check_every;
    config.threads = a.threads.unwrap_or(config.threads);
    config.device = a.device;
    // Schedules count optimiser steps; the epoch length is known once the data is opened, so
    // step schedules are set in epochs here and converted by the trainer's batches per epoch.
    config.optim.schedule = match a.schedule {
        ScheduleArg::Constant => Schedule::Constant,
        ScheduleArg::Step => Schedule::Step {
            every: a.step_every,
            gamma: 0.1,
        },
        ScheduleArg::Cosine => Schedule::Cosine {
            total: config.epochs,
        },
    };
    let resume_epochs = if a.resume.is_some() { a.epochs } else { None };
    let request = TrainRequest {
        config,
        out: a.out,
        resume: a.resume,
        resume_epochs,
        stop_after: a.stop_after,
        progress: progress(a.common.quiet, a.common.json),
    };
    let summary = train::run(&request).with_context(|| format!("train {name} failed"))?;
    print(&summary, a.common.json)
}

pub fn eval(a: args::EvalArgs) -> anyhow::Result<()> {
    if a.grid.is_some() && a.run.is_none() {
        anyhow::bail!(
            "--grid shows test images, so it needs --run RUN_DIR (embeddings from a file carry \
             no images); --tsne works with either"
        );
    }
    let (embeddings, labels, dataset, test_set) = match (&a.run, &a.embeddings, &a.labels) {
        (Some(run), _, _) => {
            let mut config: TrainConfig = serde_json::from_slice(
                &std::fs::read(run.join("config.json"))
                    .with_context(|| format!("{} is not a run folder", run.display()))?,
            )?;
            if let Some(device) = &a.device {
                config.device = device.clone();
            }
            let data = train::data::data_for(&config, Progress::hidden())?;
            let (x, y) = train::trainer::embed_run(&config, data.test.clone(), run)?;
            (x, y, config.dataset, Some(data.test))
        }
        (None, Some(x), Some(y)) => (
            eval::io::read_embeddings(x)?.to_device(&train::trainer::device(
                a.device.as_deref().unwrap_or("cpu"),
            )?)?,
            eval::io::read_labels(y)?,
            String::new(),
            None,
        ),
        _ => anyhow::bail!("give --run RUN_DIR, or --embeddings X.npy with --labels Y"),
    };
    if let Some(path) = &a.export {
        eval::io::write_embeddings(&embeddings, path)?;
    }
    let mut options = EvalOptions::for_dataset(&dataset);
    if let Some(ks) = a.recall_at {
        let mut seen = std::collections::BTreeSet::new();
        options.recall_at = ks.into_iter().filter(|k| seen.insert(*k)).collect();
    }
    options.metric = match a.metric {
        MetricArg::Euclidean => Metric::Euclidean,
        MetricArg::Cosine => Metric::Cosine,
    };
    options.kmeans_runs = a.kmeans_runs;
    let (report, neighbours) = eval::evaluate_with_neighbours(&embeddings, &labels, &options)
        .context("evaluation failed")?;
    if let (Some(path), Some(set)) = (&a.grid, &test_set) {
        let grid = GridOptions {
            queries: a.grid_queries as usize,
            neighbours: a.grid_k as usize,
            ..GridOptions::default()
        };
        // The evaluation's neighbours serve unless the grid asks for more.
        let neighbours = if neighbours.k >= grid.neighbours {
            neighbours
        } else {
            eval::knn(&embeddings, grid.neighbours, options.metric, options.block)?
        };
        plot::grid::write_grid(set, &neighbours, &labels, &grid, path)
            .with_context(|| format!("cannot draw the retrieval grid {}", path.display()))?;
    }
    if let Some(path) = &a.tsne {
        let tsne = TsneOptions {
            points: a.tsne_points as usize,
            perplexity: a.tsne_perplexity,
            seed: a.tsne_seed,
            metric: options.metric,
            ..TsneOptions::default()
        };
        plot::tsne::tsne_map(&embeddings, &labels, &tsne)
            .and_then(|map| plot::tsne::write_png(&map, tsne.size, path))
            .with_context(|| format!("cannot draw the t-SNE map {}", path.display()))?;
    }
    print(&report, a.json)
}

pub fn plot(a: args::PlotArgs) -> anyhow::Result<()> {
    let curves = plot::curves::read_run(&a.run)?;
    let out = a.out.unwrap_or_else(|| a.run.join("curves.svg"));
    let title = a.run.file_name().map_or_else(
        || a.run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    plot::curves::write_svg(&curves, &title, (1000, 1100), &out)
        .with_context(|| format!("cannot draw {}", out.display()))?;
    if curves.unreadable_lines > 0 {
        eprintln!(
            "note: {} line(s) of {} were not log records and were skipped",
            curves.unreadable_lines,
            a.run.join("log.jsonl").display()
        );
    }
    println!("wrote {}", out.display());
    Ok(())
}

pub fn weights(command: args::WeightsCommand) -> anyhow::Result<()> {
    match command {
        args::WeightsCommand::List(a) => {
            let data_dir = dataset::data_dir(a.common.data_dir.as_deref());
            let entries = lifted::weights::entries(a.manifest.as_deref())?;
            let listed: Vec<WeightsListed> = entries
                .into_iter()
                .map(|entry| WeightsListed {
                    cached: lifted::weights::cache_dir(&data_dir)
                        .join(&entry.file.name)
                        .is_file(),
                    entry,
                })
                .collect();
            crate::print(&WeightsList(listed), a.common.json)
        }
        args::WeightsCommand::Fetch(a) => {
            let data_dir = dataset::data_dir(a.common.data_dir.as_deref());
            let entry = lifted::weights::entry(&a.name, a.manifest.as_deref())?;
            let options = FetchOptions {
                retries: a.retries,
                ..FetchOptions::default()
            };
            let progress = progress(a.common.quiet, a.common.json);
            let fetched = lifted::weights::fetch(&entry, &data_dir, &options, progress)?;
            crate::print(&FetchedWeights(fetched), a.common.json)
        }
    }
}

/// What `lifted weights fetch` got.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct FetchedWeights(lifted::fetch::Fetched);

impl std::fmt::Display for FetchedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.0;
        writeln!(f, "{}: {}", w.name, w.path.display())?;
        writeln!(
            f,
            "  {} (SHA-256 {}), from {}",
            w.verification, w.digests.sha256, w.origin
        )
    }
}

/// One row of `lifted weights list`.
#[derive(serde::Serialize)]
struct WeightsListed {
    #[serde(flatten)]
    entry: lifted::weights::WeightsEntry,
    cached: bool,
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct WeightsList(Vec<WeightsListed>);

impl std::fmt::Display for WeightsList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for w in &self.0 {
            writeln!(
                f,
                "{:<12} {:<12} {}{}",
                w.entry.name,
                format!("{:?}", w.entry.arch).to_lowercase(),
                w.entry.title,
                if w.cached { " (cached)" } else { "" }
            )?;
            let size = match w.entry.published_size_mib {
                Some(mib) => format!("{mib} MiB"),
                None => "size not published".to_string(),
            };
            writeln!(
                f,
                "{:<25} {}, {size}; licence: {}",
                "", w.entry.file.name, w.entry.licence
            )?;
        }
        Ok(())
    }
}
