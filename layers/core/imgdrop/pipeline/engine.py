"""render(): bytes (or a file) in, a Rendition out. libvips resizes; Pillow reads headers, EXIF and HEIC."""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import mmap
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from imgdrop.errors import ImageRejected, ImgdropError
from imgdrop.profiles import Profile, load_profiles

from . import analysis, metadata
from .encode import Encoding, encode, gif_copy, page_height
from .geometry import Plan, plan
from .sniff import MIME, check_jpeg_header, gif_truncated, sniff

DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_FRAMES = 1000
# An animation's frames x canvas pixels (what its decoders paint, whatever its file size): a
# 0.5 MB GIF of 120 frames of 2048x2048 is 503 M. See _check_animation for how it was chosen.
DEFAULT_MAX_ANIMATION_PIXELS = 100_000_000
# ... and each frame counts as at least this many: an animation's canvas is at most
# max_animation_pixels / 8 (12.5 M pixels by default; a 4K UHD frame is 8.3 M), since the
# animated WebP encoder needs ~25-50 bytes a pixel of a frame as working memory.
ANIMATION_MIN_FRAMES = 8
# Formats rendered animated when they have more than one frame (others render their first).
ANIMATED_FORMATS = ("gif", "webp")
# Sources up to this many pixels are decoded at full size whatever the profile: cheap, and
# the hashes then equal imagehash's on the full image bit for bit.
EXACT_PIXELS = 2_100_000
# libheif decodes an AVIF whole, into several full-size buffers (the AV1 planes, then libvips'
# interleaved copy): at the pixel limit with alpha, measured peaks of 1.6 GB for 8-bit samples and
# 2.0 GB for 12-bit ones, which libvips holds as 16-bit, in a 2,048 MB function. So an AVIF's
# decoded size is bounded too: 8-bit RGBA at the pixel limit passes, deeper samples count double
# (12-bit RGBA up to 50 MP). HEIC is decoded to 8 bits (pillow-heif), within this at any depth.
MAX_HEIF_DECODED_BYTES = 400_000_000
# Hashes, colours and blurhash of bigger sources come from the smallest rendition whose
# shorter side is at least this (a fit variant or the decoded base).
ANALYSIS_MIN_SIDE = 256
# Animated variants whose frames fit in this many pixels (~128 MB as RGBA) come from one strip
# of frames decoded once at the largest of their sizes; bigger ones stream from the source
# into their encoder, one variant at a time (see _render_animation).
ANIMATION_DECODE_PIXELS = 32_000_000
# glibc arenas for the whole process (0: leave malloc alone); see _limit_malloc_arenas.
MALLOC_ARENAS = 1
_M_ARENA_MAX = -8

_PIL_FORMAT = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "tiff": "TIFF",
    "avif": "AVIF",
    "heic": "HEIF",
}


@dataclass
class Rendition:
    format: str
    mime: str
    width: int
    height: int
    sha256: str
    phash: str
    dhash: str
    exif: dict[str, Any]
    gps: dict[str, float | None] | None
    taken_at: str | None
    camera: dict[str, str | None] | None
    colors: list[dict[str, Any]]
    grayscale: bool
    has_alpha: bool
    blurhash: str
    animated: bool
    frames: int
    variants: dict[str, list[Encoding]]  # name -> its encodings, the fallback first
    profile: str = "default"

    def summary(self) -> dict[str, Any]:
        """Everything but the encoded bytes, JSON-ready. Each variant is
        ``{"width", "height", "format", "bytes", "formats": {fmt: bytes}}``: ``format`` and
        ``bytes`` are the fallback's, ``formats`` every encoding's size in order (fallback first).
        """
        out = {k: v for k, v in self.__dict__.items() if k != "variants"}
        out["variants"] = {
            name: {
                "width": encs[0].width,
                "height": encs[0].height,
                "format": encs[0].format,
                "bytes": encs[0].bytes,
                "formats": {e.format: e.bytes for e in encs},
            }
            for name, encs in self.variants.items()
        }
        return out


# ---------------------------------------------------------------- lazy imports

_vips: Any = None
_heif_registered = False


