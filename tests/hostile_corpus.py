"""A generated corpus of hostile or odd files, each with its documented outcome.

Shared by tests/unit/test_hostile_files.py (the pure pipeline) and
tests/integration/test_hostile_uploads.py (api → S3 → process → finalize). Every file is
built here from a few bytes or from Pillow, so the corpus needs no fixture files.

`CORPUS[name]` is a `Case`: how to build the bytes, and what must come of them:
  status  "ready" (render succeeds) or "failed" (render raises ImageRejected)
  code    the stable error code of a failure (file_error, unsupported_format, image_too_large)
  check   an optional extra assertion on a successful Rendition
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image

READY, FAILED = "ready", "failed"


@dataclass(frozen=True)
class Case:
    build: Callable[[], bytes]
    status: str
    code: str | None = None
    why: str = ""
    check: Callable[[Any], None] | None = None


# ---------------------------------------------------------------- builders


def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _photo(width: int = 96, height: int = 64, mode: str = "RGB") -> Image.Image:
    """An asymmetric image (a gradient and a block), so orientation and crops would show."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    img.paste((220, 30, 30), (0, 0, max(1, width // 3), max(1, height // 3)))
    return img.convert(mode) if mode != "RGB" else img


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny IDAT: a bomb by its header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + _chunk(b"IEND", b""))


