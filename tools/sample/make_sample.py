#!/usr/bin/env python3
"""Generate the bundled sample dataset `data/sample/glyphs.tar.gz`.

The sample is 177 character classes x 50 real typefaces = 8,850 glyph images,
32x32 8-bit grayscale PNG, black glyph on white.  Classes are characters,
instances are typefaces.  Class ids 1..88 are the canonical train split and
89..177 the test split.  The recipe (face list, classes, rendering, pruning)
is documented in `data/sample/README.md`.

Rendering: each glyph is drawn at 4x (128x128) and box-downsampled to 32x32.
The font size is set so that the cap height of 'H' is 0.52*S with the
baseline at 0.72*S; each glyph is centred horizontally on its ink, and a
glyph whose ink is wider than 0.94*S is shrunk on its own.

Fonts come from 18 Debian packages (fonts-anonymous-pro, fonts-cantarell,
fonts-cmu, fonts-crosextra-carlito, fonts-dejavu-extra, fonts-ebgaramond,
fonts-freefont-ttf, fonts-hack, fonts-jetbrains-mono, fonts-liberation,
fonts-linuxlibertine, fonts-noto-core, fonts-oldstandard, fonts-open-sans,
fonts-roboto-unhinted, fonts-sil-gentiumplus, fonts-tuffy, fonts-urw-base35).
Only their .ttf/.otf files are used; each face is found by its name table.

This is a build-time tool only; nothing in the product needs Python.

Requirements: Python 3.11, numpy, Pillow, fontTools (`pip install fonttools`),
the 18 Debian packages above, dpkg-query.

Usage (from the repository root):

    python3 tools/sample/make_sample.py            # writes data/sample/glyphs.tar.gz
    python3 tools/sample/make_sample.py --out X    # writes X instead
    python3 tools/sample/make_sample.py --reprune  # re-derive the face list
                                                   # (report only, no archive)

The output is byte-for-byte deterministic for a given set of font packages,
Pillow (and its bundled FreeType) and zlib: tar entries sorted, mtime 0,
uid/gid 0, empty owner names, modes 0644/0755, gzip header without name
or time.  The archive's sha256 and size are printed at the end.
"""

import argparse
import csv
import functools
import gzip
import hashlib
import io
import logging
import os
import subprocess
import sys
import tarfile

import numpy as np
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

# fontTools warns about odd 'created' timestamps in some fonts; not relevant.
logging.getLogger("fontTools").setLevel(logging.ERROR)

# --------------------------------------------------------------------------
# Recipe constants
# --------------------------------------------------------------------------

S = 32  # output size
SS = 4  # supersampling factor
BIG = S * SS  # render size (128)
CAP_FRAC = 0.52  # cap height of 'H' as a fraction of S
BASELINE_FRAC = 0.72  # baseline position from the top, fraction of S
MAX_WIDTH_FRAC = 0.94  # glyphs with wider ink are shrunk on their own

# The 177 code points, in split order: first 88 train, last 89 test.
CODEPOINTS = [
    33, 35, 36, 37, 38, 40, 41, 42, 43, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
    76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93,
    94, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125,
    126, 161, 162, 163, 164, 165, 167, 169, 170, 171, 172, 174, 176, 177,
    182, 187, 191, 198, 215, 216, 222, 223, 230, 247, 248, 254, 915, 916,
    920, 923, 926, 928, 931, 934, 936, 937, 945, 946, 947, 948, 949, 950,
    951, 952, 953, 954, 955, 956, 958, 960, 961, 962, 963, 964, 965, 966,
    967, 968, 969, 1041, 1044, 1046, 1048, 1051, 1059, 1062, 1063, 1064,
    1066, 1067, 1068, 1069, 1070, 1071, 1073, 1074, 1075, 1076, 1078, 1079,
    1083, 1084, 1085, 1092, 1094, 1095, 1096, 1098, 1099, 1100, 1101, 1102,
    1103, 8364,
]
N_TRAIN_CLASSES = 88

