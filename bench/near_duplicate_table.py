"""Precision/recall of phash near-duplicate detection per Hamming threshold.

Builds transformed copies of real photos (scikit-learn's china.jpg and flower.jpg, plus
distinct tiles of them as further "photos"), adds synthetic images as unrelated photos,
hashes everything with ``imagehash.phash`` and, for every threshold t, counts:

- positives: (original, transformed copy of the same photo) pairs; recall = found / all;
- negatives: every pair of images whose base photos differ (copies included);
  a false positive is a negative pair at distance <= t.

Run: ``PYTHONPATH=layers/core .venv/bin/python bench/near_duplicate_table.py [--markdown]``
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections import Counter
from collections.abc import Callable

import imagehash
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

THRESHOLDS = list(range(0, 25))


def _sklearn_photos() -> dict[str, Image.Image]:
    import sklearn

    folder = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images")
    return {
        name: Image.open(os.path.join(folder, f"{name}.jpg")).convert("RGB") for name in ("china", "flower")
    }


def base_photos() -> dict[str, Image.Image]:
    """Real photos and non-overlapping tiles of them (2x2 and 3x3 grids), each a distinct photo."""
    bases: dict[str, Image.Image] = {}
    for name, img in _sklearn_photos().items():
        bases[name] = img
        w, h = img.size
        for grid in (2, 3):
            for gy in range(grid):
                for gx in range(grid):
                    box = (gx * w // grid, gy * h // grid, (gx + 1) * w // grid, (gy + 1) * h // grid)
                    bases[f"{name}-{grid}x{grid}-{gy}{gx}"] = img.crop(box)
    return bases


def synthetic_photos(count: int, seed: int = 7) -> dict[str, Image.Image]:
    """Unrelated images: smooth random fields, shapes and gradients (low-frequency rich, like photos)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Image.Image] = {}
    for i in range(count):
        kind = i % 3
        if kind == 0:  # smooth random field: coarse noise upscaled
            coarse = rng.integers(0, 256, size=(rng.integers(3, 9), rng.integers(3, 9), 3), dtype=np.uint8)
            img = Image.fromarray(coarse).resize((480, 360), Image.Resampling.BICUBIC)
        elif kind == 1:  # random shapes on a random background
            img = Image.new("RGB", (480, 360), tuple(int(c) for c in rng.integers(0, 256, 3)))
            draw = ImageDraw.Draw(img)
            for _ in range(12):
                x0, y0 = int(rng.integers(0, 440)), int(rng.integers(0, 320))
                x1, y1 = x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 150))
                fill = tuple(int(c) for c in rng.integers(0, 256, 3))
                (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
        else:  # oriented gradient plus texture
            yy, xx = np.mgrid[0:360, 0:480].astype(np.float64)
            angle = rng.uniform(0, np.pi)
            base = np.cos(angle) * xx + np.sin(angle) * yy
            wave = 40 * np.sin(xx / rng.uniform(10, 60)) * np.cos(yy / rng.uniform(10, 60))
            grey = (base - base.min()) / np.ptp(base) * 200 + wave
            rgb = np.stack([grey, np.roll(grey, 37, axis=1), grey[::-1]], axis=2)
            img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        out[f"synthetic-{i:02d}"] = img
    return out


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _watermark(img: Image.Image) -> Image.Image:
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(12, out.width // 12)
    font = ImageFont.load_default(size=size)
    text = "(c) imgdrop 2025"
    box = draw.textbbox((0, 0), text, font=font)
    x = out.width - (box[2] - box[0]) - size // 2
    y = out.height - (box[3] - box[1]) - size // 2
    draw.text((x, y), text, font=font, fill=(255, 255, 255, 160))
    return Image.alpha_composite(out, layer).convert("RGB")


def _centre_crop(img: Image.Image, fraction: float = 0.05) -> Image.Image:
    w, h = img.size
    dx, dy = round(w * fraction / 2), round(h * fraction / 2)
    return img.crop((dx, dy, w - dx, h - dy))


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "resize 50%": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "jpeg q40": lambda im: _jpeg(im, 40),
    "watermark": _watermark,
    "brightness +20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "centred 5% crop": _centre_crop,
    "rotate 3deg": lambda im: im.rotate(3, resample=Image.Resampling.BICUBIC),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
}


def phash_int(img: Image.Image) -> int:
    return int(str(imagehash.phash(img)), 16)


def measure(synthetic: int = 30) -> dict:
    photos = base_photos()
    photos.update(synthetic_photos(synthetic))
    rows: list[tuple[str, str, int]] = []  # (base, transform, hash)
    for base, img in photos.items():
        rows.append((base, "original", phash_int(img)))
        for tname, fn in TRANSFORMS.items():
            rows.append((base, tname, phash_int(fn(img))))
    hashes = np.array([h for _, _, h in rows], dtype=np.uint64)
    bases = np.array([b for b, _, _ in rows])
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :]).astype(np.int64)

    positives: list[tuple[str, int]] = []  # (transform, distance original->copy)
    originals = {b: h for b, t, h in rows if t == "original"}
    for base, tname, h in rows:
        if tname != "original":
            positives.append((tname, (originals[base] ^ h).bit_count()))
    iu = np.triu_indices(len(rows), k=1)
    different = bases[iu[0]] != bases[iu[1]]
    negatives = dist[iu][different]
    return {"photos": len(photos), "images": len(rows), "positives": positives, "negatives": negatives}


