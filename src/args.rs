//! The command line's arguments, as clap parses them (part of the `lifted` binary, not the
//! library). `main.rs` turns them into the library's option structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Largest --size of `pack` and `stream`, in pixels.
const MAX_SIZE: i64 = lifted::pack::MAX_SIZE as i64;

#[derive(Parser)]
#[command(
    name = "lifted",
    version,
    about = "Deep metric learning via lifted structured feature embedding"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Download, verify, extract, catalogue and split a dataset.
    PrepareData(PrepareArgs),
    /// Export a class-disjoint split of a dataset as split.csv and split.json.
    Split(SplitArgs),
    /// Pack one part of a prepared split into memory-mapped shards.
    Pack(PackArgs),
    /// Check every byte of a packed folder.
    Verify(ShardsArgs),
    /// Show what a packed folder holds; --dump writes samples as image files.
    Inspect(InspectArgs),
    /// Stream class-balanced batches from a packed folder and report the loader's speed.
    Stream(StreamArgs),
    /// Train an embedding network with the lifted structured loss (or a baseline) and evaluate it.
    Train(Box<TrainArgs>),
    /// Evaluate a trained run, or embeddings from any framework.
    Eval(EvalArgs),
    /// Draw a run's training curves (loss, learning rate, test metrics) from its log as SVG.
    Plot(PlotArgs),
    /// List or fetch ImageNet-pretrained weights (fetched into <data>/weights/, verified).
    #[command(subcommand)]
    Weights(WeightsCommand),
}

#[derive(Subcommand)]
pub enum WeightsCommand {
    /// The published weight files: name, network, title, whether it is in the cache.
    List(WeightsListArgs),
    /// Download a weight file into <data>/weights/ and verify it (a cached copy is re-hashed).
    Fetch(WeightsFetchArgs),
}

