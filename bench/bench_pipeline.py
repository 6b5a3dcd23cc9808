"""Benchmark imgdrop.pipeline.render against a naive Pillow pipeline (default profile + hashes).

    python bench/bench_pipeline.py [--repeat 3] [--rounds 3] [--cpu N]

Each measurement runs in a fresh subprocess pinned to one CPU (os.sched_setaffinity):
imports first (not timed), one cold call, then ``--repeat`` timed calls (median reported);
peak RSS is the subprocess's ru_maxrss. The naive and imgdrop workers alternate, ``--rounds``
pairs per input, and the speedup is the median of the pairs' ratios, as farm-bench pairs its
runs: the machine's speed drifts, and one naive worker then one imgdrop worker measured the
drift as often as the code (the GIF's ratio ranged 2.9-4.4x in one day). Inputs are generated
from scikit-learn's sample photos, upscaled. "naive" = Pillow, every variant resized from the
full image with LANCZOS, phash/dhash with imagehash on the full image, EXIF read, JPEG q85 (PNG
with alpha) encoded; animations resized frame by frame to animated GIF. Both sides make only
each variant's fallback (imgdrop: the default profile with ``formats`` emptied): this bench
weighs decoding, resizing and analysis; bench/bench_formats.py weighs the WebP and AVIF
encodings. For the PNG, the curve of its compression level follows (bench/encode_curves.py).
The last table compares the cold import of the process handler with a bare
``import boto3; import PIL.Image``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from encode_curves import curve, print_curve

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "core"
DEFAULT_VARIANTS = [
    ("large", "fit", 2048),
    ("medium", "fit", 1024),
    ("small", "fit", 512),
    ("thumb", "cover", 256),
]


# ---------------------------------------------------------------- the naive baseline


def naive_render(data: bytes) -> dict:
    import hashlib

    import imagehash
    from PIL import Image, ImageOps, ImageSequence

    src = Image.open(io.BytesIO(data))
    exif = dict(src.getexif())
    out = {}
    if getattr(src, "n_frames", 1) > 1:
        frames = [f.convert("RGBA") for f in ImageSequence.Iterator(src)]
        first = frames[0]
        for name, mode, box in DEFAULT_VARIANTS:
            if mode == "fit":
                s = min(1.0, box / first.width, box / first.height)
                size = (max(1, round(first.width * s)), max(1, round(first.height * s)))
                resized = [f.resize(size, Image.Resampling.LANCZOS) for f in frames]
            else:
                resized = [ImageOps.fit(f, (box, box), Image.Resampling.LANCZOS) for f in frames]
            buf = io.BytesIO()
            resized[0].save(buf, "GIF", save_all=True, append_images=resized[1:], loop=0)
            out[name] = buf.getvalue()
        hashed = first
    else:
        img = ImageOps.exif_transpose(src)
        alpha = img.mode in ("RGBA", "LA", "P")
        img = img.convert("RGBA" if alpha else "RGB")
        for name, mode, box in DEFAULT_VARIANTS:
            if mode == "fit":
                s = min(1.0, box / img.width, box / img.height)
                v = img.resize(
                    (max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS
                )
            else:
                v = ImageOps.fit(img, (box, box), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            v.save(buf, "PNG" if alpha else "JPEG", quality=85)
            out[name] = buf.getvalue()
        hashed = img
        if alpha:
            flat = Image.new("RGB", img.size, (255, 255, 255))
            flat.paste(img, mask=img.getchannel("A"))
            hashed = flat
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "phash": str(imagehash.phash(hashed)),
        "dhash": str(imagehash.dhash(hashed)),
        "exif": len(exif),
        "variants": {k: len(v) for k, v in out.items()},
    }


def imgdrop_render(data: bytes) -> dict:
    import dataclasses

    from imgdrop.pipeline import load_profiles, render

    fallback_only = {"default": dataclasses.replace(load_profiles()["default"], formats=())}
    r = render(data, "default", profiles=fallback_only)
    return {"phash": r.phash, "dhash": r.dhash, "variants": {k: v[0].bytes for k, v in r.variants.items()}}


# ---------------------------------------------------------------- worker (subprocess)


def worker(impl: str, path: str, repeat: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, str(CORE))
    data = Path(path).read_bytes()
    if impl == "naive":
        import imagehash  # noqa: F401
        import scipy.fftpack  # noqa: F401  (imagehash loads it inside phash; not a render cost)
        from PIL import Image  # noqa: F401

        fn = naive_render
    else:
        import pyvips  # noqa: F401

        import imgdrop.pipeline  # noqa: F401

        fn = imgdrop_render
    t0 = time.perf_counter()
    result = fn(data)
    cold = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - t0)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "cold_ms": cold * 1000,
                "ms": statistics.median(times) * 1000,
                "rss_mb": rss_kb / 1024,
                "phash": result["phash"],
                "dhash": result["dhash"],
            }
        )
    )


def run_worker(impl: str, path: Path, repeat: int, cpu: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, str(path), "--repeat", str(repeat), "--cpu", str(cpu)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {path.name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- inputs


def make_inputs(tmp: Path) -> list[tuple[str, Path]]:
    import numpy as np
    import sklearn
    from PIL import Image

    images = Path(sklearn.__file__).parent / "datasets" / "images"
    china = Image.open(images / "china.jpg").convert("RGB")
    flower = Image.open(images / "flower.jpg").convert("RGB")
    cases = []

    def save(name: str, img: Image.Image, fmt: str, **kw) -> None:
        path = tmp / name
        img.save(path, fmt, **kw)
        cases.append((name, path))

    save("12MP.jpg", china.resize((4000, 3000), Image.Resampling.BICUBIC), "JPEG", quality=90)
    save("24MP.jpg", flower.resize((6000, 4000), Image.Resampling.BICUBIC), "JPEG", quality=90)
    rgba = flower.resize((4000, 3000), Image.Resampling.BICUBIC).convert("RGBA")
    yy, xx = np.mgrid[0:3000, 0:4000]
    alpha = np.clip(255 - np.hypot(xx - 2000, yy - 1500) / 8, 0, 255).astype(np.uint8)  # radial fade
    rgba.putalpha(Image.fromarray(alpha))
    save("12MP-rgba.png", rgba, "PNG", compress_level=6)
    frames = []
    for i in range(24):
        box = (i * 8, i * 4, i * 8 + 480, i * 4 + 320)
        frames.append(china.crop(box).convert("P", palette=Image.Palette.ADAPTIVE))
    path = tmp / "anim-24f.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    cases.append(("anim-24f.gif", path))
    return cases


# ---------------------------------------------------------------- import time


def import_time(statement: str, runs: int = 7) -> float:
    # The handler builds its clients at import: give it a region and names, never a network call.
    env = dict(os.environ, PYTHONPATH=str(CORE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "bench",
        "BUCKET_NAME": "bench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        env.setdefault(key, value)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "PATH"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="alternating naive/imgdrop worker pairs per input")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--make-inputs", metavar="DIR")
    args = parser.parse_args()
    if args.make_inputs:
        print(json.dumps([[name, str(path)] for name, path in make_inputs(Path(args.make_inputs))]))
        return
    cpu = (
        args.cpu
        if args.cpu is not None
        else (sorted(os.sched_getaffinity(0))[-1] if hasattr(os, "sched_getaffinity") else 0)
    )
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeat, cpu)
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # Made in a subprocess: ru_maxrss survives fork+exec, so the parent that spawns the
        # measured workers must stay small.
        made = subprocess.run(
            [sys.executable, __file__, "--make-inputs", tmp], capture_output=True, text=True, check=True
        )
        cases = [(name, Path(path)) for name, path in json.loads(made.stdout.strip().splitlines()[-1])]
        floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(the parent's peak RSS, a floor for every worker's ru_maxrss: {floor:.0f} MB)")
        print(f"one CPU (#{cpu}) per measurement, median of {args.repeat} warm calls after a cold one;"
              f" {args.rounds} alternating pairs of workers per input: ms are the medians of each side,"
              f" speedup the median of the pairs' ratios, MB the largest peak RSS\n")
        head = (
            f"{'input':<14}{'MB':>6} | {'naive ms':>9}{'imgdrop ms':>11}{'speedup':>9} | "
            f"{'naive MB':>9}{'imgdrop MB':>11}{'RSS ratio':>10} | hash bits off"
        )
        print(head)
        print("-" * len(head))
        curves = []
        for name, path in cases:
            # Alternating pairs, the ratio taken pair by pair: this machine's speed drifts by tens
            # of percent over a minute, and two workers run a minute apart measured the drift.
            pairs = [(run_worker("naive", path, args.repeat, cpu), run_worker("imgdrop", path, args.repeat, cpu))
                     for _ in range(args.rounds)]
            naive_ms = statistics.median(n["ms"] for n, _ in pairs)
            ours_ms = statistics.median(o["ms"] for _, o in pairs)
            speedup = statistics.median(n["ms"] / o["ms"] for n, o in pairs)
            naive_mb = max(n["rss_mb"] for n, _ in pairs)
            ours_mb = max(o["rss_mb"] for _, o in pairs)
            naive, ours = pairs[0]
            off = sum(
                bin(int(a, 16) ^ int(b, 16)).count("1")
                for a, b in ((naive["phash"], ours["phash"]), (naive["dhash"], ours["dhash"]))
            )
            print(
                f"{name:<14}{path.stat().st_size / 1e6:>6.1f} | {naive_ms:>9.0f}{ours_ms:>11.0f}"
                f"{speedup:>8.1f}x | {naive_mb:>9.0f}{ours_mb:>11.0f}"
                f"{ours_mb / naive_mb:>9.2f}x | {off}"
            )
            if path.suffix == ".png":
                curves.append((name, path, naive_ms, ours_ms))
        for name, path, naive_ms, ours_ms in curves:  # PNG's target: what its compression level trades
            print_curve(name, "png", curve("png", path, cpu), naive_ms, ours_ms)

    handler = ROOT / "functions" / "process" / "app.py"
    bare = "import boto3; import PIL.Image"
    pipeline = "import imgdrop.pipeline, pyvips"
    statements = [(pipeline, "imgdrop.pipeline + pyvips (what render loads)")]
    if handler.exists():
        load = f"import sys; sys.path.insert(0, {str(handler.parent)!r}); import app"
        statements += [
            (load, "functions/process/app.py"),
            (f"{load}; {pipeline}", "app.py + the pipeline (first invocation)"),
        ]
    else:
        print("\n(functions/process/app.py does not exist yet: only the pipeline's import is measured)")
    base_ms = import_time("pass")
    bare_ms = import_time(bare)
    print(f"\ncold import, median of 7 fresh interpreters (interpreter start alone {base_ms:.0f} ms):")
    print(f"  {bare:<46}{bare_ms:>7.0f} ms   1.00x")
    for stmt, what in statements:
        ms = import_time(stmt)
        net = (ms - base_ms) / max(1e-9, bare_ms - base_ms)
        print(f"  {what:<46}{ms:>7.0f} ms   {ms / bare_ms:.2f}x (net of interpreter start {net:.2f}x)")
    print(f"\nbench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
