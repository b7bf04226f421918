#!/usr/bin/env python3
"""Independent reference for lifted's seeded class splits (see src/split/mod.rs).

Rule: order the classes that have images by
    SHA-256(b"lifted-split-v1\\0" + str(seed) + b"\\0" + str(class_id) + b"\\0" + class_name)
ascending; the first round(ratio * n) classes (clamped to 1..n-1, halves rounded away from
zero) are train, the rest test. With K folds, training classes at positions
[f*n_train//K, (f+1)*n_train//K) of that order are fold f (validation).

Reads the classes of the bundled sample (data/sample/glyphs.tar.gz, glyphs/images.csv) and
writes tests/fixtures/splits/reference.json with the train/val/test class ids for a few
(seed, ratio, folds, fold) settings. Run from the repository root: python3 tools/reference_split.py
"""
import csv
import hashlib
import io
import json
import math
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    {"seed": 0, "ratio": 0.5, "folds": None, "fold": None},
    {"seed": 7, "ratio": 0.5, "folds": 4, "fold": 1},
    {"seed": 12345, "ratio": 0.8, "folds": None, "fold": None},
    {"seed": 18446744073709551615, "ratio": 0.3, "folds": 3, "fold": 2},
]


def classes_of_sample():
    with tarfile.open(ROOT / "data/sample/glyphs.tar.gz") as tar:
        text = tar.extractfile("glyphs/images.csv").read().decode("utf-8")
    names = {}
    for row in csv.DictReader(io.StringIO(text)):
        names[int(row["class_id"])] = row["class_name"]
    return names


def key(seed, class_id, name):
    data = b"lifted-split-v1\0" + str(seed).encode() + b"\0" + str(class_id).encode() + b"\0" + name.encode("utf-8")
    return hashlib.sha256(data).digest()


def split(names, seed, ratio, folds, fold):
    order = sorted(names, key=lambda c: key(seed, c, names[c]))
    n = len(order)
    n_train = min(max(int(math.floor(ratio * n + 0.5)), 1), n - 1)
    train, test = order[:n_train], order[n_train:]
    val = []
    if folds:
        lo, hi = fold * n_train // folds, (fold + 1) * n_train // folds
        val = train[lo:hi]
        train = train[:lo] + train[hi:]
    return sorted(train), sorted(val), sorted(test)


def main():
    names = classes_of_sample()
    out = []
    for case in CASES:
        train, val, test = split(names, **case)
        out.append({**case, "train": train, "val": val, "test": test})
    path = ROOT / "tests/fixtures/splits/reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path} ({len(out)} cases over {len(names)} classes)")


if __name__ == "__main__":
    main()
