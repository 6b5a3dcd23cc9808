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


def blurhash_of(rgb: Image.Image, x: int = 4, y: int = 3) -> str:
    """The BlurHash of an RGB image, shrunk to 32 px first (the pure-Python `blurhash`
    package: it has a wheel for the layer, and 32 px keeps its loops to a few milliseconds)."""
    import blurhash

    small = rgb.copy()
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    return blurhash.encode(np.asarray(small.convert("RGB")), components_x=x, components_y=y)


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