# The 50 faces kept by the feasibility experiment (pruned at t = 0.05).
# face_id fNN is the position in this list.
FACES = [
    "Anonymous Pro Bold Italic",
    "Anonymous Pro Regular",
    "C059 Bold",
    "C059 Bold Italic",
    "CMU Bright Roman",
    "CMU Sans Serif Bold",
    "CMU Sans Serif BoldOblique",
    "CMU Serif Bold",
    "CMU Serif BoldItalic",
    "CMU Serif Extra RomanSlanted",
    "CMU Typewriter Text Bold",
    "CMU Typewriter Text BoldItalic",
    "CMU Typewriter Text LightOblique",
    "Cantarell Extra Bold",
    "Carlito Bold Italic",
    "DejaVu Sans Bold Oblique",
    "DejaVu Serif Italic",
    "EB Garamond 08 Regular",
    "EB Garamond 12 Italic",
    "FreeMono Bold",
    "FreeMono Oblique",
    "Gentium Book Plus Bold Italic",
    "Hack Italic",
    "JetBrains Mono ExtraBold Italic",
    "Liberation Mono Bold Italic",
    "Liberation Mono Regular",
    "Linux Libertine O Semibold Italic",
    "Nimbus Mono PS Bold Italic",
    "Nimbus Mono PS Regular",
    "Nimbus Sans Narrow Bold Oblique",
    "Nimbus Sans Narrow Regular",
    "Noto Serif Bold",
    "Noto Serif Display Bold Italic",
    "Noto Serif Display Regular",
    "Old Standard TT Bold",
    "Old Standard TT Italic",
    "Open Sans Condensed Light Italic",
    "Open Sans Extrabold Italic",
    "Open Sans Condensed Bold",
    "P052 Bold Italic",
    "Roboto Light Italic",
    "Tuffy Bold",
    "Tuffy Italic",
    "URW Bookman Demi",
    "URW Bookman Demi Italic",
    "URW Bookman Light",
    "URW Bookman Light Italic",
    "URW Gothic Book",
    "URW Gothic Demi Oblique",
    "Z003 Medium Italic",
]

# Debian package -> licence of its font files, as stated in
# /usr/share/doc/<package>/copyright (SPDX-like names).
PACKAGES = {
    "fonts-anonymous-pro": "OFL-1.1",
    "fonts-cantarell": "OFL-1.1",
    "fonts-cmu": "OFL-1.1",
    "fonts-crosextra-carlito": "OFL-1.1",
    "fonts-dejavu-extra": "Bitstream-Vera (DejaVu changes public domain)",
    "fonts-ebgaramond": "OFL-1.1",
    "fonts-freefont-ttf": "GPL-3+ with font exception",
    "fonts-hack": "MIT (Expat) and Bitstream-Vera",
    "fonts-jetbrains-mono": "Apache-2.0",
    "fonts-liberation": "GPL-2 with font exception",
    "fonts-linuxlibertine": "GPL-2+ with font exception or OFL-1.1",
    "fonts-noto-core": "OFL-1.1",
    "fonts-oldstandard": "OFL-1.0",
    "fonts-open-sans": "Apache-2.0",
    "fonts-roboto-unhinted": "Apache-2.0",
    "fonts-sil-gentiumplus": "OFL-1.1-RFN",
    "fonts-tuffy": "public-domain",
    "fonts-urw-base35": "AGPL-3 with font exception",
}

# Style words that mark hairline/thin faces (too faint at 32 px); used by
# --reprune only.
THIN_WORDS = ("thin", "hairline", "extralight", "ultralight")


def die(msg):
    print(f"make_sample: error: {msg}", file=sys.stderr)
    sys.exit(1)


def norm(name):
    return " ".join(name.replace("-", " ").split()).casefold()


# --------------------------------------------------------------------------
# Font discovery
# --------------------------------------------------------------------------


