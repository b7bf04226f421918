//! Scores embeddings written by any framework: an N×D `.npy` file (float32 or float64) and N
//! integer labels (`.npy`, or a CSV with one label per line or a `label` column), with the
//! paper's retrieval and clustering metrics (Recall@K, MAP@R, R-precision, NMI, AMI, F1).
//!
//! Needs the `eval` feature:
//!
//! ```text
//! cargo run --release --example eval_embeddings --no-default-features --features eval -- \
//!     EMBEDDINGS.npy LABELS.npy [sop]
//! ```
//!
//! With `sop` it reports Recall@1, 10, 100, 1000 (the paper's SOP table), else 1, 2, 4, 8.

use std::path::PathBuf;

use lifted::eval::io::{read_embeddings, read_labels};
use lifted::eval::{EvalOptions, evaluate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (embeddings, labels, dataset) = match args.as_slice() {
        [e, l] => (e, l, ""),
        [e, l, d] => (e, l, d.as_str()),
        _ => {
            eprintln!("usage: eval_embeddings EMBEDDINGS.npy LABELS.npy [sop]");
            std::process::exit(2);
        }
    };
    let embeddings = read_embeddings(&PathBuf::from(embeddings))?;
    let labels = read_labels(&PathBuf::from(labels))?;
    let report = evaluate(&embeddings, &labels, &EvalOptions::for_dataset(dataset))?;
    print!("{report}");
    // The numbers, for a script: e.g. Recall@1.
    let (k, recall) = report.retrieval.recall_at[0];
    println!("R@{k} = {recall:.4}");
    Ok(())
}
