//! The `lifted` command line: parses arguments, calls the library, prints the result.
//!
//! It holds no logic of its own. Exit codes: 0 success, 1 failure, 2 usage error (from
//! clap). A closed standard output (`lifted … | head`) counts as success.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lifted::dataset::{self, DatasetRef};
use lifted::fetch::FetchOptions;
use lifted::prepare::{self, PrepareOptions};
use lifted::progress::Progress;
use lifted::split::{self, SplitRequest};

#[derive(Parser)]
#[command(
    name = "lifted",
    version,
    about = "Deep metric learning via lifted structured feature embedding"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download, verify, extract, catalogue and split a dataset.
    PrepareData(PrepareArgs),
    /// Export a class-disjoint split of a dataset as split.csv and split.json.
    Split(SplitArgs),
}

#[derive(Args)]
struct Common {
    /// Data dir [default: $LIFTED_DATA, else data/].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the result as JSON (and no progress bars).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PrepareArgs {
    /// sop, cars196, cub200, sample, or a PATH: a folder with one sub-folder per class, or a CSV
    /// file with path,label columns.
    dataset: String,
    #[command(flatten)]
    common: Common,
    /// Use this manifest instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// A file you downloaded by hand (repeat for several; CARS-196 needs car_ims.tgz and
    /// cars_annos.mat). It is verified like a download.
    #[arg(long = "archive", value_name = "FILE")]
    archives: Vec<PathBuf>,
    /// Accept files whose size or hash does not match the manifest (recorded as a warning).
    #[arg(long)]
    allow_unverified: bool,
    /// Leave out listed images that are missing or do not decode, instead of failing (recorded
    /// as a warning).
    #[arg(long)]
    skip_bad_images: bool,
    /// Folder name under the data dir for a PATH dataset [default: the folder's or file's name].
    #[arg(long)]
    name: Option<String>,
    /// Retries per mirror after a connection failure.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Seconds to wait for a server before giving up on a connection or read.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    timeout: u64,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct SplitArgs {
    /// A prepared dataset's name, a folder with one sub-folder per class, or a CSV file.
    dataset: String,
    #[command(flatten)]
    common: Common,
    /// Seed of a random class-disjoint split [default: the dataset's canonical split].
    #[arg(long)]
    seed: Option<u64>,
    /// Share of classes used for training in a seeded split [default: 0.5].
    #[arg(long)]
    ratio: Option<f64>,
    /// Cut the training classes into K class-disjoint folds and mark one as `val`.
    #[arg(long, value_name = "K")]
    folds: Option<u32>,
    /// Which fold (0-based) is `val` [default: 0].
    #[arg(long, value_name = "F")]
    fold: Option<u32>,
    /// Folder to write split.csv and split.json into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::PrepareData(args) => prepare_data(args),
        Command::Split(args) => split(args),
    };
    if let Err(err) = result {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        {
            std::process::exit(0);
        }
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn prepare_data(args: PrepareArgs) -> anyhow::Result<()> {
    let progress = if args.quiet || args.common.json {
        Progress::hidden()
    } else {
        Progress::visible()
    };
    let timeout = Duration::from_secs(args.timeout);
    let options = PrepareOptions {
        data_dir: dataset::data_dir(args.common.data_dir.as_deref()),
        manifest: args.manifest,
        archives: args.archives,
        allow_unverified: args.allow_unverified,
        skip_bad_images: args.skip_bad_images,
        name: args.name,
        fetch: FetchOptions {
            retries: args.retries,
            connect_timeout: timeout,
            read_timeout: timeout,
            ..FetchOptions::default()
        },
        progress,
    };
    let summary = prepare::prepare(&DatasetRef::parse(&args.dataset), &options)
        .with_context(|| format!("prepare-data {} failed", args.dataset))?;
    print(&summary, args.common.json)
}

fn split(args: SplitArgs) -> anyhow::Result<()> {
    let request = SplitRequest {
        dataset: DatasetRef::parse(&args.dataset),
        data_dir: dataset::data_dir(args.common.data_dir.as_deref()),
        seed: args.seed,
        ratio: args.ratio,
        folds: args.folds,
        fold: args.fold,
        out: args.out,
    };
    let report =
        split::export_split(&request).with_context(|| format!("split {} failed", args.dataset))?;
    print(&report, args.common.json)
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