def _limit_malloc_arenas() -> None:
    """One malloc arena for the whole process (glibc only; elsewhere a no-op).

    libvips frees tile buffers on other threads than the ones that allocated them; with
    glibc's default of one arena per thread (up to 8 per core) the freed memory stays
    scattered and RSS creeps up call after call (libvips and sharp advise MALLOC_ARENA_MAX=2;
    measured here on 2 cores, 1 arena is as fast as the default and 2, and keeps the peak
    RSS of a 24 MP JPEG render at 97 MB against 146 MB by default and 119 MB with 2).
    Set before libvips starts its worker threads.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def _pyvips() -> Any:
    global _vips
    if _vips is None:
        if MALLOC_ARENAS:
            _limit_malloc_arenas()
        import pyvips

        pyvips.cache_set_max(0)  # every render sees new bytes; the cache only holds memory
        _vips = pyvips
    return _vips


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True


# ---------------------------------------------------------------- the input


@dataclass(frozen=True)
class _Input:
    """The source: its bytes, or the path of the file holding them. From a file, libvips reads
    through a file source (what it needs, when it needs it) and Pillow opens the file lazily:
    nothing holds the whole file in memory.

    ``heif``: libvips loads it with heifload by name (AVIF, HEIC): its detection by content
    knows only some brands and refuses an AVIF sequence (major brand ``avis``) that heifload
    reads, primary image first."""

    data: bytes | None = None
    path: str | None = None
    heif: bool = False

    def pil(self) -> Any:
        return self.path if self.path is not None else io.BytesIO(self.data or b"")

    def _heifload(self, **load: Any) -> Any:
        vips = _pyvips()
        if self.path is not None:
            return vips.Image.heifload_source(vips.Source.new_from_file(self.path), **load)
        return vips.Image.heifload_buffer(self.data, **load)

    def vips_header(self) -> Any:
        vips = _pyvips()
        if self.heif:
            return self._heifload()
        if self.path is not None:
            return vips.Image.new_from_source(vips.Source.new_from_file(self.path), "")
        return vips.Image.new_from_buffer(self.data, "")

    def vips_thumbnail(self, width: int, load: dict[str, Any], **opts: Any) -> Any:
        """libvips' thumbnail, ``load`` the loader's options."""
        vips = _pyvips()
        if self.heif:  # sequential, as thumbnail opens its loader (random access: ~25% slower)
            return self._heifload(access="sequential", **load).thumbnail_image(width, **opts)
        option_string = ",".join(f"{name}={str(value).lower()}" for name, value in load.items())
        if self.path is not None:
            source = vips.Source.new_from_file(self.path)
            return vips.Image.thumbnail_source(source, width, option_string=option_string, **opts)
        return vips.Image.thumbnail_buffer(self.data, width, option_string=option_string, **opts)


@contextlib.contextmanager
def _mapped(path: str) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes for the sniffers (its first kilobytes, a GIF's block structure), mapped
    rather than read: only the pages they look at are loaded."""
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            yield b""
            return
        view = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield view
        finally:
            view.close()


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- header


def _open_header(
    source: _Input, fmt: str, max_pixels: int, max_frames: int, max_animation_pixels: int
) -> tuple[Image.Image, int]:
    """Pillow's lazy open (header only) and the frame count, with the size limits applied.

    Counting frames decodes none: Pillow skips a GIF's image data block by block, and reads an
    animated WebP's frame count from its container (libwebp's demuxer).
    """
    if fmt == "heic":
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bombs are checked below; damaged tags: the decode decides
            im = Image.open(source.pil(), formats=[_PIL_FORMAT[fmt]])
            width, height = im.size
            if width * height > max_pixels:
                raise ImageRejected(
                    "image_too_large", f"The image has more than {max_pixels} pixels ({width}x{height})."
                )
            frames = int(getattr(im, "n_frames", 1) or 1)
    except Image.DecompressionBombError as exc:
        raise ImageRejected("image_too_large", "The image's dimensions are too large.") from exc
    except ImageRejected:
        raise
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError, EOFError, ...
        raise ImageRejected("file_error", "The file is corrupt or truncated.") from exc
    if width < 1 or height < 1:
        raise ImageRejected("file_error", "The image has no pixels.")
    if frames > max_frames:
        raise ImageRejected("image_too_large", f"The image has more than {max_frames} frames.")
    if fmt in ANIMATED_FORMATS:
        _check_animation(frames, width, height, max_animation_pixels)
    return im, frames


