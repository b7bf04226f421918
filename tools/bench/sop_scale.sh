#!/usr/bin/env bash
# SOP at full scale (issue 12): wall time and peak RSS of each stage on the stand-in written by
# tools/bench/make_sop_scale.py (120,053 images, 22,634 classes, ZIP64, six GIFs), next to the
# baseline `unzip` + a Pillow header check of every image (tools/bench/pil_header_check.py) on
# the same archive, alternating baseline and lifted for ROUNDS rounds. Peak RSS is VmHWM polled
# by tools/bench/peak_rss.py. Stages: prepare-data (verify the zip's SHA-256, extract,
# catalogue, decode every image, split), pack of the train part and of the test part (JPEG
# q90, short side 256), and one loader epoch over the train shards (P=32, K=4, augmented).
#   tools/bench/sop_scale.sh [SOURCE_DIR] [ROUNDS]
# SOURCE_DIR defaults to data/bench/sop-scale (made if missing); the work goes to a temporary
# folder under data/bench/ that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=${1:-data/bench/sop-scale}
rounds=${2:-1}
zip=$src/Stanford_Online_Products.zip
[ -f "$zip" ] || python3 tools/bench/make_sop_scale.py --out "$src"
cargo build --release -q
lifted=target/release/lifted
work=$(mktemp -d -p data/bench sop-scale-run.XXXX)
trap 'rm -rf "$work"' EXIT
echo "archive: $(stat -c %s "$zip") bytes; $(nproc) cores; $(date -u +%FT%TZ)"

# Runs "$@" under peak_rss.py; prints "<label> <seconds> s, peak RSS <MiB> MiB" and keeps stdout.
stage() {
  local label=$1; shift
  local start end rss
  start=$(date +%s.%N)
  python3 tools/bench/peak_rss.py -- "$@" > "$work/$label.out" 2> "$work/$label.err" \
    || { cat "$work/$label.err"; exit 1; }
  end=$(date +%s.%N)
  rss=$(tail -1 "$work/$label.err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mib"])')
  printf '%-16s %8.1f s   peak RSS %7.1f MiB\n' "$label" "$(echo "$end - $start" | bc)" "$rss"
  echo "$label $(echo "$end - $start" | bc) $rss" >> "$work/times"
}

baseline() {
  rm -rf "$work/unzipped"
  stage unzip unzip -q "$zip" -d "$work/unzipped"
  stage pillow-headers python3 tools/bench/pil_header_check.py "$work/unzipped/Stanford_Online_Products"
  cat "$work/pillow-headers.out"
  rm -rf "$work/unzipped"
}

ours() {
  rm -rf "$work/data"
  stage prepare-data $lifted prepare-data sop --manifest "$src/sop-scale.toml" --archive "$zip" \
    --data-dir "$work/data" --json
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  prepared:", d["images"], "images,", d["classes"], "classes; train", d["split"]["parts"]["train"], "test", d["split"]["parts"]["test"], "; warned", d["image_check"]["warned"])' "$work/prepare-data.out"
  for part in train test; do
    stage "pack-$part" $lifted pack sop --data-dir "$work/data" --split $part --json
  done
  shards=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["out"])' "$work/pack-train.out")
  stage loader-epoch $lifted stream "$shards" --epochs 1 --json
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  loader:", {k: d[k] for k in d if not isinstance(d[k], (dict, list))})' "$work/loader-epoch.out"
}

for round in $(seq "$rounds"); do
  echo "round $round"
  if [ $((round % 2)) -eq 1 ]; then baseline; ours; else ours; baseline; fi
done
python3 - "$work/times" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    label, seconds, rss = line.split()
    times.setdefault(label, []).append((float(seconds), float(rss)))
med = {k: statistics.median(s for s, _ in v) for k, v in times.items()}
peak = {k: max(r for _, r in v) for k, v in times.items()}
base = med["unzip"] + med["pillow-headers"]
print(f"median: unzip + Pillow headers {base:.1f} s; prepare-data {med['prepare-data']:.1f} s; "
      f"ratio {med['prepare-data'] / base:.2f}x")
print("peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
PY
