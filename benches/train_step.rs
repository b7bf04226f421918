//! Time of (1) the lifted structured loss, forward and backward, on a batch of 128 embeddings
//! (32 classes × 4) of dimension 512, and (2) one training step of the small CNN (forward,
//! lifted loss, backward, SGD with momentum) on 128 images of 3×32×32; median of the runs.
//! The PyTorch counterpart: `tools/bench/torch_train_step.py`.
//!
//!     cargo bench --bench train_step -- [runs] [threads]

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use lifted::loss::lifted_structured_loss;
use lifted::train::model::{Architecture, BnMode, EmbeddingNet, ModelConfig, parameter_groups};
use lifted::train::optim::{OptimConfig, Optimizer, OptimizerKind, Schedule};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let runs: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(30);
    let width: usize = std::env::var("LIFTED_BENCH_WIDTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    // As `lifted train` does.
    lifted::train::allocator::keep_freed_memory();
    if let Some(threads) = args.get(2) {
        // candle's CPU kernels use rayon's global pool.
        let n: usize = threads.parse().expect("threads");
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .expect("one global pool");
    }
    let device = Device::Cpu;
    let labels: Vec<u32> = (0..128u32).map(|i| i / 4).collect();
    let labels = Tensor::new(labels.as_slice(), &device)?;

    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (128, 512), &device)?)?;
    let mut loss_times = Vec::new();
    for _ in 0..runs + 3 {
        let start = Instant::now();
        let loss = lifted_structured_loss(x.as_tensor(), &labels, 1.0).expect("a valid batch");
        let grads = loss.backward()?;
        let _ = grads
            .get(x.as_tensor())
            .expect("a gradient")
            .sum_all()?
            .to_scalar::<f32>()?;
        loss_times.push(start.elapsed().as_secs_f64());
    }
    let loss_ms = median(loss_times.split_off(3)) * 1e3;

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let config = ModelConfig {
        arch: Architecture::Small,
        embedding: 64,
        bn: BnMode::Train,
        width,
        dropout: 0.0,
    };
    let net = EmbeddingNet::new(config, &vb)?;
    let groups = parameter_groups(&varmap, BnMode::Train);
    let optim_config = OptimConfig {
        kind: OptimizerKind::Sgd,
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 1e-4,
        head_lr_mult: 1.0,
        betas: (0.9, 0.999),
        eps: 1e-8,
        schedule: Schedule::Constant,
    };
    let mut optimizer = Optimizer::new(optim_config, vec![(groups.trunk, 1.0), (groups.head, 1.0)]);
    let images = Tensor::randn(0f32, 1.0, (128, 3, 32, 32), &device)?;
    let mut step_times = Vec::new();
    for _ in 0..runs.min(20) + 2 {
        let start = Instant::now();
        let embeddings = net.forward(&images, true)?;
        let loss = lifted_structured_loss(&embeddings, &labels, 1.0).expect("a valid batch");
        let grads = loss.backward()?;
        optimizer.step(&grads)?;
        step_times.push(start.elapsed().as_secs_f64());
    }
    let step_ms = median(step_times.split_off(2)) * 1e3;
    println!(
        "{{\"lifted_loss_fwd_bwd_ms\": {loss_ms:.3}, \"small_cnn_step_ms\": {step_ms:.1}, \"threads\": {}}}",
        rayon::current_num_threads()
    );
    Ok(())
}
