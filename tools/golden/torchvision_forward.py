#!/usr/bin/env python3
"""Checks that lifted's ResNet-18, ResNet-50 and GoogLeNet trunks compute what torchvision's
compute, on the same weights: builds each torchvision model with seeded random weights and
random batch-norm affine parameters, sets its batch-norm statistics from a few random batches
(as training would, so activations keep a realistic scale), saves its state_dict as
safetensors, runs
`cargo run --release --example forward` on a random batch, and compares the pooled features
(the input of `fc`) in eval mode. Prints the largest absolute difference per network.

    python3 tools/golden/torchvision_forward.py [--size 224] [--batch 2]
Needs torch, torchvision and safetensors (no pretrained download: the weights are random).
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]


def features(model, name, x):
    model.eval()
    with torch.no_grad():
        if name == "googlenet":
            model.transform_input = False
            model.aux_logits = False
        model.fc = torch.nn.Identity()
        model.dropout = torch.nn.Identity() if hasattr(model, "dropout") else None
        return model(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "--example", "forward"], cwd=ROOT, check=True)
    worst = 0.0
    for name in ["resnet18", "resnet50", "googlenet"]:
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                    m.momentum = None  # cumulative averages over the calibration batches
            model.train()
            for _ in range(4):
                model(torch.randn(4, 3, args.size, args.size))
        x = torch.randn(args.batch, 3, args.size, args.size)
        expected = features(model, name, x).numpy()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            save_file(state, tmp / "w.safetensors")
            np.save(tmp / "x.npy", x.numpy())
            subprocess.run([str(ROOT / "target/release/examples/forward"), name, str(tmp / "w.safetensors"),
                            str(tmp / "x.npy"), str(tmp / "y.npy")], check=True)
            ours = np.load(tmp / "y.npy")
        diff = float(np.abs(ours - expected).max())
        worst = max(worst, diff)
        print(f"{name}: features {ours.shape}, max |lifted - torchvision| = {diff:.2e} "
              f"(feature scale {float(np.abs(expected).max()):.2f})")
    print("ok" if worst <= 1e-3 else "MISMATCH", f"(worst {worst:.2e}, tolerance 1e-3)")
    sys.exit(0 if worst <= 1e-3 else 1)


if __name__ == "__main__":
    main()
