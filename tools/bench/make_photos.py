#!/usr/bin/env python3
"""Make the benchmark photo set: random 500x375 crops of real photographs, as JPEG q90.

Sources are the photographic wallpapers of Debian's plasma-workspace-wallpapers package
(`apt-get install plasma-workspace-wallpapers`; installed under /usr/share/wallpapers): the
largest JPEG of each of the 11 photos listed in PHOTOS. Each output image is a random region
(random position and scale, 4:3, at least 500x375 source pixels) of a random photo, resized
to 500x375 with Lanczos, randomly mirrored, and saved by Pillow at quality 90 (4:2:0), the
typical size and encoding of SOP/CUB/CARS images. The set is laid out as an image folder with
--classes sub-folders (image i goes to class i mod --classes), so `lifted prepare-data` can
catalogue it and the P×K loader has enough classes.

    python3 tools/bench/make_photos.py --count 2000 --out data/bench/photos2k
    python3 tools/bench/make_photos.py --count 20000 --out data/bench/photos20k
Deterministic for a given --seed and Pillow version.
"""
import argparse
import random
from pathlib import Path

from PIL import Image

PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
          "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
W, H = 500, 375


def largest_jpeg(root: Path, name: str) -> Path:
    files = sorted((root / name / "contents" / "images").glob("*.jpg"))
    return max(files, key=lambda f: tuple(int(v) for v in f.stem.split("x")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--wallpapers", type=Path, default=Path("/usr/share/wallpapers"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sources = [Image.open(largest_jpeg(args.wallpapers, n)).convert("RGB") for n in PHOTOS]
    for i in range(args.count):
        k = rng.randrange(len(sources))
        src = sources[k]
        max_scale = min(src.width / W, src.height / H)
        scale = rng.uniform(1.0, max_scale)
        cw, ch = int(W * scale), int(H * scale)
        x, y = rng.randrange(src.width - cw + 1), rng.randrange(src.height - ch + 1)
        crop = src.crop((x, y, x + cw, y + ch)).resize((W, H), Image.LANCZOS)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        out = args.out / f"class{i % args.classes:03d}" / f"{i:06d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        crop.save(out, quality=90)
    total = sum(f.stat().st_size for f in args.out.rglob("*.jpg"))
    print(f"wrote {args.count} photos to {args.out} ({total / args.count / 1024:.1f} KiB each)")


if __name__ == "__main__":
    main()
