"""Image helpers of the pipeline tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import io

from PIL import Image


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def quadrants(width: int = 96, height: int = 64) -> Image.Image:
    """An asymmetric RGB image: red, green, blue and white quadrants (TL, TR, BL, BR)."""
    img = Image.new("RGB", (width, height))
    w2, h2 = width // 2, height // 2
    img.paste((255, 0, 0), (0, 0, w2, h2))
    img.paste((0, 255, 0), (w2, 0, width, h2))
    img.paste((0, 0, 255), (0, h2, w2, height))
    img.paste((255, 255, 255), (w2, h2, width, height))
    return img
