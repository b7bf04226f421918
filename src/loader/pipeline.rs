//! The worker pool: threads that turn planned batches into pixels, in parallel, handed out in
//! plan order.
//!
//! A [`Loader`] owns `threads` workers that live as long as it does. An iterator
//! ([`Batches`]) keeps at most `prefetch` of its batches in flight: it sends jobs on a bounded
//! crossbeam channel, a worker builds the whole batch (read from the mapped shards, decode,
//! crop, flip, normalise, straight into a pooled buffer) and sends it back, and the iterator
//! reorders results so that batches come out in plan order. A sample that fails reaches the
//! consumer as an error naming it, in its batch's place. Dropping an iterator cancels its
//! batches in flight; dropping the loader stops every worker between two samples and joins it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::augment::{Augment, Scratch, Slot, render};
use super::batch::{Batch, Layout, Pixels, Pool};
use super::normalize::{Affine, Normalize};
use super::sampler::{PkSampler, sequential};
use super::{LoaderError, SampleError};
use crate::imageio::jpeg;
use crate::limits::MAX_THREADS;
use crate::rng::{Purpose, stream};
use crate::shard::{Encoding, ShardSet};

/// Most bytes one batch's pixel buffer may take (a P×K batch at 227 pixels in f32 takes
/// 79 MB at 128 samples).
pub const MAX_BATCH_BYTES: u64 = 4 << 30;

/// Loader settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoaderConfig {
    /// Worker threads.
    pub threads: usize,
    /// Batches in flight per iterator.
    pub prefetch: usize,
    /// Normalisation (for [`Layout::NchwF32`]).
    pub normalize: Normalize,
    /// Output layout.
    pub layout: Layout,
    /// Seed of the augmentation streams (use the sampler's).
    pub seed: u64,
}

impl Default for LoaderConfig {
    fn default() -> LoaderConfig {
        LoaderConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 4,
            normalize: Normalize::IMAGENET,
            layout: Layout::NchwF32,
            seed: 0,
        }
    }
}

/// A built batch (or why it could not be built), tagged with its place in the plan.
type Built = (usize, Result<Batch, LoaderError>);

/// One batch to build.
struct Job {
    key: usize,
    samples: Vec<usize>,
    /// (epoch, global batch, position of the first sample in the global batch): the
    /// augmentation streams' path.
    path: (u64, u64, u64),
    augment: Augment,
    results: Sender<Built>,
    cancel: Arc<AtomicBool>,
}

/// What every job of a loader shares.
struct Shared {
    set: Arc<ShardSet>,
    config: LoaderConfig,
    affine: Affine,
    pool: Pool,
    stop: AtomicBool,
}

/// A pool of loader threads over a shard set.
pub struct Loader {
    shared: Arc<Shared>,
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Loader {
    /// Starts `config.threads` workers over `set`.
    ///
    /// # Errors
    /// [`LoaderError::Threads`] when `config.threads` is 0 or over [`MAX_THREADS`];
    /// [`LoaderError::Prefetch`] when `config.prefetch` is not 1 to 64; [`LoaderError::Normalize`]
    /// when [`Normalize::validate`] refuses `config.normalize`; [`LoaderError::Spawn`] when a
    /// worker thread cannot be started.
    pub fn new(set: Arc<ShardSet>, config: LoaderConfig) -> Result<Loader, LoaderError> {
        if config.threads == 0 || config.threads > MAX_THREADS {
            return Err(LoaderError::Threads(config.threads));
        }
        if config.prefetch == 0 || config.prefetch > 64 {
            return Err(LoaderError::Prefetch(config.prefetch));
        }
        config.normalize.validate()?;
        let shared = Arc::new(Shared {
            set,
            affine: config.normalize.affine(),
            config,
            pool: Arc::new(Mutex::new(Vec::new())),
            stop: AtomicBool::new(false),
        });
        let (sender, receiver) = bounded::<Job>(config.prefetch.max(config.threads));
        let workers = (0..config.threads)
            .map(|n| {
                let shared = shared.clone();
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("lifted-loader-{n}"))
                    .spawn(move || work(&shared, &receiver))
                    .map_err(LoaderError::Spawn)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Loader {
            shared,
            jobs: Some(sender),
            workers,
        })
    }

    /// The shard set.
    pub fn set(&self) -> &ShardSet {
        &self.shared.set
    }

    /// The training batches of `epoch` on this rank, from `start_step` on (to resume).
    pub fn epoch<'a>(
        &'a self,
        sampler: &'a PkSampler,
        epoch: u64,
        start_step: usize,
        augment: Augment,
    ) -> Batches<'a> {
        self.epochs(sampler, epoch..epoch + 1, start_step, augment)
    }

    /// The training batches of several epochs on this rank as one stream, which keeps
    /// prefetching across epoch boundaries (the first epoch from `start_step` on). Batch `i`
    /// is step `i % batches_per_epoch` of its epoch (after the first, shortened one).
    pub fn epochs<'a>(
        &'a self,
        sampler: &'a PkSampler,
        epochs: Range<u64>,
        start_step: usize,
        augment: Augment,
    ) -> Batches<'a> {
        let first_epoch = epochs.start;
        let per_epoch = sampler.batches_per_epoch();
        let offset = sampler.rank_offset() as u64;
        let total = (epochs.end.saturating_sub(epochs.start) as usize)
            .saturating_mul(per_epoch)
            .saturating_sub(start_step.min(per_epoch));
        let plan = epochs.flat_map(move |epoch| {
            let first = if epoch == first_epoch { start_step } else { 0 };
            (first..per_epoch).map(move |step| {
                let samples = sampler
                    .batch(epoch, step)
                    .expect("step < batches per epoch");
                (samples, (epoch, sampler.global_batch(step) as u64, offset))
            })
        });
        Batches::new(self, Box::new(plan), total, sampler.batch_size(), augment)
    }

    /// Every sample once, in index order, in batches of `batch_size` (the last may be short).
    pub fn sequential(&self, batch_size: usize, augment: Augment) -> Batches<'_> {
        let len = self.shared.set.len();
        let plan = sequential(len, batch_size)
            .enumerate()
            .map(|(b, range)| (range.collect(), (u64::MAX, b as u64, 0)));
        let total = len.div_ceil(batch_size.max(1));
        Batches::new(self, Box::new(plan), total, batch_size.min(len), augment)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.jobs.take();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// One planned batch: its samples, and the (epoch, global batch, position of its first sample in
