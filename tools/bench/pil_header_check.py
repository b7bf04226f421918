#!/usr/bin/env python3
"""The baseline of the SOP-scale benchmark's image check: open every image `Ebay_info.txt`
lists with Pillow, which reads its header (format, size, mode) but decodes no pixels, in
--processes processes. Prints one JSON line: images, failures, seconds.

    python3 tools/bench/pil_header_check.py UNZIPPED/Stanford_Online_Products --processes 2
"""
import argparse
import json
import multiprocessing
import time
from pathlib import Path

from PIL import Image


def header(path):
    try:
        with Image.open(path) as image:
            return image.size is not None
    except Exception:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--processes", type=int, default=multiprocessing.cpu_count())
    args = parser.parse_args()
    start = time.perf_counter()
    lines = (args.root / "Ebay_info.txt").read_text().splitlines()[1:]
    paths = [args.root / line.split(" ", 3)[3] for line in lines]
    with multiprocessing.Pool(args.processes) as pool:
        ok = pool.map(header, paths, chunksize=512)
    print(json.dumps({"images": len(paths), "failures": ok.count(False),
                      "seconds": round(time.perf_counter() - start, 2)}))


if __name__ == "__main__":
    main()
