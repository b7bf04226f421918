//! Evaluation at Stanford Online Products' test scale: the time and peak memory of exact
//! Recall@{1,10,100,1000} (kNN with k = 1000 by blocked matrix products, then the metrics),
//! or of k-means with k = number of classes (k-means++ seeding, then a fixed number of Lloyd
//! iterations). The faiss counterpart: `tools/bench/faiss_eval.py`; both: `eval_vs_faiss.sh`.
//!
//!     cargo bench --bench eval_scale -- X.npy Y.npy knn|kmeans [iterations]
//!
//! Prints one JSON line: seconds, peak RSS (VmHWM) in MiB, and the results to compare.

use std::path::Path;
use std::time::Instant;

use lifted::eval::{Metric, io, kmeans, knn, retrieval};

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let (x, y, mode) = match &args[1..] {
        [x, y, mode, ..] => (x, y, mode.as_str()),
        _ => panic!("usage: eval_scale X.npy Y.npy knn|kmeans [iterations]"),
    };
    let iterations: usize = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(20);
    let embeddings = io::read_embeddings(Path::new(x)).expect("embeddings");
    let labels = io::read_labels(Path::new(y)).expect("labels");
    let start = Instant::now();
    match mode {
        "knn" => {
            let ks = [1, 10, 100, 1000];
            let k = retrieval::neighbours_needed(&labels, &ks);
            let neighbours = knn(&embeddings, k, Metric::Euclidean, 1024).expect("knn");
            let found = retrieval::retrieval(&neighbours, &labels, &ks);
            let seconds = start.elapsed().as_secs_f64();
            let recall: Vec<String> = found
                .recall_at
                .iter()
                .map(|(k, v)| format!("\"R@{k}\": {v:.6}"))
                .collect();
            println!(
                "{{\"tool\": \"lifted\", \"mode\": \"knn\", \"k\": {k}, \"seconds\": {seconds:.2}, \
                 \"peak_rss_mib\": {:.0}, {}, \"MAP@R\": {:.6}}}",
                peak_rss_mib(),
                recall.join(", "),
                found.map_at_r
            );
        }
        "kmeans" => {
            let classes = labels
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            let config = kmeans::KMeansConfig {
                k: classes,
                seed: 0,
                max_iter: iterations,
                block: 1024,
            };
            let result = kmeans::kmeans(&embeddings, config).expect("kmeans");
            let seconds = start.elapsed().as_secs_f64();
            let nmi = lifted::eval::clustering::scores(&result.assignments, &labels).nmi;
            println!(
                "{{\"tool\": \"lifted\", \"mode\": \"kmeans\", \"k\": {classes}, \"iterations\": {}, \
                 \"seconds\": {seconds:.2}, \"peak_rss_mib\": {:.0}, \"inertia\": {:.2}, \
                 \"NMI\": {nmi:.6}}}",
                result.iterations,
                peak_rss_mib(),
                result.inertia
            );
        }
        other => panic!("unknown mode {other}: knn or kmeans"),
    }
}
