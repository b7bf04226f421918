#!/usr/bin/env python3
"""Reference values for lifted's evaluation, from independent implementations:
- neighbours: brute-force NumPy (float64 distances, the query excluded, ties by index) and
  faiss IndexFlatL2 (must agree);
- Recall@K: from those neighbours; precision@1, R-precision and MAP@R: pytorch-metric-learning's
  AccuracyCalculator (reference = query, the query excluded);
- NMI and AMI: scikit-learn (arithmetic mean) on fixed cluster assignments; pairwise F1: the
  original evaluation code's pair counting, in NumPy;
- k-means inertia: scikit-learn's KMeans (k-means++, 10 initialisations) as a yardstick.
Writes tests/fixtures/eval/reference.json. Run: python3 tools/golden/eval_reference.py
"""
import json
from pathlib import Path

import faiss
import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "eval" / "reference.json"


def data(seed, n_classes, per_class, dim, spread):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 2
    counts = rng.integers(per_class // 2, per_class * 2, size=n_classes)
    x = np.concatenate([c + rng.normal(size=(m, dim)) * spread for c, m in zip(centres, counts)])
    y = np.repeat(np.arange(n_classes), counts)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def neighbours(x, k):
    x64 = x.astype(np.float64)
    d = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(x)), d.shape), d), axis=1)[:, :k]
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    _, found = index.search(x, k + 1)
    # faiss includes the query itself; drop it by index, compare the sets of the first k-1.
    for i in range(len(x)):
        mine = [j for j in found[i] if j != i][: k - 1]
        assert set(mine) <= set(order[i]), (i, mine, order[i][:k])
    return order


def f1_pairs(clusters, labels):
    from collections import Counter
    comb = lambda m: m * (m - 1) / 2
    tp = sum(comb(v) for v in Counter(zip(clusters, labels)).values())
    tp_fp = sum(comb(v) for v in Counter(clusters).values())
    tp_fn = sum(comb(v) for v in Counter(labels).values())
    p, r = tp / tp_fp, tp / tp_fn
    return 2 * p * r / (p + r)


def case(name, seed, n_classes, per_class, dim, spread, ks):
    x, y = data(seed, n_classes, per_class, dim, spread)
    counts = np.bincount(y)
    k = int(max(max(ks), counts.max() - 1))
    nn = neighbours(x, k)
    recall = {str(K): float(np.mean([(y[nn[i, :K]] == y[i]).any() for i in range(len(y)) if counts[y[i]] > 1])) for K in ks}
    calc = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"), k="max_bin_count")
    acc = calc.get_accuracy(torch.tensor(x), torch.tensor(y), torch.tensor(x), torch.tensor(y), ref_includes_query=True)
    rng = np.random.default_rng(seed + 100)
    clusterings = []
    for noise in (0.0, 0.2, 0.6):
        clusters = np.where(rng.random(len(y)) < noise, rng.integers(0, n_classes, len(y)), y).astype(np.int64)
        clusters = (clusters * 7 + 3) % (n_classes + 2)  # relabel: ids need not match classes
        clusterings.append({"clusters": clusters.tolist(),
                            "nmi": normalized_mutual_info_score(y, clusters),
                            "ami": adjusted_mutual_info_score(y, clusters),
                            "f1": f1_pairs(clusters.tolist(), y.tolist())})
    km = KMeans(n_clusters=n_classes, n_init=10, random_state=0).fit(x.astype(np.float64))
    print(f"{name}: n={len(y)} R@1={recall[str(ks[0])]:.4f} MAP@R={acc['mean_average_precision_at_r']:.4f} sklearn inertia={km.inertia_:.2f}")
    return {"name": name, "embeddings": x.tolist(), "labels": y.tolist(), "ks": ks, "k": int(k),
            "neighbours": nn[:, :k].tolist(), "recall": recall,
            "precision_at_1": acc["precision_at_1"], "r_precision": acc["r_precision"],
            "map_at_r": acc["mean_average_precision_at_r"], "clusterings": clusterings,
            "sklearn_kmeans_inertia": float(km.inertia_)}


def main():
    cases = [
        case("tight blobs", 1, 8, 20, 8, 0.3, [1, 2, 4, 8]),
        case("overlapping blobs", 2, 15, 12, 16, 1.5, [1, 2, 4, 8]),
        case("many small classes", 3, 40, 4, 12, 1.0, [1, 10, 100]),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
