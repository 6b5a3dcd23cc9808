"""Peak memory of rendering large sources from a file (what the process function does since
multipart uploads: the upload is streamed to /tmp and libvips reads it from there).

Each case renders in a fresh subprocess and reports its peak RSS (ru_maxrss) and wall time;
the baseline is the same subprocess importing the pipeline and rendering a small JPEG. Sources
(made once, in a temporary folder, from scikit-learn's china.jpg upscaled: a real photo's
structure, not noise):

- png-100mp: 10000x10000 RGB PNG, the pixel limit (MAX_PIXELS = 100 M);
- tiff-100mp-rgb8: the same as an uncompressed 8-bit RGB TIFF (300 MB);
- tiff-100mp-rgba16: uncompressed 16-bit RGBA (800 MB), the largest single page the pixel
  limit allows;
- tiff-2gib: about the largest file the limits allow (MAX_UPLOAD_BYTES, 2 GiB): a scan-like
  multi-page TIFF of three uncompressed 100 MP 16-bit RGB pages, 1.8 GB (imgdrop renders the
  first page; MAX_FRAMES counts pages);
- heic-100mp-rgba, avif-100mp-rgba: 8-bit RGBA at the pixel limit, which libheif decodes whole
  (flat colour, quick to encode: decoding costs the same whatever the pixels).

    .venv/bin/python bench/bench_large.py [--keep DIR] [--only NAME ...] [--bytes]

`--bytes` also renders each case from bytes in memory (what processing did before), for contrast.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_UPLOAD_BYTES = 2 * 1024**3

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {core!r})
from imgdrop.pipeline import render
source, mode = sys.argv[1], sys.argv[2]
started = time.monotonic()
error = None
try:
    r = render(source if mode == "file" else open(source, "rb").read(), "default")
    shape = (r.width, r.height, r.format, sorted(r.variants))
except Exception as exc:  # a refusal is a result too (image_too_large, ...)
    shape, error = None, f"{{type(exc).__name__}}: {{getattr(exc, 'code', exc)}}"
print(json.dumps({{"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.monotonic() - started, "shape": shape, "error": error}}))
"""


def photo(width: int, height: int, bands: int = 3, depth: str = "uchar"):
    import pyvips
    import sklearn.datasets

    china = pyvips.Image.new_from_file(str(Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"))
    image = china.resize(width / china.width, vscale=height / china.height, kernel="linear")
    image = image.crop(0, 0, min(width, image.width), min(height, image.height)).embed(
        0, 0, width, height, extend="mirror")
    if bands == 4:
        image = image.bandjoin(image.extract_band(1))  # an alpha that varies
    if depth == "ushort":
        image = (image.cast("ushort") << 8).copy(interpretation="rgb16")
    return image


HEIF_MAKER = r"""
import sys
path, kind = sys.argv[1], sys.argv[2]
if kind == "heic":
    import pillow_heif
    from PIL import Image
    pillow_heif.from_pillow(Image.new("RGBA", (10000, 10000), (10, 200, 30, 128))).save(path, quality=10)
else:
    import pyvips
    flat = (pyvips.Image.black(10000, 10000, bands=4) + [10, 200, 30, 128]).cast("uchar")
    flat.heifsave(path, compression="av1", Q=10, effort=0)
"""


def make(name: str, folder: Path) -> Path:
    import pyvips

    path = folder / {"png-100mp": "s.png", "heic-100mp-rgba": "s.heic", "avif-100mp-rgba": "s.avif"}.get(
        name, f"{name}.tif")
    if path.exists():
        return path
    started = time.monotonic()
    if name == "png-100mp":
        photo(10000, 10000).pngsave(str(path), compression=1)
    elif name == "tiff-100mp-rgb8":
        photo(10000, 10000).tiffsave(str(path), compression="none")
    elif name == "tiff-100mp-rgba16":
        photo(10000, 10000, 4, "ushort").tiffsave(str(path), compression="none")
    elif name == "tiff-2gib":
        # three pages of 100 MP 16-bit RGB (600 MB each): 1.8 GB, as close to 2 GiB as equal
        # pages of the largest size get; libvips writes a strip of pages with page-height set
        page = photo(10000, 10000, 3, "ushort")
        pages = pyvips.Image.arrayjoin([page, page.flip("horizontal"), page.flip("vertical")], across=1)
        pages = pages.copy()
        pages.set_type(pyvips.GValue.gint_type, "page-height", 10000)
        pages.tiffsave(str(path), compression="none", bigtiff=False)
        assert path.stat().st_size <= MAX_UPLOAD_BYTES, path.stat().st_size
    elif name in ("heic-100mp-rgba", "avif-100mp-rgba"):
        # made in a child: the encoders hold the whole image (GBs), and ru_maxrss survives
        # fork+exec (the measured children would report this process's peak)
        subprocess.run([sys.executable, "-c", HEIF_MAKER, str(path), name[:4]], check=True)
    else:
        raise SystemExit(f"unknown case {name}")
    print(f"  made {name}: {path.stat().st_size / 1024**2:,.0f} MiB in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    return path


def measure(source: Path, mode: str) -> dict:
    code = CHILD.format(core=str(REPO / "layers" / "core"))
    out = subprocess.run([sys.executable, "-c", code, str(source), mode], capture_output=True, text=True,
                         check=False, timeout=900)
    if out.returncode != 0:
        return {"error": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


CASES = ["png-100mp", "tiff-100mp-rgb8", "tiff-100mp-rgba16", "tiff-2gib", "heic-100mp-rgba", "avif-100mp-rgba"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="make (and keep) the sources in this folder")
    parser.add_argument("--only", nargs="*", choices=CASES)
    parser.add_argument("--bytes", action="store_true", help="also render from bytes in memory")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="imgdrop-bench-large-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import sklearn.datasets
        from PIL import Image

        small = folder / "small.jpg"
        Image.open(Path(sklearn.datasets.__file__).parent / "images" / "china.jpg").save(small)
        base = measure(small, "file")
        print(f"{'case':<20} {'MiB':>7} {'mode':<5} {'peak RSS':>10} {'seconds':>8}  result")
        print(f"{'baseline (china.jpg)':<20} {small.stat().st_size / 1024**2:>7.1f} {'file':<5} "
              f"{base['rss_mib']:>7.0f} MiB {base['seconds']:>8.1f}  {base['shape'][:3]}")
        for name in args.only or CASES:
            source = make(name, folder)
            for mode in ("file", "bytes") if args.bytes else ("file",):
                result = measure(source, mode)
                shown = result.get("error") or result["shape"][:3]
                rss = f"{result['rss_mib']:>7.0f} MiB" if "rss_mib" in result else "      -    "
                seconds = f"{result['seconds']:>8.1f}" if "seconds" in result else "       -"
                print(f"{name:<20} {source.stat().st_size / 1024**2:>7.0f} {mode:<5} {rss} {seconds}  {shown}",
                      flush=True)
    finally:
        if not args.keep:
            for path in folder.iterdir():
                path.unlink()
            os.rmdir(folder)


if __name__ == "__main__":
    main()
