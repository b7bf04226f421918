//! Issue 17: every number `lifted` prints is right. Retrieval against a float64 brute force
//! over offsets and scales, cosine with zero rows, results that are the same to the last byte
//! in every process, and degenerate inputs that are refused instead of reported as numbers.

use std::path::Path;

use candle_core::{Device, Tensor};
use lifted::eval::knn::Neighbours;
use lifted::eval::{EvalOptions, Metric, evaluate, retrieval};

use crate::support::{run, stderr, stdout};

/// `classes` clusters of `per_class` points in `dim` dimensions, float64: centres standard
/// normal, points within a normal spread of 1 of their centre (a fixed xorshift stream and
/// Box–Muller).
fn clusters(classes: usize, per_class: usize, dim: usize) -> (Vec<f64>, Vec<i64>) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut normal =
        move || (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
    let centres: Vec<f64> = (0..classes * dim).map(|_| normal()).collect();
    let mut points = Vec::new();
    let mut labels = Vec::new();
    for c in 0..classes {
        for _ in 0..per_class {
            points.extend((0..dim).map(|j| centres[c * dim + j] + normal()));
            labels.push(c as i64);
        }
    }
    (points, labels)
}

/// Every sample's `k` nearest others by squared Euclidean distance computed in float64 from
/// the float32 values (ties by index), as [`Neighbours`].
fn brute_force(x: &[f32], n: usize, dim: usize, k: usize) -> Neighbours {
    let mut indices = Vec::with_capacity(n * k);
    let mut distances = Vec::with_capacity(n * k);
    for q in 0..n {
        let mut all: Vec<(f64, u32)> = (0..n)
            .filter(|&r| r != q)
            .map(|r| {
                let d: f64 = (0..dim)
                    .map(|j| f64::from(x[q * dim + j]) - f64::from(x[r * dim + j]))
                    .map(|v| v * v)
                    .sum();
                (d, r as u32)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (d, r) in all.into_iter().take(k) {
            indices.push(r);
            distances.push(d.sqrt() as f32);
        }
    }
    Neighbours {
        k,
        indices,
        distances,
    }
}

fn options() -> EvalOptions {
    EvalOptions {
        kmeans_runs: 0,
        ..EvalOptions::for_dataset("x")
    }
}

#[test]
fn euclidean_retrieval_equals_a_float64_brute_force_for_any_offset_and_scale() {
    for dim in [128, 8] {
        let (base, labels) = clusters(100, 10, dim);
        let n = labels.len();
        for offset in [0.0, 1.0, 1e3, 1e6] {
            for scale in [1e-6, 1e-3, 1.0, 1e3, 1e6] {
                let x: Vec<f32> = base.iter().map(|v| (offset + scale * v) as f32).collect();
                let tensor = Tensor::from_vec(x.clone(), (n, dim), &Device::Cpu).unwrap();
                let got = evaluate(&tensor, &labels, &options()).unwrap().retrieval;
                let k = retrieval::neighbours_needed(&labels, &options().recall_at);
                let reference = retrieval::retrieval(
                    &brute_force(&x, n, dim, k),
                    &labels,
                    &options().recall_at,
                );
                assert_eq!(
                    got, reference,
                    "D={dim}, offset {offset}, scale {scale}: lifted {got:?}, float64 {reference:?}"
                );
            }
        }
    }
}

#[test]
fn cosine_treats_a_zero_row_as_dissimilar_to_everything() {
    // Rows 0 and 1 point one way, 2 and 3 the opposite way, 4 is zero. Row 2's nearest other
    // by cosine is 3 (similarity 1), then the zero row (similarity 0), then 0 and 1 (−1).
    let x = Tensor::new(
        &[
            [1f32, 0.0],
            [2.0, 0.0],
            [-1.0, 0.1],
            [-3.0, 0.2],
            [0.0, 0.0],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let neighbours = lifted::eval::knn(&x, 4, Metric::Cosine, 2).unwrap();
    assert_eq!(neighbours.of(2), [3, 4, 0, 1]);
    let zero_row = &neighbours.distances[4 * 4..5 * 4];
    assert!(zero_row.iter().all(|&d| d == 1.0), "{zero_row:?}");
    assert_eq!(
        neighbours.distances[2 * 4 + 1],
        1.0,
        "sklearn: cosine distance 1"
    );
}

fn write_npy(path: &Path, x: &[f32], n: usize, dim: usize) {
    Tensor::from_vec(x.to_vec(), (n, dim), &Device::Cpu)
        .unwrap()
        .write_npy(path)
        .unwrap();
}

#[test]
fn two_processes_print_the_same_bytes() {
    let (base, labels) = clusters(20, 6, 16);
    let x: Vec<f32> = base.iter().map(|&v| v as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    let xs = dir.path().join("x.npy");
    write_npy(&xs, &x, labels.len(), 16);
    let ys = dir.path().join("y.csv");
    let csv: String = labels.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&ys, csv).unwrap();
    let args = [
        "eval",
        "--json",
        "--embeddings",
        xs.to_str().unwrap(),
        "--labels",
        ys.to_str().unwrap(),
    ];
    let first = run(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    for _ in 0..3 {
        let again = run(&args);
        assert_eq!(
            stdout(&again),
            stdout(&first),
            "NMI, AMI and F1 to the last digit"
        );
    }
}

#[test]
fn degenerate_evaluations_are_refused_and_repeated_ks_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let xs = dir.path().join("x.npy");
    let ys = dir.path().join("y.csv");
    write_npy(&xs, &[0.0, 1.0, 1.0, 0.0], 2, 2);
    std::fs::write(&ys, "0\n1\n").unwrap();
    let output = run(&[
        "eval",
        "--embeddings",
        xs.to_str().unwrap(),
        "--labels",
        ys.to_str().unwrap(),
    ]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no retrieval metric has a query to average"),
        "{err}"
    );

    let x = Tensor::new(
        &[[0f32, 1.0], [0.0, 1.1], [5.0, 0.0], [5.0, 0.2]],
        &Device::Cpu,
    )
    .unwrap();
    let labels = [0, 0, 1, 1];
    let zero = EvalOptions {
        recall_at: vec![0, 1],
        ..options()
    };
    let err = evaluate(&x, &labels, &zero).unwrap_err().to_string();
    assert!(err.contains("K of at least 1"), "{err}");
    let repeated = EvalOptions {
        recall_at: vec![1, 1, 2, 1],
        ..options()
    };
    let report = evaluate(&x, &labels, &repeated).unwrap();
    let ks: Vec<usize> = report.retrieval.recall_at.iter().map(|(k, _)| *k).collect();
    assert_eq!(ks, [1, 2]);
}

#[test]
fn the_data_recipe_follows_the_data_and_the_run_states_it() {
    use lifted::shard::ResizeMode;
    use lifted::train::model::Architecture;
    use lifted::train::{Protocol, TrainConfig};
    let protocol = Protocol::for_dataset("cub200");
    assert_eq!(protocol, Protocol::Paper);
    let photos = TrainConfig::defaults(protocol, "cub200", "d".into(), Architecture::Small);
    // The paper's squares: the long side to 256, padded white, stored as JPEG q90.
    assert_eq!(
        (photos.pack.size, photos.pack.resize, photos.pack.quality),
        (256, ResizeMode::PadSquare, Some(90))
    );
    assert_eq!(photos.normalize, lifted::loader::Normalize::IMAGENET);
    assert!(matches!(
        photos.augment,
        lifted::loader::Augment::RandomCrop {
            size: 227,
            flip: true
        }
    ));
    let glyphs = TrainConfig::defaults(
        Protocol::for_dataset("sample"),
        "sample",
        "d".into(),
        Architecture::GoogLeNet,
    );
    assert_eq!(glyphs.pack, lifted::shard::Preprocess::raw(32));
    let text = photos.describe();
    assert!(
        text.starts_with("Protocol paper with small CNN")
            && text.contains("JPEG 256")
            && text.contains("with flips"),
        "{text}"
    );
}

#[test]
fn a_raw_pack_reports_no_jpeg_quality() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let prepared = run(&[
        "prepare-data",
        "sample",
        "--quiet",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(prepared.status.success(), "{}", stderr(&prepared));
    let output = run(&[
        "pack",
        "sample",
        "--json",
        "--data-dir",
        data.to_str().unwrap(),
        "--encoding",
        "raw",
        "--size",
        "16",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(summary["preprocess"].get("quality").is_none(), "{summary}");
    assert_eq!(summary["preprocess"]["encoding"], "raw");
}