#[derive(Args)]
pub struct WeightsListArgs {
    #[command(flatten)]
    pub common: Common,
    /// Use this weight manifest instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

#[derive(Args)]
pub struct WeightsFetchArgs {
    /// The name (`lifted weights list`).
    pub name: String,
    #[command(flatten)]
    pub common: Common,
    /// Use this weight manifest instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Retries per mirror after a connection failure (0 to 20).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
}

#[derive(Args)]
pub struct Common {
    /// Data dir [default: $LIFTED_DATA, else data/].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the result as JSON (and no progress bars).
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct PrepareArgs {
    /// sop, cars196, cub200, sample, or a PATH: a folder with one sub-folder per class, or a CSV
    /// file with path,label columns. A bare word is always a name; write a folder here as
    /// ./photos.
    pub dataset: std::ffi::OsString,
    #[command(flatten)]
    pub common: Common,
    /// Use this manifest instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// A file you downloaded by hand, or a folder you unpacked it into (repeat for several;
    /// CARS-196 takes car_ims.tgz and cars_annos.mat, or the devkit layout: cars_train.tgz,
    /// cars_test.tgz, car_devkit.tgz, cars_test_annos_withlabels.mat + cars_annos.mat). A file is verified like
    /// a download; a folder is recorded as unverified (its images are still checked).
    #[arg(long = "archive", value_name = "FILE")]
    pub archives: Vec<PathBuf>,
    /// Accept files whose size or hash does not match the manifest (recorded as a warning).
    #[arg(long)]
    pub allow_unverified: bool,
    /// Leave out listed images that are missing or do not decode, instead of failing (recorded
    /// as a warning).
    #[arg(long)]
    pub skip_bad_images: bool,
    /// Folder name under the data dir for a PATH dataset [default: the folder's or file's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Retries per mirror after a connection failure (0 to 20).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
    /// Seconds to wait for a server before giving up on a connection or read (1 to 3600).
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(Args)]
pub struct SplitArgs {
    /// A prepared dataset's name, a folder with one sub-folder per class, or a CSV file.
    pub dataset: std::ffi::OsString,
    #[command(flatten)]
    pub common: Common,
    /// Seed of a random class-disjoint split [default: the dataset's canonical split].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Share of classes used for training in a seeded split [default: 0.5].
    #[arg(long, requires = "seed")]
    pub ratio: Option<f64>,
    /// Cut the training classes into K class-disjoint folds (2 to 10000) and mark one as `val`.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub folds: Option<u32>,
    /// Which fold (0-based) is `val` [default: 0].
    #[arg(long, value_name = "F", requires = "folds")]
    pub fold: Option<u32>,
    /// Folder to write split.csv and split.json into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PartArg {
    Train,
    Val,
    Test,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ResizeArg {
    /// Short side to SIZE, keeping the aspect ratio.
    ShortSide,
    /// Long side to SIZE, then centred on a white SIZE×SIZE square (the paper's preprocessing).
    PadSquare,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CropArg {
    /// The whole image.
    None,
    /// The dataset's bounding box (CUB-200, CARS-196).
    Bbox,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EncodingArg {
    /// JPEG at --quality (about 8× smaller than raw).
    Jpeg,
    /// Raw RGB8 (no decoding cost when loading).
    Raw,
}

#[derive(Args)]
pub struct PackArgs {
    /// A prepared dataset's name (or its folder under the data dir).
    pub dataset: String,
    #[command(flatten)]
    pub common: Common,
    /// Which part of the split to pack.
    #[arg(long, value_enum, default_value = "train")]
    pub split: PartArg,
    /// A folder with a split.csv (from `lifted split`) [default: the split prepare-data wrote].
    #[arg(long, value_name = "DIR")]
    pub split_dir: Option<PathBuf>,
    /// Target size in pixels (1 to 4096).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=MAX_SIZE))]
    pub size: u32,
    /// How to scale to --size.
    #[arg(long, value_enum, default_value = "short-side")]
    pub resize: ResizeArg,
    /// Crop before scaling.
    #[arg(long, value_enum, default_value = "none")]
    pub crop: CropArg,
    /// How samples are stored.
    #[arg(long, value_enum, default_value = "jpeg")]
    pub encoding: EncodingArg,
    /// JPEG quality, 1 to 100.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Worker threads, 1 to 512 [default: the number of cores].
    #[arg(long, value_parser = threads)]
    pub threads: Option<usize>,
    /// Fail on the first image that cannot be packed instead of skipping and listing it.
    #[arg(long)]
    pub strict: bool,
    /// Largest sample data per shard file, in MiB (1 to 65536).
    #[arg(long, default_value_t = 1024, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub shard_size: u64,
    /// Output folder [default: <data>/<dataset>/shards/<split>-<part>-<encoding><size>...]. An
    /// earlier pack of the same dataset and part there is replaced; anything else is refused.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace whatever packed folder --out holds (never a folder that is not a lifted pack).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ShardsArgs {
    /// A packed folder (it holds index.json).
    pub shards: PathBuf,
    /// Print the result as JSON (and no progress bars).
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub shards: ShardsArgs,
    /// Write this many samples, spread over the set, as image files into --out.
    #[arg(long, value_name = "N", requires = "out")]
    pub dump: Option<usize>,
    /// Where --dump writes.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AugmentArg {
    /// Random SIZE crop and horizontal flip (the paper's: 227 from 256).
    #[value(alias = "random-crop")]
    Paper,
    /// RandomResizedCrop(SIZE, scale 0.08-1, ratio 3/4-4/3) and horizontal flip.
    #[value(name = "random-resized-crop", alias = "rrc")]
    Rrc,
    /// Centre SIZE crop (evaluation).
    #[value(alias = "center-crop")]
    Center,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// [N, 3, S, S] float32, normalised with ImageNet's mean and std.
    F32,
    /// [N, S, S, 3] bytes, for normalising on the GPU.
    U8,
}

#[derive(Args)]
pub struct StreamArgs {
    /// A packed folder (it holds index.json).
    pub shards: PathBuf,
    /// Classes per batch (P, 1 to 4096).
    #[arg(long = "classes", default_value_t = 32, value_parser = batch_count)]
    pub classes: usize,
    /// Images per class (K, 1 to 4096).
    #[arg(long, default_value_t = 4, value_parser = batch_count)]
    pub per_class: usize,
    /// Drop classes with fewer than K images instead of sampling them with replacement.
    #[arg(long)]
    pub drop_small_classes: bool,
    /// Loader threads, 1 to 512 [default: the number of cores].
    #[arg(long, value_parser = threads)]
    pub threads: Option<usize>,
    /// Batches in flight (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = prefetch)]
    pub prefetch: usize,
    /// Epochs to stream (1 to 1000000); an epoch is ⌈C/P⌉ batches, every class at least once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub epochs: u64,
    /// Seed of the sampler and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Augmentation.
    #[arg(long, value_enum, default_value = "paper")]
    pub augment: AugmentArg,
    /// Output side (1 to 4096).
    #[arg(long, default_value_t = 227, value_parser = clap::value_parser!(u32).range(1..=MAX_SIZE))]
    pub size: u32,
    /// No horizontal flips (for glyphs, where a mirrored b is a d).
    #[arg(long)]
    pub no_flip: bool,
    /// Output layout.
    #[arg(long, value_enum, default_value = "f32")]
    pub layout: LayoutArg,
    /// Write the first batch as an image grid (PNG) with class labels.
    #[arg(long, value_name = "PNG")]
    pub grid: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ModelArg {
    /// A small CNN (the bundled sample's default; any dataset).
    Small,
    /// ResNet-18.
    Resnet18,
    /// ResNet-50.
    Resnet50,
    /// GoogLeNet / Inception v1, the paper's network (the default for other datasets).
    Googlenet,
    /// BN-Inception, the backbone of most metric-learning papers since 2017.
    Bninception,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ProtocolArg {
    /// Oh Song et al., CVPR 2016: GoogLeNet from its ImageNet weights (fetched into the data dir
    /// if missing), dropout 0.4, embedding 512; long side 256 on a white 256×256 square (JPEG
    /// q90), random 227 crops with flips, ImageNet mean/std; 32 classes × 4 images (batch 128);
    /// SGD lr 1e-4, momentum 0.9, weight decay 2e-4, ×10 on the embedding, constant rate; 100
    /// epochs; test split evaluated on centre 227 crops, selecting nothing.
    Paper,
    /// The bundled sample's measured recipe: small CNN from random weights, raw 32 px glyphs,
    /// resized crops without flips, mean/std 0.5, AdamW 1e-3, 90 epochs.
    Sample,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LossArg {
    /// The lifted structured loss (Oh Song et al. 2016).
    Lifted,
    /// The contrastive loss.
    Contrastive,
    /// The triplet loss.
    Triplet,
    /// The generalized lifted loss (Hermans et al. 2017).
    GeneralizedLifted,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    /// SGD with momentum and weight decay.
    Sgd,
    /// AdamW.
    Adamw,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScheduleArg {
    /// Constant learning rate.
    Constant,
    /// ×0.1 every --step-every epochs.
    Step,
    /// Cosine decay to 0 over the run.
    Cosine,
}

#[derive(Args)]
pub struct TrainArgs {
    /// A prepared dataset's name (the bundled `sample` is prepared on the fly); not needed with
    /// --resume, which uses the run's own config.
    #[arg(required_unless_present = "resume")]
    pub dataset: Option<String>,
    #[command(flatten)]
    pub common: Common,
    /// The recipe every other flag starts from [default: sample for the bundled sample, paper
    /// otherwise]. The run prints every setting it used and writes them to config.json.
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
    /// The network [default: the protocol's: googlenet for paper, small for sample]. The data
    /// recipe does not change with it; the optimiser does (see --optimizer, --lr).
    #[arg(long, value_enum)]
    pub model: Option<ModelArg>,
    /// Initial weights: a published name (`lifted weights list`; fetched into the data dir), a
    /// file (.pth from torch.save, or .safetensors; a path has a / or that extension), or none
    /// [default: the network's ImageNet weights; none for small].
    #[arg(long, value_name = "NAME|FILE|none")]
    pub weights: Option<String>,
    /// Use this weight manifest instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub weights_manifest: Option<PathBuf>,
    /// Embedding size, 1 to 8192 [default: 64 for small, 512 otherwise].
    #[arg(long, value_parser = embedding)]
    pub embedding: Option<usize>,
    /// Base width of the small network (1 to 1024).
    #[arg(long, value_parser = width)]
    pub width: Option<usize>,
    /// Freeze batch norm (running statistics, no learning) [default: frozen except for small].
    #[arg(long)]
    pub freeze_bn: Option<bool>,
    /// Loss.
    #[arg(long, value_enum, default_value = "lifted")]
    pub loss: LossArg,
    /// Loss margin (a finite number, 0 or more).
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub margin: f64,
    /// L2-normalise embeddings before the loss.
    #[arg(long)]
    pub normalize_embeddings: bool,
    /// Classes per batch (P, 1 to 4096), all distinct.
    #[arg(long = "classes", default_value_t = 32, value_parser = batch_count)]
    pub classes: usize,
    /// Images per class (K, 1 to 4096).
    #[arg(long, default_value_t = 4, value_parser = batch_count)]
    pub per_class: usize,
    /// Optimiser [default: adamw for small, sgd otherwise].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Learning rate, above 0 and at most 10 [default: 1e-3 for small, 1e-4 otherwise].
    #[arg(long, value_parser = learning_rate)]
    pub lr: Option<f64>,
    /// SGD momentum, 0 to below 1 [default: 0.9].
    #[arg(long, value_parser = momentum)]
    pub momentum: Option<f64>,
    /// Weight decay, 0 to 1 [default: 1e-4 for small, 2e-4 otherwise].
    #[arg(long, value_parser = weight_decay)]
    pub weight_decay: Option<f64>,
    /// Learning-rate multiplier of the embedding head, above 0 and at most 10000 [default: 1 for
    /// small, 10 otherwise].
    #[arg(long, value_parser = lr_multiplier)]
    pub embedding_lr_mult: Option<f64>,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value = "constant")]
    pub schedule: ScheduleArg,
    /// Epochs between ×0.1 decays with --schedule step (1 to 1000000).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub step_every: u64,
    /// Epochs [default: 90 for small, 100 otherwise]. One epoch is ⌈C/P⌉ batches over the C
    /// training classes: every class at least once, the last batch completed with classes from
    /// the start of the epoch's order.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub epochs: Option<u64>,
    /// Evaluate on the test split every N epochs (0: before and after only).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub eval_every: u64,
    /// Read the loss and the NaN/inf check back from the device every N steps (and at each
    /// epoch's end) instead of waiting for the device at every step; a bad step is still named.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub check_every: u64,
    /// Seed of sampling, augmentation, initial weights and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop with a checkpoint after N epochs of this invocation (to fit a time limit); continue
    /// later with --resume.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub stop_after: Option<u64>,
    /// Loader threads, 1 to 512 [default: the number of cores].
    #[arg(long, value_parser = threads)]
    pub threads: Option<usize>,
    /// Device: cpu or cuda:N (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The run folder [default: runs/<dataset>-<model>-<loss>-seed<seed>, then -2, -3, … if taken].
    #[arg(long, value_name = "RUN_DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last checkpoint, exactly as if it had not stopped
    /// (its config.json is used; --epochs may extend it, stretching a cosine schedule).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MetricArg {
    Euclidean,
    Cosine,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A trained run folder (evaluated on its packed test split).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["embeddings", "labels"])]
    pub run: Option<PathBuf>,
    /// Embeddings from any framework: float32 N×D .npy.
    #[arg(long, value_name = "X.npy", requires = "labels")]
    pub embeddings: Option<PathBuf>,
    /// Their labels: integer .npy, or a CSV (one per line, or a label/class_id column).
    #[arg(long, value_name = "Y.npy|Y.csv", requires = "embeddings")]
    pub labels: Option<PathBuf>,
    /// Recall@K values, comma-separated, each 1 to 1000000 (repeats are dropped) [default:
    /// 1,10,100,1000 for SOP, else 1,2,4,8].
    #[arg(long, value_delimiter = ',', value_parser = recall_k)]
    pub recall_at: Option<Vec<usize>>,
    /// Distance.
    #[arg(long, value_enum, default_value = "euclidean")]
    pub metric: MetricArg,
    /// k-means runs for NMI, AMI and F1 (0 skips clustering, at most 100).
    #[arg(long, default_value_t = 3, value_parser = kmeans_runs)]
    pub kmeans_runs: usize,
    /// Device for the network and the distance products: cpu or cuda:N (needs a build with
    /// --features cuda) [default: the run's, else cpu].
    #[arg(long)]
    pub device: Option<String>,
    /// Write the embeddings (of --run) as float32 .npy.
    #[arg(long, value_name = "X.npy")]
    pub export: Option<PathBuf>,
    /// Draw queries with their nearest neighbours (green: same class, red: not) as PNG
    /// (needs --run, whose test images it shows).
    #[arg(long, value_name = "FILE.png")]
    pub grid: Option<PathBuf>,
    /// Queries in the grid, spread evenly over the test set.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub grid_queries: u32,
    /// Neighbours per query in the grid.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub grid_k: u32,
    /// Draw a 2-D t-SNE map of the embeddings coloured by class as PNG.
    #[arg(long, value_name = "FILE.png")]
    pub tsne: Option<PathBuf>,
    /// At most this many points in the t-SNE map (a seeded subsample of larger sets).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(5..))]
    pub tsne_points: u32,
    /// t-SNE perplexity (above 0, at most 1000).
    #[arg(long, default_value_t = 30.0, value_parser = perplexity)]
    pub tsne_perplexity: f32,
    /// Seed of the t-SNE subsample and initial layout.
    #[arg(long, default_value_t = 0)]
    pub tsne_seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PlotArgs {
    /// The run folder (its log.jsonl is read).
    pub run: PathBuf,
    /// Where to write the SVG [default: RUN_DIR/curves.svg].
    #[arg(long, value_name = "FILE.svg")]
    pub out: Option<PathBuf>,
}

/// Parses an integer in `range`, naming the range when it is not.
fn in_range(text: &str, range: std::ops::RangeInclusive<usize>) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number"))?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{value} is not in {}..={}",
            range.start(),
            range.end()
        ))
    }
}

/// Parses a finite number in `low..=high` (`low` itself excluded when `open_low`).
fn finite_in(
    text: &str,
    low: f64,
    open_low: bool,
    high: f64,
    open_high: bool,
) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    let above = if open_low { value > low } else { value >= low };
    let below = if open_high {
        value < high
    } else {
        value <= high
    };
    if value.is_finite() && above && below {
        Ok(value)
    } else {
        Err(format!(
            "{text} is not a finite number in {}{low}, {high}{}",
            if open_low { "(" } else { "[" },
            if open_high { ")" } else { "]" }
        ))
    }
}

fn threads(text: &str) -> Result<usize, String> {
    in_range(text, 1..=lifted::limits::MAX_THREADS)
}

fn batch_count(text: &str) -> Result<usize, String> {
    in_range(text, 1..=4096)
}

fn prefetch(text: &str) -> Result<usize, String> {
    in_range(text, 1..=64)
}

fn embedding(text: &str) -> Result<usize, String> {
    in_range(text, 1..=lifted::train::model::MAX_EMBEDDING)
}

fn width(text: &str) -> Result<usize, String> {
    in_range(text, 1..=1024)
}

fn kmeans_runs(text: &str) -> Result<usize, String> {
    in_range(text, 0..=100)
}

fn recall_k(text: &str) -> Result<usize, String> {
    in_range(text, 1..=1_000_000)
}

fn non_negative(text: &str) -> Result<f64, String> {
    finite_in(text, 0.0, false, 1e6, false)
}

fn learning_rate(text: &str) -> Result<f64, String> {
    finite_in(text, 0.0, true, 10.0, false)
}

fn momentum(text: &str) -> Result<f64, String> {
    finite_in(text, 0.0, false, 1.0, true)
}

fn weight_decay(text: &str) -> Result<f64, String> {
    finite_in(text, 0.0, false, 1.0, false)
}

fn lr_multiplier(text: &str) -> Result<f64, String> {
    finite_in(text, 0.0, true, 1e4, false)
}

fn perplexity(text: &str) -> Result<f32, String> {
    finite_in(text, 0.0, true, 1000.0, false).map(|v| v as f32)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// Every `lifted …` command shown in the README and docs parses, so none of them teaches a
    /// flag that does not exist.
    #[test]
    fn every_command_in_the_docs_parses() {
        let docs = [
            ("README.md", include_str!("../README.md")),
            ("docs/loader.md", include_str!("../docs/loader.md")),
            (
                "docs/prepare-data.md",
                include_str!("../docs/prepare-data.md"),
            ),
            ("docs/gpu.md", include_str!("../docs/gpu.md")),
            ("docs/metrics.md", include_str!("../docs/metrics.md")),
        ];
        let mut checked = 0;
        for (doc, text) in docs {
            let mut in_block = false;
            let mut continued = String::new();
            for line in text.lines() {
                if line.starts_with("```") {
                    in_block = line.starts_with("```bash") || line.starts_with("```sh");
                    continue;
                }
                // A command continued over lines with `\` is read whole.
                let line = line.split(" #").next().unwrap_or("").trim();
                if let Some(head) = line.strip_suffix('\\') {
                    continued.push_str(head);
                    continue;
                }
                let line = std::mem::take(&mut continued) + line;
                let command = line.as_str();
                let command = command
                    .strip_prefix("cargo run --release -- ")
                    .map(|rest| format!("lifted {rest}"))
                    .unwrap_or_else(|| command.to_string());
                if !in_block || !command.starts_with("lifted ") {
                    continue;
                }
                let words = command.split_whitespace().map(|w| w.trim_matches('\''));
                if let Err(e) = Cli::try_parse_from(words) {
                    panic!("{doc}: `{command}` does not parse:\n{e}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} commands found");
    }
}
