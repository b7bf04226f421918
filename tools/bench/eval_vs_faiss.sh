#!/usr/bin/env bash
# Evaluation at SOP's test scale, lifted against faiss-cpu, alternating in one run, 2 threads
# each: exact kNN for Recall@{1,10,100,1000} (faiss IndexFlatL2, k = 1000), then k-means with
# k = 11,316 and 20 Lloyd iterations (faiss.Kmeans(niter=20)). Prints each run's JSON line and
# the ratios of the medians.
#
#   tools/bench/eval_vs_faiss.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
dir=data/bench/sop-embeddings
[ -f "$dir/X.npy" ] || python3 tools/bench/make_sop_embeddings.py --out "$dir"
cargo build --release --bench eval_scale >/dev/null 2>&1
bench=$(ls -t target/release/deps/eval_scale-* | grep -v '\.d$' | head -1)
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2
log=$(mktemp)
for mode in knn kmeans; do
    for r in $(seq "$rounds"); do
        "$bench" "$dir/X.npy" "$dir/Y.npy" "$mode" 20 | tee -a "$log"
        python3 tools/bench/faiss_eval.py "$dir/X.npy" "$dir/Y.npy" "$mode" 20 2 | tee -a "$log"
    done
done
python3 - "$log" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for mode in ("knn", "kmeans"):
    t = {tool: statistics.median(r["seconds"] for r in runs if r["mode"] == mode and r["tool"] == tool)
         for tool in ("lifted", "faiss")}
    m = {tool: max(r["peak_rss_mib"] for r in runs if r["mode"] == mode and r["tool"] == tool)
         for tool in ("lifted", "faiss")}
    print(f"{mode}: median lifted {t['lifted']:.1f} s, faiss {t['faiss']:.1f} s, "
          f"ratio {t['lifted'] / t['faiss']:.2f}x; peak RSS lifted {m['lifted']} MiB, faiss {m['faiss']} MiB")
PY
