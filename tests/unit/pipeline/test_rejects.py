"""Refused input and its stable codes; limits are checked from the header, before decoding."""

from __future__ import annotations

import gzip
import io
import random
import struct
import zlib

import pytest
from PIL import Image
from sample_images import encode, quadrants

from imgdrop.errors import ImageRejected
from imgdrop.pipeline import render, sniff


def _code(data: bytes, **kw) -> str:
    with pytest.raises(ImageRejected) as err:
        render(data, "default", **kw)
    assert err.value.status == 422
    return err.value.code


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height, with one tiny IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def test_empty_file_is_a_file_error():
    assert _code(b"") == "file_error"


@pytest.mark.parametrize(
    "data",
    [
        random.Random(7).randbytes(4096),
        b"just some text, not an image\n" * 10,  # text named .jpg: the name is never read
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"<html><body><svg xmlns='http://www.w3.org/2000/svg'/></body></html>",  # an SVG inside HTML
        b'{"file": "photo.jpg"}',
        b"PK\x03\x04" + b"\x00" * 64,  # a ZIP
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64,  # an MP4: a video
        gzip.compress(b"hello"),
        b"BMW is a car, not a bitmap" * 4,
        b"\x00" * 100,
    ],
    ids=["random", "text", "html", "html-with-svg", "json", "zip", "mp4", "gzip", "bm-text", "zeros"],
)
def test_bytes_that_are_no_image_are_a_file_error(data):
    with pytest.raises(ImageRejected) as err:
        sniff(data)
    assert err.value.code == "file_error"
    assert _code(data) == "file_error"


def test_truncated_jpeg_is_a_file_error(china):
    assert _code(china[: len(china) // 2]) == "file_error"


def test_truncated_png_is_a_file_error():
    data = encode(quadrants(300, 200), "PNG")
    assert _code(data[: len(data) // 2]) == "file_error"


def test_signature_then_garbage_is_a_file_error():
    assert _code(b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(500)) == "file_error"
    assert _code(b"\xff\xd8\xff\xe0" + b"\x00" * 100) == "file_error"


def _pillow(fmt: str, mode: str = "RGB", **kw) -> bytes:
    return encode(quadrants(64, 48).convert(mode), fmt, **kw)


UNSUPPORTED = {
    "svg-xml": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>',
    "svg-doctype": b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n'
    b'<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>',
    "svg-bom": b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>",
    "svgz": gzip.compress(b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
    "svg-zlib": zlib.compress(b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
    "pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
    "psd": b"8BPS\x00\x01" + b"\x00" * 64,
    "postscript": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
    "jxl": b"\xff\x0a" + b"\x00" * 64,
    "jxl-container": b"\x00\x00\x00\x0cJXL \r\n\x87\n" + b"\x00" * 64,
    "exr": b"\x76\x2f\x31\x01" + b"\x00" * 64,
    "cr3": b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01crx isom" + b"\x00" * 64,
}
PILLOW_UNSUPPORTED = {
    "bmp": lambda: _pillow("BMP"),
    "ico": lambda: _pillow("ICO"),
    "tga": lambda: _pillow("TGA"),
    "ppm": lambda: _pillow("PPM"),
    "jpeg2000": lambda: _pillow("JPEG2000"),
    "eps": lambda: _pillow("EPS"),
    "dds": lambda: _pillow("DDS", "RGBA"),
    "qoi": lambda: _pillow("QOI"),
    "pdf-pillow": lambda: _pillow("PDF"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED) + sorted(PILLOW_UNSUPPORTED))
def test_image_formats_imgdrop_does_not_take_are_unsupported(name):
    data = UNSUPPORTED[name] if name in UNSUPPORTED else PILLOW_UNSUPPORTED[name]()
    assert _code(data) == "unsupported_format"


def _truncations(data: bytes) -> list[bytes]:
    return [data[:n] for n in (len(data) // 3, len(data) // 2, len(data) * 3 // 4, len(data) - 20)]


def _animated(fmt: str) -> bytes:
    frames = [quadrants(96, 64).rotate(90 * i) for i in range(4)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _heic() -> bytes:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(quadrants(96, 64)).save(buf, quality=80)
    return buf.getvalue()


ACCEPTED = {
    "jpeg": lambda: _pillow("JPEG", quality=90),
    "progressive-jpeg": lambda: _pillow("JPEG", quality=90, progressive=True),
    "png": lambda: encode(quadrants(300, 200), "PNG"),
    "gif": lambda: _pillow("GIF", "P"),
    "animated-gif": lambda: _animated("GIF"),
    "webp": lambda: _pillow("WEBP"),
    "webp-lossless": lambda: _pillow("WEBP", lossless=True),
    "animated-webp": lambda: _animated("WEBP"),
    "avif": lambda: _pillow("AVIF"),
    "tiff": lambda: encode(quadrants(300, 200), "TIFF"),
    "tiff-deflate": lambda: encode(quadrants(300, 200), "TIFF", compression="tiff_adobe_deflate"),
    "heic": _heic,
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_a_truncated_image_of_every_accepted_format_is_a_file_error(name):
    data = ACCEPTED[name]()
    assert render(data, "avatar").width > 0  # whole, it renders
    for cut in _truncations(data):
        assert _code(cut) == "file_error", (name, len(cut), len(data))


def test_a_gif_ending_between_frames_without_its_trailer_is_accepted():
    """Browsers show such a GIF (its frames are whole); only a frame cut short is corrupt."""
    data = _animated("GIF")
    assert data.endswith(b"\x00;")
    assert render(data[:-1], "avatar").frames == 4


def test_bomb_header_is_refused_before_decoding():
    # 60000 x 60000 = 3.6 G pixels claimed by a 70-byte file
    assert _code(_png_header(60000, 60000)) == "image_too_large"
    # Beyond Pillow's own bomb limit, even with a huge max_pixels: Pillow's error maps too
    assert _code(_png_header(60000, 60000), max_pixels=10**12) == "image_too_large"


def test_max_pixels_is_a_parameter(china):
    assert _code(china, max_pixels=640 * 427 - 1) == "image_too_large"
    assert render(china, "avatar", max_pixels=640 * 427).width == 640


def test_gif_bomb_header():
    # a GIF whose logical screen and single frame claim 65535 x 65535
    data = (
        b"GIF89a"
        + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0)
        + b"\x02\x02\x44\x01\x00\x3b"
    )
    assert _code(data) == "image_too_large"


def test_too_many_frames():
    frames = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(5)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert _code(data, max_frames=4) == "image_too_large"
    assert render(data, "avatar", max_frames=5).frames == 5


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp"), ("TIFF", "tiff"), ("AVIF", "avif")],
)
def test_sniff_reads_the_bytes(fmt, expected):
    assert sniff(encode(quadrants(16, 16), fmt)) == expected


def test_declared_type_does_not_matter(china):
    # a JPEG is a JPEG whatever it was called; render takes no declared type at all
    assert render(china, "avatar").format == "jpeg"
