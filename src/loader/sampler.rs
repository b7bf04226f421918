//! Which samples go into which batch: class-balanced P×K batches for training, and a
//! sequential order for evaluation.
//!
//! **Epoch.** Epoch `e` shuffles the C eligible classes with a stream keyed by (seed, `e`) and
//! deals them out P at a time: global batch `b` takes the classes at positions `b·P … b·P + P − 1`
//! of the shuffled order, wrapping around to its start. An epoch is ⌈C / P⌉ global batches, so
//! every class is used at least once per epoch, and the last batch is completed with the first
//! `P·⌈C/P⌉ − C` classes of the order, which are used twice (on the bundled sample's 88
//! training classes with P = 32: 3 batches, 8 classes twice). A batch always holds P distinct
//! classes (C ≥ P is required).
//!
//! **Images.** Each class's images are shuffled once per epoch, with a stream keyed by (seed,
//! `e`, class id); the class's first appearance in the epoch takes the first K of that order,
//! its second the next K (wrapping around), so a class used twice shows different images when
//! it has 2K of them. A class with fewer than K images either contributes all of them plus
//! draws with replacement, or is left out entirely ([`SmallClasses`]). A batch is laid out
//! class by class: P runs of K samples.
//!
//! **Ranks.** With `world_size` W (which must divide P), every rank takes part in every global
//! batch: rank `r` takes the classes at positions `r·P/W … (r+1)·P/W − 1` of it, so the W ranks
//! together see exactly the batch one process sees, each epoch has the same ⌈C / P⌉ steps on
//! every rank, and a sample's position in the global batch ([`PkSampler::rank_offset`] plus its
//! position in the rank's share) does not depend on W.
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
    /// Classes per (global) batch (P).
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
    /// P or K is zero.
    #[error(
        "classes per batch (P) and images per class (K) must be at least 1, not P = \
         {classes_per_batch}, K = {per_class}"
    )]
    EmptyBatch {
        /// P.
        classes_per_batch: usize,
        /// K.
        per_class: usize,
    },
    /// The rank is not one of the world's.
    #[error("rank {rank} is outside a world of {world_size} ranks")]
    RankOutside {
        /// This process's rank.
        rank: usize,
        /// The number of ranks.
        world_size: usize,
    },
    /// P is not a multiple of the number of ranks.
    #[error(
        "a batch of {per_batch} classes cannot be split evenly over {world_size} ranks; use a \
         number of classes per batch that {world_size} divides, or another number of ranks"
    )]
    Indivisible {
        /// Classes per batch.
        per_batch: usize,
        /// Ranks.
        world_size: usize,
    },
    /// Fewer eligible classes than a batch needs.
    #[error(
        "{classes} classes can be sampled{}, fewer than the {per_batch} distinct classes each \
         batch needs; use fewer classes per batch{}",
        if *.dropped > 0 { format!(" ({} more have fewer than {} images and are left out)", .dropped, .per_class) } else { String::new() },
        if *.dropped > 0 { ", or keep small classes (sampled with replacement)" } else { "" }
    )]
    TooFewClasses {
        /// Eligible classes.
        classes: usize,
        /// Classes left out for having fewer than K images.
        dropped: usize,
        /// Classes per batch.
        per_batch: usize,
        /// Images per class.
        per_class: usize,
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
    ///
    /// # Errors
    /// [`SamplerError::EmptyBatch`] when P or K is 0; [`SamplerError::RankOutside`] when the world
    /// is empty or the rank is not in it; [`SamplerError::Indivisible`] when the ranks do not
    /// divide P; [`SamplerError::TooFewClasses`] when fewer than P classes can be sampled.
    pub fn new(
        classes: Vec<(u32, Vec<usize>)>,
        config: SamplerConfig,
    ) -> Result<PkSampler, SamplerError> {
        if config.classes_per_batch == 0 || config.per_class == 0 {
            return Err(SamplerError::EmptyBatch {
                classes_per_batch: config.classes_per_batch,
                per_class: config.per_class,
            });
        }
        if config.world_size == 0 || config.rank >= config.world_size {
            return Err(SamplerError::RankOutside {
                rank: config.rank,
                world_size: config.world_size,
            });
        }
        if !config.classes_per_batch.is_multiple_of(config.world_size) {
            return Err(SamplerError::Indivisible {
                per_batch: config.classes_per_batch,
                world_size: config.world_size,
            });
        }
        let with_images = classes.iter().filter(|(_, i)| !i.is_empty()).count();
        let mut classes: Vec<(u32, Vec<usize>)> = classes
            .into_iter()
            .filter(|(_, images)| match config.small_classes {
                SmallClasses::WithReplacement => !images.is_empty(),
                SmallClasses::Drop => images.len() >= config.per_class,
            })
            .collect();
        classes.sort_by_key(|(id, _)| *id);
        if classes.len() < config.classes_per_batch {
            return Err(SamplerError::TooFewClasses {
                classes: classes.len(),
                dropped: with_images - classes.len(),
                per_batch: config.classes_per_batch,
                per_class: config.per_class,
            });
        }
        Ok(PkSampler { config, classes })
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Number of eligible classes.
    pub fn eligible_classes(&self) -> usize {
        self.classes.len()
    }

    /// Samples in this rank's share of a batch ((P / W) × K).
    pub fn batch_size(&self) -> usize {
        self.classes_per_rank() * self.config.per_class
    }

    /// Samples in a global batch (P × K).
    pub fn global_batch_size(&self) -> usize {
        self.config.classes_per_batch * self.config.per_class
    }

    fn classes_per_rank(&self) -> usize {
        self.config.classes_per_batch / self.config.world_size
    }

    /// Where this rank's share starts in a global batch, in samples.
    pub fn rank_offset(&self) -> usize {
        self.config.rank * self.batch_size()
    }

    /// Batches (steps) per epoch, the same on every rank: ⌈C / P⌉.
    pub fn batches_per_epoch(&self) -> usize {
        self.classes.len().div_ceil(self.config.classes_per_batch)
    }

    /// The global batch number of `step` in an epoch (every rank takes part in every one).
    pub fn global_batch(&self, step: usize) -> usize {
        step
    }

    /// The sample indices of this rank's share of batch `step` of `epoch` ((P / W) runs of K),
    /// or `None` past the end of the epoch.
    pub fn batch(&self, epoch: u64, step: usize) -> Option<Vec<usize>> {
        let per_rank = self.classes_per_rank();
        let first = self.config.rank * per_rank;
        self.slots(epoch, step, first..first + per_rank)
    }

    /// All P × K sample indices of global batch `step` of `epoch` (what one process trains on),
    /// or `None` past the end of the epoch.
    pub fn global_batch_samples(&self, epoch: u64, step: usize) -> Option<Vec<usize>> {
        self.slots(epoch, step, 0..self.config.classes_per_batch)
    }

    /// The samples of class slots `slots` (positions within the batch) of batch `step`.
    fn slots(&self, epoch: u64, step: usize, slots: std::ops::Range<usize>) -> Option<Vec<usize>> {
        if step >= self.batches_per_epoch() {
            return None;
        }
        let order = self.class_order(epoch);
        let c = order.len();
        let p = self.config.classes_per_batch;
        let mut samples = Vec::with_capacity(slots.len() * self.config.per_class);
        for slot in slots {
            let position = step * p + slot;
            let (class_id, images) = &self.classes[order[position % c]];
            samples.extend(self.draw(epoch, *class_id, images, position / c));
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

    /// K images of one class for its `occurrence`-th appearance (0 or 1) in an epoch.
    fn draw(&self, epoch: u64, class_id: u32, images: &[usize], occurrence: usize) -> Vec<usize> {
        let k = self.config.per_class;
        let mut rng = stream(
            self.config.seed,
            Purpose::ClassImages,
            &[epoch, u64::from(class_id)],
        );
        let mut shuffled = images.to_vec();
        shuffled.shuffle(&mut rng);
        if shuffled.len() >= k {
            let start = occurrence * k;
            return (0..k)
                .map(|i| shuffled[(start + i) % shuffled.len()])
                .collect();
        }
        // Fewer than K: all of them, then draws with replacement (a stream per appearance).
        let mut extra = stream(
            self.config.seed,
            Purpose::ClassImages,
            &[epoch, u64::from(class_id), occurrence as u64 + 1],
        );
        let mut chosen = shuffled;
        while chosen.len() < k {
            chosen.push(
                *images
                    .choose(&mut extra)
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
