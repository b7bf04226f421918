//! Forward and backward of an ImageNet network on a batch, timed: the cost that decides how
//! fast `lifted train` runs on a photo dataset. The input is a random batch of B×3×S×S, the
//! loss is the sum of squared embeddings (so the time is the network's, not a loss's); batch
//! norm frozen as in the paper's protocol. The PyTorch side is
//! `tools/bench/torch_network_step.py`; both print one JSON line with the median of the runs.
//!
//! ```text
//! cargo bench --bench network_step -- googlenet 16 227 5 2    # network, B, S, runs, threads
//! ```

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use lifted::train::model::{Architecture, BnMode, EmbeddingNet, ModelConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.to_string());
    let arch: Architecture =
        serde_json::from_str(&format!("\"{}\"", arg(0, "googlenet"))).expect("a network name");
    let batch: usize = arg(1, "16").parse().expect("a batch size");
    let size: usize = arg(2, "227").parse().expect("an image size");
    let runs: usize = arg(3, "5").parse().expect("a number of runs");
    let threads: usize = arg(4, "2").parse().expect("a number of threads");
    // As `lifted train` does.
    lifted::train::allocator::keep_freed_memory();
    // candle's CPU kernels use rayon's global pool.
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("one global pool");
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let config = ModelConfig {
        arch,
        embedding: 512,
        bn: BnMode::Frozen,
        width: 16,
        dropout: 0.0,
    };
    let net = EmbeddingNet::new(config, &vb)?;
    let images = Tensor::randn(0f32, 1.0, (batch, 3, size, size), &device)?;
    let (mut forward, mut step) = (Vec::new(), Vec::new());
    for run in 0..runs + 1 {
        let start = Instant::now();
        let y = net.forward(&images, true)?;
        let loss = y.sqr()?.sum_all()?;
        let _ = loss.to_scalar::<f32>()?;
        let forward_s = start.elapsed().as_secs_f64();
        let grads = loss.backward()?;
        drop(grads);
        if run > 0 {
            forward.push(forward_s);
            step.push(start.elapsed().as_secs_f64());
        }
    }
    println!(
        "{{\"tool\": \"lifted\", \"network\": \"{}\", \"batch\": {batch}, \"size\": {size}, \"threads\": {threads}, \"forward_ms\": {:.1}, \"forward_backward_ms\": {:.1}}}",
        arg(0, "googlenet"),
        median(forward) * 1e3,
        median(step) * 1e3
    );
    Ok(())
}
