//! Pictures: the retrieval grid's layout and frame colours, the t-SNE map's separation and
//! determinism, and the training-curve reader on damaged logs.

use lifted::eval::retrieval::RetrievalMetrics;
use lifted::eval::{ClusteringReport, EvalReport, MeanSd, Metric, Neighbours};
use lifted::plot::PlotError;
use lifted::plot::curves::parse_log;
use lifted::plot::grid::{
    GridOptions, QUERY_FRAME, RIGHT_FRAME, WRONG_FRAME, query_indices, write_grid,
};
use lifted::plot::tsne::{TsneOptions, tsne_map, write_png};
use lifted::runlog::LogRecord;
use lifted::shard::{Encoding, ShardSet, ShardWriter};

/// Solid colour of sample `i`.
fn colour(i: u32) -> [u8; 3] {
    [
        (i * 37 % 256) as u8,
        (i * 91 % 256) as u8,
        (200 - i * 5) as u8,
    ]
}

/// 4 classes × 5 solid-colour 24×16 raw images; sample i (class i / 5 + 1) has `colour(i)`.
fn solid_set(dir: &std::path::Path) -> ShardSet {
    let mut writer = ShardWriter::create(dir, "shard-00000.lfs", 0, Encoding::Raw, 12).unwrap();
    let mut sources = Vec::new();
    for i in 0..20u32 {
        let pixels: Vec<u8> = (0..24 * 16).flat_map(|_| colour(i)).collect();
        writer.push(i / 5 + 1, 24, 16, i, &pixels).unwrap();
        sources.push(format!("c{}/{i}.png", i / 5 + 1));
    }
    let written = writer.finish().unwrap();
    crate::loader::index(dir, Encoding::Raw, written, 4, 5, sources);
    ShardSet::open(dir).unwrap()
}

#[test]
fn the_grid_frames_each_neighbour_by_whether_its_class_matches() {
    let dir = tempfile::tempdir().unwrap();
    let set = solid_set(dir.path());
    let labels: Vec<i64> = (0..20).map(|i| i / 5).collect();
    // Neighbours of i: i+1, i+5, i+2 (mod 20): same class, other class, and it depends.
    let k = 3;
    let indices: Vec<u32> = (0..20u32)
        .flat_map(|i| [(i + 1) % 20, (i + 5) % 20, (i + 2) % 20])
        .collect();
    let neighbours = Neighbours {
        k,
        distances: vec![0.0; indices.len()],
        indices,
    };
    let options = GridOptions {
        queries: 4,
        neighbours: 3,
        tile: 40,
        frame: 3,
    };
    let path = dir.path().join("grid.png");
    write_grid(&set, &neighbours, &labels, &options, &path).unwrap();
    let grid = image::open(&path).unwrap().to_rgb8();
    // One row per query: the query, a 16-pixel gap, then 3 tiles 4 pixels apart.
    assert_eq!(grid.dimensions(), (40 + 16 + 3 * 44 - 4, 4 * 44 - 4));
    let queries = query_indices(20, 4);
    assert_eq!(queries, [0, 5, 10, 15]);
    for (row, &q) in queries.iter().enumerate() {
        let y = row as u32 * 44;
        assert_eq!(grid.get_pixel(1, y + 1).0, QUERY_FRAME);
        assert_eq!(grid.get_pixel(20, y + 20).0, colour(q as u32), "query {q}");
        for (col, &hit) in neighbours.of(q).iter().enumerate() {
            let x = 56 + col as u32 * 44;
            let expected = if labels[hit as usize] == labels[q] {
                RIGHT_FRAME
            } else {
                WRONG_FRAME
            };
            assert_eq!(
                grid.get_pixel(x + 1, y + 38).0,
                expected,
                "query {q} hit {hit}"
            );
            assert_eq!(
                grid.get_pixel(x + 20, y + 20).0,
                colour(hit),
                "query {q} hit {hit}"
            );
        }
    }

    let short = Neighbours {
        k: 1,
        indices: vec![0; 3],
        distances: vec![0.0; 3],
    };
    let err = write_grid(&set, &short, &labels, &options, &path).unwrap_err();
    assert!(
        matches!(
            err,
            PlotError::GridInputs {
                samples: 20,
                neighbour_lists: 3,
                ..
            }
        ),
        "{err}"
    );
}