/// the global batch) its augmentation is keyed by.
type Planned = (Vec<usize>, (u64, u64, u64));

/// The batches of one plan, in order. The plan is generated as batches are sent, so a long
/// stream takes no memory for the batches it has not reached.
pub struct Batches<'a> {
    loader: &'a Loader,
    plan: Box<dyn Iterator<Item = Planned> + 'a>,
    /// Batches in the plan.
    total: usize,
    /// The most samples a batch of the plan has.
    max_batch: usize,
    augment: Augment,
    next_send: usize,
    next_yield: usize,
    pending: BTreeMap<usize, Result<Batch, LoaderError>>,
    /// Handed to each job; dropped once the last job is sent, so that the channel closes if
    /// every job's sender is gone without an answer.
    sender: Option<Sender<Built>>,
    receiver: Receiver<Built>,
    cancel: Arc<AtomicBool>,
}

impl<'a> Batches<'a> {
    fn new(
        loader: &'a Loader,
        plan: Box<dyn Iterator<Item = Planned> + 'a>,
        total: usize,
        max_batch: usize,
        augment: Augment,
    ) -> Batches<'a> {
        let prefetch = loader.shared.config.prefetch;
        let (sender, receiver) = bounded(prefetch);
        let mut batches = Batches {
            loader,
            plan,
            total,
            max_batch,
            augment,
            next_send: 0,
            next_yield: 0,
            pending: BTreeMap::new(),
            sender: Some(sender),
            receiver,
            cancel: Arc::new(AtomicBool::new(false)),
        };
        if let Err(error) = batches.check_plan() {
            // Nothing is built: the first batch is the error, and the plan ends there.
            batches.total = 1;
            batches.next_send = 1;
            batches.sender = None;
            batches.pending.insert(0, Err(error));
            return batches;
        }
        while batches.next_send < batches.total && batches.next_send < prefetch {
            batches.send_next();
        }
        batches
    }

    /// Checks the augmentation and that a batch's buffer stays under [`MAX_BATCH_BYTES`].
    fn check_plan(&self) -> Result<(), LoaderError> {
        self.augment.validate()?;
        let size = self.augment.size() as u64;
        let value_bytes = match self.loader.shared.config.layout {
            Layout::NchwF32 => 4,
            Layout::NhwcU8 => 1,
        };
        let largest = self.max_batch as u64;
        let bytes = largest
            .saturating_mul(3 * size * size)
            .saturating_mul(value_bytes);
        if bytes > MAX_BATCH_BYTES {
            return Err(LoaderError::BatchTooLarge {
                samples: largest,
                size,
                bytes,
            });
        }
        Ok(())
    }

    /// Number of batches in the plan.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the plan is empty.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn send_next(&mut self) {
        let key = self.next_send;
        let Some((samples, path)) = self.plan.next() else {
            self.pending.insert(key, Err(LoaderError::Stopped));
            self.next_send += 1;
            return;
        };
        let Some(results) = self.sender.clone() else {
            self.pending.insert(key, Err(LoaderError::Stopped));
            self.next_send += 1;
            return;
        };
        let job = Job {
            key,
            samples,
            path,
            augment: self.augment,
            results,
            cancel: self.cancel.clone(),
        };
        self.next_send += 1;
        if self.next_send == self.total {
            self.sender = None;
        }
        let sent = self
            .loader
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            self.pending.insert(key, Err(LoaderError::Stopped));
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next_yield >= self.total {
            return None;
        }
        loop {
            if let Some(result) = self.pending.remove(&self.next_yield) {
                self.next_yield += 1;
                if self.next_send < self.total {
                    self.send_next();
                }
                return Some(result);
            }
            match self.receiver.recv() {
                Ok((key, result)) => {
                    self.pending.insert(key, result);
                }
                Err(_) => return Some(Err(LoaderError::Stopped)),
            }
        }
    }
}

