#!/usr/bin/env python3
"""Raw-pixel Recall@1 of the bundled sample on its canonical test split.

Reads data/sample/glyphs.tar.gz (or the path given), takes the test classes
(class_id 89..177, 50 images each), and reports Recall@1 of exact Euclidean
kNN on raw pixels (scaled to [0, 1]) with the query excluded by index.
This is the baseline a trained embedding must beat.

Usage: python3 tools/sample/raw_pixel_recall.py [path/to/glyphs.tar.gz]
Requires numpy and Pillow.  Build-time tool only.
"""

import csv
import io
import os
import sys
import tarfile

import numpy as np
from PIL import Image

FIRST_TEST_CLASS = 89


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "data", "sample", "glyphs.tar.gz")
    path = sys.argv[1] if len(sys.argv) > 1 else default
    with tarfile.open(path, "r:gz") as tar:
        rows = list(csv.DictReader(io.TextIOWrapper(
            tar.extractfile("glyphs/images.csv"), encoding="utf-8")))
        rows = [r for r in rows if int(r["class_id"]) >= FIRST_TEST_CLASS]
        x = np.stack([
            np.asarray(Image.open(tar.extractfile("glyphs/" + r["path"])),
                       dtype=np.float64).ravel() / 255.0
            for r in rows
        ])
    y = np.array([int(r["class_id"]) for r in rows])
    sq = (x * x).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d, np.inf)
    r1 = float((y[d.argmin(1)] == y).mean())
    print(f"test classes: {len(set(y))}  images: {len(y)}  raw-pixel R@1: {r1:.4f}")


if __name__ == "__main__":
    main()
