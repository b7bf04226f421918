#!/usr/bin/env bash
# Loading a ResNet-50 checkpoint (torchvision's architecture and file format, about 100 MB,
# random weights written by torch.save) into the network: lifted (`cargo bench --bench
# weights_load`) against `torch.load` + `load_state_dict` (tools/bench/torch_load.py), alternating
# for ROUNDS rounds, each under tools/bench/peak_rss.py. Times exclude process start-up and, for
# PyTorch, `import torch`; both include building the network.
#   tools/bench/weights_vs_torch.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -c "import torch, torchvision; torch.save(torchvision.models.resnet50(weights=None).state_dict(), '$work/resnet50.pth')"
ls -l "$work/resnet50.pth" | awk '{print "file:", $5, "bytes"}'
cargo bench --bench weights_load --no-run -q 2>/dev/null
bench=$(ls -t target/release/deps/weights_load-* | grep -v '\.d$' | head -1)
for round in $(seq "$rounds"); do
  echo "round $round"
  python3 tools/bench/peak_rss.py -- "$bench" "$work/resnet50.pth" resnet50
  python3 tools/bench/peak_rss.py -- python3 tools/bench/torch_load.py "$work/resnet50.pth" resnet50
done 2>&1
