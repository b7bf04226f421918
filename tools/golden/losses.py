#!/usr/bin/env python3
"""Golden values for lifted's losses, from two independent references.

1. A direct NumPy transcription of the original Caffe layer (docs: lifted-loss.md section 1):
   loops over unordered positive pairs (i < j), the negatives of both anchors, Euclidean
   (not squared) distances, a max-stabilised log-sum-exp, the squared hinge, divided by 2|P|,
   and the layer's hand-written gradient.
2. pytorch-metric-learning's LiftedStructureLoss(neg_margin=m, pos_margin=0) with an
   un-normalised Euclidean LpDistance (p=2, power=1), differentiated by torch autograd; and its
   GeneralizedLiftedStructureLoss (Hermans et al. 2017) the same way.
The contrastive and triplet losses follow the paper's equations (squared distances, every pair
and every triplet of the batch), in NumPy.

Writes tests/fixtures/losses/golden.json: inputs (embeddings, labels, margin) and, per loss, the
value and the gradient with respect to the embeddings. Run: python3 tools/golden/losses.py
"""
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from pytorch_metric_learning import distances, losses

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "losses" / "golden.json"


def caffe_lifted(x, y, margin):
    """Forward and gradient exactly as the Caffe layer computes them (float64)."""
    n = len(x)
    d = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0.0))
    grad = np.zeros_like(x)
    loss, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if y[i] != y[j]:
                continue
            v = [(margin - d[i, k], i, k) for k in range(n) if y[k] != y[i]]
            v += [(margin - d[j, k], j, k) for k in range(n) if y[k] != y[j]]
            vals = np.array([t[0] for t in v])
            m = vals.max()
            s = np.exp(vals - m).sum()
            J = max(np.log(s) + m + d[i, j], 0.0)
            loss += J * J
            pairs += 1
            if J > 0:
                c = 2 * J / d[i, j]
                grad[i] += c * (x[i] - x[j])
                grad[j] -= c * (x[i] - x[j])
                for (val, a, k) in v:
                    w = np.exp(val - m) / s
                    c = -2 * J * w / d[a, k]
                    grad[a] += c * (x[a] - x[k])
                    grad[k] -= c * (x[a] - x[k])
    return loss / pairs / 2, grad / pairs / 2


def pml(loss_fn, x, y):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    value = loss_fn(t, torch.tensor(y))
    value.backward()
    return float(value), t.grad.numpy()


def contrastive(x, y, margin):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    n = len(y)
    terms = []
    for i, j in itertools.combinations(range(n), 2):
        d = torch.linalg.vector_norm(t[i] - t[j])
        terms.append(d * d if y[i] == y[j] else torch.clamp(margin - d, min=0) ** 2)
    value = torch.stack(terms).mean()
    value.backward()
    return float(value), t.grad.numpy()


def triplet(x, y, margin):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    n = len(y)
    terms = []
    for a, p, q in itertools.product(range(n), repeat=3):
        if a != p and y[a] == y[p] and y[q] != y[a]:
            dap = ((t[a] - t[p]) ** 2).sum()
            daq = ((t[a] - t[q]) ** 2).sum()
            terms.append(torch.clamp(dap - daq + margin, min=0))
    value = torch.stack(terms).mean()
    value.backward()
    return float(value), t.grad.numpy()


def case(name, n_classes, per_class, dim, margin, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-1, 1, size=(n_classes * per_class, dim)) * scale).astype(np.float64)
    y = np.repeat(np.arange(n_classes), per_class)
    rng.shuffle(y)
    out = {"name": name, "margin": margin, "embeddings": x.tolist(), "labels": y.tolist()}
    caffe_value, caffe_grad = caffe_lifted(x, y, margin)
    dist = distances.LpDistance(normalize_embeddings=False, p=2, power=1)
    pml_value, pml_grad = pml(losses.LiftedStructureLoss(neg_margin=margin, pos_margin=0, distance=dist), x, y)
    assert abs(caffe_value - pml_value) < 1e-9 * max(1, abs(caffe_value)), (caffe_value, pml_value)
    assert np.abs(caffe_grad - pml_grad).max() < 1e-9, np.abs(caffe_grad - pml_grad).max()
    out["lifted"] = {"value": caffe_value, "grad": caffe_grad.tolist()}
    gen_value, gen_grad = pml(losses.GeneralizedLiftedStructureLoss(neg_margin=margin, pos_margin=0, distance=dist), x, y)
    out["generalized_lifted"] = {"value": gen_value, "grad": gen_grad.tolist()}
    value, grad = contrastive(x, y, margin)
    out["contrastive"] = {"value": value, "grad": grad.tolist()}
    value, grad = triplet(x, y, margin)
    out["triplet"] = {"value": value, "grad": grad.tolist()}
    print(f"{name}: lifted {caffe_value:.6f} (Caffe transcription and PML agree), generalized {gen_value:.6f}")
    return out


def main():
    cases = [
        case("pairs 8x2 d16 (the Caffe unit test's layout)", 8, 2, 16, 1.0, 1.0, 1),
        case("4 classes x 4 d8, spread out", 4, 4, 8, 1.0, 3.0, 2),
        case("6 classes x 3 d32, margin 0.5", 6, 3, 32, 0.5, 0.3, 3),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
