"""Sniff the real format from the first bytes; the declared content type is never trusted.

Three outcomes: an accepted format (a key of ``MIME``); ``unsupported_format`` for the
signature of an image format imgdrop recognises and does not take (``UNSUPPORTED``: SVG, PDF,
PSD, BMP, ICO, JPEG 2000, JPEG XL, ...); ``file_error`` for everything else (empty, text,
HTML, random bytes, a video): no image of any kind.
"""

from __future__ import annotations

import re
import zlib

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
# ISO BMFF brands of image formats imgdrop does not take (JPEG 2000, JPEG XL, Canon CR3, ...)
_OTHER_IMAGE_BRANDS = {b"jp2 ", b"jpx ", b"jpm ", b"mjp2", b"jxl ", b"crx ", b"jxs ", b"j2ki"}

# (name, prefix) of image formats recognised and refused as unsupported_format
_PREFIXES: tuple[tuple[str, bytes], ...] = (
    ("pdf", b"%PDF-"),
    ("postscript", b"%!PS"),
    ("eps", b"\xc5\xd0\xd3\xc6"),
    ("psd", b"8BPS"),
    ("jpeg2000", b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
    ("jpeg2000", b"\xff\x4f\xff\x51"),
    ("jpegxl", b"\xff\x0a"),
    ("jpegxl", b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
    ("jpegxr", b"II\xbc\x01"),
    ("openexr", b"\x76\x2f\x31\x01"),
    ("dds", b"DDS |\x00\x00\x00"),
    ("qoi", b"qoif"),
    ("gimp", b"gimp xcf "),
    ("icns", b"icns"),
    ("radiance", b"#?RADIANCE"),
    ("radiance", b"#?RGBE"),
    ("fits", b"SIMPLE  ="),
    ("farbfeld", b"farbfeld"),
    ("xpm", b"/* XPM */"),
    ("dpx", b"SDPX"),
    ("dpx", b"XPDS"),
    ("sun-raster", b"\x59\xa6\x6a\x95"),
    ("wmf", b"\xd7\xcd\xc6\x9a"),
    ("flif", b"FLIF"),
    ("bpg", b"BPG\xfb"),
    ("mng", b"\x8aMNG\r\n\x1a\n"),
    ("jng", b"\x8bJNG\r\n\x1a\n"),
    ("pcd", b"PCD_IPI"),
)
_NETPBM = re.compile(rb"P[1-7]\s+(?:#[^\n]*\n\s*)*(?:\d|WIDTH)")
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
# An XML document whose root element is <svg> (any prolog, comments or DOCTYPE before it)
_XML_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)", re.S | re.I)
_SVG_ROOT = re.compile(rb"\s*<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]")
SNIFF_BYTES = 4096


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
    if brands & _OTHER_IMAGE_BRANDS:
        return "iso-image"
    return None


def _is_svg(head: bytes) -> bool:
    compressed = head.startswith(b"\x1f\x8b") or (
        len(head) > 2 and head[0] & 0x0F == 8 and int.from_bytes(head[:2], "big") % 31 == 0
    )
    if compressed:  # svgz (gzip), or a zlib stream: look into its first bytes
        try:
            head = zlib.decompressobj(32 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return False
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16, with its byte order mark
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    head = head.removeprefix(b"\xef\xbb\xbf")
    pos = 0
    while match := _XML_PROLOG.match(head, pos):
        if match.end() == pos:
            break
        pos = match.end()
    return _SVG_ROOT.match(head, pos) is not None


def _is_bmp(head: bytes) -> bool:
    if len(head) < 18 or head[:2] != b"BM" or head[6:10] != b"\x00\x00\x00\x00":
        return False
    offset = int.from_bytes(head[10:14], "little")
    return int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES and 14 < offset < 1 << 26


def _is_ico(head: bytes) -> bool:
    """An ICO or CUR directory: a count, then entries whose first image lies after them."""
    if len(head) < 22 or head[:4] not in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00"):
        return False
    count = int.from_bytes(head[4:6], "little")
    size, offset = int.from_bytes(head[14:18], "little"), int.from_bytes(head[18:22], "little")
    return 0 < count <= 256 and head[9] == 0 and size > 0 and offset >= 6 + 16 * count


def unsupported_kind(data: bytes) -> str | None:
    """The name of the image format of ``data`` that imgdrop does not take, or None."""
    head = data[:SNIFF_BYTES]
    for name, prefix in _PREFIXES:
        if head.startswith(prefix):
            return name
    if _is_bmp(head):
        return "bmp"
    if _is_ico(head):
        return "ico"
    if _NETPBM.match(head):
        return "netpbm"
    if _iso_bmff(head) == "iso-image":
        return "iso-image"
    if len(data) >= 26 and data[-18:-2] == b"TRUEVISION-XFILE":  # TGA 2.0 footer
        return "tga"
    if _is_svg(head):
        return "svg"
    return None


# What a source may carry beside its pixels, checked before Pillow or libvips parse it: Pillow
# holds a GIF's comment as one bytes object a sub-block (1-byte sub-blocks cost ~45x the file)
# and a JPEG's APPn segments whole, libjpeg saves its markers again, and both step through
# padding in Python a byte or a block at a time (16 MB of 0xFF fill: 6 s). Real files carry
# well under a megabyte (EXIF, XMP, ICC, a Photoshop block) in a few dozen segments.
MAX_METADATA_BYTES = 16 * 1024 * 1024  # JPEG: bytes before the image data and segments; GIF: extensions
MAX_METADATA_BLOCKS = 100_000  # JPEG segments; GIF extension sub-blocks
MAX_STRAY_BYTES = 1024 * 1024  # JPEG bytes between segments that are no marker (junk, 0xFF fill)
# A GIF's sub-blocks of every kind: at most this many more a byte of file than the allowance
# above (encoders write 255-byte sub-blocks, 1/256 a byte; 1-byte ones are 1/2 and take
# Pillow's frame count ~2 minutes on a 2 GB file).
_GIF_BLOCKS_PER_BYTE = 1 / 64
_GIF_CHECK_EVERY = 4096
_FILL = re.compile(rb"\xff+")
# A marker in entropy-coded data: 0xFF then neither a stuffed zero, a restart, nor fill.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _too_much_metadata(what: str) -> ImageRejected:
    return ImageRejected("image_too_large", f"The file carries too much besides its pixels: {what}.")


def check_jpeg_header(data: bytes) -> None:
    """Refuse a JPEG whose segments (APPn, COM, ...) are over MAX_METADATA_BYTES or
    MAX_METADATA_BLOCKS, or with over MAX_STRAY_BYTES of junk and fill bytes among them.

    Up to the first scan the segments are walked by their lengths (a few dozen steps for a
    camera's photo) and every byte counts, padding included. Between the scans of a
    progressive JPEG (which libjpeg reads whole, saving its APPn and COM segments) each marker
    is found by a search of the entropy-coded data up to the end of image (~1 ms for a 12 MP
    photo); anything after that marker (a Motion Photo's video, an MPF preview) is not read.
    A file that ends first is left to the decoders.
    """
    n = len(data)
    pos, stray, segments = 2, 0, 0  # after SOI
    while pos < n:
        if pos > MAX_METADATA_BYTES:
            raise _too_much_metadata(f"over {MAX_METADATA_BYTES:,} bytes before the image data")
        if segments > MAX_METADATA_BLOCKS:
            raise _too_much_metadata(f"over {MAX_METADATA_BLOCKS:,} segments")
        window = pos + MAX_STRAY_BYTES - stray + 1
        ff = data.find(b"\xff", pos, window)
        if ff < 0:
            if window >= n:
                return
            raise _too_much_metadata(f"over {MAX_STRAY_BYTES:,} stray bytes between its segments")
        fill = _FILL.match(data, ff, window + 1)
        end = fill.end() if fill is not None else ff + 1
        stray += end - 1 - pos  # junk before the 0xFF, and fill bytes after it
        if stray > MAX_STRAY_BYTES:
            raise _too_much_metadata(f"over {MAX_STRAY_BYTES:,} stray bytes between its segments")
        if end >= n:
            return
        marker, pos = data[end], end + 1
        if marker == 0x00:  # an escaped 0xFF: junk
            stray += 2
        elif marker != 0x01 and not 0xD0 <= marker <= 0xD9:  # TEM, RSTn, SOI, EOI: no length
            if pos + 2 > n:
                return
            pos += max(2, int.from_bytes(data[pos : pos + 2], "big"))
            segments += 1
            if marker == 0xDA:  # start of scan: the image data
                break
    # Markers within or between the scans, up to the end of image: only their segments count.
    size = pos
    while (found := _MARKER.search(data, pos)) is not None:
        pos = found.end()
        marker = data[pos - 1]
        if marker == 0xD9:  # end of image
            return
        if marker == 0x01 or marker == 0xD8 or pos + 2 > n:
            continue
        length = max(2, int.from_bytes(data[pos : pos + 2], "big"))
        pos += length
        size += length + 2
        segments += 1
        if size > MAX_METADATA_BYTES:
            raise _too_much_metadata(f"over {MAX_METADATA_BYTES:,} bytes of segments")
        if segments > MAX_METADATA_BLOCKS:
            raise _too_much_metadata(f"over {MAX_METADATA_BLOCKS:,} segments")


def _check_gif_blocks(pos: int, blocks: int, ext_blocks: int, ext_bytes: int) -> None:
    if ext_bytes > MAX_METADATA_BYTES:
        raise _too_much_metadata(f"over {MAX_METADATA_BYTES:,} bytes of extensions")
    if ext_blocks > MAX_METADATA_BLOCKS:
        raise _too_much_metadata(f"over {MAX_METADATA_BLOCKS:,} extension sub-blocks")
    if blocks > MAX_METADATA_BLOCKS + pos * _GIF_BLOCKS_PER_BYTE:
        raise _too_much_metadata(f"{blocks:,} sub-blocks in its first {pos:,} bytes")


def gif_truncated(data: bytes) -> bool:
    """True when a GIF's blocks end inside a block (a short file) or it holds no image.

    Walks the block structure only (descriptors, colour tables, sub-block lengths), never the
    LZW data: ~4,000 steps a MB. Ending at a block boundary without the trailer is accepted,
    as browsers do; so is anything after the last image that is not a block.

    Raises ImageRejected ``image_too_large`` for extensions (comments, application data) over
    MAX_METADATA_BYTES or MAX_METADATA_BLOCKS sub-blocks, or for sub-blocks of any kind far
    more than the file's size calls for: Pillow reads every one of them, in Python, when it
    counts the frames. Checked after each block and every _GIF_CHECK_EVERY sub-blocks.
    """
    n = len(data)
    if n < 13:
        return True
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    images = blocks = ext_blocks = ext_bytes = 0
    check_at = _GIF_CHECK_EVERY
    while pos < n:
        kind = data[pos]
        if kind == 0x3B:  # trailer
            return images == 0
        if kind == 0x21:  # extension: introducer, label, sub-blocks
            pos += 2
        elif kind == 0x2C:  # image: descriptor, local colour table, LZW code size, sub-blocks
            if pos + 10 > n:
                return True
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
            images += 1
        else:
            return images == 0
        start, first = pos, blocks
        extension = kind == 0x21
        while True:  # sub-blocks, up to the zero-length terminator
            if pos >= n:
                return True
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if size == 0:
                break
            if blocks >= check_at:  # inside one long run of sub-blocks
                if extension:
                    _check_gif_blocks(pos, blocks, ext_blocks + blocks - first, ext_bytes + pos - start)
                else:
                    _check_gif_blocks(pos, blocks, ext_blocks, ext_bytes)
                check_at = blocks + _GIF_CHECK_EVERY
        if extension:
            ext_blocks += blocks - first
            ext_bytes += pos - start
        _check_gif_blocks(pos, blocks, ext_blocks, ext_bytes)
    return images == 0 or pos > n


def sniff(data: bytes) -> str:
    """The format of ``data`` (a key of MIME) or ImageRejected.

    ``unsupported_format`` for a recognised image format that imgdrop does not take;
    ``file_error`` for bytes that are no image of any kind (empty, text, HTML, random).
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
    bmff = _iso_bmff(data[:SNIFF_BYTES])
    if bmff in MIME:
        return bmff
    kind = unsupported_kind(data)
    if kind is not None:
        raise ImageRejected(
            "unsupported_format", f"The file is an image format imgdrop does not take ({kind})."
        )
    raise ImageRejected("file_error", "The file is not an image.")