def _check_animation(frames: int, width: int, height: int, limit: int) -> None:
    """Refuse an animation over ``limit`` pixels in all its frames, or over limit / 8 a frame.

    Every frame of a GIF or animated WebP is painted on the whole canvas (a 1x1 frame
    included), and decoding, resizing and above all encoding the animated variants cost in
    proportion to frames x canvas: each variant is encoded twice, animated WebP at effort 0
    (~8-14 MP/s on one core) and GIF (~20-35 MP/s of quantising and LZW), and the built-in
    profiles' variants add up to 1-2x the canvas (capped at their boxes). Memory is bounded by
    one variant's frames at a time (GIF streams; WebP's loader decodes all the frames up
    front) plus the WebP encoder's ~25-50 bytes a pixel of one frame, hence the cap on the
    canvas. At the default (100 M, 12.5 M a frame) the worst animations measured (photo
    frames, 2048x2048 x 23 in WebP through the product profile: ~30 s of one loaded core with
    both formats, 0.76 GB, of which ~32 MB of GIF for the 2048 px variant alone; 3535x3535 x 8
    with alpha through flickr's original-size variant: ~1.05 GB) stay inside the process
    function's 120 s and 2048 MB. Memory, not time, set it: at 200 M a WebP's
    up-front decode alone is 0.8 GB. The review's bombs, 503 M and 4 G pixels, are refused.
    """
    if frames < 2:
        return
    total = frames * width * height
    if total > limit:
        raise ImageRejected(
            "image_too_large",
            f"The animation is too large: {frames} frames of {width}x{height} pixels are "
            f"{total:,} pixels, more than the {limit:,} allowed.",
        )
    per_frame = limit // ANIMATION_MIN_FRAMES
    if width * height > per_frame:
        raise ImageRejected(
            "image_too_large",
            f"The animation's frames are too large: {width}x{height} is {width * height:,} pixels "
            f"a frame, more than the {per_frame:,} allowed for an animation.",
        )


def _icc_is_srgb(icc: bytes) -> bool:
    """True for an RGB profile whose description names sRGB (nothing to convert)."""
    if len(icc) < 132 or icc[16:20] != b"RGB ":
        return False
    count = int.from_bytes(icc[128:132], "big")
    for i in range(min(count, 100)):
        entry = icc[132 + 12 * i : 144 + 12 * i]
        if entry[:4] == b"desc":
            off, size = int.from_bytes(entry[4:8], "big"), int.from_bytes(entry[8:12], "big")
            desc = icc[off : off + min(size, 512)]
            return b"sRGB" in desc or "sRGB".encode("utf-16-be") in desc
    return False


# ---------------------------------------------------------------- vips helpers


def _vips_error(exc: Exception) -> ImageRejected:
    return ImageRejected("file_error", "The file is corrupt or truncated.")


def _to_srgb8(img: Any) -> Any:
    """uchar sRGB with 3 bands, or 4 with alpha."""
    if img.interpretation in ("b-w", "grey16") or img.bands < 3 or img.format != "uchar":
        img = img.colourspace("srgb")
    if img.format != "uchar":
        img = img.cast("uchar")
    if img.bands > 4:
        img = img[:4]
    return img


def _strip(img: Any) -> Any:
    """A copy without the metadata fields a saver could carry over."""
    img = img.copy()
    for name in img.get_fields():
        if name in (
            "icc-profile-data",
            "orientation",
            "exif-data",
            "xmp-data",
            "iptc-data",
        ) or name.startswith(("exif-", "jpeg-comment", "png-comment", "gif-comment")):
            img.remove(name)
    return img


def _resize_exact(img: Any, width: int, height: int) -> Any:
    if (img.width, img.height) == (width, height):
        return img
    alpha = img.bands == 4
    if alpha:
        # Premultiplied back to uchar, as libvips' thumbnail does: its resize takes the SIMD
        # uchar path, ~4x faster than a float one (at most a level or two off in faint pixels).
        img = img.premultiply().cast("uchar")
    img = img.resize(width / img.width, vscale=height / img.height, kernel="lanczos3")
    if alpha:
        img = img.unpremultiply()
    if img.format != "uchar":
        img = img.cast("uchar")
    if (img.width, img.height) != (width, height):  # float rounding: trim or pad a pixel
        img = img.gravity("centre", width, height, extend="copy")
    return img


def _to_pil(img: Any) -> tuple[Image.Image, Image.Image | None]:
    """(RGB flattened on white, alpha or None) of an uchar sRGB vips image."""
    if img.bands == 4:
        raw = Image.frombytes("RGBA", (img.width, img.height), img.write_to_memory())
        alpha = raw.getchannel("A")
        flat = Image.new("RGB", raw.size, (255, 255, 255))
        flat.paste(raw, mask=alpha)
        return flat, alpha
    return Image.frombytes("RGB", (img.width, img.height), img.write_to_memory()), None


# ---------------------------------------------------------------- decode


@dataclass
class _Source:
    width: int  # oriented
    height: int
    needs_icc: bool
    gray: bool
    pages: int = 1
    # libvips' loader decodes frame after frame as they are read (GIF) rather than every
    # frame up front into a temporary image (WebP, whose loader is not sequential).
    streams: bool = False
    # how much damage libvips' loader tolerates: "truncated" (a short file fails; a PNG CRC
    # mismatch decodes); "error" for TIFF, whose loader reports a short strip only as an error
    fail_on: str = "truncated"
    loop: int = 0  # an animation's plays (libvips' "loop": 0 forever)


