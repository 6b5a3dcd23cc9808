"""Image helpers of the pipeline tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import io
import struct

from PIL import Image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "avif": "AVIF"}


def sizes(r) -> dict[str, tuple[int, int]]:
    """{variant: (width, height)} of a Rendition (every encoding of a variant has that size)."""
    return {name: (encs[0].width, encs[0].height) for name, encs in r.variants.items()}


def formats(r) -> dict[str, list[str]]:
    """{variant: [format, ...]} of a Rendition, the fallback first."""
    return {name: [e.format for e in encs] for name, encs in r.variants.items()}


def fallback(r, name: str):
    """The fallback encoding of a variant."""
    return r.variants[name][0]


def all_encodings(r):
    """(variant name, encoding) of every encoding of a Rendition."""
    return [(name, e) for name, encs in r.variants.items() for e in encs]


def quadrants(width: int = 96, height: int = 64) -> Image.Image:
    """An asymmetric RGB image: red, green, blue and white quadrants (TL, TR, BL, BR)."""
    img = Image.new("RGB", (width, height))
    w2, h2 = width // 2, height // 2
    img.paste((255, 0, 0), (0, 0, w2, h2))
    img.paste((0, 255, 0), (w2, 0, width, h2))
    img.paste((0, 0, 255), (0, h2, w2, height))
    img.paste((255, 255, 255), (w2, h2, width, height))
    return img


# ---------------------------------------------------------------- animations, cheaply

_GIF_LOOP = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"


def _gif_frame(width: int, height: int, lzw: bytes, color: tuple[int, int, int], delay_cs: int) -> bytes:
    """A graphic control extension and an image with a two-entry local colour table."""
    gce = b"\x21\xf9\x04\x04" + struct.pack("<H", delay_cs) + b"\x00\x00"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0x80)
    return gce + descriptor + bytes(color) + b"\x00\x00\x00" + lzw


def _flat_lzw(width: int, height: int) -> bytes:
    """The LZW data (code size, sub-blocks, terminator) of a width x height frame of index 0."""
    img = Image.new("P", (width, height), 0)
    img.putpalette([0, 0, 0, 255, 255, 255])
    gif = encode(img, "GIF")
    pos = 13 + (3 * (2 << (gif[10] & 7)) if gif[10] & 0x80 else 0)
    while gif[pos] == 0x21:  # skip extensions
        pos += 2
        while gif[pos]:
            pos += gif[pos] + 1
        pos += 1
    assert gif[pos] == 0x2C
    flags = gif[pos + 9]
    start = pos + 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    pos = start + 1
    while gif[pos]:
        pos += gif[pos] + 1
    return gif[start : pos + 1]


def flat_gif(width: int, height: int, frames: int, delay_ms: int = 40) -> bytes:
    """An animated GIF of ``frames`` full frames, each one flat colour and different from the last.

    Built from one LZW-coded frame (Pillow's), repeated with a per-frame colour table: a
    2048x2048 x 120-frame GIF is ~0.5 MB and takes milliseconds, where Pillow's save_all
    compares every frame with the previous one (seconds).
    """
    lzw = _flat_lzw(width, height)
    body = b"".join(
        _gif_frame(
            width, height, lzw, ((i * 67) % 256, (i * 131 + 80) % 256, (i * 29 + 160) % 256), delay_ms // 10
        )
        for i in range(frames)
    )
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + _GIF_LOOP + body + b"\x3b"


def tiny_frame_gif(width: int, height: int, frames: int) -> bytes:
    """A width x height canvas animated by 1x1 frames: a few bytes a frame, a full canvas decoded."""
    frame = (
        b"\x21\xf9\x04\x04\x04\x00\x00\x00"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
        + b"\x02\x02\x44\x01\x00"
    )
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\x00\x00"
    return header + _GIF_LOOP + frame * frames + b"\x3b"


def _riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def tiny_frame_webp(width: int, height: int, frames: int) -> bytes:
    """An animated WebP: a width x height canvas and ``frames`` lossless 1x1 frames."""
    one = encode(Image.new("RGB", (1, 1), (255, 0, 0)), "WEBP", lossless=True)
    assert one[12:16] == b"VP8L"
    bitstream = one[12:]  # the VP8L chunk, header included

    def u24(value: int) -> bytes:
        return value.to_bytes(3, "little")

    vp8x = _riff_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(width - 1) + u24(height - 1))
    anim = _riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))
    anmf = _riff_chunk(b"ANMF", u24(0) + u24(0) + u24(0) + u24(0) + u24(40) + b"\x00" + bitstream)
    body = b"WEBP" + vp8x + anim + anmf * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body