/// Leave-one-out nearest-neighbour accuracy of 2-D points.
fn one_nn_accuracy(points: &[[f32; 2]], labels: &[i64]) -> f64 {
    let hits = (0..points.len())
        .filter(|&i| {
            let nearest = (0..points.len())
                .filter(|&j| j != i)
                .min_by(|&a, &b| {
                    let d = |j: usize| {
                        (points[i][0] - points[j][0]).powi(2)
                            + (points[i][1] - points[j][1]).powi(2)
                    };
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            labels[nearest] == labels[i]
        })
        .count();
    hits as f64 / points.len() as f64
}

#[test]
fn the_tsne_map_keeps_clusters_apart_and_is_reproducible() {
    let (x, y) = crate::support::blobs(8, 40, 16, 10.0, 1.0);
    let embeddings =
        candle_core::Tensor::from_vec(x, (320, 16), &candle_core::Device::Cpu).unwrap();
    let options = TsneOptions {
        epochs: 500,
        ..TsneOptions::default()
    };
    let map = tsne_map(&embeddings, &y, &options).unwrap();
    assert_eq!(map.points.len(), 320);
    assert_eq!(map.labels, y);
    assert!(
        map.points
            .iter()
            .all(|p| p[0].is_finite() && p[1].is_finite())
    );
    let accuracy = one_nn_accuracy(&map.points, &map.labels);
    assert!(accuracy > 0.97, "2-D 1-NN accuracy {accuracy}");
    let again = tsne_map(&embeddings, &y, &options).unwrap();
    assert_eq!(again.points, map.points);

    // A seeded subsample: distinct, sorted, the same for the same seed, labels carried along.
    let sub = TsneOptions {
        points: 100,
        epochs: 200,
        metric: Metric::Cosine,
        ..options
    };
    let a = tsne_map(&embeddings, &y, &sub).unwrap();
    assert_eq!(a.indices.len(), 100);
    assert!(a.indices.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        a.labels,
        a.indices.iter().map(|&i| y[i]).collect::<Vec<_>>()
    );
    assert_eq!(tsne_map(&embeddings, &y, &sub).unwrap().indices, a.indices);
    let other = tsne_map(&embeddings, &y, &TsneOptions { seed: 1, ..sub }).unwrap();
    assert_ne!(other.indices, a.indices);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tsne.png");
    write_png(&map, 300, &path).unwrap();
    let picture = image::open(&path).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (300, 300));
    let colours: std::collections::BTreeSet<[u8; 3]> = picture
        .pixels()
        .map(|p| p.0)
        .filter(|&p| p != [255, 255, 255])
        .collect();
    assert!(colours.len() >= 8, "{} colours drawn", colours.len());

    let err = tsne_map(&embeddings.narrow(0, 0, 4).unwrap(), &y[..4], &options).unwrap_err();
    assert!(err.to_string().contains("at least 5 points"), "{err}");
}

#[test]
fn the_curve_reader_skips_a_torn_last_line_and_groups_metrics() {
    let report = |recall: [f64; 2], map_at_r: f64, nmi_f1: Option<(f64, f64)>| EvalReport {
        samples: 10,
        classes: 5,
        metric: Metric::Euclidean,
        retrieval: RetrievalMetrics {
            recall_at: vec![(1, recall[0]), (2, recall[1])],
            precision_at_1: recall[0],
            r_precision: 0.0,
            map_at_r,
            queries: 10,
            lone_queries: 0,
        },
        clustering: nmi_f1.map(|(nmi, f1)| ClusteringReport {
            k: 5,
            runs: 1,
            nmi: MeanSd { mean: nmi, sd: 0.0 },
            ami: MeanSd { mean: 0.0, sd: 0.0 },
            f1: MeanSd { mean: f1, sd: 0.0 },
        }),
    };
    let step = |step, global_step, loss, lr| LogRecord::Step {
        epoch: 0,
        step,
        global_step,
        loss,
        lr,
        images_per_s: None,
    };
    let records = [
        LogRecord::Eval {
            epoch: 0,
            global_step: 0,
            report: report([0.25, 0.5], 0.1, Some((0.3, 0.05))),
        },
        step(0, 1, 3.5, 0.001),
        step(1, 2, 3.0, 0.0005),
        LogRecord::Epoch {
            epoch: 0,
            global_step: 2,
            mean_loss: 3.25,
            seconds: 1.0,
        },
        LogRecord::Eval {
            epoch: 1,
            global_step: 2,
            report: report([0.5, 0.75], 0.2, None),
        },
    ];
    let mut log: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    // A run killed while writing leaves a torn last line.
    log.push_str(r#"{"type":"step","epoch":1,"step":0,"glob"#);
    let log = log.as_str();
    let curves = parse_log(log);
    assert_eq!(curves.loss, [(1.0, 3.5), (2.0, 3.0)]);
    assert_eq!(curves.learning_rate, [(1.0, 0.001), (2.0, 0.0005)]);
    assert_eq!(curves.epoch_loss, [(2.0, 3.25)]);
    assert_eq!(curves.unreadable_lines, 1);
    let names: Vec<&str> = curves.metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["R@1", "R@2", "MAP@R", "NMI", "F1"]);
    assert_eq!(curves.metrics[0].1, [(0.0, 0.25), (1.0, 0.5)]);
    assert_eq!(curves.metrics[3].1, [(0.0, 0.3)]);
}