class Face:
    """One font file with its names, package and licence."""

    def __init__(self, path, package):
        self.path = path
        self.package = package
        self.license = PACKAGES[package]
        tt = TTFont(path, lazy=True)
        name = tt["name"]

        def get(i):
            return (name.getDebugName(i) or "").strip()

        fam1, sub2, fam16, sub17, full4 = get(1), get(2), get(16), get(17), get(4)
        # Typographic family/subfamily (16/17) where present, else legacy (1/2).
        self.family = fam16 or fam1
        self.style = sub17 or sub2
        self.names = {
            norm(f"{fam1} {sub2}"),
            norm(f"{self.family} {self.style}"),
            norm(full4),
        }
        self.cmap = set((tt.getBestCmap() or {}).keys())
        self.upem = tt["head"].unitsPerEm
        self.cap_units = None
        gid = (tt.getBestCmap() or {}).get(ord("H"))
        if gid is not None:
            pen = BoundsPen(tt.getGlyphSet())
            tt.getGlyphSet()[gid].draw(pen)
            if pen.bounds is not None:
                self.cap_units = pen.bounds[3]  # top of 'H' above the baseline
        tt.close()

    def covers(self, cps):
        return all(cp in self.cmap for cp in cps)

    def display(self):
        return f"{self.family} {self.style}"