impl Drop for Batches<'_> {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// A worker's loop: build batches until the job channel closes.
fn work(shared: &Shared, jobs: &Receiver<Job>) {
    let mut scratch = Scratch::default();
    let mut decoded = Vec::new();
    while let Ok(job) = jobs.recv() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        if job.cancel.load(Ordering::SeqCst) {
            continue;
        }
        let panicked = answer(&job, || build(shared, &job, &mut scratch, &mut decoded));
        if panicked {
            scratch = Scratch::default();
        }
    }
}

/// Builds a job's batch with `build` and sends the result to the job's iterator. A panic while
/// building (a bug) reaches the consumer as this batch's error instead of leaving it waiting, and
/// the worker goes on with the next job; returns whether `build` panicked.
fn answer(job: &Job, build: impl FnOnce() -> Result<Batch, LoaderError>) -> bool {
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(build));
    let panicked = built.is_err();
    let result = built.unwrap_or_else(|panic| {
        Err(LoaderError::WorkerPanicked {
            message: panic_message(panic.as_ref()),
        })
    });
    let _ = job.results.send((job.key, result));
    panicked
}

/// The text a panic carried, if it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Builds one batch.
fn build(
    shared: &Shared,
    job: &Job,
    scratch: &mut Scratch,
    decoded: &mut Vec<u8>,
) -> Result<Batch, LoaderError> {
    let set = &shared.set;
    let size = job.augment.size() as usize;
    let n = job.samples.len();
    let per_sample = 3 * size * size;
    let layout = shared.config.layout;
    let mut pixels = take_buffer(&shared.pool, layout, n * per_sample);
    let mut labels = Vec::with_capacity(n);
    for (position, &index) in job.samples.iter().enumerate() {
        if shared.stop.load(Ordering::Relaxed) || job.cancel.load(Ordering::Relaxed) {
            return Err(LoaderError::Stopped);
        }
        let sample = set
            .sample(index)
            .map_err(|source| LoaderError::Shard { index, source })?;
        let fail = |source: SampleError| LoaderError::Sample {
            index,
            path: set.source_path(&sample).to_string(),
            source,
        };
        let (source, width, height): (&[u8], u32, u32) = match sample.encoding {
            Encoding::Raw => (
                sample.bytes,
                u32::from(sample.width),
                u32::from(sample.height),
            ),
            Encoding::Jpeg => {
                let jpeg = jpeg::decode_into(sample.bytes, decoded)
                    .map_err(|e| fail(SampleError::Decode(e)))?;
                let (w, h) = (jpeg.width, jpeg.height);
                (&decoded[..w * h * 3], w as u32, h as u32)
            }
        };
        let mut rng = stream(
            shared.config.seed,
            Purpose::Augment,
            &[job.path.0, job.path.1, job.path.2 + position as u64],
        );
        let slot = match &mut pixels {
            Pixels::F32(v) => Slot::F32(&mut v[position * per_sample..(position + 1) * per_sample]),
            Pixels::U8(v) => Slot::U8(&mut v[position * per_sample..(position + 1) * per_sample]),
        };
        render(
            &job.augment,
            source,
            width,
            height,
            &mut rng,
            &shared.affine,
            slot,
            scratch,
        )
        .map_err(fail)?;
        labels.push(sample.class_id);
    }
    let shape = match layout {
        Layout::NchwF32 => [n, 3, size, size],
        Layout::NhwcU8 => [n, size, size, 3],
    };
    Ok(Batch::new(
        pixels,
        shape,
        labels,
        job.samples.clone(),
        &shared.pool,
    ))
}

/// A buffer of `len` values from the pool (or a new one).
fn take_buffer(pool: &Pool, layout: Layout, len: usize) -> Pixels {
    let reused = pool.lock().ok().and_then(|mut pool| {
        let at = pool.iter().position(|p| match (p, layout) {
            (Pixels::F32(v), Layout::NchwF32) => v.len() == len,
            (Pixels::U8(v), Layout::NhwcU8) => v.len() == len,
            _ => false,
        })?;
        Some(pool.swap_remove(at))
    });
    reused.unwrap_or_else(|| match layout {
        Layout::NchwF32 => Pixels::F32(vec![0.0; len]),
        Layout::NhwcU8 => Pixels::U8(vec![0; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_build_reaches_the_consumer_as_a_typed_error() {
        let (sender, receiver) = bounded(1);
        let job = Job {
            key: 7,
            samples: vec![1, 2],
            path: (0, 0, 0),
            augment: Augment::CenterCrop { size: 8 },
            results: sender,
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let panicked = answer(&job, || panic!("index out of bounds in a test"));
        assert!(panicked);
        let (key, result) = receiver.try_recv().expect("an answer was sent");
        assert_eq!(key, 7);
        match result {
            Err(LoaderError::WorkerPanicked { message }) => {
                assert_eq!(message, "index out of bounds in a test");
            }
            other => panic!("expected WorkerPanicked, got {other:?}"),
        }
    }
}
