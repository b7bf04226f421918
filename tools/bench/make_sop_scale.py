#!/usr/bin/env python3
"""Write a Stanford Online Products stand-in at full scale, for the SOP-scale benchmark
(tools/bench/sop_scale.sh): `Stanford_Online_Products.zip` with SOP's real counts and layout,
and a manifest (`sop-scale.toml`) that verifies it.

What matches the real archive (datasets.md §1; counts from pytorch-metric-learning's
tests/datasets/test_sop.py):
- 120,053 images in 22,634 classes: `Ebay_train.txt` 59,551 images of classes 1-11,318,
  `Ebay_test.txt` 60,502 images of classes 11,319-22,634, `Ebay_info.txt` listing all; the
  files' header line `image_id class_id super_class_id path`, 1-based ids;
- 12 `<super>_final/` folders, images named `<listing id>_<n>.JPG` (upper-case), 2 to 12
  images per class, a class's images in one super-class folder;
- more than 65,535 entries, so the zip is ZIP64 (Python's zipfile writes it as such), deflated;
- the six GIFs named `.JPG` at their real paths (rksltnl/Deep-Metric-Learning-CVPR16 issue 10),
  each in a test class;
- the real zip's extra text files (`Ebay_final.txt`, `<super>_final.txt`, `LICENSE`).

The images are photographs, not noise: random crops of the 11 photographic wallpapers of
Debian's plasma-workspace-wallpapers package (as tools/bench/make_photos.py), resized to a
random size between 250 and 500 pixels a side and saved by Pillow at quality 85, so they
decode like real eBay photos. The real zip is 3.08 GB (25.7 KB per image); this one's size is
printed at the end.

    python3 tools/bench/make_sop_scale.py --out data/bench/sop-scale
Deterministic for a given --seed and Pillow version.
"""
import argparse
import hashlib
import io
import multiprocessing
import random
import zipfile
from pathlib import Path

from PIL import Image

PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
          "Grey", "Kite", "OneStandsOut", "Path", "summer_1am"]
SUPER = ["bicycle", "cabinet", "chair", "coffee_maker", "fan", "kettle", "lamp", "mug", "sofa",
         "stapler", "table", "toaster"]
GIFS = ["lamp_final/271802113987_2.JPG", "lamp_final/221777566426_7.JPG",
        "fan_final/280961317122_7.JPG", "fan_final/131546166499_5.JPG",
        "coffee_maker_final/291488772961_1.JPG", "bicycle_final/231588927256_1.JPG"]
TRAIN = (11_318, 59_551)
TEST = (11_316, 60_502)
ROOT = "Stanford_Online_Products"

_sources = []


def load_sources(wallpapers: Path):
    global _sources
    for name in PHOTOS:
        files = sorted((wallpapers / name / "contents" / "images").glob("*.jpg"))
        best = max(files, key=lambda f: tuple(int(v) for v in f.stem.split("x")))
        image = Image.open(best).convert("RGB")
        image.thumbnail((1600, 1600), Image.Resampling.LANCZOS)
        _sources.append(image)


def sizes(rng: random.Random, classes: int, images: int):
    """Images per class, 2 to 12, summing to `images`."""
    counts = [2] * classes
    left = images - 2 * classes
    while left > 0:
        i = rng.randrange(classes)
        if counts[i] < 12:
            counts[i] += 1
            left -= 1
    return counts


