//! Evaluation against independent references (`tools/golden/eval_reference.py`): brute-force
//! NumPy and faiss neighbours, pytorch-metric-learning's precision@1, R-precision and MAP@R,
//! scikit-learn's NMI and AMI, the original code's pairwise F1, scikit-learn's k-means inertia.

use candle_core::{Device, Tensor};
use lifted::eval::{self, EvalOptions, Metric, clustering, kmeans, knn, retrieval};

use crate::support::images::fixtures;

struct Case {
    name: String,
    x: Tensor,
    labels: Vec<i64>,
    json: serde_json::Value,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("eval/reference.json")).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .map(|c| {
            let rows: Vec<Vec<f32>> = c["embeddings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap() as f32)
                        .collect()
                })
                .collect();
            let (n, d) = (rows.len(), rows[0].len());
            Case {
                name: c["name"].as_str().unwrap().to_string(),
                x: Tensor::from_vec(rows.concat(), (n, d), &Device::Cpu).unwrap(),
                labels: c["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect(),
                json: c,
            }
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn neighbours_match_brute_force_for_every_block_size() {
    for case in cases() {
        let k = case.json["k"].as_u64().unwrap() as usize;
        let expected: Vec<Vec<u32>> = case.json["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect()
            })
            .collect();
        for block in [1, 7, 64, 10_000] {
            let found = knn(&case.x, k, Metric::Euclidean, block).unwrap();
            assert_eq!(found.k, k);
            for (i, row) in expected.iter().enumerate() {
                // Distances are computed in f32 here, f64 there: compare as sets of near-equal
                // distances by checking the first few exactly and that the query is never there.
                assert!(
                    !found.of(i).contains(&(i as u32)),
                    "{}: query {i} among its neighbours",
                    case.name
                );
                assert_eq!(
                    found.of(i)[..3],
                    row[..3],
                    "{} block {block}: query {i}",
                    case.name
                );
            }
            // Distances ascend.
            for i in 0..found.len() {
                let d = &found.distances[i * k..(i + 1) * k];
                assert!(
                    d.windows(2).all(|w| w[0] <= w[1]),
                    "{}: query {i}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn retrieval_metrics_match_brute_force_and_pml() {
    for case in cases() {
        let ks: Vec<usize> = case.json["ks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let k = retrieval::neighbours_needed(&case.labels, &ks);
        let found = knn(&case.x, k, Metric::Euclidean, 64).unwrap();
        let m = retrieval::retrieval(&found, &case.labels, &ks);
        for (kk, value) in &m.recall_at {
            let expected = case.json["recall"][kk.to_string()].as_f64().unwrap();
            assert!(
                close(*value, expected, 1e-12),
                "{}: R@{kk} {value} vs {expected}",
                case.name
            );
        }
        for (mine, key) in [
            (m.precision_at_1, "precision_at_1"),
            (m.r_precision, "r_precision"),
            (m.map_at_r, "map_at_r"),
        ] {
            let expected = case.json[key].as_f64().unwrap();
            assert!(
                close(mine, expected, 1e-6),
                "{}: {key} {mine} vs PML {expected}",
                case.name
            );
        }
        assert_eq!(m.lone_queries, 0);
    }
}

#[test]
fn clustering_scores_match_scikit_learn_and_the_original_f1() {
    for case in cases() {
        for c in case.json["clusterings"].as_array().unwrap() {
            let clusters: Vec<u32> = c["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let s = clustering::scores(&clusters, &case.labels);
            for (mine, key) in [(s.nmi, "nmi"), (s.ami, "ami"), (s.f1, "f1")] {
                let expected = c[key].as_f64().unwrap();
                assert!(
                    close(mine, expected, 1e-9),
                    "{}: {key} {mine} vs {expected}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn kmeans_finds_clusters_as_well_as_scikit_learn() {
    for case in cases() {
        let k = case
            .labels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let mut best = f64::MAX;
        for seed in 0..3 {
            let result = kmeans::kmeans(
                &case.x,
                kmeans::KMeansConfig {
                    k,
                    seed,
                    max_iter: 300,
                    block: 50,
                },
            )
            .unwrap();
            assert_eq!(result.assignments.len(), case.labels.len());
            assert!(result.assignments.iter().all(|&a| (a as usize) < k));
            best = best.min(result.inertia);
        }
        let sklearn = case.json["sklearn_kmeans_inertia"].as_f64().unwrap();
        // Best of 3 seeds against scikit-learn's best of 10: within 5%.
        assert!(
            best <= sklearn * 1.05,
            "{}: inertia {best} vs scikit-learn {sklearn}",
            case.name
        );
    }
    // Well separated blobs are found exactly.
    let tight = &cases()[0];
    let result = kmeans::kmeans(
        &tight.x,
        kmeans::KMeansConfig {
            k: 8,
            seed: 0,
            max_iter: 100,
            block: 64,
        },
    )
    .unwrap();
    let scores = clustering::scores(&result.assignments, &tight.labels);
    assert!(scores.nmi > 0.999, "{scores:?}");
    // No rows: an error that says so, not a panic.
    let empty =
        candle_core::Tensor::zeros((0, 4), candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap();
    let config = kmeans::KMeansConfig {
        k: 8,
        seed: 0,
        max_iter: 100,
        block: 64,
    };
    let err = kmeans::kmeans(&empty, config).unwrap_err();
    assert!(err.to_string().contains("at least one row"), "{err}");
}

#[test]
fn kmeans_with_many_clusters_is_seeded_in_rounds_and_independent_of_threads() {
    // k = 300 > 128: plain k-means++ in rounds; k = 40: greedy k-means++ one centre at a time.
    for (classes, per_class) in [(300, 4), (40, 10)] {
        let (points, labels) = crate::support::blobs(classes, per_class, 16, 100.0, 0.1);
        let x = candle_core::Tensor::from_vec(
            points,
            (classes * per_class, 16),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let config = kmeans::KMeansConfig {
            k: classes,
            seed: 3,
            max_iter: 100,
            block: 97,
        };
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| kmeans::kmeans(&x, config).unwrap())
        };
        let (one, two) = (in_pool(1), in_pool(2));
        assert_eq!(one, two, "k = {classes}");
        assert!(one.iterations < 100, "k = {classes} did not converge");
        let scores = clustering::scores(&one.assignments, &labels);
        assert!(scores.nmi > 0.98, "k = {classes}: {scores:?}");
    }
}

#[test]
fn the_full_report_and_cosine_distance() {
    let case = &cases()[1];
    let options = EvalOptions {
        recall_at: vec![1, 2, 4, 8],
        metric: Metric::Euclidean,
        kmeans_runs: 2,
        kmeans_max_iter: 50,
        block: 100,
    };
    let report = eval::evaluate(&case.x, &case.labels, &options).unwrap();
    assert_eq!(report.samples, case.labels.len());
    assert_eq!(report.classes, 15);
    let clustering = report.clustering.unwrap();
    assert_eq!(clustering.runs, 2);
    assert!(clustering.nmi.mean > 0.5 && clustering.nmi.mean <= 1.0);
    // Cosine distance: the neighbours of a vector do not change when rows are rescaled.
    let scales = Tensor::arange(1u32, case.labels.len() as u32 + 1, &Device::Cpu)
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .unsqueeze(1)
        .unwrap();
    let scaled = case.x.broadcast_mul(&scales).unwrap();
    let a = knn(&case.x, 5, Metric::Cosine, 50).unwrap();
    let b = knn(&scaled, 5, Metric::Cosine, 50).unwrap();
    assert_eq!(a.indices, b.indices);
    assert!(a.distances.iter().all(|&d| (0.0..=2.0).contains(&d)));
    // Bad input is refused with a reason.
    let nan = Tensor::new(&[[0f32, f32::NAN], [1.0, 1.0]], &Device::Cpu).unwrap();
    let err = eval::evaluate(&nan, &[0, 0], &options).unwrap_err();
    assert!(err.to_string().contains("NaN"), "{err}");
    let err = eval::evaluate(&case.x, &[0, 1], &options).unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
}
