#!/usr/bin/env python3
"""Pillow's decodes of a folder of JPEGs, for `cargo bench --bench jpeg_parity`: writes each
JPEG's RGB pixels, as Pillow decodes them (`Image.open(f).convert("RGB")`, libjpeg-turbo's
accurate integer IDCT and fancy upsampling), to OUT/<same relative path>.png (lossless).

    python3 tools/bench/jpeg_parity.py data/bench/photos2k /tmp/pillow-png 300
"""
import sys
from pathlib import Path

from PIL import Image

src, out = Path(sys.argv[1]), Path(sys.argv[2])
count = int(sys.argv[3]) if len(sys.argv) > 3 else 300
files = sorted(src.rglob("*.jpg"))[:count]
for f in files:
    target = out / f.relative_to(src).with_suffix(".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.open(f).convert("RGB").save(target)
print(f"{len(files)} decodes by Pillow {Image.__version__} in {out}")
