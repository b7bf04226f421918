#!/usr/bin/env python3
"""PyTorch counterpart of `cargo bench --bench train_step`, on CPU with the same thread count:
(1) pytorch-metric-learning's LiftedStructureLoss with an un-normalised Euclidean LpDistance
(the same formula as lifted's loss) forward and backward on 128 embeddings (32 classes x 4) of
dimension 512; (2) one training step (forward, that loss, backward, SGD with momentum) of the
same small CNN (conv3x3-BN-ReLU blocks of width w, 2w, 4w, 4w, max pools, global average, linear
64) on 128 images of 3x32x32. Prints the medians as JSON.

    python3 tools/bench/torch_train_step.py [runs] [threads] [width]
"""
import json
import statistics
import sys
import time

import torch
from pytorch_metric_learning import distances, losses

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
width = int(sys.argv[3]) if len(sys.argv) > 3 else 32
torch.set_num_threads(threads)
torch.manual_seed(0)
labels = torch.arange(128) // 4
loss_fn = losses.LiftedStructureLoss(neg_margin=1.0, pos_margin=0.0,
                                     distance=distances.LpDistance(normalize_embeddings=False, p=2, power=1))


def timed(fn, n, warm):
    times = []
    for i in range(n + warm):
        start = time.perf_counter()
        fn()
        if i >= warm:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


x = torch.randn(128, 512, requires_grad=True)


def loss_step():
    x.grad = None
    loss_fn(x, labels).backward()


def block(cin, cout):
    return [torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]


w = width
net = torch.nn.Sequential(*block(3, w), torch.nn.MaxPool2d(2), *block(w, 2 * w), torch.nn.MaxPool2d(2),
                          *block(2 * w, 4 * w), torch.nn.MaxPool2d(2), *block(4 * w, 4 * w),
                          torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4 * w, 64))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
images = torch.randn(128, 3, 32, 32)


def train_step():
    opt.zero_grad()
    loss_fn(net(images), labels).backward()
    opt.step()


print(json.dumps({"peer": "torch", "lifted_loss_fwd_bwd_ms": round(timed(loss_step, runs, 3) * 1e3, 3),
                  "small_cnn_step_ms": round(timed(train_step, min(runs, 20), 2) * 1e3, 1), "threads": threads,
                  "width": width, "torch": torch.__version__}))
