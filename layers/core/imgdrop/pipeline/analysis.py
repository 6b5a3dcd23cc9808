"""Hashes, dominant colours, grayscale and blurhash, computed on small derived images.

phash and dhash reproduce ``str(imagehash.phash(img))`` / ``str(imagehash.dhash(img))`` bit
for bit without scipy: phash's DCT-II is a matrix product (scipy.fftpack.dct without
normalisation is 2 * C @ x; a positive factor does not move the median comparison).
"""

from __future__ import annotations

import math
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


_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[value // 83 ** (length - 1 - at) % 83] for at in range(length))


@lru_cache(maxsize=1)
def _srgb_to_linear() -> np.ndarray:
    values = (level / 255.0 for level in range(256))
    return np.array([v / 12.92 if v <= 0.04045 else math.pow((v + 0.055) / 1.055, 2.4) for v in values])


def _linear_to_srgb(value: float) -> int:
    value = max(0.0, min(1.0, value))
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _ac_digit(value: float, scale: float) -> int:
    root = math.copysign(abs(value / scale) ** 0.5, value)
    return int(max(0.0, min(18.0, math.floor(root * 9.0 + 9.5))))


def blurhash_of(rgb: Image.Image, x: int = 4, y: int = 3) -> str:
    """The BlurHash of an RGB image, shrunk to 32 px first: the reference encoder (Wolt's, as
    the `blurhash` package ports it; the tests compare the two), its sums as two matrix
    products. The pure-Python port took ~5 ms of loops even at 32 px."""
    small = rgb.copy()
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    linear = _srgb_to_linear()[np.asarray(small.convert("RGB"))]  # height x width x 3
    height, width = linear.shape[:2]
    basis_x = np.cos(np.pi * np.arange(x)[:, None] * np.arange(width)[None, :] / width)
    basis_y = np.cos(np.pi * np.arange(y)[:, None] * np.arange(height)[None, :] / height)
    sums = np.einsum("jh,hwc,iw->jic", basis_y, linear, basis_x).reshape(-1, 3)  # row by row, as encoded
    components = sums * (2.0 / (width * height))
    components[0] /= 2.0  # the DC term's normalisation is 1, the others' 2
    dc, ac = components[0], components[1:]
    max_ac = float(np.abs(ac).max()) if len(ac) else 0.0
    quant_max_ac = int(max(0, min(82, math.floor(max_ac * 166 - 0.5))))
    scale = (quant_max_ac + 1) / 166.0
    parts = [
        _base83((x - 1) + (y - 1) * 9, 1),
        _base83(quant_max_ac, 1),
        _base83((_linear_to_srgb(dc[0]) << 16) + (_linear_to_srgb(dc[1]) << 8) + _linear_to_srgb(dc[2]), 4),
    ]
    for r, g, b in ac.tolist():
        parts.append(_base83(_ac_digit(r, scale) * 361 + _ac_digit(g, scale) * 19 + _ac_digit(b, scale), 2))
    return "".join(parts)


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