def measure_both(synthetic: int) -> tuple[dict, dict]:
    """Real photos and their tiles only; then the same plus synthetic images as unrelated photos."""
    return measure(0), measure(synthetic)


def table(result: dict) -> list[dict]:
    pos = np.array([d for _, d in result["positives"]])
    neg = result["negatives"]
    out = []
    for t in THRESHOLDS:
        tp = int((pos <= t).sum())
        fp = int((neg <= t).sum())
        fn = len(pos) - tp
        precision = tp / (tp + fp) if tp + fp else 1.0
        out.append({"t": t, "tp": tp, "fn": fn, "fp": fp, "precision": precision, "recall": tp / len(pos)})
    return out


def render(result: dict, rows: list[dict], markdown: bool, title: str = "") -> str:
    pos = result["positives"]
    neg = result["negatives"]
    lines = [
        f"## {title}",
        "",
        f"{result['photos']} base photos, {result['images']} images, {len(pos)} positive pairs "
        f"(original vs transformed copy), {len(neg)} negative pairs (different base photos).",
        "",
        "| threshold | TP | FN | FP | precision | recall |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['t']} | {r['tp']} | {r['fn']} | {r['fp']} | {r['precision']:.4f} | {r['recall']:.4f} |"
        )
    lines += ["", "Distance of copies to their original, per transform (min / median / max):", ""]
    lines += ["| transform | min | median | max |", "|---|---:|---:|---:|"]
    by_t: dict[str, list[int]] = {}
    for tname, d in pos:
        by_t.setdefault(tname, []).append(d)
    for tname, ds in by_t.items():
        lines.append(f"| {tname} | {min(ds)} | {int(np.median(ds))} | {max(ds)} |")
    close = sorted(Counter(int(x) for x in neg[neg <= 24]).items())
    lines += ["", f"Negative pairs at distance <= 24, as (distance, count): {close}", ""]
    text = "\n".join(lines)
    return text if markdown else text.replace("|", " ").replace("---:", "").replace("---", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--synthetic", type=int, default=30, help="synthetic unrelated images")
    args = parser.parse_args(argv)
    real, mixed = measure_both(args.synthetic)
    real_rows = table(real)
    clean = [r for r in real_rows if r["fp"] == 0]
    choice = max(clean, key=lambda r: (r["recall"], -r["t"]))
    print("# Near-duplicate threshold: precision and recall of phash per Hamming distance\n")
    print("Produced by `bench/near_duplicate_table.py --markdown` (imagehash.phash, 64 bits). Positives:")
    print("a photo against each transformed copy (" + ", ".join(TRANSFORMS) + ").")
    print("Negatives: every pair of images from different base photos, copies included.")
    print("phash distances come out even (the hash thresholds the DCT at its median), so odd")
    print("thresholds equal the even one below.\n")
    print(f"**Chosen default: {choice['t']}** - the smallest threshold with the best recall and no false")
    print(f"positive on real photos (precision {choice['precision']:.3f}, recall {choice['recall']:.3f}).")
    print("Synthetic smooth images (second table) collide far more easily than photos: two blurred")
    print("random fields account for nearly all of its false positives at 12 or less.")
    print("Misses at the default are mostly the 3 degree rotation (phash is not rotation tolerant).")
    print("Cost (bench/bench_dedupe.py): thresholds 8-11 need 1 BatchGetItem per lookup, 12-15 need 6;")
    print("a deployment that prefers the cheaper lookup sets 10 and loses the copies at 12.\n")
    print(render(real, real_rows, args.markdown, "Real photos and tiles of them"))
    print(render(mixed, table(mixed), args.markdown, f"Plus {args.synthetic} synthetic images (stress test)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
