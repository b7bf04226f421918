//! Integration tests, one binary (see `support` for the harness).

mod support;

/// Extraction of hostile, truncated and oversized archives.
mod archive;
/// Annotation readers and the image check, on fixtures in each dataset's exact layout.
mod catalog;
/// `prepare-data` and `split` end to end through the binary.
mod cli;
/// Issue 17: numbers against float64 references, determinism, degenerate inputs.
mod correctness;
/// Evaluation against independent references.
mod eval;
/// Downloads against a local server with injected faults.
mod fetch;
/// Decoding against Pillow and numpy reference pixels.
mod imageio;
/// Runs killed during download and during extraction, then re-run.
mod interrupt;
/// The loader: sampler, pipeline, augmentation.
mod loader;
/// The losses against golden values and finite differences.
mod loss;
/// pack, verify and inspect.
mod pack;
/// Pictures: retrieval grid, t-SNE map, training curves.
mod plot;
/// Issue 12: SOP's GIFs, CARS in both layouts, downloads as a careful person makes them.
mod real_archives;
/// Issue 11: no command deletes, overwrites or mislabels data, panics or hangs.
mod safety;
/// The shard format: the spec example, round trips, every malformed case.
mod shard;
/// Canonical, seeded and fold splits, against an independent reference.
mod split;
/// Training: optimisers, resume, non-finite losses.
mod train;
/// ImageNet weights: fetched, verified, read without Python, loaded by name.
mod weights;
