//! Writing a split as `split.csv` and `split.json`, for `lifted` and for other projects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Part, PartCounts, Split, SplitError, SplitSpec};
use crate::catalog::Catalog;
use crate::fsutil;

/// The files a split was written to, and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitFiles {
    /// `split.csv`.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub csv: PathBuf,
    /// `split.json`.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    pub json: PathBuf,
    /// SHA-256 of `split.csv`, lower-case hex.
    pub hash: String,
}

/// The contents of `split.json`.
#[derive(Serialize)]
struct SplitJson<'a> {
    format: &'static str,
    dataset: &'a str,
    name: String,
    spec: &'a SplitSpec,
    /// SHA-256 of `split.csv`.
    hash: &'a str,
    /// The folder the paths in `split.csv` are relative to.
    #[serde(serialize_with = "crate::fsutil::lossy_path")]
    root: &'a Path,
    parts: BTreeMap<Part, PartJson>,
}

#[derive(Serialize)]
struct PartJson {
    #[serde(flatten)]
    counts: PartCounts,
    class_ids: Vec<u32>,
}

/// `split.csv`'s bytes: `path,class_id,class_name,split`, one row per image in catalogue order.
pub fn render_csv(catalog: &Catalog, split: &Split) -> Vec<u8> {
    let names = catalog.class_names();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = ["path", "class_id", "class_name", "split"];
    writer
        .write_record(header)
        .expect("writing to memory cannot fail");
    for image in &catalog.images {
        let class_id = image.class_id.to_string();
        let name = names.get(&image.class_id).copied().unwrap_or_default();
        let part = split.part_of(image.class_id).as_str();
        writer
            .write_record([image.path.as_str(), &class_id, name, part])
            .expect("writing to memory cannot fail");
    }
    writer.into_inner().expect("writing to memory cannot fail")
}

/// Writes `split.csv` and `split.json` into `dir` (created if needed), each atomically.
///
/// # Errors
/// [`SplitError::Write`] when `split.csv` or `split.json` cannot be written.
pub fn write_split(catalog: &Catalog, split: &Split, dir: &Path) -> Result<SplitFiles, SplitError> {
    let csv_bytes = render_csv(catalog, split);
    let hash = hex::encode(Sha256::digest(&csv_bytes));
    let counts = split.counts(catalog);
    let parts = counts
        .into_iter()
        .map(|(part, counts)| {
            let class_ids = split
                .class_parts
                .iter()
                .filter(|(_, p)| **p == part)
                .map(|(c, _)| *c)
                .collect();
            (part, PartJson { counts, class_ids })
        })
        .collect();
    let json = SplitJson {
        format: "lifted-split/1",
        dataset: &catalog.dataset,
        name: split.spec.name(),
        spec: &split.spec,
        hash: &hash,
        root: &catalog.root,
        parts,
    };
    let json_bytes = serde_json::to_vec_pretty(&json).expect("a split has only text keys");
    let files = SplitFiles {
        csv: dir.join("split.csv"),
        json: dir.join("split.json"),
        hash,
    };
    for (path, bytes) in [(&files.csv, &csv_bytes), (&files.json, &json_bytes)] {
        fsutil::write_atomic(path, bytes).map_err(|source| SplitError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(files)
}
