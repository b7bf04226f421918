//! Which samples go into which batch: class-balanced P×K batches for training, and a
//! sequential order for evaluation.
//!
//! **Epoch.** Epoch `e` shuffles the eligible classes with a stream keyed by (seed, `e`) and cuts
//! them into ⌊C / P⌋ groups of P distinct classes; group `b` is global batch `b`. Every class
//! is therefore used at most once per epoch, and C mod P classes (different ones each epoch) sit
//! the epoch out. Each class of a batch contributes K images, drawn without replacement from a
//! stream keyed by (seed, `e`, class id); a class with fewer than K images either contributes
//! all of them plus draws with replacement, or is left out entirely ([`SmallClasses`]). A
//! batch is laid out class by class: P runs of K samples.
//!
//! **Ranks.** With `world_size` W, rank `r` takes global batches `r, r + W, r + 2W, …`, and
//! every rank takes exactly ⌊⌊C / P⌋ / W⌋ of them (the rest of the epoch is dropped), so all
//! ranks run the same number of steps.
//!
//! Everything depends only on (seed, epoch, step), not on threads or earlier calls, so a run can
//! resume at any (epoch, step) and get the batches an uninterrupted run gets.

use rand::seq::{IndexedRandom, SliceRandom};

use crate::rng::{Purpose, stream};

/// What to do with classes that have fewer than K images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmallClasses {
    /// Use all their images and fill up with draws with replacement.
    WithReplacement,
    /// Leave them out.
    Drop,
}

/// P×K sampler settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SamplerConfig {
    /// Classes per batch (P).
    pub classes_per_batch: usize,
    /// Images per class (K).
    pub per_class: usize,
    /// The seed (a training run also keys its initial weights and dropout masks by it).
    pub seed: u64,
    /// Classes with fewer than K images.
    pub small_classes: SmallClasses,
    /// This process's rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
}

impl Default for SamplerConfig {
    fn default() -> SamplerConfig {
        SamplerConfig {
            classes_per_batch: 32,
            per_class: 4,
            seed: 0,
            small_classes: SmallClasses::WithReplacement,
            rank: 0,
            world_size: 1,
        }
    }
}

/// Errors from setting up a sampler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    /// P or K is zero, or the rank is outside the world.
    #[error("{0}")]
    Settings(String),
    /// Not enough classes for one batch per rank.
    #[error(
        "{classes} eligible classes make {batches} batches of {per_batch} classes per epoch, fewer than the {world_size} ranks; lower --classes or use fewer ranks"
    )]
    TooFewClasses {
        /// Eligible classes.
        classes: usize,
        /// Classes per batch.
        per_batch: usize,
        /// Global batches per epoch.
        batches: usize,
        /// Ranks.
        world_size: usize,
    },
}

/// The P×K sampler over a set of classes.
#[derive(Debug, Clone)]
pub struct PkSampler {
    config: SamplerConfig,
    /// (class id, its sample indices), eligible classes only, by class id.
    classes: Vec<(u32, Vec<usize>)>,
}

impl PkSampler {
    /// A sampler over `classes` (class id, sample indices).
    pub fn new(
        classes: Vec<(u32, Vec<usize>)>,
        config: SamplerConfig,
    ) -> Result<PkSampler, SamplerError> {
        if config.classes_per_batch == 0 || config.per_class == 0 {
            return Err(SamplerError::Settings(
                "classes per batch (P) and images per class (K) must be at least 1".to_string(),
            ));
        }
        if config.world_size == 0 || config.rank >= config.world_size {
            return Err(SamplerError::Settings(format!(
                "rank {} is outside a world of {} ranks",
                config.rank, config.world_size
            )));
        }
        let mut classes: Vec<(u32, Vec<usize>)> = classes
            .into_iter()
            .filter(|(_, images)| match config.small_classes {
                SmallClasses::WithReplacement => !images.is_empty(),
                SmallClasses::Drop => images.len() >= config.per_class,
            })
            .collect();
        classes.sort_by_key(|(id, _)| *id);
        let sampler = PkSampler { config, classes };
        let batches = sampler.global_batches();
        if batches / config.world_size == 0 {
            return Err(SamplerError::TooFewClasses {
                classes: sampler.classes.len(),
                per_batch: config.classes_per_batch,
                batches,
                world_size: config.world_size,
            });
        }
        Ok(sampler)
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Number of eligible classes.
    pub fn eligible_classes(&self) -> usize {
        self.classes.len()
    }

    /// Samples per batch (P × K).
    pub fn batch_size(&self) -> usize {
        self.config.classes_per_batch * self.config.per_class
    }

    fn global_batches(&self) -> usize {
        self.classes.len() / self.config.classes_per_batch
    }

    /// Batches per epoch on this rank.
    pub fn batches_per_epoch(&self) -> usize {
        self.global_batches() / self.config.world_size
    }

    /// The global batch number of this rank's `step` in an epoch.
    pub fn global_batch(&self, step: usize) -> usize {
        step * self.config.world_size + self.config.rank
    }

    /// The sample indices of this rank's batch `step` of `epoch` (P runs of K), or `None` past
    /// the end of the epoch.
    pub fn batch(&self, epoch: u64, step: usize) -> Option<Vec<usize>> {
        if step >= self.batches_per_epoch() {
            return None;
        }
        let order = self.class_order(epoch);
        let p = self.config.classes_per_batch;
        let first = self.global_batch(step) * p;
        let mut samples = Vec::with_capacity(self.batch_size());
        for &class in &order[first..first + p] {
            let (class_id, images) = &self.classes[class];
            samples.extend(self.draw(epoch, *class_id, images));
        }
        Some(samples)
    }

    /// All of this rank's batches of `epoch`.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        (0..self.batches_per_epoch())
            .filter_map(|step| self.batch(epoch, step))
            .collect()
    }

    /// The shuffled class positions of an epoch.
    fn class_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.classes.len()).collect();
        order.shuffle(&mut stream(self.config.seed, Purpose::ClassOrder, &[epoch]));
        order
    }

    /// K images of one class for one epoch.
    fn draw(&self, epoch: u64, class_id: u32, images: &[usize]) -> Vec<usize> {
        let k = self.config.per_class;
        let mut rng = stream(
            self.config.seed,
            Purpose::ClassImages,
            &[epoch, u64::from(class_id)],
        );
        let mut shuffled = images.to_vec();
        shuffled.shuffle(&mut rng);
        let mut chosen: Vec<usize> = shuffled.iter().copied().take(k).collect();
        while chosen.len() < k {
            chosen.push(
                *images
                    .choose(&mut rng)
                    .expect("eligible classes have images"),
            );
        }
        chosen
    }
}

/// Batches of `batch_size` consecutive indices covering `0..len` once (the last may be short):
/// the evaluation order.
pub fn sequential(len: usize, batch_size: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let size = batch_size.max(1);
    (0..len.div_ceil(size)).map(move |b| b * size..((b + 1) * size).min(len))
}
