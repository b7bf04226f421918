#!/usr/bin/env python3
"""Golden trajectories for lifted's optimisers from PyTorch's: SGD with momentum and weight decay
(torch.optim.SGD), and AdamW (torch.optim.AdamW), five steps each on a fixed parameter with a
fixed sequence of gradients, with a learning-rate multiplier group. Writes
tests/fixtures/optim/golden.json. Run: python3 tools/golden/optimizers.py
"""
import json
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "optim" / "golden.json"


def run(kind, **kw):
    torch.manual_seed(0)
    w0 = torch.randn(6, dtype=torch.float64)
    grads = [torch.randn(6, dtype=torch.float64) for _ in range(5)]
    a = w0[:3].clone().requires_grad_(True)
    b = w0[3:].clone().requires_grad_(True)
    lr = kw.pop("lr")
    groups = [{"params": [a], "lr": lr}, {"params": [b], "lr": lr * 10}]
    opt = torch.optim.SGD(groups, **kw) if kind == "sgd" else torch.optim.AdamW(groups, **kw)
    trajectory = []
    for g in grads:
        a.grad, b.grad = g[:3].clone(), g[3:].clone()
        opt.step()
        trajectory.append(torch.cat([a.detach(), b.detach()]).tolist())
    return {"kind": kind, "lr": lr, "settings": kw, "w0": w0.tolist(), "grads": [g.tolist() for g in grads],
            "trajectory": trajectory}


def main():
    cases = [
        run("sgd", lr=0.1, momentum=0.9, weight_decay=0.01),
        run("sgd", lr=0.05, momentum=0.0, weight_decay=0.0),
        run("adamw", lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