def _probe_vips(source: _Input) -> _Source:
    vips = _pyvips()
    try:
        head = source.vips_header()
    except vips.Error as exc:
        raise _vips_error(exc) from exc
    fields = head.get_fields()
    width, height = head.width, head.get("page-height") if "page-height" in fields else head.height
    if "orientation" in fields and head.get("orientation") in (5, 6, 7, 8):
        width, height = height, width
    icc = head.get("icc-profile-data") if "icc-profile-data" in fields else b""
    needs_icc = head.interpretation == "cmyk" or (bool(icc) and not _icc_is_srgb(icc))
    pages = head.get("n-pages") if "n-pages" in fields else 1
    loader = head.get("vips-loader") if "vips-loader" in fields else ""
    if loader.startswith("heifload"):
        _check_heif_decode(head.width * head.height * head.bands, head.format)
    gray = head.interpretation in ("b-w", "grey16")
    fail_on = "error" if loader.startswith("tiffload") else "truncated"
    loop = int(head.get("loop")) if "loop" in fields else 0
    return _Source(width, height, needs_icc, gray, max(1, pages), loader.startswith("gifload"), fail_on, loop)


def _check_heif_decode(samples: int, sample_format: str) -> None:
    decoded = samples * (1 if sample_format == "uchar" else 2)
    if decoded > MAX_HEIF_DECODED_BYTES:
        raise ImageRejected("image_too_large",
                            f"The image decodes to more than {MAX_HEIF_DECODED_BYTES:,} bytes "
                            f"({samples:,} {sample_format} samples): fewer pixels or 8-bit samples fit.")


def _thumb(source: _Input, width: int, height: int, src: _Source, *, animated: bool = False) -> Any:
    vips = _pyvips()
    load: dict[str, Any] = {"fail_on": src.fail_on}
    if animated:
        # A loader that is not sequential decodes every frame first, into a temporary file
        # when that is over 100 MB: in memory instead (bounded by max_animation_pixels; a
        # Lambda's /tmp is 512 MB and a full disk would read as a corrupt file).
        load.update({"n": -1} if src.streams else {"n": -1, "memory": True})
    opts: dict[str, Any] = {"height": height, "size": "force"}
    if src.needs_icc:
        opts["export_profile"] = "srgb"
    try:
        return _to_srgb8(source.vips_thumbnail(width, load, **opts))
    except vips.Error as exc:
        raise _vips_error(exc) from exc


def _animated_variant(source: _Input, p: Plan, src: _Source) -> Any:
    """One animated variant straight from the source, as a lazy pipeline: nothing is computed
    until its encoder pulls the frames, in order (a streaming loader decodes them one by one).

    All frames are resized (libvips' thumbnail crop would crop the whole strip), then cropped
    per frame.
    """
    if p.spec.mode != "cover":
        return _thumb(source, p.width, p.height, src, animated=True)
    x, y, cw, ch = p.crop
    sx, sy = p.width / cw, p.height / ch
    fw, fh = max(p.width, round(src.width * sx)), max(p.height, round(src.height * sy))
    strip = _thumb(source, fw, fh, src, animated=True)
    if (fw, fh) == (p.width, p.height):
        return strip
    left, top = min(fw - p.width, round(x * sx)), min(fh - p.height, round(y * sy))
    if fh == p.height:  # a horizontal crop: the same columns of every frame
        return strip.crop(left, 0, p.width, strip.height)
    pages = strip.height // fh
    frames = [strip.crop(left, i * fh + top, p.width, p.height) for i in range(pages)]
    return _join_frames(frames, strip, p.height)


def _join_frames(frames: list[Any], like: Any, page_height: int) -> Any:
    return _animation_like(_pyvips().Image.arrayjoin(frames, across=1), like, page_height)


def _animation_like(img: Any, like: Any, page_height: int) -> Any:
    """``img`` (a strip of frames page_height high) with the interpretation, timing and loop of
    the animation ``like``. A copy: set_type writes in place, and the copy carries pyvips'
    references to any numpy pixels under ``img``."""
    out = img.copy(interpretation=like.interpretation)
    for name in like.get_fields():
        if name in ("delay", "loop", "n-pages", "background", "gif-loop"):
            out.set_type(like.get_typeof(name), name, like.get(name))
    out.set_type(_pyvips().GValue.gint_type, "page-height", page_height)
    return out


def _frame_box(bw: int, bh: int, p: Plan, w: int, h: int) -> tuple[int, int, int, int]:
    """The part of a bw x bh frame (the source w x h, scaled) that variant ``p`` shows: what
    _region crops of one frame."""
    x, y, cw, ch = p.crop
    if (x, y, cw, ch) == (0, 0, w, h):
        return 0, 0, bw, bh
    sx, sy = bw / w, bh / h
    left, top = min(bw - 1, round(x * sx)), min(bh - 1, round(y * sy))
    return left, top, max(1, min(bw - left, round(cw * sx))), max(1, min(bh - top, round(ch * sy)))