def package_font_files():
    """All .ttf/.otf files of the 18 packages, as (path, package), sorted."""
    out = []
    for pkg in sorted(PACKAGES):
        try:
            res = subprocess.run(
                ["dpkg-query", "-L", pkg], capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            die(f"Debian package {pkg} is not installed (apt-get install {pkg})")
        for line in res.stdout.splitlines():
            if line.lower().endswith((".ttf", ".otf")) and os.path.isfile(line):
                out.append((line, pkg))
    return sorted(out)


def load_all_faces():
    return [Face(p, pkg) for p, pkg in package_font_files()]


def find_faces(all_faces, wanted):
    """Map each wanted name to exactly one font file (fail loudly)."""
    found = []
    for want in wanted:
        hits = [f for f in all_faces if norm(want) in f.names]
        if not hits:
            die(f"face {want!r} not found in the installed font packages")
        # Same face installed twice (fonts-tuffy ships two copies of each
        # style with identical names and version): take the first path in
        # byte order, which is also what fc-match picks.
        hits.sort(key=lambda f: f.path)
        face = hits[0]
        missing = [cp for cp in CODEPOINTS if cp not in face.cmap]
        if missing:
            die(
                f"face {want!r} ({face.path}) lacks "
                + ", ".join(f"U+{cp:04X}" for cp in missing)
            )
        if face.cap_units is None or face.cap_units <= 0:
            die(f"face {want!r} ({face.path}) has no usable 'H'")
        found.append(face)
    paths = [f.path for f in found]
    if len(set(paths)) != len(paths):
        die("two face names resolved to the same font file")
    return found


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

CANVAS_W = 4 * BIG
ORIGIN_X = 1.5 * BIG
BASELINE_Y = BASELINE_FRAC * BIG
MAX_INK_W = MAX_WIDTH_FRAC * BIG


@functools.lru_cache(maxsize=64)
def _font(path, size):
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def _draw(path, size, ch):
    font = _font(path, size)
    # Tall canvas: rows [BIG, 2*BIG) are the output window; the rest only
    # detects clipping.
    img = Image.new("L", (CANVAS_W, 3 * BIG), 0)
    ImageDraw.Draw(img).text(
        (ORIGIN_X, BIG + BASELINE_Y), ch, font=font, fill=255, anchor="ls"
    )
    return np.asarray(img, dtype=np.uint8)


def render_glyph(face, cp, stats=None):
    """Render one glyph; returns a 32x32 uint8 array (black ink on white)."""
    ch = chr(cp)
    size = CAP_FRAC * BIG * face.upem / face.cap_units
    for _ in range(6):
        cov = _draw(face.path, size, ch)
        cols = np.nonzero(cov.max(axis=0))[0]
        if cols.size == 0:
            die(f"{face.display()}: U+{cp:04X} renders no ink")
        c0, c1 = int(cols[0]), int(cols[-1])
        if c0 == 0 or c1 == CANVAS_W - 1:
            die(f"{face.display()}: U+{cp:04X} touches the canvas edge")
        width = c1 - c0 + 1
        if width <= MAX_INK_W:
            break
        # Shrink this glyph on its own (baseline kept), then re-measure.
        size *= MAX_INK_W / width
        if stats is not None:
            if (face.path, cp) not in stats["shrunk"]:
                print(f"  note: {face.display()} U+{cp:04X}: ink {width / SS:.1f} px "
                      f"wide, shrunk to {MAX_WIDTH_FRAC:g}*S", file=sys.stderr)
            stats["shrunk"].add((face.path, cp))
    else:
        die(f"{face.display()}: U+{cp:04X} could not be shrunk to fit")
    # Centre horizontally on the ink.
    centre = (c0 + c1 + 1) / 2.0
    left = int(np.floor(centre - BIG / 2 + 0.5))
    win = cov[BIG : 2 * BIG, left : left + BIG].astype(np.uint32)
    if stats is not None:
        total = int(cov.sum(dtype=np.uint64))
        kept = int(win.sum())
        if kept < total:
            stats["clipped"].append((face.display(), cp, 1.0 - kept / total))
            print(f"  note: {face.display()} U+{cp:04X}: {1.0 - kept / total:.1%} "
                  "of the ink falls outside the 32x32 frame", file=sys.stderr)
    # Box-downsample 4x4 -> 1 with integer rounding.
    small = win.reshape(S, SS, S, SS).sum(axis=(1, 3))
    small = (small + (SS * SS) // 2) // (SS * SS)
    return (255 - small).astype(np.uint8)


def render_faces(faces, stats=None, progress=True):
    """Array [n_faces, n_classes, 32, 32] uint8."""
    out = np.empty((len(faces), len(CODEPOINTS), S, S), dtype=np.uint8)
    for i, face in enumerate(faces):
        for j, cp in enumerate(CODEPOINTS):
            out[i, j] = render_glyph(face, cp, stats)
        if progress:
            print(f"  [{i + 1:3d}/{len(faces)}] {face.display()}", file=sys.stderr)
    return out


def png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------
# Evaluation helpers
# --------------------------------------------------------------------------


def raw_pixel_recall_at_1(images, class_idx):
    """images [N, D] float, class_idx [N]; Euclidean, query excluded."""
    x = images.astype(np.float64)
    sq = (x * x).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d, np.inf)
    nn = d.argmin(1)
    return float((class_idx[nn] == class_idx).mean())


def test_split_recall(imgs):
    """imgs [F, C, 32, 32] uint8 -> raw-pixel R@1 on the test classes."""
    test = imgs[:, N_TRAIN_CLASSES:].transpose(1, 0, 2, 3)  # [C, F, 32, 32]
    n_cls, n_faces = test.shape[:2]
    x = test.reshape(n_cls * n_faces, -1) / 255.0
    y = np.repeat(np.arange(n_cls), n_faces)
    return raw_pixel_recall_at_1(x, y)


# --------------------------------------------------------------------------
# Archive
# --------------------------------------------------------------------------


def build_archive(faces, imgs):
    files = {}  # path inside tar -> bytes

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["face_id", "family", "style", "font_file", "debian_package", "license"])
    for i, f in enumerate(faces):
        w.writerow([f"f{i:02d}", f.family, f.style, f.path, f.package, f.license])
    files["glyphs/faces.csv"] = buf.getvalue().encode("utf-8")

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "class_id", "class_name"])
    for j, cp in enumerate(CODEPOINTS):
        d = f"U+{cp:04X}"
        for i in range(len(faces)):
            rel = f"images/{d}/f{i:02d}.png"
            w.writerow([rel, j + 1, f"{d} {chr(cp)}"])
            files["glyphs/" + rel] = png_bytes(imgs[i, j])
    files["glyphs/images.csv"] = buf.getvalue().encode("utf-8")

    dirs = {"glyphs", "glyphs/images"}
    for cp in CODEPOINTS:
        dirs.add(f"glyphs/images/U+{cp:04X}")

    entries = sorted([(d + "/", None) for d in dirs] + list(files.items()))

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            ti = tarfile.TarInfo(name.rstrip("/") if data is None else name)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tar.addfile(ti)
            else:
                ti.type = tarfile.REGTYPE
                ti.mode = 0o644
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))

    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, compresslevel=9, mtime=0) as g:
        g.write(raw.getvalue())
    n_png = sum(1 for k in files if k.endswith(".png"))
    return gz.getvalue(), n_png, files


# --------------------------------------------------------------------------
# Re-deriving the face list
# --------------------------------------------------------------------------


