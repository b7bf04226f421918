#!/usr/bin/env python3
"""Read a lifted shard folder from Python with numpy.memmap: documentation that runs.

    python3 tools/read_shards.py data/cub200/shards/canonical-train-jpeg256 [--sample N] [--out x.png]
    python3 tools/read_shards.py --selftest      # parses the example in docs/FORMAT.md

Follows docs/FORMAT.md (version 2): maps each shard, checks the magic, version and both CRCs,
checks that every shard was sealed with this folder's index.json (its SHA-256 is in each header),
reads the header, class table and record table as numpy structured arrays, and returns one
sample's bytes (checked against its CRC). JPEG samples are decoded with Pillow if it is installed;
raw samples become an (H, W, 3) uint8 array. Needs numpy (Pillow optional).
"""
import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

HEADER = np.dtype([("magic", "S8"), ("version", "<u2"), ("encoding", "u1"), ("alignment", "u1"),
                   ("shard_index", "<u4"), ("sample_count", "<u4"), ("class_count", "<u4"),
                   ("data_offset", "<u8"), ("class_table_offset", "<u8"), ("record_table_offset", "<u8"),
                   ("file_length", "<u8"), ("tables_crc", "<u4"), ("index_sha256", "S32"),
                   ("reserved", "S32"), ("header_crc", "<u4")])
CLASS = np.dtype([("class_id", "<u4"), ("first_record", "<u4"), ("record_count", "<u4"), ("reserved", "<u4")])
RECORD = np.dtype([("offset", "<u8"), ("length", "<u4"), ("width", "<u2"), ("height", "<u2"),
                   ("class_id", "<u4"), ("crc", "<u4"), ("source_index", "<u4"), ("reserved", "<u4")])
assert HEADER.itemsize == 128 and CLASS.itemsize == 16 and RECORD.itemsize == 32

_TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    _TABLE.append(c)


def crc32c(data) -> int:
    crc = 0xFFFFFFFF
    for b in bytes(data):
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Shard:
    """One shard file, mapped read-only and checked."""

    def __init__(self, data: np.ndarray, name: str):
        if len(data) < 128:
            raise ValueError(f"{name}: truncated ({len(data)} bytes)")
        h = data[:128].view(HEADER)[0]
        if h["magic"] != b"LFTSHARD":
            raise ValueError(f"{name}: not a lifted shard")
        if h["version"] != 2:
            raise ValueError(f"{name}: format version {h['version']} is not 2")
        if crc32c(data[:124]) != h["header_crc"]:
            raise ValueError(f"{name}: header checksum mismatch")
        if h["file_length"] != len(data):
            raise ValueError(f"{name}: {len(data)} bytes, the header says {h['file_length']}")
        tables = data[int(h["class_table_offset"]):]
        if crc32c(tables) != h["tables_crc"]:
            raise ValueError(f"{name}: tables checksum mismatch")
        self.name, self.data, self.header = name, data, h
        ct, rt = int(h["class_table_offset"]), int(h["record_table_offset"])
        self.classes = data[ct:rt].view(CLASS)
        self.records = data[rt:int(h["file_length"])].view(RECORD)
        assert len(self.classes) == h["class_count"] and len(self.records) == h["sample_count"]

    def sample_bytes(self, i: int) -> bytes:
        r = self.records[i]
        start, end = int(r["offset"]), int(r["offset"]) + int(r["length"])
        if not (int(self.header["data_offset"]) <= start and end <= int(self.header["class_table_offset"])):
            raise ValueError(f"{self.name}: sample {i} lies outside the data region")
        raw = bytes(self.data[start:end])
        if crc32c(raw) != r["crc"]:
            raise ValueError(f"{self.name}: sample {i} is damaged")
        return raw


def open_folder(folder: Path):
    raw = (folder / "index.json").read_bytes()
    index = json.loads(raw)
    assert index["format"] == "lifted-shards/2", index["format"]
    digest = hashlib.sha256(raw).digest()
    shards = [Shard(np.memmap(folder / s["file"], dtype=np.uint8, mode="r"), s["file"]) for s in index["shards"]]
    for shard in shards:
        # NumPy's S32 drops trailing zero bytes; compare the raw header bytes instead.
        if bytes(shard.data[60:92]) != digest:
            raise ValueError(f"{shard.name}: sealed with another index.json (edited after packing?)")
    return index, shards


def sample(index, shards, i):
    """Global sample i: (class id, source path, pixels or bytes)."""
    for shard in shards:
        if i < len(shard.records):
            r = shard.records[i]
            raw = shard.sample_bytes(i)
            source = index["sources"][int(r["source_index"])]
            if shard.header["encoding"] == 2:
                return int(r["class_id"]), source, np.frombuffer(raw, np.uint8).reshape(int(r["height"]), int(r["width"]), 3)
            try:
                import io
                from PIL import Image
                return int(r["class_id"]), source, np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
            except ImportError:
                return int(r["class_id"]), source, raw
        i -= len(shard.records)
    raise IndexError(i)


def selftest():
    spec = (Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md").read_text()
    block = re.search(r"```hex\n(.*?)```", spec, re.S).group(1)
    data = bytes(int(b, 16) for line in block.splitlines() for b in line.split(": ")[1].split())
    shard = Shard(np.frombuffer(data, np.uint8), "example")
    assert [tuple(c)[:3] for c in shard.classes] == [(7, 0, 1), (9, 1, 1)]
    assert shard.sample_bytes(0) == b"\xff\x00\x00" and shard.sample_bytes(1) == b"\x00\xff\x00\x00\x00\xff"
    assert bytes(data[60:92]) == hashlib.sha256(b"").digest(), "sealed with the SHA-256 of an empty file"
    print("docs/FORMAT.md example: ok (2 samples, classes 7 and 9, CRCs match)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the sample as an image (needs Pillow)")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    if args.folder is None:
        ap.error("give a packed folder or --selftest")
    index, shards = open_folder(args.folder)
    print(f"{index['dataset']} {index['split']['part']}: {index['samples']} samples, {len(index['classes'])} classes, "
          f"{len(shards)} shards, {index['preprocess']}")
    class_id, source, pixels = sample(index, shards, args.sample)
    shape = getattr(pixels, "shape", f"{len(pixels)} JPEG bytes")
    print(f"sample {args.sample}: class {class_id}, from {source}, {shape}")
    if args.out is not None:
        from PIL import Image
        Image.fromarray(pixels).save(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