def make_jpeg(job):
    seed, = job
    rng = random.Random(seed)
    source = _sources[rng.randrange(len(_sources))]
    w, h = rng.randint(250, 500), rng.randint(250, 500)
    scale = rng.uniform(0.3, 1.0)
    cw = max(w, int(source.width * scale))
    ch = min(source.height, max(h, int(cw * h / w)))
    cw = min(source.width, int(ch * w / h))
    x, y = rng.randint(0, source.width - cw), rng.randint(0, source.height - ch)
    image = source.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def make_gif(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("P", (rng.randint(200, 400), rng.randint(200, 400)))
    image.putpalette([rng.randrange(256) for _ in range(768)])
    pixels = [(x // 16 + y // 16 + seed) % 256 for y in range(image.height) for x in range(image.width)]
    image.putdata(pixels)
    out = io.BytesIO()
    image.save(out, "GIF")
    return out.getvalue()


def plan(seed: int):
    """(class, super id, path) per image, in class order, the GIFs at their real paths."""
    rng = random.Random(seed)
    rows = []
    gif_for_class = {}
    for part, (first, (classes, images)) in (("train", (1, TRAIN)), ("test", (TRAIN[0] + 1, TEST))):
        counts = sizes(rng, classes, images)
        if part == "test":
            # The GIFs' products: six test classes, each sized to hold its GIF's index.
            for k, path in enumerate(GIFS):
                index = int(Path(path).stem.split("_")[1])
                counts[k * 997] = max(counts[k * 997], index + 1)
            excess = sum(counts) - images
            i = classes - 1
            while excess > 0:
                if counts[i] > 2 and i not in {k * 997 for k in range(len(GIFS))}:
                    counts[i] -= 1
                    excess -= 1
                i = (i - 1) % classes
            for k, path in enumerate(GIFS):
                gif_for_class[first + k * 997] = path
        for offset, count in enumerate(counts):
            class_id = first + offset
            super_id = (class_id - 1) * 12 // (TRAIN[0] + TEST[0]) + 1
            folder = f"{SUPER[super_id - 1]}_final"
            gif = gif_for_class.get(class_id)
            if gif:
                folder, name = gif.split("/")
                super_id = SUPER.index(folder[: -len("_final")]) + 1
                listing = name.split("_")[0]
            else:
                listing = str(110_000_000_000 + class_id * 7919)
            for n in range(count):
                rows.append((class_id, super_id, f"{folder}/{listing}_{n}.JPG", part))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wallpapers", type=Path, default=Path("/usr/share/wallpapers"))
    parser.add_argument("--processes", type=int, default=multiprocessing.cpu_count())
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = plan(args.seed)
    assert len(rows) == TRAIN[1] + TEST[1]
    header = "image_id class_id super_class_id path\n"
    info, train, test = header, header, header
    n_train = n_test = 0
    for image_id, (class_id, super_id, path, part) in enumerate(rows, 1):
        info += f"{image_id} {class_id} {super_id} {path}\n"
        if part == "train":
            n_train += 1
            train += f"{n_train} {class_id} {super_id} {path}\n"
        else:
            n_test += 1
            test += f"{n_test} {class_id} {super_id} {path}\n"
    zip_path = args.out / "Stanford_Online_Products.zip"
    gifs = set(GIFS)
    jobs = [(args.seed * 1_000_003 + i,) for i, row in enumerate(rows) if row[2] not in gifs]
    with multiprocessing.Pool(args.processes, load_sources, (args.wallpapers,)) as pool, \
            zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.writestr(f"{ROOT}/", b"")
        for folder in SUPER:
            archive.writestr(f"{ROOT}/{folder}_final/", b"")
        jpegs = pool.imap(make_jpeg, jobs, chunksize=256)
        total = 0
        for i, (class_id, _, path, _) in enumerate(rows):
            data = make_gif(class_id) if path in gifs else next(jpegs)
            total += len(data)
            archive.writestr(f"{ROOT}/{path}", data)
            if i % 10_000 == 0:
                print(f"{i} images", flush=True)
        archive.writestr(f"{ROOT}/Ebay_info.txt", info)
        archive.writestr(f"{ROOT}/Ebay_train.txt", train)
        archive.writestr(f"{ROOT}/Ebay_test.txt", test)
        archive.writestr(f"{ROOT}/Ebay_final.txt", info)
        for folder in SUPER:
            archive.writestr(f"{ROOT}/{folder}_final.txt", "")
        archive.writestr(f"{ROOT}/LICENSE", "A stand-in made by tools/bench/make_sop_scale.py\n")
    digest = hashlib.sha256()
    with open(zip_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    size = zip_path.stat().st_size
    manifest = (Path(__file__).parents[2] / "manifests" / "sop.toml").read_text()
    head, _, rest = manifest.partition("[[files]]")
    files_end = rest.index("[catalog]")
    manifest = (head + "[[files]]\nname = \"Stanford_Online_Products.zip\"\n"
                f"size = {size}\nsha256 = \"{digest.hexdigest()}\"\nkind = \"zip\"\n\n"
                "[[files.sources]]\nurl = \"http://127.0.0.1:9/unused\"\n"
                "note = \"made by tools/bench/make_sop_scale.py; pass it with --archive\"\n\n"
                + rest[files_end:])
    (args.out / "sop-scale.toml").write_text(manifest)
    print(f"{zip_path}: {size} bytes, {len(rows)} images ({total / len(rows) / 1000:.1f} KB "
          f"each on average), sha256 {digest.hexdigest()}")


if __name__ == "__main__":
    main()