def greedy_prune(imgs, t):
    """Remove one face of the closest pair until all pairs differ by >= t.

    Distance = mean absolute pixel difference (pixels in [0, 1]) over all
    classes.  Of the closest pair, the face whose other nearest neighbour is
    closer (the more redundant one) is removed; ties remove the later face.
    Returns the indices kept, in input order.
    """
    n = imgs.shape[0]
    x = imgs.reshape(n, -1).astype(np.float32) / 255.0
    d = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        d[i] = np.abs(x - x[i]).mean(1)
    np.fill_diagonal(d, np.inf)
    alive = np.ones(n, dtype=bool)
    while True:
        sub = np.where(alive[:, None] & alive[None, :], d, np.inf)
        flat = int(np.argmin(sub))
        i, j = divmod(flat, n)
        if sub[i, j] >= t:
            break
        # second-nearest distance of i and j (excluding each other)
        di = np.sort(sub[i])[1]
        dj = np.sort(sub[j])[1]
        drop = i if di < dj else j if dj < di else max(i, j)
        alive[drop] = False
    return [k for k in range(n) if alive[k]]


def reprune(t):
    all_faces = load_all_faces()
    print(f"{len(all_faces)} .ttf/.otf files in the 18 packages")
    seen = {}
    usable = []
    for f in all_faces:
        if not f.covers(CODEPOINTS) or not f.cap_units:
            continue
        key = norm(f.display())
        if key in seen:  # duplicate install of the same face
            continue
        seen[key] = f
        usable.append(f)
    print(f"{len(usable)} distinct faces cover all {len(CODEPOINTS)} code points")
    kept = [f for f in usable if not any(w in norm(f.style).replace(" ", "") for w in THIN_WORDS)]
    print(f"{len(kept)} after dropping hairline/thin faces ({', '.join(THIN_WORDS)})")
    imgs = render_faces(kept, progress=False)
    print(f"raw-pixel test R@1 with all {len(kept)}: {test_split_recall(imgs):.3f}")
    idx = greedy_prune(imgs, t)
    chosen = [kept[k] for k in idx]
    print(f"t = {t}: {len(chosen)} faces left, raw-pixel test R@1 "
          f"{test_split_recall(imgs[idx]):.3f}")
    fixed = {norm(n) for n in FACES}
    for f in chosen:
        mark = " " if norm(f.display()) in fixed or fixed & f.names else "+"
        print(f"  {mark} {f.display()}  ({f.path})")
    chosen_names = set()
    for f in chosen:
        chosen_names |= f.names
    for n in FACES:
        if norm(n) not in chosen_names:
            print(f"  - {n}  (in the fixed list, not re-derived)")


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="output archive path "
                    "(default: <repo>/data/sample/glyphs.tar.gz)")
    ap.add_argument("--reprune", action="store_true",
                    help="re-derive the face list from all installed faces and "
                    "report it (writes no archive)")
    ap.add_argument("--threshold", type=float, default=0.05,
                    help="pruning threshold t for --reprune (default 0.05)")
    args = ap.parse_args()

    if args.reprune:
        reprune(args.threshold)
        return

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = args.out or os.path.join(repo, "data", "sample", "glyphs.tar.gz")

    faces = find_faces(load_all_faces(), FACES)
    assert len(faces) == 50 and len(CODEPOINTS) == 177
    assert len(set(CODEPOINTS)) == len(CODEPOINTS)

    stats = {"shrunk": set(), "clipped": []}
    imgs = render_faces(faces, stats)
    data, n_png, _ = build_archive(faces, imgs)

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, out)

    n_clip = len(stats["clipped"])
    worst = max((c[2] for c in stats["clipped"]), default=0.0)
    print(f"faces: {len(faces)}  classes: {len(CODEPOINTS)}  images: {n_png}")
    print(f"glyphs shrunk to fit width: {len(stats['shrunk'])}; "
          f"glyphs with ink clipped vertically: {n_clip} (worst {worst:.1%})")
    print(f"raw-pixel R@1 on test classes {N_TRAIN_CLASSES + 1}-{len(CODEPOINTS)}: "
          f"{test_split_recall(imgs):.3f}")
    print(f"wrote {out}")
    print(f"size: {len(data)} bytes")
    print(f"sha256: {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
