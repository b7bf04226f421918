//! What a training run reads: the packed training and test parts of its split, prepared and
//! packed here when they are missing or out of date.
//!
//! Shards are reused only while they are exactly what the run asks for: the same split (by
//! hash), the same preprocessing settings, and the same source images (the prepared dataset's
//! digest, and every image's size and modification time). Anything else is packed again.

use std::path::Path;
use std::sync::Arc;

use super::TrainError;
use super::config::TrainConfig;
use crate::dataset::{self, DatasetRef, Prepared};
use crate::pack::{self, PackOptions};
use crate::prepare::{self, PrepareOptions};
use crate::progress::Progress;
use crate::shard::{MadeFrom, Preprocess, ShardSet, sources_digest};
use crate::split::{Part, Selection};

/// The shard sets a run reads.
pub struct Data {
    /// Training samples.
    pub train: Arc<ShardSet>,
    /// Test samples.
    pub test: Arc<ShardSet>,
    /// SHA-256 of the split.
    pub split_hash: String,
}

/// The packed training and test parts for a run, packing what is missing or out of date (and
/// preparing the bundled sample if needed).
///
/// # Errors
/// [`TrainError::Dataset`] when the dataset is not prepared (other than the bundled sample) or
/// cannot be opened; [`TrainError::Prepare`] when the bundled sample cannot be prepared;
/// [`TrainError::Pack`] when the split cannot be read or a part cannot be packed;
/// [`TrainError::Shard`] when a freshly packed part cannot be opened.
pub fn data_for(config: &TrainConfig, progress: Progress) -> Result<Data, TrainError> {
    let reference = DatasetRef::parse(&config.dataset);
    let prepared = open_or_prepare_sample(config, &reference, progress)?;
    let split_dir = config
        .split_dir
        .clone()
        .unwrap_or_else(|| prepared.dir.split(&prepared.info.default_split));
    let split =
        crate::split::read_split(&split_dir).map_err(|e| pack::PackError::Select(e.into()))?;
    let settings = config.pack.normalized();
    let open = |part: Part| -> Result<Arc<ShardSet>, TrainError> {
        let part = Selection::Only(part);
        let out = pack::default_out(&prepared, &split_dir, part, &settings)?;
        if let Ok(set) = ShardSet::open(&out)
            && up_to_date(&set, &prepared, &split.hash, &settings)
        {
            return Ok(Arc::new(set));
        }
        let options = PackOptions {
            data_dir: config.data_dir.clone(),
            part,
            split_dir: Some(split_dir.clone()),
            preprocess: settings,
            threads: config.threads,
            strict: false,
            shard_bytes: 1 << 30,
            out: Some(out.clone()),
            force: false,
            progress,
        };
        pack::pack(&reference, &options)?;
        Ok(Arc::new(ShardSet::open(&out)?))
    };
    let train = open(Part::Train)?;
    let test = open(Part::Test)?;
    Ok(Data {
        train,
        test,
        split_hash: split.hash,
    })
}

/// The prepared dataset; the bundled sample is prepared on first use.
/// The prepared dataset `config` trains on, the bundled sample prepared if missing: a run
/// checks it before fetching anything slow.
pub(crate) fn prepared_dataset(
    config: &TrainConfig,
    progress: Progress,
) -> Result<Prepared, TrainError> {
    open_or_prepare_sample(config, &DatasetRef::parse(&config.dataset), progress)
}

fn open_or_prepare_sample(
    config: &TrainConfig,
    reference: &DatasetRef,
    progress: Progress,
) -> Result<Prepared, TrainError> {
    match dataset::open_prepared_ref(reference, &config.data_dir) {
        Ok(prepared) => Ok(prepared),
        Err(dataset::DatasetError::NotPrepared { .. }) if config.dataset == "sample" => {
            let options = PrepareOptions {
                data_dir: config.data_dir.clone(),
                manifest: None,
                archives: Vec::new(),
                allow_unverified: false,
                skip_bad_images: false,
                name: None,
                fetch: Default::default(),
                progress,
            };
            prepare::prepare(reference, &options)?;
            Ok(dataset::open_prepared_ref(reference, &config.data_dir)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `set` holds the split `split_hash` packed with `settings` from the images the
/// prepared dataset holds now.
fn up_to_date(
    set: &ShardSet,
    prepared: &Prepared,
    split_hash: &str,
    settings: &Preprocess,
) -> bool {
    let index = set.index();
    let now = MadeFrom {
        prepared: prepared.info.digest(),
        sources: sources_digest(
            Path::new(&prepared.catalog.root),
            index.sources.iter().map(String::as_str),
        ),
    };
    index.split.hash == split_hash && index.preprocess == *settings && index.made_from == now
}
