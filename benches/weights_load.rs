//! Loading a weight file into a network, timed: the `.pth` read (pickle, storages, f32 tensors)
//! and the copy into the network's variables, as `lifted train --weights` does. The PyTorch side
//! is `tools/bench/torch_load.py`; `tools/bench/weights_vs_torch.sh` runs both.
//!
//! ```text
//! cargo bench --bench weights_load -- FILE.pth resnet50
//! ```

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use lifted::train::model::{Architecture, BnMode, EmbeddingNet, ModelConfig};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [path, arch] = args.as_slice() else {
        eprintln!("usage: weights_load FILE resnet18|resnet50|googlenet|bninception");
        std::process::exit(2);
    };
    let arch: Architecture = serde_json::from_str(&format!("\"{arch}\"")).expect("a network name");
    let started = Instant::now();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config = ModelConfig {
        arch,
        embedding: 512,
        bn: BnMode::Frozen,
        width: 16,
        dropout: 0.0,
    };
    EmbeddingNet::new(config, &vb).expect("the network builds");
    let built = started.elapsed().as_secs_f64();
    let report = lifted::weights::load_into(&varmap, path.as_ref(), &["embedding."])
        .expect("the file loads");
    let total = started.elapsed().as_secs_f64();
    println!(
        "{{\"tool\": \"lifted\", \"build_s\": {built:.3}, \"load_s\": {:.3}, \"total_s\": {total:.3}, \"tensors\": {}}}",
        total - built,
        report.loaded
    );
}