# Frames shrunk together in one pipeline (at least one frame): bounds what is held cut and
# padded beside the strip. 2 MP raised the peak RSS of a 24-frame 480x320 GIF from 73 to 84 MB
# (bench_pipeline: 0.75x naive's, over the 0.7x target); at 0.5 MP it stays at 72-73 MB.
CHUNK_PIXELS = 500_000


def _reduce_pages(strip: Any, bh: int, box: tuple[int, int, int, int], tw: int, th: int) -> Any | None:
    """The part ``box`` (left, top, width, height) of every frame of ``strip`` (frames of height
    bh) shrunk to tw x th, as one strip; None when libvips' sizes do not come out exact.

    Frames are shrunk together, a chunk of them at a time, as one image (a "toilet roll"): one
    pipeline for many frames, not one a frame (24 small frames: ~5x faster). Made in resize's
    order (box shrinks, reducev, reduceh), so each frame comes out as resize makes it alone.
    Horizontally nothing crosses a frame; vertically each frame is padded with copies of its
    edge rows, as libvips pads an image, so the lanczos3 kernel never reads the neighbouring
    frame: by a number of rows that shrinks to a whole number (when that is over a quarter of
    the frame, or a box pre-shrink is needed, the frames go unpadded: the kernel's outer lobes
    then read the neighbour's edge rows, as libvips' own thumbnail of an animation does; at a
    chunk's ends they read the edge rows of their own frame).

    The cutting and padding is numpy's, on each chunk's pixels in memory: a libvips
    ``arrayjoin`` of one cropped, embedded frame per frame (2 x 60 inputs for 60 frames)
    deadlocked libvips' thread pool about once in 30 renders (bench/stress_animation.py), and
    hung CI.
    """
    left, top, fw, fh = box
    pages = strip.height // bh
    alpha = strip.bands == 4
    if alpha:
        strip = strip.premultiply().cast("uchar")  # as _resize_exact: the uchar SIMD path
    elif strip.format != "uchar":
        strip = strip.cast("uchar")
    kv, kh = int(fh / th / 2), int(fw / tw / 2)
    pad = 0
    if th != fh and kv < 2 and pages > 1:
        step = fh // math.gcd(fh, th)  # pad * th / fh is whole for multiples of step
        need = math.ceil(3 * fh / th) + 2  # the kernel's reach, in source rows
        pad = step * -(-need // step)
        if pad > max(8, fh // 4):
            pad = 0
    opad = pad * th // fh
    # the box's rows of each frame (a chunk is read whole frames high), with copies of its edge
    # rows above and below when padded
    rows: list[int] | slice = (
        [top + min(max(row, 0), fh - 1) for row in range(-pad, fh + pad)] if pad else slice(top, top + fh)
    )
    out = np.empty((pages, th, tw, strip.bands), dtype=np.uint8)
    per_chunk = max(1, CHUNK_PIXELS // (fw * bh))
    for first in range(0, pages, per_chunk):
        count = min(per_chunk, pages - first)
        frames = np.frombuffer(strip.crop(left, first * bh, fw, count * bh).write_to_memory(),
                               dtype=np.uint8).reshape(count, bh, fw, strip.bands)
        img = _from_frames(frames[:, rows])
        if kv >= 2 and fh % kv == 0 and not pad:
            img = img.shrinkv(kv)
        if kh >= 2:
            img = img.shrinkh(kh)
        if th != fh:
            img = img.reducev(img.height / ((th + 2 * opad) * count), kernel="lanczos3")
        if tw != fw:
            img = img.reduceh(img.width / tw, kernel="lanczos3")
        if (img.width, img.height) != (tw, (th + 2 * opad) * count):
            return None
        if alpha:
            img = img.unpremultiply().cast("uchar")
        shrunk = np.frombuffer(img.write_to_memory(), dtype=np.uint8).reshape(count, th + 2 * opad, tw, -1)
        out[first : first + count] = shrunk[:, opad : opad + th]
        del frames, img, shrunk  # before the next chunk's are made
    return _from_frames(out)


def _from_frames(frames: Any) -> Any:
    """A libvips strip of a numpy array of frames (frames x rows x columns x bands, uchar)."""
    frames = np.ascontiguousarray(frames)
    pages, height, width, bands = frames.shape
    # `.copy()`: an operation, which pyvips gives the reference to `frames` that keeps the pixels
    # alive. `copy_memory()` of the bare memory image answers that very image without it
    # (libvips does not copy what is in memory already), and the pixels were freed under it.
    return _pyvips().Image.new_from_memory(frames.data, width, height * pages, bands, "uchar").copy()


def _animated_from_strip(strip: Any, bw: int, bh: int, p: Plan, w: int, h: int) -> Any:
    """One animated variant from the decoded frames (a strip of pages bw x bh): the variant's
    part of every frame, shrunk (_reduce_pages)."""
    if (p.width, p.height) == (bw, bh) and p.crop == (0, 0, w, h):
        return strip
    out = _reduce_pages(strip, bh, _frame_box(bw, bh, p, w, h), p.width, p.height)
    if out is None:
        return _animated_frame_by_frame(strip, bw, bh, p, w, h)
    return _animation_like(out, strip, p.height)  # in memory already (numpy)


def _animated_frame_by_frame(strip: Any, bw: int, bh: int, p: Plan, w: int, h: int) -> Any:
    """_animated_from_strip one frame at a time, each rendered straight into one buffer."""
    pages = strip.height // bh
    frame_bytes = p.width * p.height * strip.bands
    buf = bytearray(frame_bytes * pages)
    for i in range(pages):
        frame = _resize_exact(
            _region(strip.crop(0, i * bh, bw, bh), bw / w, bh / h, p.crop, (w, h)), p.width, p.height
        )
        buf[i * frame_bytes : (i + 1) * frame_bytes] = frame.write_to_memory()
    out = _pyvips().Image.new_from_memory(buf, p.width, p.height * pages, strip.bands, "uchar")
    return _animation_like(out, strip, p.height)


def _decode_heic(source: _Input, width: int, height: int) -> tuple[Any, _Source]:
    """HEIC through pillow-heif (libvips here has no HEVC decoder), then into libvips."""
    import pillow_heif

    vips = _pyvips()
    try:
        heif = pillow_heif.open_heif(source.path or source.data, convert_hdr_to_8bit=True)
        width, height = heif.size
        if heif.mode in ("RGB", "RGBA") and heif.stride == width * len(heif.mode):
            # libheif's own buffer, shared with libvips (which keeps it alive): the copies into
            # Pillow and out again doubled a 100 MP HEIC's peak (1.6 GB against 0.75 GB decoded)
            bands, pixels = len(heif.mode), heif.data
        else:
            img = heif.to_pillow()
            img = img if img.mode in ("RGB", "RGBA") else img.convert("RGBA" if "A" in img.mode else "RGB")
            bands, pixels = len(img.mode), img.tobytes()
    except Exception as exc:
        raise ImageRejected("file_error", "The file is corrupt or truncated.") from exc
    icc = heif.info.get("icc_profile") or b""
    v = vips.Image.new_from_memory(pixels, width, height, bands, "uchar")
    v = v.copy(interpretation="srgb")
    src = _Source(width, height, bool(icc) and not _icc_is_srgb(icc), False)
    if src.needs_icc:
        v.set_type(vips.GValue.blob_type, "icc-profile-data", icc)
        with contextlib.suppress(vips.Error):  # an unreadable profile: keep the pixels as they are
            v = v.icc_transform("srgb", embedded=True, intent="perceptual")
        v = _to_srgb8(v)
    return v, src


# ---------------------------------------------------------------- render


def _pick(inter: list[tuple[Any, float, float]], p: Plan, w: int, h: int) -> tuple[Any, float, float]:
    need_x, need_y = p.width / p.crop[2], p.height / p.crop[3]
    fits = [c for c in inter if c[1] >= need_x - 1e-9 and c[2] >= need_y - 1e-9]
    return min(fits or inter[:1], key=lambda c: c[1] * c[2])


def _region(img: Any, sx: float, sy: float, crop: tuple[int, int, int, int], full: tuple[int, int]) -> Any:
    x, y, cw, ch = crop
    if (x, y, cw, ch) == (0, 0, *full):
        return img
    left, top = min(img.width - 1, round(x * sx)), min(img.height - 1, round(y * sy))
    width = max(1, min(img.width - left, round(cw * sx)))
    height = max(1, min(img.height - top, round(ch * sy)))
    return img.crop(left, top, width, height)


def _analyse(img: Any, gray_source: bool) -> dict[str, Any]:
    rgb, alpha = _to_pil(img)
    gray = rgb.convert("L")
    return {
        "phash": analysis.phash(gray),
        "dhash": analysis.dhash(gray),
        "colors": analysis.colors_of(rgb, alpha),
        "grayscale": gray_source or analysis.is_grayscale(rgb),
        "blurhash": analysis.blurhash_of(rgb),
    }


def _formats(extras: tuple[str, ...], has_alpha: bool, animated: bool) -> list[str]:
    """A variant's formats, the fallback first: jpeg (png with alpha) and the extras, or for an
    animation animated gif and, if listed, animated webp (never avif)."""
    if animated:
        return ["gif"] + (["webp"] if "webp" in extras else [])
    return ["png" if has_alpha else "jpeg", *(f for f in extras if f in ("webp", "avif"))]


def _encode_all(
    img: Any, formats: list[str], profile: Profile, done: dict[tuple[int, str], Encoding]
) -> list[Encoding]:
    """img in each format; ``done`` holds the encodings already made of the same image object."""
    out = []
    for fmt in formats:
        key = (id(img), fmt)
        if key not in done:
            done[key] = Encoding(
                encode(img, fmt, profile.quality.get(fmt, 80)), fmt, img.width, page_height(img)
            )
        out.append(done[key])
    return out


def _render_animation(
    source: _Input,
    plans: list[tuple[Plan, list[str]]],
    src: _Source,
    profile: Profile,
    gif: bytes | mmap.mmap | None = None,
) -> tuple[dict[str, list[Encoding]], Any]:
    """Every animated variant encoded in its formats (by name), and the first frame.

    Peak memory is bounded by one variant at a time, never all of them: each variant is
    encoded as soon as it is made and its frames dropped. Variants whose frames are too many
    to hold (over ANIMATION_DECODE_PIXELS) stream from the source into each encoder in turn
    (the source is decoded once per format: GIF's loader holds a frame or two of the canvas,
    WebP's decodes every frame up front, which max_animation_pixels bounds); the smaller ones
    come from one strip decoded at the largest of their sizes, encoded from memory.

    ``gif``: the source's bytes when it is a GIF: the GIF of a variant of the source's own size
    is then the source's frames copied (see gif_copy), not decoded and encoded again.
    """
    W, H = src.width, src.height
    aw, ah = (W, H) if W * H <= EXACT_PIXELS else plan_fit(W, H, 512)
    first = _thumb(source, aw, ah, src).copy_memory()
    done: dict[tuple, Encoding] = {}  # (geometry, format) -> encoding
    strip, bw, bh = None, 0, 0
    for p, formats in sorted(plans, key=lambda pf: -pf[0].scale):  # the biggest first
        key = (p.crop, p.width, p.height)
        todo = [f for f in formats if (key, f) not in done]
        if gif is not None and "gif" in todo and key == ((0, 0, W, H), W, H) and not src.needs_icc:
            copied = gif_copy(gif, W, H, src.pages, src.loop)
            if copied is not None:
                done[(key, "gif")] = Encoding(copied, "gif", W, H)
                todo.remove("gif")
        if not todo:
            continue
        if strip is None:
            bw, bh = max(1, round(W * p.scale)), max(1, round(H * p.scale))
            if src.pages * bw * bh <= ANIMATION_DECODE_PIXELS:  # this one and all smaller: cascade
                strip = _strip(_thumb(source, bw, bh, src, animated=True)).copy_memory()
        img = _animated_from_strip(strip, bw, bh, p, W, H) if strip is not None else None
        for fmt in todo:
            # a streamed variant is a lazy pipeline, consumed by its encoder: one per format
            frames = img if img is not None else _strip(_animated_variant(source, p, src))
            done[(key, fmt)] = Encoding(
                encode(frames, fmt, profile.quality.get(fmt, 80)), fmt, frames.width, page_height(frames)
            )
            del frames
        del img  # before the next variant is made
    out = {p.spec.name: [done[((p.crop, p.width, p.height), f)] for f in formats] for p, formats in plans}
    return out, first


def render(
    data: bytes | str | os.PathLike[str],
    profile: str = "default",
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_animation_pixels: int = DEFAULT_MAX_ANIMATION_PIXELS,
    profiles: dict[str, Profile] | None = None,
    sha256: str | None = None,
) -> Rendition:
    """Verify, analyse and render ``data`` with the named profile. Pure: no env, and no I/O but
    reading the source when it is a file.

    ``data`` is the source's bytes, or the path of a file holding them (``str`` or a path
    object): a large source is then read by libvips as it decodes, never loaded whole, and the
    pixel and frame limits are checked from its header first. ``sha256``: the file's digest when
    the caller computed it already (while streaming it to disk), else it is computed here.

    Raises ImageRejected (file_error, unsupported_format, image_too_large) for bad input and
    ImgdropError ``unknown_profile`` for a profile name the profiles do not define.
    ``max_animation_pixels`` bounds an animation's frames x canvas pixels.
    """
    table = profiles if profiles is not None else load_profiles()
    if profile not in table:
        raise ImgdropError("unknown_profile", f"Unknown profile {profile!r}.", 400)
    limits = (max_pixels, max_frames, max_animation_pixels)
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        with _mapped(path) as view:
            return _render(
                view, _Input(path=path), profile, table[profile], limits, lambda: sha256 or _file_sha256(path)
            )
    raw = bytes(data)
    return _render(
        raw,
        _Input(data=raw),
        profile,
        table[profile],
        limits,
        lambda: sha256 or hashlib.sha256(raw).hexdigest(),
    )


def _render(
    data: bytes | mmap.mmap,
    source: _Input,
    profile: str,
    prof: Profile,
    limits: tuple[int, int, int],
    digest: Callable[[], str],
) -> Rendition:
    """render() of one source: `data` its bytes for the sniffers (mapped for a file), `source`
    what the decoders read, `digest()` its sha256."""
    max_pixels, max_frames, max_animation_pixels = limits
    fmt = sniff(data)  # type: ignore[arg-type]  # bytes or a mapped file: both slice and index as bytes
    if fmt in ("avif", "heic"):
        source = replace(source, heif=True)
    # Metadata and padding are bounded before Pillow and libvips parse them (they hold them whole).
    truncated = False
    if fmt == "jpeg":
        check_jpeg_header(data)  # type: ignore[arg-type]
    elif fmt == "gif":
        truncated = gif_truncated(data)  # type: ignore[arg-type]  # libvips decodes a short GIF silently
    header, frames = _open_header(source, fmt, max_pixels, max_frames, max_animation_pixels)
    try:
        if truncated:  # after the header: over a limit is image_too_large, truncated or not
            raise ImageRejected("file_error", "The file is corrupt or truncated.")
        exif_dict, gps, taken_at, camera = metadata.extract(
            metadata.read_exif(header.info.get("exif"), header)
        )
        header_size = header.size
    finally:
        header.close()  # a file's handle too
    animated = fmt in ANIMATED_FORMATS and frames > 1

    if fmt == "heic":
        full, src = _decode_heic(source, *header_size)
    else:
        full, src = None, _probe_vips(source)
        if fmt in ANIMATED_FORMATS:  # libvips' canvas can differ from Pillow's (frames outside the screen)
            _check_animation(max(frames, src.pages), src.width, src.height, max_animation_pixels)
    W, H = src.width, src.height
    plans = [plan(spec, W, H) for spec in prof.variants]

    variants: dict[str, list[Encoding]] = {}
    if animated:
        planned = [(p, _formats(prof.extra_formats(p.spec, W, H), False, True)) for p in plans]
        try:
            variants, first = _render_animation(source, planned, src, prof, data if fmt == "gif" else None)
        except _pyvips().Error as exc:  # a lazy pipeline fails when its encoder reads a bad frame
            raise _vips_error(exc) from exc
        has_alpha = first.bands == 4 and first[3].min() < 255
        facts = _analyse(first if has_alpha else first[:3] if first.bands == 4 else first, src.gray)
    else:
        scale = 1.0 if W * H <= EXACT_PIXELS else max(p.scale for p in plans)
        bw, bh = max(1, round(W * scale)), max(1, round(H * scale))
        try:
            base = _resize_exact(full, bw, bh) if full is not None else _thumb(source, bw, bh, src)
            base = base.copy_memory()
        except _pyvips().Error as exc:
            raise _vips_error(exc) from exc
        has_alpha = base.bands == 4 and base[3].min() < 255
        if base.bands == 4 and not has_alpha:
            base = base[:3]
        base = _strip(base)
        inter: list[tuple[Any, float, float]] = [(base, bw / W, bh / H)]
        rendered: dict[str, Any] = {}
        for p in sorted(plans, key=lambda p: -p.scale):
            img, sx, sy = _pick(inter, p, W, H)
            out = _resize_exact(_region(img, sx, sy, p.crop, (W, H)), p.width, p.height)
            img = img if out is img else out.copy_memory()  # same size: the same image, encoded once
            rendered[p.spec.name] = img
            if p.spec.mode != "cover":
                inter.append((img, p.width / W, p.height / H))
        encoded: dict[tuple[int, str], Encoding] = {}
        for p in plans:  # profile order
            formats = _formats(prof.extra_formats(p.spec, W, H), has_alpha, False)
            variants[p.spec.name] = _encode_all(rendered[p.spec.name], formats, prof, encoded)
        candidates = [c for c in inter if min(c[0].width, c[0].height) >= ANALYSIS_MIN_SIDE]
        source = inter[0][0] if scale == 1.0 else min(candidates or inter[:1], key=lambda c: c[1])[0]
        facts = _analyse(source, src.gray)

    return Rendition(
        format=fmt,
        mime=MIME[fmt],
        width=W,
        height=H,
        sha256=digest(),
        exif=exif_dict,
        gps=gps,
        taken_at=taken_at,
        camera=camera,
        has_alpha=bool(has_alpha),
        animated=animated,
        frames=frames,
        variants=variants,
        profile=profile,
        **facts,
    )


def plan_fit(width: int, height: int, box: int) -> tuple[int, int]:
    s = min(1.0, box / width, box / height)
    return max(1, round(width * s)), max(1, round(height * s))
