#!/usr/bin/env python3
"""The PyTorch side of `cargo bench --bench network_step`: forward and backward of torchvision's
network (trunk and a 512-d linear embedding) on a random B x 3 x S x S batch, loss the sum of
squared embeddings, batch norm in eval mode (frozen), on CPU with the same thread count. Prints
one JSON line with the medians of the runs (one warm-up run not counted).

    python3 tools/bench/torch_network_step.py googlenet 16 227 5 2   # network, B, S, runs, threads
"""
import json
import statistics
import sys
import time

import torch
import torchvision

name = sys.argv[1] if len(sys.argv) > 1 else "googlenet"
batch, size, runs, threads = (int(v) for v in (sys.argv[2:6] + ["16", "227", "5", "2"][len(sys.argv[2:6]):]))
torch.set_num_threads(threads)
torch.manual_seed(0)
if name == "googlenet":
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
else:
    net = getattr(torchvision.models, name)(weights=None)
features = net.fc.in_features
net.fc = torch.nn.Linear(features, 512)
net.eval()  # frozen batch norm; GoogLeNet's dropout off, as on the lifted side
images = torch.randn(batch, 3, size, size)
forward, step = [], []
for run in range(runs + 1):
    net.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss = net(images).square().sum()
    loss.item()
    forward_s = time.perf_counter() - start
    loss.backward()
    if run > 0:
        forward.append(forward_s)
        step.append(time.perf_counter() - start)
print(json.dumps({"tool": "torch", "network": name, "batch": batch, "size": size, "threads": threads,
                  "forward_ms": round(statistics.median(forward) * 1e3, 1),
                  "forward_backward_ms": round(statistics.median(step) * 1e3, 1), "torch": torch.__version__}))
