"""Refused input and its stable codes; limits are checked from the header, before decoding."""

from __future__ import annotations

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


def test_random_bytes_are_unsupported():
    data = random.Random(7).randbytes(4096)
    assert _code(data) == "unsupported_format"


def test_truncated_jpeg_is_a_file_error(china):
    assert _code(china[: len(china) // 2]) == "file_error"


def test_truncated_png_is_a_file_error():
    data = encode(quadrants(300, 200), "PNG")
    assert _code(data[: len(data) // 2]) == "file_error"


def test_signature_then_garbage_is_a_file_error():
    assert _code(b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(500)) == "file_error"
    assert _code(b"\xff\xd8\xff\xe0" + b"\x00" * 100) == "file_error"


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>',
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"just some text, not an image\n" * 10,
        b"BM" + b"\x00" * 64,  # BMP: a real image format, but not one imgdrop accepts
    ],
    ids=["svg-xml", "svg", "pdf", "html", "text", "bmp"],
)
def test_non_images_are_unsupported(data):
    assert _code(data) == "unsupported_format"


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
