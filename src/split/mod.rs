//! Class-disjoint splits: the dataset's canonical split, seeded random splits with a chosen
//! ratio, and validation folds inside the training classes.
//!
//! A seeded split orders the classes by `SHA-256("lifted-split-v1" 0 seed 0 class_id 0
//! class_name)` (numbers in decimal, `0` a zero byte) and puts the first `round(ratio · n)` in
//! training. It depends only on the seed and the classes, not on the order of the catalogue,
//! the machine or a random-number crate's version; `tools/reference_split.py` implements the
//! same rule independently. Validation folds cut the ordered training classes (by id for the
//! canonical split, by key for a seeded one) into `k` contiguous runs of near-equal size, as the
//! Metric Learning Reality Check does; fold `f` is run `f`.
//!
//! Every split is exported as `split.csv` (`path,class_id,class_name,split`) and `split.json`.
//! The split's hash is the SHA-256 of `split.csv`'s bytes, so anyone can recompute it with
//! `sha256sum split.csv`.

mod command;
mod export;
mod stored;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use command::{ExportError, SplitReport, SplitRequest, export_split};
pub use export::{SplitFiles, render_csv, write_split};
pub use stored::{SplitRow, StoredSplit, StoredSplitError, read_split};

use crate::catalog::{Catalog, OfficialPart};
use crate::manifest::CanonicalSplit;

/// Errors from making a split.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The dataset has no canonical split.
    #[error("{dataset} has no canonical split; choose a seeded one (a seed and a ratio)")]
    NoCanonical {
        /// The dataset.
        dataset: String,
    },
    /// The ratio is not strictly between 0 and 1.
    #[error(
        "the ratio must be strictly between 0 and 1 (the share of classes used for training), not {0}"
    )]
    BadRatio(f64),
    /// Fewer than 2 folds.
    #[error("a split needs at least 2 folds, not {0}")]
    TooFewFolds(u32),
    /// The validation fold is not one of the folds.
    #[error("the validation fold must be between 0 and {} for {count} folds, not {fold}", count - 1)]
    NoSuchFold {
        /// The fold asked for.
        fold: u32,
        /// The number of folds.
        count: u32,
    },
    /// More folds than training classes.
    #[error("{count} folds need at least {count} training classes; the split has {classes}")]
    FoldsOverClasses {
        /// The number of folds.
        count: u32,
        /// The training classes.
        classes: usize,
    },
    /// There are too few classes to split.
    #[error("a class-disjoint split needs at least 2 classes with images; the catalogue has {0}")]
    TooFewClasses(usize),
    /// A class is in neither canonical range.
    #[error(
        "class {class_id} is in neither the canonical train range {train:?} nor the test range {test:?}"
    )]
    OutsideRanges {
        /// The class.
        class_id: u32,
        /// The training range.
        train: [u32; 2],
        /// The test range.
        test: [u32; 2],
    },
    /// The dataset's official split puts one class on both sides.
    #[error(
        "class {0} has images in both the official train and test lists, so the split is not class-disjoint"
    )]
    NotDisjoint(u32),
    /// An image has no official part although the split needs one.
    #[error("{path} has no official train/test assignment")]
    Unassigned {
        /// The image.
        path: String,
    },
    /// Writing the split failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How classes are divided between training and test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SplitMethod {
    /// The dataset's canonical split.
    Canonical,
    /// A seeded random split; `ratio` is the share of classes used for training.
    Seeded {
        /// The seed.
        seed: u64,
        /// The share of classes for training, strictly between 0 and 1.
        ratio: f64,
    },
}

/// Validation folds inside the training classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Folds {
    /// Number of folds.
    pub count: u32,
    /// Which fold is the validation part (0-based).
    pub fold: u32,
}

/// A complete split request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SplitSpec {
    /// How train and test are chosen.
    pub method: SplitMethod,
    /// Optional validation fold.
    pub folds: Option<Folds>,
}

impl SplitSpec {
    /// A short name for folders and summaries: `canonical`, `seed7-ratio0.5`, `…-fold1of4`.
    pub fn name(&self) -> String {
        let mut name = match self.method {
            SplitMethod::Canonical => "canonical".to_string(),
            SplitMethod::Seeded { seed, ratio } => format!("seed{seed}-ratio{ratio}"),
        };
        if let Some(folds) = self.folds {
            name.push_str(&format!("-fold{}of{}", folds.fold, folds.count));
        }
        name
    }
}

/// A part of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Training classes.
    Train,
    /// Validation classes (a fold of the training classes).
    Val,
    /// Test classes.
    Test,
}

impl Part {
    /// The name used in `split.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which images of a split a stage takes (`pack --split`): one part's, or every image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum Selection {
    /// The images of one part.
    Only(Part),
    /// Every image.
    All,
}

impl Selection {
    /// The name used in folder names and in `index.json` (`train`, `val`, `test`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::Only(part) => part.as_str(),
            Selection::All => "all",
        }
    }

    /// Whether an image of split part `part` is taken.
    pub fn takes(self, part: Part) -> bool {
        match self {
            Selection::Only(wanted) => wanted == part,
            Selection::All => true,
        }
    }
}

impl From<Part> for Selection {
    fn from(part: Part) -> Selection {
        Selection::Only(part)
    }
}

impl From<Selection> for &'static str {
    fn from(selection: Selection) -> &'static str {
        selection.as_str()
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A split: one part per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// What was asked for.
    pub spec: SplitSpec,
    /// The part of every class that has images.
    pub class_parts: BTreeMap<u32, Part>,
}

/// Images and classes in one part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartCounts {
    /// Number of images.
    pub images: usize,
    /// Number of classes.
    pub classes: usize,
}

impl Split {
    /// The part of an image's class.
    pub fn part_of(&self, class_id: u32) -> Part {
        self.class_parts[&class_id]
    }

