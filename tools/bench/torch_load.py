#!/usr/bin/env python3
"""The PyTorch side of the weight-loading benchmark: build torchvision's network, then
`torch.load` the file and `load_state_dict` it, timed. Prints one JSON line.

    python3 tools/bench/torch_load.py FILE.pth resnet50
"""
import json
import sys
import time

start = time.perf_counter()
import torch  # noqa: E402  (the import is part of what a user waits for, but timed apart)
import torchvision  # noqa: E402

imported = time.perf_counter()
torch.set_num_threads(2)
path, arch = sys.argv[1], sys.argv[2]
model = getattr(torchvision.models, arch)(weights=None)
built = time.perf_counter()
state = torch.load(path, map_location="cpu", weights_only=True)
model.load_state_dict(state)
done = time.perf_counter()
print(json.dumps({"tool": "torch", "import_s": round(imported - start, 3), "build_s": round(built - imported, 3),
                  "load_s": round(done - built, 3), "total_s": round(done - imported, 3), "tensors": len(state)}))
