//! The `lifted` command line: parses arguments ([`args`]), calls the library, prints the
//! result as text or JSON.
//!
//! It holds no logic of its own. Exit codes: 0 success, 1 failure, 2 usage error (from
//! clap). A closed standard output (`lifted … | head`) counts as success.

mod args;

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use args::{AugmentArg, Cli, Command, CropArg, EncodingArg, LayoutArg, PartArg, ResizeArg};
use clap::Parser;
use lifted::dataset::{self, DatasetRef};
use lifted::fetch::FetchOptions;
use lifted::loader::stream::{self, StreamOptions};
use lifted::loader::{Augment, Layout, LoaderConfig, Normalize, SamplerConfig, SmallClasses};
use lifted::pack::{self, CropMode, PackOptions, Part, Preprocess, ResizeMode};
use lifted::prepare::{self, PrepareOptions};
use lifted::progress::Progress;
use lifted::shard::{self, Encoding, ShardSet};
use lifted::split::{self, SplitRequest};

fn main() {
    let result = match Cli::parse().command {
        Command::PrepareData(a) => prepare_data(a),
        Command::Split(a) => split(a),
        Command::Pack(a) => pack(a),
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
        Command::Stream(a) => stream_batches(a),
    };
    if let Err(err) = result {
        let broken_pipe = err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        if broken_pipe {
            std::process::exit(0);
        }
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn progress(quiet: bool, json: bool) -> Progress {
    if quiet || json {
        Progress::hidden()
    } else {
        Progress::visible()
    }
}

fn prepare_data(a: args::PrepareArgs) -> anyhow::Result<()> {
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
    let summary = prepare::prepare(&DatasetRef::parse(&a.dataset), &options)
        .with_context(|| format!("prepare-data {} failed", a.dataset))?;
    print(&summary, a.common.json)
}

fn split(a: args::SplitArgs) -> anyhow::Result<()> {
    let request = SplitRequest {
        dataset: DatasetRef::parse(&a.dataset),
        data_dir: dataset::data_dir(a.common.data_dir.as_deref()),
        seed: a.seed,
        ratio: a.ratio,
        folds: a.folds,
        fold: a.fold,
        out: a.out,
    };
    let report =
        split::export_split(&request).with_context(|| format!("split {} failed", a.dataset))?;
    print(&report, a.common.json)
}

fn pack(a: args::PackArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let options = PackOptions {
        data_dir: dataset::data_dir(a.common.data_dir.as_deref()),
        part: match a.split {
            PartArg::Train => Part::Train,
            PartArg::Val => Part::Val,
            PartArg::Test => Part::Test,
            PartArg::All => Part::All,
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
            quality: a.quality,
        },
        threads: a.threads.unwrap_or(cores),
        strict: a.strict,
        shard_bytes: a.shard_size.saturating_mul(1 << 20),
        out: a.out,
        progress: progress(a.common.quiet, a.common.json),
    };
    let summary = pack::pack(&DatasetRef::parse(&a.dataset), &options)
        .with_context(|| format!("pack {} failed", a.dataset))?;
    print(&summary, a.common.json)
}

fn verify(a: args::ShardsArgs) -> anyhow::Result<()> {
    let set = ShardSet::open(&a.shards)
        .with_context(|| format!("{} is not a valid packed folder", a.shards.display()))?;
    let report = shard::verify::verify(&set, progress(a.quiet, a.json))
        .with_context(|| format!("verify {} failed", a.shards.display()))?;
    print(&report, a.json)
}

fn inspect(a: args::InspectArgs) -> anyhow::Result<()> {
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

fn stream_batches(a: args::StreamArgs) -> anyhow::Result<()> {
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

/// Prints a result as text or JSON on standard output.
fn print<T: std::fmt::Display + serde::Serialize>(value: &T, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)?;
    } else {
        write!(out, "{value}")?;
    }
    out.flush()?;
    Ok(())
}