    /// Images and classes per part, over `catalog`.
    pub fn counts(&self, catalog: &Catalog) -> BTreeMap<Part, PartCounts> {
        let mut counts: BTreeMap<Part, PartCounts> = BTreeMap::new();
        for part in self.class_parts.values() {
            counts.entry(*part).or_default().classes += 1;
        }
        for image in &catalog.images {
            counts
                .entry(self.part_of(image.class_id))
                .or_default()
                .images += 1;
        }
        counts
    }
}

/// Makes a split of `catalog`; `canonical` is the manifest's rule, where the dataset has one.
///
/// # Errors
/// [`SplitError::TooFewClasses`] when the catalogue's images have fewer than 2 classes; for the
/// canonical method, [`SplitError::NoCanonical`] when `canonical` is `None`,
/// [`SplitError::OutsideRanges`] when a class is in neither range, and [`SplitError::Unassigned`]
/// or [`SplitError::NotDisjoint`] when the official split leaves an image out or puts a class on
/// both sides; for a seeded split, [`SplitError::BadRatio`] when the ratio is not strictly between
/// 0 and 1; with folds, [`SplitError::TooFewFolds`], [`SplitError::NoSuchFold`] or
/// [`SplitError::FoldsOverClasses`] when there are fewer than 2 folds, the fold is not one of them,
/// or there are fewer training classes than folds.
pub fn make_split(
    catalog: &Catalog,
    canonical: Option<&CanonicalSplit>,
    spec: SplitSpec,
) -> Result<Split, SplitError> {
    let classes: BTreeSet<u32> = catalog.images.iter().map(|i| i.class_id).collect();
    if classes.len() < 2 {
        return Err(SplitError::TooFewClasses(classes.len()));
    }
    // Training classes in fold order, and test classes.
    let (train, test): (Vec<u32>, Vec<u32>) = match spec.method {
        SplitMethod::Canonical => match canonical {
            None => {
                return Err(SplitError::NoCanonical {
                    dataset: catalog.dataset.clone(),
                });
            }
            Some(CanonicalSplit::ClassRange { train, test, .. }) => {
                let inside = |r: &[u32; 2], c: u32| r[0] <= c && c <= r[1];
                if let Some(&class_id) = classes
                    .iter()
                    .find(|&&c| !inside(train, c) && !inside(test, c))
                {
                    return Err(SplitError::OutsideRanges {
                        class_id,
                        train: *train,
                        test: *test,
                    });
                }
                classes.iter().partition(|&&c| inside(train, c))
            }
            Some(CanonicalSplit::Annotated { .. }) => official_classes(catalog)?,
        },
        SplitMethod::Seeded { seed, ratio } => {
            if !(ratio > 0.0 && ratio < 1.0) {
                return Err(SplitError::BadRatio(ratio));
            }
            let names = catalog.class_names();
            let mut keyed: Vec<([u8; 32], u32)> = classes
                .iter()
                .map(|&c| (class_key(seed, c, names.get(&c).copied().unwrap_or("")), c))
                .collect();
            keyed.sort_unstable();
            let n = keyed.len();
            let n_train = ((ratio * n as f64).round() as usize).clamp(1, n - 1);
            let ordered: Vec<u32> = keyed.into_iter().map(|(_, c)| c).collect();
            (ordered[..n_train].to_vec(), ordered[n_train..].to_vec())
        }
    };
    let mut class_parts: BTreeMap<u32, Part> = BTreeMap::new();
    class_parts.extend(test.iter().map(|&c| (c, Part::Test)));
    class_parts.extend(train.iter().map(|&c| (c, Part::Train)));
    if let Some(folds) = spec.folds {
        for c in fold_classes(&train, folds)? {
            class_parts.insert(c, Part::Val);
        }
    }
    Ok(Split { spec, class_parts })
}

/// The seeded ordering key of a class.
pub fn class_key(seed: u64, class_id: u32, class_name: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"lifted-split-v1\0");
    hasher.update(seed.to_string().as_bytes());
    hasher.update(b"\0");
    hasher.update(class_id.to_string().as_bytes());
    hasher.update(b"\0");
    hasher.update(class_name.as_bytes());
    hasher.finalize().into()
}

/// Train and test classes from the dataset's own per-image split (SOP).
fn official_classes(catalog: &Catalog) -> Result<(Vec<u32>, Vec<u32>), SplitError> {
    let mut parts: BTreeMap<u32, OfficialPart> = BTreeMap::new();
    for image in &catalog.images {
        let part = image.official.ok_or_else(|| SplitError::Unassigned {
            path: image.path.clone(),
        })?;
        if *parts.entry(image.class_id).or_insert(part) != part {
            return Err(SplitError::NotDisjoint(image.class_id));
        }
    }
    let side = |wanted: OfficialPart| {
        parts
            .iter()
            .filter(|(_, part)| **part == wanted)
            .map(|(class, _)| *class)
            .collect()
    };
    Ok((side(OfficialPart::Train), side(OfficialPart::Test)))
}

/// The classes of validation fold `folds.fold` among the ordered training classes.
fn fold_classes(train: &[u32], folds: Folds) -> Result<Vec<u32>, SplitError> {
    let (k, f) = (folds.count as usize, folds.fold as usize);
    if k < 2 {
        return Err(SplitError::TooFewFolds(folds.count));
    }
    if f >= k {
        return Err(SplitError::NoSuchFold {
            fold: folds.fold,
            count: folds.count,
        });
    }
    if train.len() < k {
        return Err(SplitError::FoldsOverClasses {
            count: folds.count,
            classes: train.len(),
        });
    }
    let n = train.len();
    Ok(train[f * n / k..(f + 1) * n / k].to_vec())
}
