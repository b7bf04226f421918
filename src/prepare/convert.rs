//! Converting an alternative layout of a dataset, once extracted, to its main layout, so that
//! one catalogue reader and one split serve both.
//!
//! **CARS-196's devkit layout** (`cars_train/00001.jpg` … `08144.jpg`, `cars_test/00001.jpg` …
//! `08041.jpg`, `devkit/cars_train_annos.mat`, `cars_test_annos_withlabels.mat`) becomes the
//! metric-learning layout (`car_ims/000001.jpg` … `016185.jpg` with `cars_annos.mat`). The two
//! number their images differently (`car_ims` is ordered by class, the devkit shuffled) and no
//! published table maps one to the other, so the images are matched on what both annotation
//! sets record: the class and the bounding box, with Krause's train/test flag (`cars_annos.mat`'s
//! `test` against the devkit file the row comes from) to break the one tie across the two parts.
//! The few boxes that are shared by two images of one class and part are assigned in file
//! order; both images then have the same class, box and part, so the split files do not change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::PrepareError;
use crate::catalog::cars196::{self, CarsRow};
use crate::manifest::Conversion;

/// Applies `conversion` to the extracted files in `root`; returns remarks for the summary.
pub(crate) fn apply(conversion: Conversion, root: &Path) -> Result<Vec<String>, PrepareError> {
    match conversion {
        Conversion::CarsDevkit => cars_devkit(root),
    }
}

/// A devkit image: which part it is in, and its file name there.
#[derive(Debug, Clone)]
struct DevkitImage {
    test: bool,
    fname: String,
}

/// (class, x1, y1, x2, y2): what both annotation sets say about an image.
type Key = (u32, [i64; 4]);

fn key(row: &CarsRow) -> Key {
    (row.class, row.corners.map(|c| c.round() as i64))
}

fn cars_devkit(root: &Path) -> Result<Vec<String>, PrepareError> {
    let fail = |problem: String| PrepareError::Conversion {
        path: root.to_path_buf(),
        problem,
    };
    let names = cars196::read_rows(&root.join("cars_annos.mat"), "relative_im_path", true)?;
    let train = cars196::read_rows(
        &first_of(
            root,
            &["devkit/cars_train_annos.mat", "cars_train_annos.mat"],
        ),
        "fname",
        false,
    )?;
    let test = cars196::read_rows(
        &first_of(
            root,
            &[
                "cars_test_annos_withlabels.mat",
                "devkit/cars_test_annos_withlabels.mat",
            ],
        ),
        "fname",
        false,
    )?;
    let mut candidates: HashMap<Key, Vec<(DevkitImage, bool)>> = HashMap::new();
    for (rows, is_test) in [(&train.rows, false), (&test.rows, true)] {
        for row in rows {
            candidates.entry(key(row)).or_default().push((
                DevkitImage {
                    test: is_test,
                    fname: row.name.clone(),
                },
                false,
            ));
        }
    }
    let shared = candidates
        .values()
        .filter(|c| {
            c.iter().filter(|(i, _)| !i.test).count() > 1
                || c.iter().filter(|(i, _)| i.test).count() > 1
        })
        .count();
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(names.rows.len());
    for row in &names.rows {
        let wanted_test = row.test.unwrap_or(false);
        let slot = candidates.get_mut(&key(row)).and_then(|list| {
            let same_part = list
                .iter()
                .position(|(i, used)| !used && i.test == wanted_test);
            same_part
                .or_else(|| list.iter().position(|(_, used)| !used))
                .map(|at| {
                    list[at].1 = true;
                    list[at].0.clone()
                })
        });
        let Some(image) = slot else {
            return Err(fail(format!(
                "{} (class {}, box {:?}) matches no image of the devkit's annotations",
                row.name, row.class, row.corners
            )));
        };
        let target = crate::catalog::safe_relative(&row.name)
            .ok_or_else(|| fail(format!("`{}` is not a relative path", row.name)))?;
        let part = if image.test {
            "cars_test"
        } else {
            "cars_train"
        };
        let source = devkit_image(root, part, &image.fname)
            .ok_or_else(|| fail(format!("{part}/{} is missing", image.fname)))?;
        moves.push((source, root.join(target)));
    }
    let unused: Vec<String> = candidates
        .values()
        .flatten()
        .filter(|(_, used)| !used)
        .map(|(i, _)| i.fname.clone())
        .collect();
    if !unused.is_empty() {
        return Err(fail(format!(
            "{} devkit images match no row of cars_annos.mat (first: {})",
            unused.len(),
            unused[0]
        )));
    }
    for (source, target) in &moves {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| PrepareError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::rename(source, target).map_err(|e| PrepareError::Io {
            path: source.clone(),
            source: e,
        })?;
    }
    let mut notes = vec![format!(
        "the devkit's {} images were given cars_annos.mat's names by class and box",
        moves.len()
    )];
    if shared > 0 {
        notes.push(format!(
            "{shared} class-and-box pairs are shared by two images of one part; they were \
             assigned in file order (same class, box and part, so the split is the same)"
        ));
    }
    Ok(notes)
}

/// The first of `candidates` (relative to `root`) that exists, else the first.
fn first_of(root: &Path, candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(|c| root.join(c))
        .find(|p| p.exists())
        .unwrap_or_else(|| root.join(candidates[0]))
}

/// Where a devkit image is: `<part>/<fname>`, or `<part>/<part>/<fname>` as some copies nest it.
fn devkit_image(root: &Path, part: &str, fname: &str) -> Option<PathBuf> {
    let name = crate::catalog::safe_relative(fname)?;
    [
        root.join(part).join(&name),
        root.join(part).join(part).join(&name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}
