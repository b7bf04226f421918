#!/usr/bin/env python3
"""The faiss side of the evaluation benchmark (see benches/eval_scale.rs for ours): exact
Recall@{1,10,100,1000} with `IndexFlatL2` searching k = 1001 (the query finds itself, and is
dropped by index), or `faiss.Kmeans(niter=N)` with k = number of classes plus the final
assignment. Prints one JSON line with seconds, peak RSS in MiB and the results.

    python3 tools/bench/faiss_eval.py X.npy Y.npy knn|kmeans [iterations] [threads]
"""
import json
import resource
import sys
import time

import faiss
import numpy as np


def recall_at(neighbours, labels, ks):
    hits = labels[neighbours] == labels[:, None]
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), neighbours.shape[1])
    return {f"R@{k}": float((first < k).mean()) for k in ks}


def main():
    x_path, y_path, mode = sys.argv[1:4]
    iterations = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    faiss.omp_set_num_threads(threads)
    x = np.ascontiguousarray(np.load(x_path), dtype=np.float32)
    y = np.load(y_path)
    n, d = x.shape
    start = time.perf_counter()
    if mode == "knn":
        index = faiss.IndexFlatL2(d)
        index.add(x)
        _, found = index.search(x, 1001)
        # Drop each query from its own list by index (it is not always first when points tie).
        own = found == np.arange(n)[:, None]
        keep = ~own
        keep[~own.any(axis=1), -1] = False
        neighbours = found[keep].reshape(n, 1000)
        result = recall_at(neighbours, y, [1, 10, 100, 1000])
        seconds = time.perf_counter() - start
        out = {"tool": "faiss", "mode": "knn", "k": 1000, "seconds": round(seconds, 2)}
    else:
        from sklearn.metrics import normalized_mutual_info_score

        k = len(np.unique(y))
        kmeans = faiss.Kmeans(d, k, niter=iterations, seed=0, verbose=False)
        kmeans.train(x)
        _, assigned = kmeans.index.search(x, 1)
        seconds = time.perf_counter() - start
        result = {"NMI": float(normalized_mutual_info_score(y, assigned[:, 0]))}
        out = {"tool": "faiss", "mode": "kmeans", "k": k, "iterations": iterations,
               "seconds": round(seconds, 2)}
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out.update(result)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
