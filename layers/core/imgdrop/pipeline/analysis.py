"""Hashes, dominant colours, grayscale and blurhash, computed on small derived images.

phash and dhash reproduce ``str(imagehash.phash(img))`` / ``str(imagehash.dhash(img))`` bit
for bit without scipy: phash's DCT-II is a matrix product (scipy.fftpack.dct without
normalisation is 2 * C @ x; a positive factor does not move the median comparison).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

HASH_SIZE = 8
_PHASH_SIZE = HASH_SIZE * 4  # imagehash's highfreq_factor=4


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n).reshape(-1, 1)
    i = np.arange(n).reshape(1, -1)
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def _hex(bits: np.ndarray) -> str:
    value = 0
    for bit in bits.flatten():
        value = (value << 1) | int(bool(bit))
    return f"{value:0{(bits.size + 3) // 4}x}"


def phash(gray: Image.Image) -> str:
    """imagehash.phash of an 'L' image (the caller converts: RGB flattened on white -> 'L')."""
    pixels = np.asarray(gray.resize((_PHASH_SIZE, _PHASH_SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    c = _dct_matrix(_PHASH_SIZE)
    dct = c @ pixels @ c.T  # DCT-II along axis 0, then axis 1
    low = dct[:HASH_SIZE, :HASH_SIZE]
    return _hex(low > np.median(low))


def dhash(gray: Image.Image) -> str:
    """imagehash.dhash of an 'L' image."""
    pixels = np.asarray(gray.resize((HASH_SIZE + 1, HASH_SIZE), Image.Resampling.LANCZOS))
    return _hex(pixels[:, 1:] > pixels[:, :-1])


_B83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_B83[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float32) / np.float32(255)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, float(value)))
    return int(v * 12.92 * 255 + 0.5) if v <= 0.0031308 else int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def blurhash_of(rgb: Image.Image, x: int = 4, y: int = 3) -> str:
    """The BlurHash (woltapp algorithm) of an RGB image, shrunk to 32 px first.

    A numpy port of blurhash-python's C encoder (the ``blurhash`` import is not in the
    layer: it has no manylinux wheel); the tests prove it equals ``blurhash.encode``.
    """
    small = rgb.copy()
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    px = _srgb_to_linear(np.asarray(small.convert("RGB")))  # h, w, 3
    h, w = px.shape[:2]
    cos_x = np.cos(np.pi * np.arange(x)[:, None] * np.arange(w)[None, :] / w).astype(np.float32)
    cos_y = np.cos(np.pi * np.arange(y)[:, None] * np.arange(h)[None, :] / h).astype(np.float32)
    # factors[j, i, c] = sum_yx cos_y[j, y] * cos_x[i, x] * px[y, x, c] * norm / (w*h)
    factors = np.einsum("jy,ix,yxc->jic", cos_y, cos_x, px, dtype=np.float64)
    norm = np.full((y, x, 1), 2.0)
    norm[0, 0, 0] = 1.0
    factors = (factors * norm / (w * h)).astype(np.float32).reshape(-1, 3)
    dc, ac = factors[0], factors[1:]
    out = _base83((x - 1) + (y - 1) * 9, 1)
    if len(ac):
        actual = float(np.abs(ac).max())
        quant_max = int(max(0.0, min(82.0, np.floor(actual * 166 - 0.5))))
        maximum = (quant_max + 1) / 166
        out += _base83(quant_max, 1)
    else:
        maximum = 1.0
        out += _base83(0, 1)
    out += _base83((_linear_to_srgb(dc[0]) << 16) + (_linear_to_srgb(dc[1]) << 8) + _linear_to_srgb(dc[2]), 4)
    for r, g, b in ac:
        q = [
            int(max(0.0, min(18.0, np.floor(np.copysign(abs(float(c) / maximum) ** 0.5, c) * 9 + 9.5))))
            for c in (r, g, b)
        ]
        out += _base83(q[0] * 361 + q[1] * 19 + q[2], 2)
    return out


def _nearest(palette: dict[tuple[int, ...], int], color: tuple[int, ...]) -> tuple[int, ...]:
    return min(palette, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, color, strict=True)))


def colors_of(
    rgb: Image.Image, alpha: Image.Image | None = None, count: int = 8, min_share: float = 0.02
) -> list[dict]:
    """Up to ``count`` dominant colours of a small image, by share of its (opaque) pixels."""
    small = rgb.copy()
    small.thumbnail((64, 64), Image.Resampling.BILINEAR)
    pixels = np.asarray(small.convert("RGB")).reshape(-1, 3)
    if alpha is not None:
        mask = np.asarray(alpha.resize(small.size, Image.Resampling.BILINEAR)).reshape(-1) >= 128
        pixels = pixels[mask]
    if len(pixels) == 0:
        return []
    strip = Image.fromarray(pixels.reshape(1, -1, 3).astype(np.uint8), "RGB")
    quant = strip.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette: list[int] = list(quant.getpalette() or [])
    found: list[tuple[int, tuple[int, ...]]] = []
    for n, index in quant.getcolors(count) or []:
        at = int(index) * 3 if isinstance(index, int) else 0  # a "P" image: palette indices
        found.append((n, tuple(palette[at : at + 3])))
    total = sum(n for n, _ in found)
    # Clusters under min_share (mostly edge blends from downscaling) join their nearest big one.
    big = {color: n for n, color in found if n >= min_share * total} or {color: n for n, color in found}
    for n, color in found:
        if color not in big:
            big[_nearest(big, color)] += n
    ranked = sorted(big.items(), key=lambda item: -item[1])
    return [
        {"hex": "#{:02x}{:02x}{:02x}".format(*color), "percent": round(100.0 * n / total, 2)}
        for color, n in ranked
    ]


def is_grayscale(rgb: Image.Image, tolerance: int = 12) -> bool:
    """True when (almost) every pixel has no chroma: max-min of R, G, B within tolerance."""
    small = rgb.copy()
    small.thumbnail((64, 64), Image.Resampling.BILINEAR)
    px = np.asarray(small.convert("RGB"), dtype=np.int16)
    chroma = px.max(axis=2) - px.min(axis=2)
    return bool(np.percentile(chroma, 99) <= tolerance)
