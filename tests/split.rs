//! Splits: the canonical rules, seeded splits checked against the independent Python
//! reference (`tools/reference_split.py`), folds, and the exported files.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use lifted::catalog::{Catalog, ClassInfo, ImageRecord, OfficialPart};
use lifted::dataset::{self, DatasetRef};
use lifted::manifest::{CanonicalSplit, ExpectedCounts};
use lifted::prepare;
use lifted::split::{
    Folds, Part, Split, SplitError, SplitMethod, SplitSpec, make_split, write_split,
};
use sha2::{Digest, Sha256};

use crate::support::images::fixtures;
use crate::support::prepare_options;

/// The bundled sample's catalogue, prepared once for all tests in this module.
fn sample() -> &'static Catalog {
    static SAMPLE: OnceLock<(tempfile::TempDir, Catalog)> = OnceLock::new();
    &SAMPLE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            prepare::prepare(&DatasetRef::parse("sample"), &prepare_options(dir.path())).unwrap();
            let catalog = dataset::open(&DatasetRef::parse("sample"), dir.path())
                .unwrap()
                .catalog;
            (dir, catalog)
        })
        .1
}

fn classes_in(split: &Split, part: Part) -> Vec<u32> {
    split
        .class_parts
        .iter()
        .filter(|(_, p)| **p == part)
        .map(|(c, _)| *c)
        .collect()
}

fn toy(classes: &[u32], per_class: usize) -> Catalog {
    Catalog {
        dataset: "toy".to_string(),
        root: "/nowhere".into(),
        classes: classes
            .iter()
            .map(|&id| ClassInfo {
                id,
                name: format!("class {id}"),
            })
            .collect(),
        images: classes
            .iter()
            .flat_map(|&c| {
                (0..per_class).map(move |i| ImageRecord {
                    path: format!("{c}/{i}.jpg"),
                    class_id: c,
                    bbox: None,
                    official: None,
                })
            })
            .collect(),
        notes: vec![],
    }
}

fn range(train: [u32; 2], test: [u32; 2]) -> CanonicalSplit {
    let none = ExpectedCounts {
        images: 0,
        classes: 0,
    };
    CanonicalSplit::ClassRange {
        train,
        test,
        expected_train: none,
        expected_test: none,
    }
}

#[test]
fn seeded_splits_match_the_independent_reference() {
    let bytes = std::fs::read(fixtures().join("splits/reference.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let folds = case["folds"].as_u64().map(|count| Folds {
            count: count as u32,
            fold: case["fold"].as_u64().unwrap() as u32,
        });
        let method = SplitMethod::Seeded {
            seed: case["seed"].as_u64().unwrap(),
            ratio: case["ratio"].as_f64().unwrap(),
        };
        let split = make_split(sample(), None, SplitSpec { method, folds }).unwrap();
        for (part, key) in [
            (Part::Train, "train"),
            (Part::Val, "val"),
            (Part::Test, "test"),
        ] {
            let expected: Vec<u32> = case[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(classes_in(&split, part), expected, "{case}: {key}");
        }
    }
}

#[test]
fn seeded_split_ignores_catalogue_order() {
    let mut shuffled = sample().clone();
    shuffled.images.reverse();
    shuffled.classes.reverse();
    let spec = SplitSpec {
        method: SplitMethod::Seeded {
            seed: 5,
            ratio: 0.5,
        },
        folds: None,
    };
    assert_eq!(
        make_split(sample(), None, spec).unwrap(),
        make_split(&shuffled, None, spec).unwrap()
    );
    let other_seed = SplitSpec {
        method: SplitMethod::Seeded {
            seed: 6,
            ratio: 0.5,
        },
        folds: None,
    };
    assert_ne!(
        make_split(sample(), None, spec).unwrap(),
        make_split(sample(), None, other_seed).unwrap()
    );
}

#[test]
fn canonical_class_ranges() {
    let catalog = toy(&[1, 2, 97, 98, 99, 100, 195, 196], 2);
    let split = make_split(
        &catalog,
        Some(&range([1, 98], [99, 196])),
        SplitSpec {
            method: SplitMethod::Canonical,
            folds: None,
        },
    )
    .unwrap();
    assert_eq!(classes_in(&split, Part::Train), [1, 2, 97, 98]);
    assert_eq!(classes_in(&split, Part::Test), [99, 100, 195, 196]);
    let err = make_split(
        &toy(&[1, 300], 1),
        Some(&range([1, 98], [99, 196])),
        SplitSpec {
            method: SplitMethod::Canonical,
            folds: None,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, SplitError::OutsideRanges { class_id: 300, .. }),
        "{err:?}"
    );
}

