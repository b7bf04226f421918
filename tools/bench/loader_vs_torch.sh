#!/usr/bin/env bash
# Side-by-side benchmark of the loader against PyTorch's DataLoader (tools/bench/torch_loader.py).
# Same photos; ours streams them from JPEG q90 shards packed at short side 256, PyTorch reads the
# JPEG files; both do random 227 crop + flip + normalise into float32 NCHW batches of 128 on 2
# threads / 2 workers. Also: the decode limit (one thread decoding the packed JPEGs x 2, measured
# in every round next to the loader, since this machine's speed drifts), raw RGB8 shards, the u8
# NHWC layout, and peak memory on 2,000 vs 20,000 images. Each timed run streams 18,432 images
# (48 epochs of 3 batches; PyTorch: 144 batches), start-up included on both sides.
#   tools/bench/loader_vs_torch.sh [PHOTOS_2K] [PHOTOS_20K] [ROUNDS]
# Make the photos with tools/bench/make_photos.py (--count 2000 / 20000, 100 classes).
set -euo pipefail
cd "$(dirname "$0")/../.."
p2k=${1:-data/bench/photos2k}
p20k=${2:-data/bench/photos20k}
rounds=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
cargo bench --bench decode_limit --no-run -q 2>/dev/null
lifted=target/release/lifted
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(*[d[k] for k in sys.argv[1:]])" "$@"; }
for set in "$p2k" "$p20k"; do
  $lifted prepare-data "$set" --data-dir "$work/data" --quiet --json > /dev/null
done
n2k=$(basename "$p2k"); n20k=$(basename "$p20k")
pack() { $lifted pack "$1" --data-dir "$work/data" --split all --threads 2 --quiet --json --out "$work/$2" "${@:3}" > /dev/null; }
pack "$n2k" jpeg2k
pack "$n2k" raw2k --encoding raw
pack "$n20k" jpeg20k
stream() { $lifted stream "$1" --threads 2 --classes 32 --per-class 4 --augment paper --size 227 --json "${@:2}"; }
ours=(); peer=(); limits=()
for round in $(seq "$rounds"); do
  l=$(cargo bench -q --bench decode_limit -- "$work/jpeg2k" 3 2>/dev/null | json decode_limit_images_per_s_one_thread)
  o=$(stream "$work/jpeg2k" --epochs 48 | json images_per_s images)
  u=$(stream "$work/jpeg2k" --epochs 48 --layout u8 | json images_per_s)
  p=$(python3 tools/bench/torch_loader.py "$p2k" --workers 2 --images 18432 | json images_per_s images images_per_s_after_first_batch)
  echo "round $round: decode limit $l x 2 | lifted $o (u8 NHWC: $u) | torch $p   (images/s images [torch: after first batch])"
  ours+=("${o%% *}"); peer+=("${p%% *}"); limits+=("$l")
done
raw=$(stream "$work/raw2k" --epochs 48 | json images_per_s)
echo "raw RGB8 shards: $raw images/s"
for s in jpeg2k jpeg20k; do
  m=$(python3 tools/bench/peak_rss.py -- $lifted stream "$work/$s" --threads 2 --classes 32 --per-class 4 --epochs 60 --json 2>&1 >/dev/null)
  echo "memory, $s, 60 epochs (23,040 images): $m"
done
python3 - "${ours[*]}" "${peer[*]}" "${limits[*]}" <<'PY'
import statistics, sys
ours = [float(x) for x in sys.argv[1].split()]
peer = [float(x) for x in sys.argv[2].split()]
limits = [2 * float(x) for x in sys.argv[3].split()]
mo, mp = statistics.median(ours), statistics.median(peer)
shares = [100 * o / l for o, l in zip(ours, limits)]
print(f"median lifted {mo:.0f} images/s, median torch {mp:.0f} images/s, ratio {mo / mp:.2f}x; "
      f"share of the 2-thread decode limit per round {', '.join(f'{s:.0f}%' for s in shares)}, "
      f"median {statistics.median(shares):.0f}%")
PY
