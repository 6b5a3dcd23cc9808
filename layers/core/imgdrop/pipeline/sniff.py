"""Sniff the real format from the first bytes; the declared content type is never trusted."""

from __future__ import annotations

from imgdrop.errors import ImageRejected

MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "avif": "image/avif",
    "tiff": "image/tiff",
}

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def _iso_bmff(data: bytes) -> str | None:
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size > min(len(data), 4096):
        return None
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, size - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and brands & _AVIF_BRANDS):
        return "avif"
    if brands & _HEIC_BRANDS:
        return "heic"
    if brands & _AVIF_BRANDS:
        return "avif"
    return None


def sniff(data: bytes) -> str:
    """The format of ``data`` (a key of MIME) or ImageRejected.

    Empty input is ``file_error``; anything not recognised as one of the accepted image
    formats (SVG, PDF, HTML, text, random bytes, ...) is ``unsupported_format``.
    """
    if not data:
        raise ImageRejected("file_error", "The file is empty.")
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    bmff = _iso_bmff(data[:4096])
    if bmff:
        return bmff
    raise ImageRejected("unsupported_format", "The file is not a supported image format.")
