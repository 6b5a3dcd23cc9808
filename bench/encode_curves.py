"""What an encoder setting costs and buys: the curves behind imgdrop's WebP effort and PNG
compression (``imgdrop.pipeline.encode``), printed by bench_formats.py and bench_pipeline.py next
to their speedups, so that a target they miss shows what meeting it would cost in bytes.

Each curve is measured in a subprocess pinned to one CPU, as the benches' workers are: the
source is shrunk once per size by libvips (the pixels that render's encoders get), then every
setting encodes that image ``--repeat`` times (median). SSIM (luma, 7x7 windows) is against the
pixels encoded: what the encoder loses. "speedup if" is the bench's files-only speedup had
render used that setting at that size and nothing else changed: naive ms / (imgdrop ms - the
current setting's ms + this setting's ms).

    python bench/encode_curves.py {webp,png} PATH [--cpu N] [--repeat 5]   (JSON rows)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "layers" / "core"
# WebP: the default profile's fit boxes (the thumb's 256 px encodes in a few ms at any effort).
# PNG: the two biggest, where nearly all of its encode time goes.
BOXES = {"webp": (2048, 1024, 512), "png": (2048, 1024)}
SETTINGS: dict[str, list[dict[str, int]]] = {
    "webp": [{"effort": e} for e in range(5)],
    "png": [{"compression": c} for c in (1, 2, 3, 6)],
}


# ---------------------------------------------------------------- image quality


def luma(img: Any) -> Any:
    import numpy as np

    return np.asarray(img.convert("RGB"), dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _box_mean(a: Any, r: int = 3) -> Any:
    import numpy as np

    k = 2 * r + 1
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(x: Any, y: Any) -> float:
    """Mean SSIM of two luma arrays over 7x7 windows (Wang et al.'s constants, uniform window)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box_mean(x), _box_mean(y)
    sxx, syy, sxy = _box_mean(x * x) - mx * mx, _box_mean(y * y) - my * my, _box_mean(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


# ---------------------------------------------------------------- the worker


def current_setting(fmt: str, width: int, height: int) -> dict[str, int]:
    from imgdrop.pipeline import encode

    if fmt == "webp":
        return {"effort": encode.webp_effort(width, height)}
    return {"compression": encode.PNG_COMPRESSION}


def _encode(img: Any, fmt: str, setting: dict[str, int]) -> bytes:
    from imgdrop.pipeline import encode, load_profiles

    common = {"keep": "icc", "profile": "srgb"}  # as encode.encode saves
    if fmt == "webp":
        quality = load_profiles()["default"].quality.get("webp", 80)
        return bytes(img.webpsave_buffer(Q=quality, **setting, **common))
    return bytes(img.pngsave_buffer(filter=encode.PNG_FILTER, **setting, **common))


def measure(fmt: str, path: str, repeat: int) -> list[dict[str, Any]]:
    import pyvips
    from PIL import Image

    rows = []
    for box in BOXES[fmt]:
        img = pyvips.Image.thumbnail(path, box, height=box).copy_memory()
        mode = "RGBA" if img.bands == 4 else "RGB"
        pixels = Image.frombytes(mode, (img.width, img.height), img.write_to_memory())
        reference = luma(pixels)
        current = current_setting(fmt, img.width, img.height)
        for setting in SETTINGS[fmt]:
            data = _encode(img, fmt, setting)
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                _encode(img, fmt, setting)
                times.append(time.perf_counter() - t0)
            decoded = Image.open(io.BytesIO(data))
            rows.append({
                "size": f"{img.width}x{img.height}",
                "setting": setting,
                "current": setting == current,
                "ms": statistics.median(times) * 1000,
                "bytes": len(data),
                "ssim": None if fmt == "png" else ssim(reference, luma(decoded)),  # PNG is lossless
            })
    return rows


def curve(fmt: str, path: Path, cpu: int, repeat: int = 5) -> list[dict[str, Any]]:
    cmd = [sys.executable, __file__, fmt, str(path), "--cpu", str(cpu), "--repeat", str(repeat)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{fmt} curve of {path.name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_curve(name: str, fmt: str, rows: list[dict[str, Any]], naive_ms: float, ours_ms: float) -> None:
    knob = next(iter(rows[0]["setting"]))
    print(f"\n{name}: {fmt.upper()} {knob} against time, bytes and quality (one CPU; * = imgdrop's setting)")
    head = f"  {'size':<11}{knob:>12} | {'ms':>7}{'KB':>8}{'vs *':>7}{'SSIM':>9} | files-only speedup if"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for size in dict.fromkeys(r["size"] for r in rows):
        at_size = [r for r in rows if r["size"] == size]
        chosen = next(r for r in at_size if r["current"])
        for r in at_size:
            mark = "*" if r["current"] else " "
            quality = "lossless" if r["ssim"] is None else f"{r['ssim']:.4f}"
            speedup = naive_ms / (ours_ms - chosen["ms"] + r["ms"])
            print(
                f"  {size:<11}{mark + str(r['setting'][knob]):>12} | {r['ms']:>7.1f}{r['bytes'] / 1024:>8.1f}"
                f"{r['bytes'] / chosen['bytes']:>6.2f}x{quality:>9} | {speedup:>6.1f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("format", choices=sorted(SETTINGS))
    parser.add_argument("path")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    sys.path.insert(0, str(CORE))
    print(json.dumps(measure(args.format, args.path, args.repeat)))


if __name__ == "__main__":
    main()
