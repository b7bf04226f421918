#!/usr/bin/env python3
"""Peer for `lifted pack`'s benchmark: a PIL packer doing the same work in N processes.

For every .jpg/.png under IMAGES (sorted): decode with Pillow, convert to RGB, resize so the
short side is SIZE (bilinear, Pillow's antialiasing resize, like torchvision's Resize), encode
as JPEG at QUALITY (Pillow's default 4:2:0), and append the bytes to one output file, in
order, with a multiprocessing pool of PROCESSES workers. Prints images/s, bytes per image
and the total size, as one JSON line.

    python3 tools/bench/pil_pack.py data/bench/photos2k --processes 2 --out /tmp/pil.bin
"""
import argparse
import io
import json
import time
from multiprocessing import Pool
from pathlib import Path

from PIL import Image

SIZE = 256
QUALITY = 90


def work(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w < h:
        size = (SIZE, round(h * SIZE / w))
    else:
        size = (round(w * SIZE / h), SIZE)
    img = img.resize(size, Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=QUALITY)
    return buf.getvalue()


def main():
    global SIZE, QUALITY
    ap = argparse.ArgumentParser()
    ap.add_argument("images", type=Path)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    SIZE, QUALITY = args.size, args.quality
    paths = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    start = time.perf_counter()
    total = 0
    with Pool(args.processes) as pool, open(args.out, "wb") as out:
        for data in pool.imap(work, paths, chunksize=16):
            out.write(data)
            total += len(data)
    seconds = time.perf_counter() - start
    print(json.dumps({"peer": "pil", "images": len(paths), "processes": args.processes, "seconds": round(seconds, 3),
                      "images_per_s": round(len(paths) / seconds, 1), "bytes_per_image": round(total / len(paths)),
                      "total_bytes": total}))


if __name__ == "__main__":
    main()
