#!/usr/bin/env bash
# Side-by-side benchmark of `lifted pack` against the PIL packer (tools/bench/pil_pack.py):
# same photos, same work (decode -> short side 256 -> JPEG q90), 2 threads vs 2 processes,
# alternating for ROUNDS rounds; prints each run and the median images/s ratio. Also packs
# raw RGB8 once to report its bytes per image.
#   tools/bench/pack_vs_pil.sh [PHOTOS_DIR] [ROUNDS]
# PHOTOS_DIR defaults to data/bench/photos2k (make it with tools/bench/make_photos.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
photos=${1:-data/bench/photos2k}
rounds=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q
lifted=target/release/lifted
name=$(basename "$photos")
$lifted prepare-data "$photos" --data-dir "$work/data" --quiet --json > /dev/null
ours=(); peer=()
for round in $(seq "$rounds"); do
  r=$($lifted pack "$name" --data-dir "$work/data" --split all --threads 2 --quality 90 --size 256 --quiet --json \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["images_per_s"],1), round(d["bytes_per_image"]), d["total_bytes"], d["samples"])')
  p=$(python3 tools/bench/pil_pack.py "$photos" --processes 2 --size 256 --quality 90 --out "$work/pil.bin" \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["images_per_s"], d["bytes_per_image"], d["total_bytes"], d["images"])')
  echo "round $round: lifted $r | pil $p   (images/s bytes/image total_bytes images)"
  ours+=("${r%% *}"); peer+=("${p%% *}")
done
raw=$($lifted pack "$name" --data-dir "$work/data" --split all --threads 2 --encoding raw --size 256 --quiet --json \
      | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["images_per_s"],1), round(d["bytes_per_image"]), d["total_bytes"])')
echo "raw RGB8: $raw   (images/s bytes/image total_bytes)"
python3 - "${ours[*]}" "${peer[*]}" <<'PY'
import statistics, sys
ours = [float(x) for x in sys.argv[1].split()]
peer = [float(x) for x in sys.argv[2].split()]
mo, mp = statistics.median(ours), statistics.median(peer)
print(f"median lifted {mo:.1f} images/s, median PIL {mp:.1f} images/s, ratio {mo / mp:.2f}x")
PY