#[test]
fn canonical_folds_are_contiguous_class_runs() {
    let catalog = toy(&(1..=20).collect::<Vec<_>>(), 1);
    let canonical = range([1, 10], [11, 20]);
    let mut seen = BTreeSet::new();
    for fold in 0..3 {
        let spec = SplitSpec {
            method: SplitMethod::Canonical,
            folds: Some(Folds { count: 3, fold }),
        };
        let split = make_split(&catalog, Some(&canonical), spec).unwrap();
        let val = classes_in(&split, Part::Val);
        assert!(
            val.windows(2).all(|w| w[1] == w[0] + 1),
            "fold {fold}: {val:?}"
        );
        assert_eq!(
            classes_in(&split, Part::Test),
            (11..=20).collect::<Vec<_>>()
        );
        seen.extend(val);
    }
    assert_eq!(
        seen,
        (1..=10).collect(),
        "the folds cover the training classes exactly"
    );
}

#[test]
fn annotated_split_must_be_class_disjoint() {
    let mut catalog = toy(&[1, 2], 2);
    for image in &mut catalog.images {
        image.official = Some(if image.class_id == 1 {
            OfficialPart::Train
        } else {
            OfficialPart::Test
        });
    }
    let annotated = CanonicalSplit::Annotated {
        expected_train: ExpectedCounts {
            images: 2,
            classes: 1,
        },
        expected_test: ExpectedCounts {
            images: 2,
            classes: 1,
        },
    };
    let spec = SplitSpec {
        method: SplitMethod::Canonical,
        folds: None,
    };
    let split = make_split(&catalog, Some(&annotated), spec).unwrap();
    assert_eq!(classes_in(&split, Part::Train), [1]);
    catalog.images[3].official = Some(OfficialPart::Train);
    assert!(matches!(
        make_split(&catalog, Some(&annotated), spec),
        Err(SplitError::NotDisjoint(2))
    ));
}

#[test]
fn impossible_requests_are_explained() {
    let catalog = toy(&[1, 2, 3], 1);
    let seeded = |ratio| SplitSpec {
        method: SplitMethod::Seeded { seed: 0, ratio },
        folds: None,
    };
    assert!(matches!(
        make_split(&catalog, None, seeded(1.0)),
        Err(SplitError::BadRatio(_))
    ));
    assert!(matches!(
        make_split(&catalog, None, seeded(f64::NAN)),
        Err(SplitError::BadRatio(_))
    ));
    let folds = |count, fold| SplitSpec {
        method: SplitMethod::Seeded {
            seed: 0,
            ratio: 0.67,
        },
        folds: Some(Folds { count, fold }),
    };
    assert!(matches!(
        make_split(&catalog, None, folds(3, 0)),
        Err(SplitError::FoldsOverClasses {
            count: 3,
            classes: 2
        })
    ));
    assert!(matches!(
        make_split(&catalog, None, folds(2, 2)),
        Err(SplitError::NoSuchFold { fold: 2, count: 2 })
    ));
    assert!(matches!(
        make_split(&catalog, None, folds(1, 0)),
        Err(SplitError::TooFewFolds(1))
    ));
    assert!(matches!(
        make_split(&toy(&[1], 3), None, seeded(0.5)),
        Err(SplitError::TooFewClasses(1))
    ));
    let canonical = SplitSpec {
        method: SplitMethod::Canonical,
        folds: None,
    };
    assert!(matches!(
        make_split(&catalog, None, canonical),
        Err(SplitError::NoCanonical { .. })
    ));
}

#[test]
fn exported_files_describe_the_split_and_hash_the_csv() {
    let catalog = toy(&[1, 2, 3, 4], 2);
    let spec = SplitSpec {
        method: SplitMethod::Seeded {
            seed: 1,
            ratio: 0.5,
        },
        folds: None,
    };
    let split = make_split(&catalog, None, spec).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = write_split(&catalog, &split, dir.path()).unwrap();
    let csv = std::fs::read(&files.csv).unwrap();
    assert_eq!(files.hash, hex::encode(Sha256::digest(&csv)));
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("path,class_id,class_name,split"));
    for (line, image) in lines.zip(&catalog.images) {
        let part = split.part_of(image.class_id);
        assert_eq!(
            line,
            format!(
                "{},{},class {},{part}",
                image.path, image.class_id, image.class_id
            )
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files.json).unwrap()).unwrap();
    assert_eq!(json["hash"], files.hash.as_str());
    assert_eq!(json["parts"]["train"]["images"], 4);
    assert_eq!(json["parts"]["test"]["classes"], 2);
    assert_eq!(json["spec"]["method"]["seed"], 1);
}
