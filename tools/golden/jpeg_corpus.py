#!/usr/bin/env python3
"""Make a corpus of damaged JPEGs and record what Pillow does with each.

    python3 tools/golden/jpeg_corpus.py      # needs numpy and Pillow; writes tests/fixtures/jpeg-corpus/

Web-scraped photos (SOP's 120,053 eBay images above all) carry the kinds of damage libjpeg
warns about: extraneous bytes before a marker, data after the end marker, a marker or bad code
inside the entropy-coded data, a missing end marker, and files cut short. This script crafts
each kind from a few small photo-like images (baseline and progressive, written by Pillow at
quality 90), then opens every file with Pillow's defaults (`LOAD_TRUNCATED_IMAGES` False,
`convert("RGB")`) and records its verdict: `accept`, with the decoded pixels saved as a PNG
next to it, or `reject`, with Pillow's message. `tests/imageio.rs` decodes every file with
lifted and requires the same verdict, and pixels within one level of Pillow's.

Output: `tests/fixtures/jpeg-corpus/<case>.jpg`, `<case>.png` for accepted ones, and
`expected.json` ({"pillow": version, "cases": [{"file", "kind", "verdict", "message"?}]}).
Everything is deterministic (fixed seeds; Pillow's encoder output does not vary by run).
"""

import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, features

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "jpeg-corpus"


def photo(seed: int, w: int, h: int) -> np.ndarray:
    """A small image with gradients, a few blobs and noise, like a product photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        img[..., c] = 128 + 80 * np.sin(x / (5 + seed % 7 + c) + c) * np.cos(y / (7 + c))
    for _ in range(3):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, 12)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90, **options)
    return buf.getvalue()


def segment_start(data: bytes, marker: int) -> int:
    """Where the first segment with this marker code starts (at its FF byte)."""
    at = data.index(bytes([0xFF, marker]))
    return at


def scan_data_start(data: bytes) -> int:
    sos = segment_start(data, 0xDA)
    length = data[sos + 2] << 8 | data[sos + 3]
    return sos + 2 + length


def cases():
    """(name, kind, bytes) for every crafted file."""
    bases = []
    for seed in range(6):
        w, h = 48 + 8 * seed, 40 + 5 * seed
        pixels = photo(seed, w, h)
        bases.append((f"b{seed}", encode(pixels)))
        if seed < 3:
            bases.append((f"p{seed}", encode(pixels, progressive=True)))
    # Noise with a smooth top half: its last block ends early enough in the final byte that
    # Pillow needs nothing after it (the missing end marker is accepted).
    rng = np.random.default_rng(0)
    noisy = (rng.random((64, 80, 3)) * 255).astype("uint8")
    noisy[:32] = np.linspace(0, 255, 80, dtype="uint8")[None, :, None]
    bases.append(("g0", encode(noisy)))
    for name, data in bases:
        yield f"{name}-clean", "clean", data
        yield f"{name}-no-eoi", "missing end marker", data[:-2]
        yield f"{name}-no-eoi-1", "missing last byte", data[:-1]
        yield f"{name}-trailing", "data after the end marker", data + b"\x00\x11JUNK" * 7
        start = scan_data_start(data)
        for share in (0.3, 0.7, 0.97):
            cut = start + int((len(data) - start) * share)
            yield f"{name}-cut{int(share * 100)}", "cut inside the entropy data", data[:cut]
        yield f"{name}-cut-header", "cut inside the header", data[: segment_start(data, 0xDA) - 5]
        sof = segment_start(data, 0xC2 if name.startswith("p") else 0xC0)
        yield f"{name}-junk-sof", "extraneous bytes before the frame header", data[:sof] + b"\x00\x12\x34" + data[sof:]
        dht = segment_start(data, 0xC4)
        yield f"{name}-junk-dht", "extraneous bytes before a Huffman table", data[:dht] + b"\x55" * 5 + data[dht:]
        sos = segment_start(data, 0xDA)
        yield f"{name}-junk-sos", "extraneous bytes before the scan", data[:sos] + b"\x00" + data[sos:]
        yield f"{name}-junk-eoi", "extraneous bytes before the end marker", data[:-2] + b"\x01\x02\x03" + data[-2:]
        mid = start + (len(data) - start) // 2
        yield f"{name}-rst", "a restart marker inside the entropy data", data[:mid] + b"\xff\xd3" + data[mid:]
        yield f"{name}-eoi-inside", "an end marker inside the entropy data", data[:mid] + b"\xff\xd9" + data[mid:]
        broken = bytearray(data)
        for i in range(mid, min(mid + 24, len(data) - 4)):
            if broken[i] != 0xFF and broken[i - 1] != 0xFF:
                broken[i] = (broken[i] * 37 + 11) % 255
        yield f"{name}-garbled", "corrupt entropy data", bytes(broken)
        bad = bytearray(data)
        bad[sof + 5: sof + 7] = b"\x00\x00"
        yield f"{name}-zero-height", "a frame header with height 0", bytes(bad)
    yield "not-jpeg-after-soi", "bytes that are not a marker right after SOI", b"\xff\xd8\x00\x00" + bases[0][1][2:]
    yield "empty", "an empty file", b""


def verdict(data: bytes):
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return "accept", np.asarray(im.convert("RGB")), None
    except Exception as e:  # noqa: BLE001 - Pillow raises several types; the verdict is all we need
        return "reject", None, f"{type(e).__name__}: {e}".split(" <_io")[0]


def main() -> int:
    if not features.check_feature("libjpeg_turbo"):
        print("this Pillow is not built with libjpeg-turbo", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    records = []
    for name, kind, data in cases():
        (OUT / f"{name}.jpg").write_bytes(data)
        result, pixels, message = verdict(data)
        record = {"file": f"{name}.jpg", "kind": kind, "verdict": result}
        if result == "accept":
            Image.fromarray(pixels).save(OUT / f"{name}.png")
        else:
            record["message"] = message
        records.append(record)
    import PIL

    summary = {"pillow": PIL.__version__, "cases": records}
    (OUT / "expected.json").write_text(json.dumps(summary, indent=1) + "\n")
    accepted = sum(r["verdict"] == "accept" for r in records)
    print(f"{len(records)} files: {accepted} accepted, {len(records) - accepted} rejected by Pillow {PIL.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
