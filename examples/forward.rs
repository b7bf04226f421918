//! Runs one of lifted's trunks on an input batch with weights from a safetensors file and
//! writes the pooled features, for `tools/golden/torchvision_forward.py` to compare with
//! torchvision.
//!
//!     cargo run --release --example forward -- ARCH WEIGHTS.safetensors INPUT.npy OUTPUT.npy
//! ARCH is resnet18, resnet50 or googlenet; INPUT is float32 [N, 3, H, W].

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use lifted::train::model::{Architecture, BnMode, EmbeddingNet, ModelConfig, load_weights};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, weights, input, output] = &args[..] else {
        return Err("usage: forward ARCH WEIGHTS.safetensors INPUT.npy OUTPUT.npy".into());
    };
    let arch = match arch.as_str() {
        "resnet18" => Architecture::ResNet18,
        "resnet50" => Architecture::ResNet50,
        "googlenet" => Architecture::GoogLeNet,
        other => return Err(format!("unknown architecture {other}").into()),
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config = ModelConfig {
        arch,
        embedding: 8,
        bn: BnMode::Frozen,
        width: 32,
        dropout: 0.0,
    };
    let net = EmbeddingNet::new(config, &vb)?;
    let report = load_weights(&varmap, weights.as_ref())?;
    eprintln!(
        "loaded {} tensors; missing {:?}; unused {}",
        report.loaded,
        report.missing,
        report.unused.len()
    );
    let x = Tensor::read_npy(input)?.to_dtype(DType::F32)?;
    net.features(&x, false)?.write_npy(output)?;
    Ok(())
}