def png_real_bomb(side: int = 10_050) -> bytes:
    """A real, fully decodable 1-bit PNG of side x side (> 100 MP) that compresses to ~30 KB."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = compressor.compress(row * side) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A baseline JPEG whose SOF0 claims width x height (65500 max), then no scan."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof + \
        b"\xff\xd9"


def gif_claiming(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b")


def gif_frames(count: int, size: int = 4) -> bytes:
    """An animated GIF of `count` distinct frames (Pillow merges identical ones)."""
    frames = [Image.new("P", (size, size), i % 256) for i in range(count)]
    for i, frame in enumerate(frames):
        frame.putpixel((0, 0), (i // 256) % 256)
        frame.putpixel((1, 0), (i * 7) % 256)
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20, loop=0,
                   optimize=False, disposal=1)


def _exif_jpeg(exif_payload: bytes) -> bytes:
    """A valid JPEG with `exif_payload` (a TIFF structure) as its APP1 Exif segment."""
    base = _encode(_photo(), "JPEG", quality=85)
    app1 = b"Exif\x00\x00" + exif_payload
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return base[:2] + segment + base[2:]


def garbage_exif_offsets() -> bytes:
    """IFD0 at an offset far past the end of the segment."""
    return _exif_jpeg(b"II*\x00" + struct.pack("<I", 0xFFFFFF00) + b"\x00" * 32)


def garbage_exif_counts() -> bytes:
    """An IFD claiming 65535 entries; entries with counts of 2^30 pointing anywhere, an IFD loop."""
    entries = [
        struct.pack("<HHII", 0x010F, 2, 0x40000000, 0x7FFFFFF0),  # Make: ASCII, 1 G chars
        struct.pack("<HHII", 0x0112, 3, 0x40000000, 0xFFFFFFF0),  # Orientation: 1 G shorts
        struct.pack("<HHII", 0x8769, 4, 1, 8),  # ExifIFD pointer back at IFD0: a loop
        struct.pack("<HHII", 0x8825, 4, 1, 0xFFFFFFFF),  # GPS IFD beyond the end
        struct.pack("<HHII", 0x9003, 99, 5, 0),  # an unknown type
    ]
    ifd = struct.pack("<H", 0xFFFF) + b"".join(entries) + struct.pack("<I", 8)
    return _exif_jpeg(b"II*\x00" + struct.pack("<I", 8) + ifd)


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _encode(_photo(), "JPEG", quality=85, exif=exif.tobytes())


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def polyglot_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.html", "<script>alert(document.cookie)</script>")
    return _encode(_photo(), "JPEG", quality=85) + archive.getvalue()


def polyglot_html() -> bytes:
    return _encode(_photo(), "JPEG", quality=85) + b"<html><body><script>alert(1)</script></body></html>"


def jpeg_with_script_comment() -> bytes:
    return _encode(_photo(), "JPEG", quality=85, comment=b"<script>alert(1)</script>")


def png_bad_crc() -> bytes:
    data = bytearray(_encode(_photo(), "PNG"))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    data[idat + 4 + length] ^= 0xFF  # the first byte of the IDAT's CRC
    return bytes(data)


def png_zero_width() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def png_16bit() -> bytes:
    img = Image.new("I;16", (64, 48))
    img.putdata([i * 20 for i in range(64 * 48)])
    return _encode(img, "PNG")


def palette_png_transparency() -> bytes:
    img = _photo(80, 60).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    transparent = img.getpixel((0, 0))
    return _encode(img, "PNG", transparency=transparent)


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (40, 30), (i * 60, 255 - i * 60, 0)) for i in range(4)]
    return _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=80, loop=0)


def heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _encode(_photo(), "HEIF", quality=70)


def avif() -> bytes:
    return _encode(_photo(), "AVIF", quality=60)


def tiff_multipage() -> bytes:
    pages = [_photo(), _photo().rotate(180), Image.new("RGB", (96, 64), (0, 0, 255))]
    return _encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


def ftyp(brand: bytes, compatible: bytes, tail: bytes = b"") -> bytes:
    box = struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00" + brand + compatible
    return box + tail


def garbage_icc() -> bytes:
    """An ICC profile with a plausible header and random tags."""
    return b"\x00\x00\x02\x00ADBE\x02\x10\x00\x00mntrRGB XYZ " + random.Random(5).randbytes(500)


# ---------------------------------------------------------------- checks on successful renditions


def encodings(r: Any) -> list[tuple[str, Any]]:
    """Every (variant name, encoding) of a rendition: each variant in each of its formats."""
    return [(name, e) for name, encoded in r.variants.items() for e in encoded]


def fallbacks(r: Any) -> set[str]:
    return {encoded[0].format for encoded in r.variants.values()}


def _size(width: int, height: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        assert (r.width, r.height) == (width, height), (r.width, r.height)
        for name, v in encodings(r):
            assert 1 <= v.width <= width and 1 <= v.height <= height, (name, v.width, v.height)

    return check


def _no_payload(marker: bytes) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        for name, v in encodings(r):
            assert marker not in v.data, f"{name} ({v.format}) carries the hidden payload"

    return check


def _alpha(r: Any) -> None:
    assert r.has_alpha and fallbacks(r) == {"png"}


def _animated(frames: int) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        assert (r.animated, r.frames) == (True, frames)
        # animated gif first (the fallback), animated webp beside it
        assert fallbacks(r) == {"gif"} and {v.format for _, v in encodings(r)} == {"gif", "webp"}

    return check


def _format(fmt: str, frames: int = 1) -> Callable[[Any], None]:
    def check(r: Any) -> None:
        assert (r.format, r.frames, r.animated) == (fmt, frames, False)

    return check


def _orientation_ignored(r: Any) -> None:
    assert (r.width, r.height) == (96, 64)


def _exif_survived(r: Any) -> None:
    # whatever the broken IFD said, the result is JSON-clean and small
    import json

    assert len(json.dumps(r.exif)) < 4096


# ---------------------------------------------------------------- the corpus


@cache
def _china_like() -> bytes:
    return _encode(_photo(400, 300), "JPEG", quality=90)


@cache
def _png() -> bytes:
    return _encode(_photo(300, 200), "PNG")


@cache
def _gif() -> bytes:
    frames = [_photo(120, 80).convert("P"), _photo(120, 80).rotate(180).convert("P")]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)


@cache
def _webp() -> bytes:
    return _encode(_photo(300, 200), "WEBP", quality=80)


CORPUS: dict[str, Case] = {
    # -- not an image at all
    "zero_bytes": Case(lambda: b"", FAILED, "file_error", "empty"),
    "random_bytes": Case(lambda: random.Random(7).randbytes(8192), FAILED, "file_error"),
    "text": Case(lambda: b"hello, this is not an image\n" * 20, FAILED, "file_error"),
    "svg_with_script": Case(
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
                b'<rect width="10" height="10"/></svg>',
        FAILED, "unsupported_format", "SVG can carry script: never accepted"),
    "svg_xxe": Case(
        lambda: b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        FAILED, "unsupported_format"),
    "svgz": Case(lambda: zlib.compress(b'<svg xmlns="http://www.w3.org/2000/svg"/>'), FAILED, "unsupported_format"),
    "html_declared_as_jpeg": Case(
        lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        FAILED, "file_error"),
    "pdf": Case(lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
                FAILED, "unsupported_format"),
    "bmp": Case(lambda: _encode(_photo(), "BMP"), FAILED, "unsupported_format", "a real image, not accepted"),
    "mp4_ftyp": Case(lambda: ftyp(b"isom", b"mp42", b"\x00" * 64), FAILED, "file_error", "ISO-BMFF, not HEIF"),
    # -- a known signature, then broken
    "truncated_jpeg": Case(lambda: truncated(_china_like()), FAILED, "file_error"),
    "truncated_png": Case(lambda: truncated(_png()), FAILED, "file_error"),
    "truncated_gif": Case(lambda: truncated(_gif(), 0.3), FAILED, "file_error"),
    "truncated_webp": Case(lambda: truncated(_webp()), FAILED, "file_error"),
    "jpeg_signature_then_zeros": Case(lambda: b"\xff\xd8\xff\xe0" + b"\x00" * 200, FAILED, "file_error"),
    "png_signature_then_random": Case(lambda: b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(500),
                                      FAILED, "file_error"),
    "png_zero_width": Case(png_zero_width, FAILED, "file_error"),
    "tiff_header_then_garbage": Case(lambda: b"II*\x00" + struct.pack("<I", 0xFFFFFFF0) + b"\xab" * 64,
                                     FAILED, "file_error"),
    "heic_brand_then_garbage": Case(lambda: ftyp(b"heic", b"mif1", random.Random(3).randbytes(256)), FAILED, "file_error"),
    # -- bombs: refused from the header, before any pixel is decoded
    "png_header_50000x50000": Case(lambda: png_claiming(50_000, 50_000), FAILED, "image_too_large"),
    "png_real_101_megapixels": Case(png_real_bomb, FAILED, "image_too_large", "decodable, 30 KB, 101 MP"),
    "jpeg_header_65500x65500": Case(lambda: jpeg_claiming(65_500, 65_500), FAILED, "image_too_large"),
    "gif_header_65535x65535": Case(lambda: gif_claiming(65_535, 65_535), FAILED, "image_too_large"),
    "gif_2000_frames": Case(lambda: gif_frames(2000), FAILED, "image_too_large", "MAX_FRAMES is 1000"),
    # -- odd but valid: processed
    "polyglot_jpeg_zip": Case(polyglot_zip, READY, None, "trailing ZIP is not carried into variants",
                              _no_payload(b"PK\x03\x04")),
    "polyglot_jpeg_html": Case(polyglot_html, READY, None, "trailing HTML is not carried into variants",
                               _no_payload(b"<script>")),
    "jpeg_comment_with_script": Case(jpeg_with_script_comment, READY, None, "comments are stripped",
                                     _no_payload(b"<script>")),
    "garbage_exif_offsets": Case(garbage_exif_offsets, READY, None, "a broken IFD is ignored", _exif_survived),
    "garbage_exif_counts": Case(garbage_exif_counts, READY, None, "huge counts and IFD loops are ignored",
                                _exif_survived),
    "exif_orientation_9": Case(lambda: exif_orientation(9), READY, None, "an invalid orientation is ignored",
                               _orientation_ignored),
    "aspect_1x10000": Case(lambda: _encode(Image.new("RGB", (1, 10_000), (9, 99, 199)), "PNG"), READY,
                           check=_size(1, 10_000)),
    "aspect_10000x1": Case(lambda: _encode(Image.new("RGB", (10_000, 1), (9, 99, 199)), "PNG"), READY,
                           check=_size(10_000, 1)),
    "one_pixel": Case(lambda: _encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"), READY, check=_size(1, 1)),
    "png_16bit": Case(png_16bit, READY, check=_size(64, 48)),
    "cmyk_jpeg": Case(lambda: _encode(_photo(mode="CMYK"), "JPEG", quality=90), READY, check=_size(96, 64)),
    "palette_png_transparency": Case(palette_png_transparency, READY, check=_alpha),
    "gray_alpha_png": Case(lambda: _encode(_photo(64, 48).convert("LA"), "PNG"), READY, check=_size(64, 48)),
    "animated_webp": Case(animated_webp, READY, check=_animated(4)),
    "heic": Case(heic, READY, check=_format("heic")),
    "avif": Case(avif, READY, check=_format("avif")),
    "tiff_multipage": Case(tiff_multipage, READY, None, "the first page is rendered", _format("tiff", 3)),
    "png_bad_idat_crc": Case(png_bad_crc, READY, None, "libvips decodes past a CRC mismatch; pixels are re-encoded",
                             _size(96, 64)),
    "jpeg_garbage_icc": Case(lambda: _encode(_photo(), "JPEG", quality=85, icc_profile=garbage_icc()), READY,
                             None, "an unreadable profile is ignored", _size(96, 64)),
    "cmyk_jpeg_garbage_icc": Case(
        lambda: _encode(_photo(mode="CMYK"), "JPEG", quality=85, icc_profile=garbage_icc()), READY, None,
        "CMYK with an unreadable profile still converts", _size(96, 64)),
    "png_declared_as_jpeg": Case(_png, READY, None, "the declared type is never trusted", _format("png")),
}
