#!/usr/bin/env python3
"""Per-stage cost of the PIL packer on one process: decode + convert("RGB"), resize (short side
256, BILINEAR), encode (JPEG q90). The counterpart of `cargo bench --bench pack_stages`.

    python3 tools/bench/pil_stages.py data/bench/photos2k 400
"""
import io
import sys
import time
from pathlib import Path

from PIL import Image

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "data/bench/photos2k")
count = int(sys.argv[2]) if len(sys.argv) > 2 else 400
files = sorted(folder.rglob("*.jpg"))[:count]
data = [f.read_bytes() for f in files]
td = tr = te = 0.0
size = 0
for d in data:
    t = time.perf_counter()
    img = Image.open(io.BytesIO(d)).convert("RGB")
    td += time.perf_counter() - t
    t = time.perf_counter()
    w, h = img.size
    target = (256, round(h * 256 / w)) if w < h else (round(w * 256 / h), 256)
    small = img.resize(target, Image.BILINEAR)
    tr += time.perf_counter() - t
    t = time.perf_counter()
    buf = io.BytesIO()
    small.save(buf, format="JPEG", quality=90)
    te += time.perf_counter() - t
    size += buf.tell()
n = len(data)
print(f"PIL stages over {n} photos (ms/image, 1 process): decode {td / n * 1e3:.3f}  resize {tr / n * 1e3:.3f}  "
      f"encode {te / n * 1e3:.3f}  total {(td + tr + te) / n * 1e3:.3f}  ({size / n:.0f} bytes/image)")
