//! Random streams derived from a seed and a path of numbers, so that every random choice (the
//! loader's batches and augmentations, the network's initial weights, dropout masks) depends only
//! on (seed, what it is for, epoch, batch, position or name), never on thread scheduling or on
//! how many choices were made before. This is what lets a resumed run repeat an uninterrupted one.
//!
//! A stream is ChaCha8 (portable, value-stable) keyed by SHA-256 of the seed and the path.

// Which purposes a build uses depends on its features (the loader's, the trainer's, plot's).
#![cfg_attr(not(all(feature = "train", feature = "plot")), allow(dead_code))]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// What a random stream is for (part of its key).
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Purpose {
    /// The order of classes in an epoch.
    ClassOrder = 1,
    /// The images drawn from one class in one epoch.
    ClassImages = 2,
    /// The augmentation of one sample.
    Augment = 3,
    /// The initial value of one network variable.
    Init = 4,
    /// The dropout mask of one training step.
    Dropout = 5,
    /// Subsampling and layout of a picture.
    Plot = 6,
}

/// The random stream for `seed`, `purpose` and `path`.
pub fn stream(seed: u64, purpose: Purpose, path: &[u64]) -> ChaCha8Rng {
    let mut hasher = Sha256::new();
    hasher.update(b"lifted-rng-v1\0");
    hasher.update(seed.to_le_bytes());
    hasher.update((purpose as u64).to_le_bytes());
    for part in path {
        hasher.update(part.to_le_bytes());
    }
    ChaCha8Rng::from_seed(hasher.finalize().into())
}

/// The random stream for `seed`, `purpose` and a name (a network variable's).
pub fn stream_named(seed: u64, purpose: Purpose, name: &str) -> ChaCha8Rng {
    let digest = Sha256::digest(name.as_bytes());
    let words: Vec<u64> = digest
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    stream(seed, purpose, &words)
}
