"""Benchmark the default profile with all its formats against naive Pillow making the same files.

    python bench/bench_formats.py [--repeat 3] [--rounds 3] [--cpu N]

Inputs: scikit-learn's two sample photos (china.jpg, flower.jpg) upscaled to 4000x3000 (12 MP)
and saved as JPEG q90. For each, in fresh subprocesses pinned to one CPU (imports first, not
timed; one cold call, then ``--repeat`` timed calls, median reported; peak RSS is the
subprocess's ru_maxrss), the three workers below in turn, ``--rounds`` times; each speedup is
the median of the rounds' ratios, so that a drift in the machine's speed weighs on both sides:

- imgdrop: ``render(data, "default")``, every variant in every format of the profile (jpeg +
  webp everywhere, avif where the box is <= 1024), hashes and the rest of the analysis included;
- naive: Pillow opens, orients and converts the image, resizes every variant from the full image
  with LANCZOS (ImageOps.fit for ``cover``) and saves the same formats at the same nominal
  qualities (JPEG q85, WebP q80 at its default method 4, AVIF q60 at its default speed). It
  computes no hashes, colours or blurhash: "speedup (files)" is conservative;
- naive analysis: what bench_pipeline's naive adds for the rest of render()'s contract
  (EXIF, imagehash phash/dhash of the full image), timed in a worker of its own; "speedup
  (contract)" compares render() with naive files + naive analysis. RSS compares the files-only
  workers.

Then (outside the timed workers) every encoding of both sides is compared with a reference
rendition of the same size (Pillow LANCZOS from the decoded source, kept in float): SSIM on
luma (7x7 windows), so that speed is not bought with quality. Then the WebP effort's curve
(bench/encode_curves.py): time, bytes and SSIM at each effort, and the files-only speedup each
would give. Last, "what a view costs": the bytes a ``<picture>`` serves (AVIF where the variant
has it, else WebP) against JPEG only.
No absolute timing is asserted: the ratios are measured in the same run on the same CPU.
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

from encode_curves import curve, luma, print_curve, ssim

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "core"
# The default profile and its formats, as the built-in profiles.json defines them.
VARIANTS = [("large", "fit", 2048), ("medium", "fit", 1024), ("small", "fit", 512), ("thumb", "cover", 256)]
AVIF_MAX_BOX = 1024
NAIVE_QUALITY = {"JPEG": 85, "WEBP": 80, "AVIF": 60}
TARGET_SPEEDUP, TARGET_RSS = 5.0, 0.7


# ---------------------------------------------------------------- the two sides


def naive_render(data: bytes) -> dict[str, dict[str, bytes]]:
    import hashlib

    from PIL import Image, ImageOps

    hashlib.sha256(data).hexdigest()
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    out: dict[str, dict[str, bytes]] = {}
    for name, mode, box in VARIANTS:
        if mode == "fit":
            s = min(1.0, box / img.width, box / img.height)
            size = (max(1, round(img.width * s)), max(1, round(img.height * s)))
            v = img.resize(size, Image.Resampling.LANCZOS)
        else:
            v = ImageOps.fit(img, (box, box), Image.Resampling.LANCZOS)
        out[name] = {}
        for fmt in ("JPEG", "WEBP", "AVIF") if box <= AVIF_MAX_BOX else ("JPEG", "WEBP"):
            buf = io.BytesIO()
            v.save(buf, fmt, quality=NAIVE_QUALITY[fmt])
            out[name][fmt.lower()] = buf.getvalue()
    return out


def naive_analysis(data: bytes) -> dict[str, dict[str, bytes]]:
    import imagehash
    from PIL import Image, ImageOps

    src = Image.open(io.BytesIO(data))
    dict(src.getexif())
    img = ImageOps.exif_transpose(src).convert("RGB")
    str(imagehash.phash(img)), str(imagehash.dhash(img))
    return {}


def imgdrop_render(data: bytes) -> dict[str, dict[str, bytes]]:
    from imgdrop.pipeline import render

    r = render(data, "default")
    return {name: {e.format: e.data for e in encodings} for name, encodings in r.variants.items()}


# ---------------------------------------------------------------- worker (subprocess)


def worker(impl: str, path: str, repeat: int, cpu: int, out_dir: str) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, str(CORE))
    data = Path(path).read_bytes()
    if impl == "naive":
        from PIL import Image  # noqa: F401

        fn = naive_render
    elif impl == "naive-analysis":
        import imagehash  # noqa: F401
        import scipy.fftpack  # noqa: F401  (imagehash loads it inside phash; not a render cost)

        fn = naive_analysis
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
    files = {}
    for name, encodings in result.items():
        for fmt, blob in encodings.items():
            target = Path(out_dir) / f"{impl}-{name}.{fmt}"
            target.write_bytes(blob)
            files[f"{name}.{fmt}"] = str(target)
    print(
        json.dumps(
            {
                "cold_ms": cold * 1000,
                "ms": statistics.median(times) * 1000,
                "rss_mb": rss_kb / 1024,
                "files": files,
            }
        )
    )


def run_worker(impl: str, path: Path, repeat: int, cpu: int, out_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, str(path), str(out_dir), "--repeat", str(repeat)]
    out = subprocess.run([*cmd, "--cpu", str(cpu)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {path.name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- inputs and quality


def make_inputs(tmp: Path) -> list[tuple[str, Path]]:
    import sklearn
    from PIL import Image

    images = Path(sklearn.__file__).parent / "datasets" / "images"
    cases = []
    for name in ("china", "flower"):
        photo = (
            Image.open(images / f"{name}.jpg").convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
        )
        path = tmp / f"{name}-12MP.jpg"
        photo.save(path, "JPEG", quality=90)
        cases.append((path.name, path))
    return cases


def quality(source: Path, files: dict[str, str]) -> dict[str, float]:
    """SSIM of each encoding ("variant.format" -> path) against a reference of the same size."""
    from PIL import Image, ImageOps

    src = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
    references: dict[tuple[str, tuple[int, int]], object] = {}
    out = {}
    for key, path in files.items():
        name = key.split(".")[0]
        img = Image.open(path)
        img.load()
        mode = dict((n, m) for n, m, _ in VARIANTS)[name]
        ref_key = (mode, img.size)
        if ref_key not in references:
            ref = (
                src.resize(img.size, Image.Resampling.LANCZOS)
                if mode == "fit"
                else ImageOps.fit(src, img.size, Image.Resampling.LANCZOS)
            )
            references[ref_key] = luma(ref)
        out[key] = ssim(references[ref_key], luma(img))
    return out


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "PATH", "OUT_DIR"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the three workers per input")
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
        worker(args.worker[0], args.worker[1], args.repeat, cpu, args.worker[2])
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Made in a subprocess: ru_maxrss survives fork+exec, so the parent that spawns the
        # measured workers must stay small (it computes the SSIMs only after them).
        made = subprocess.run(
            [sys.executable, __file__, "--make-inputs", tmp_name], capture_output=True, text=True, check=True
        )
        cases = [(name, Path(path)) for name, path in json.loads(made.stdout.strip().splitlines()[-1])]
        print(f"one CPU (#{cpu}) per measurement, median of {args.repeat} warm calls after a cold one;"
              f" {args.rounds} alternating rounds of the workers per input: ms are medians, speedups the"
              f" median of the rounds' ratios, MB the largest peak RSS")
        print(
            "naive = Pillow, LANCZOS from the full image, JPEG q85 / WebP q80 / AVIF q60 at default effort\n"
        )
        measured = []
        for name, path in cases:
            out_dir = tmp / f"{path.stem}-out"
            out_dir.mkdir()
            # Alternating rounds, ratios taken round by round (the machine's speed drifts)
            rounds = [
                (
                    run_worker("naive", path, args.repeat, cpu, out_dir),
                    run_worker("naive-analysis", path, args.repeat, cpu, out_dir),
                    run_worker("imgdrop", path, args.repeat, cpu, out_dir),
                )
                for _ in range(args.rounds)
            ]
            naive, _, ours = rounds[-1]  # the files (the same in every round)
            naive = naive | {
                "ms": statistics.median(n["ms"] for n, _, _ in rounds),
                "analysis_ms": statistics.median(a["ms"] for _, a, _ in rounds),
                "rss_mb": max(n["rss_mb"] for n, _, _ in rounds),
                "speedup": statistics.median(n["ms"] / o["ms"] for n, _, o in rounds),
                "contract": statistics.median((n["ms"] + a["ms"]) / o["ms"] for n, a, o in rounds),
            }
            ours = ours | {
                "ms": statistics.median(o["ms"] for _, _, o in rounds),
                "rss_mb": max(o["rss_mb"] for _, _, o in rounds),
            }
            measured.append((name, path, naive, ours))

        print(f"targets: speedup >= {TARGET_SPEEDUP:.0f}x, RSS ratio <= {TARGET_RSS}x")
        head = (
            f"{'input':<16}| {'naive ms':>9}{'+analysis':>10}{'imgdrop ms':>11} | {'speedup':>8}{'(contract)':>11} | "
            f"{'naive MB':>9}{'imgdrop MB':>11}{'RSS ratio':>10}"
        )
        print(head)
        print("-" * len(head))
        for name, _, naive, ours in measured:
            speedup, contract, rss = naive["speedup"], naive["contract"], ours["rss_mb"] / naive["rss_mb"]
            print(
                f"{name:<16}| {naive['ms']:>9.0f}{naive['analysis_ms']:>10.0f}{ours['ms']:>11.0f} | "
                f"{speedup:>7.1f}x{contract:>10.1f}x | "
                f"{naive['rss_mb']:>9.0f}{ours['rss_mb']:>11.0f}{rss:>9.2f}x"
            )

        for name, path, naive, ours in measured:
            # what the WebP effort behind the speedup costs and buys, at the sizes where it is set
            print_curve(name, "webp", curve("webp", path, cpu), naive["ms"], ours["ms"])

        for name, path, naive, ours in measured:
            print(f"\n{name}: bytes and SSIM (luma, 7x7) of each encoding against a LANCZOS reference")
            q_naive, q_ours = quality(path, naive["files"]), quality(path, ours["files"])
            head = (
                f"  {'variant.format':<16}{'size':>11} | {'naive KB':>9}{'imgdrop KB':>11}{'ratio':>7} | "
                f"{'naive SSIM':>11}{'imgdrop SSIM':>13}"
            )
            print(head)
            print("  " + "-" * (len(head) - 2))
            totals = {"naive": 0, "ours": 0}
            for key in ours["files"]:
                a, b = Path(naive["files"][key]).stat().st_size, Path(ours["files"][key]).stat().st_size
                totals["naive"] += a
                totals["ours"] += b
                from PIL import Image

                size = "x".join(map(str, Image.open(ours["files"][key]).size))
                print(
                    f"  {key:<16}{size:>11} | {a / 1024:>9.1f}{b / 1024:>11.1f}{b / a:>6.2f}x | "
                    f"{q_naive[key]:>11.4f}{q_ours[key]:>13.4f}"
                )
            print(
                f"  {'all files':<16}{'':>11} | {totals['naive'] / 1024:>9.1f}{totals['ours'] / 1024:>11.1f}"
                f"{totals['ours'] / totals['naive']:>6.2f}x |"
            )

            print(f"\n{name}: what a view costs (imgdrop's files): the <picture> source served vs JPEG only")
            for variant, _, _ in VARIANTS:
                fmts = [k.split(".")[1] for k in ours["files"] if k.split(".")[0] == variant]
                best = "avif" if "avif" in fmts else "webp"
                jpeg = Path(ours["files"][f"{variant}.jpeg"]).stat().st_size
                served = Path(ours["files"][f"{variant}.{best}"]).stat().st_size
                print(
                    f"  {variant:<8} {best:<5} {served / 1024:>7.1f} KB vs jpeg {jpeg / 1024:>7.1f} KB: "
                    f"{served / jpeg:.2f}x ({100 * (1 - served / jpeg):.0f}% less)"
                )
    print(f"\nbench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
