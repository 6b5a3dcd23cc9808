"""Encoders: one libvips image (uchar sRGB, 3 bands or 4 with alpha) in, bytes out.

Still images go through libvips' savers; animations (a strip of pages with ``page-height``,
``delay`` and ``loop``) through libvips' animated WebP saver and through ``gif_bytes`` below,
which quantises each frame with Pillow's fast octree and writes it as soon as it is pulled.
Settings were measured on these machines against Pillow at the bench's qualities (JPEG q85,
WebP q80, AVIF q60 at its default speed): see bench/bench_formats.py.
"""

import builtins
import io
from typing import Any, NamedTuple

from PIL import GifImagePlugin, Image, ImageChops

FALLBACK_FORMATS = ("jpeg", "png", "gif")
EXTRA_FORMATS = ("webp", "avif")
FORMATS = FALLBACK_FORMATS + EXTRA_FORMATS
EXT = {"jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif"}
MIME = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
}

# WebP: effort 4 (libwebp's "method", Pillow's default) up to this many pixels, 2 above. On
# 1024-2048 px photos effort 2 encodes in ~0.4-0.5x the time for files ~3-5% bigger at an
# SSIM ~0.002 lower; up to ~550x550 effort 4 costs a few ms and keeps the smallest files.
WEBP_EFFORT_PIXELS = 300_000
WEBP_EFFORT = 4
WEBP_EFFORT_BIG = 2
# PNG (the fallback of a still with alpha): measured on 2048 px RGBA photos, level 2 with the
# "up" filter is faster and smaller than libvips' default (level 6, no filter) and than level 3
# with "sub" (~25% faster, ~8% smaller on two photos; even on flat graphics). Level 3 "up" is
# ~6% smaller again but ~25% slower; level 1 is ~45% bigger (bench/bench_pipeline.py's curve).
PNG_COMPRESSION = 2
PNG_FILTER = "up"
# Animated WebP is slow to encode (each frame is a full WebP encode): the lowest effort.
# Measured on 24 frames of 480x320 at Q80: effort 0 encodes in ~70% of effort 2's time, files
# ~20% bigger, PSNR ~0.4 dB higher (effort 1: ~88% of the time, ~10% bigger, same PSNR as 0).
ANIMATION_WEBP_EFFORT = 0
# AVIF through libheif + aom: effort 0 (aom's fastest speed). At Q60 a 1024 px photo encodes
# in ~60-110 ms; Pillow's AVIF q60 at its default speed 6 takes ~10-15x longer for files
# 7-20% smaller at an SSIM 0.001-0.007 higher (bench/bench_formats.py); effort 1 is ~5x slower
# for files ~3-6% smaller. The AVIF variants are the ones up to 1024 px, where this stays cheap.
AVIF_EFFORT = 0
# GIF: libvips' saver (libimagequant) does 0.2-2.5 MP/s on photo frames; Pillow's fast
# octree with no dithering 20-35 MP/s, at an SSIM ~0.015 lower on a photo (GIF is the fallback
# of browsers without animated WebP, a few percent of traffic). 255 colours a frame, the 256th
# is the transparent index when the animation has alpha (alpha < 128 is transparent).
GIF_COLOURS = 255


class Encoding(NamedTuple):
    """One encoded output of a variant: ``(data, format, width, height)``.

    ``format`` is one of jpeg | png | gif | webp | avif; ``ext`` and ``mime`` follow from it.
    """

    data: builtins.bytes
    format: str
    width: int
    height: int

    @property
    def ext(self) -> str:
        return EXT[self.format]

    @property
    def mime(self) -> str:
        return MIME[self.format]

    @property
    def bytes(self) -> int:
        """The encoded size (``len(data)``)."""
        return len(self.data)

    def __repr__(self) -> str:
        return f"Encoding({self.format}, {self.width}x{self.height}, {len(self.data)} bytes)"


def page_height(img: Any) -> int:
    return int(img.get("page-height")) if "page-height" in img.get_fields() else int(img.height)


def webp_effort(width: int, height: int) -> int:
    """libwebp's effort for a still of this size (see WEBP_EFFORT_PIXELS)."""
    return WEBP_EFFORT if width * height <= WEBP_EFFORT_PIXELS else WEBP_EFFORT_BIG


def is_animation(img: Any) -> bool:
    return page_height(img) < img.height


def encode(img: Any, fmt: str, quality: int) -> bytes:
    """``img`` in ``fmt``: stills in any format, animations (pages) in webp or gif."""
    common = {"keep": "icc", "profile": "srgb"}
    animated = is_animation(img)
    if fmt == "gif":
        return gif_bytes(img)
    if fmt == "webp":
        effort = ANIMATION_WEBP_EFFORT if animated else webp_effort(img.width, img.height)
        return bytes(img.webpsave_buffer(Q=quality, effort=effort, **common))
    if animated:
        raise ValueError(f"{fmt} is not an animated format")
    if fmt == "jpeg":
        # libjpeg-turbo's defaults, as Pillow's: optimised Huffman tables would save 1.5-4% of
        # the fallback's bytes for twice its encode time (~20 ms more at 2048 px)
        return bytes(img.jpegsave_buffer(Q=quality, **common))
    if fmt == "png":
        return bytes(img.pngsave_buffer(compression=PNG_COMPRESSION, filter=PNG_FILTER, **common))
    if fmt == "avif":
        return bytes(
            img.heifsave_buffer(compression="av1", Q=quality, effort=AVIF_EFFORT, bitdepth=8, **common)
        )
    raise ValueError(fmt)


# ---------------------------------------------------------------- GIF


def _quantise(rgb: Image.Image, alpha: Image.Image | None) -> tuple[Image.Image, int | None]:
    """A "P" frame of at most 255 colours, its palette cut to the colours used (a flat frame's
    table is a few bytes, not 768), and with ``alpha`` the transparent index where it is < 128."""
    frame = rgb.quantize(GIF_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    low_high: Any = frame.getextrema()  # (min, max) index of a "P" image
    used = int(low_high[1]) + 1
    transparency = None
    if alpha is not None:
        transparency, used = used, used + 1
        frame.paste(transparency, mask=alpha.point(_CLEAR, "1"))
    palette = (frame.getpalette() or [])[: 3 * used]
    frame.putpalette(palette + [0] * (3 * used - len(palette)))
    return frame, transparency


def _min(band: Image.Image) -> int:
    extrema: Any = band.getextrema()
    return int(extrema[0])


_CLEAR = [255] * 128 + [0] * 128  # alpha -> "1" mask of the pixels a GIF shows transparent


def gif_bytes(img: Any) -> bytes:
    """An (animated) GIF of ``img``'s pages, their delays and loop kept, one frame at a time.

    Frames are pulled from ``img`` in order through one libvips region (a lazy pipeline over a
    sequential loader decodes them one by one), quantised and written at once: memory holds a
    frame or two, never the animation. An opaque frame after an opaque one is cropped to what
    changed (drawn over the previous one); a frame with transparency is whole, and the frame
    before it is disposed to the background.
    """
    import pyvips

    width, height = img.width, page_height(img)
    pages = max(1, img.height // height)
    fields = img.get_fields()
    delays = list(img.get("delay")) if "delay" in fields else []
    loop = int(img.get("loop")) if "loop" in fields else 0
    mode = "RGBA" if img.bands == 4 else "RGB"
    region = pyvips.Region.new(img)
    out = io.BytesIO()
    # header: no global colour table (each frame has its own), then the loop (libvips' loop is
    # the number of plays, 0 forever; NETSCAPE2.0's is the number of repeats; 1 play: none)
    out.write(b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little") + b"\x00\x00\x00")
    if loop != 1 and pages > 1:
        repeats = 0 if loop <= 0 else min(loop - 1, 65535)
        out.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + repeats.to_bytes(2, "little") + b"\x00")

    def write(frame: Image.Image, offset: tuple[int, int], params: dict[str, Any]) -> None:
        for chunk in GifImagePlugin.getdata(frame, offset=offset, **params):
            out.write(chunk)

    previous: Image.Image | None = None  # the last frame's pixels, when it was opaque
    pending: tuple[Image.Image, tuple[int, int], dict[str, Any]] | None = None
    for i in range(pages):
        # a view of the fetched bytes (no copy: a 3535x3535 RGBA frame is 50 MB)
        raw = Image.frombuffer(
            mode, (width, height), region.fetch(0, i * height, width, height), "raw", mode, 0, 1
        )
        rgb, alpha = (raw.convert("RGB"), raw.getchannel("A")) if mode == "RGBA" else (raw, None)
        del raw
        if alpha is not None and _min(alpha) >= 128:
            alpha = None  # nothing transparent in this frame
        if pending is not None:  # how the previous frame goes: under this one, or cleared
            pending[2]["disposal"] = 1 if alpha is None else 2
            write(*pending)
        box = (0, 0, width, height)
        if alpha is None and previous is not None:
            # only what changed (an identical frame: one pixel, to keep the frame and its delay)
            box = ImageChops.difference(previous, rgb).getbbox() or (0, 0, 1, 1)
        previous = rgb if alpha is None else None
        frame, transparency = _quantise(rgb if box == (0, 0, width, height) else rgb.crop(box), alpha)
        params: dict[str, Any] = {"include_color_table": True, "disposal": 1}
        if pages > 1:
            params["duration"] = round((delays[i] if i < len(delays) else 100) / 10) * 10
        if transparency is not None:
            params["transparency"] = transparency
        pending = (frame, (box[0], box[1]), params)
    if pending is not None:
        write(*pending)
    out.write(b";")
    return out.getvalue()


def _netscape_loop(loop: int, pages: int) -> bytes:
    """The NETSCAPE2.0 block for libvips' ``loop`` (plays, 0 forever; NETSCAPE2.0 counts
    repeats; one play: no block)."""
    if loop == 1 or pages < 2:
        return b""
    repeats = 0 if loop <= 0 else min(loop - 1, 65535)
    return b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + repeats.to_bytes(2, "little") + b"\x00"


def gif_copy(data: Any, width: int, height: int, pages: int, loop: int) -> bytes | None:
    """A GIF source's own frames, unchanged, for a variant of the source's size: its logical
    screen, global and local colour tables, graphic controls (delays, disposal, transparency)
    and LZW data copied block by block, every other extension (comments, XMP, ICC, plain
    text, application blocks) dropped and the loop written from libvips' ``loop``.

    Re-encoding a frame that needs no resize costs a quantisation and an LZW pass (~80% of an
    animated GIF's render when its variants are the source's size) and loses colours: the
    copy is lossless. ``None`` when the file is anything but plain: a canvas other than
    ``width`` x ``height``, a frame outside the canvas, a frame count other than ``pages``,
    an unknown or short block (the caller then encodes the decoded frames).
    """
    n = len(data)
    if n < 13 or bytes(data[:6]) not in (b"GIF87a", b"GIF89a"):
        return None
    if int.from_bytes(data[6:8], "little") != width or int.from_bytes(data[8:10], "little") != height:
        return None
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    if pos > n:
        return None
    out = [b"GIF89a", bytes(data[6:12]), b"\x00", bytes(data[13:pos]), _netscape_loop(loop, pages)]
    images = 0
    control = b""  # the graphic control extension of the next image

    def blocks(at: int) -> int:  # the end of a run of sub-blocks (past its terminator), or -1
        while at < n:
            size = data[at]
            at += 1 + size
            if size == 0:
                return at if at <= n else -1
        return -1

    while pos < n:
        kind = data[pos]
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension
            if pos + 2 > n:
                return None
            label = data[pos + 1]
            end = blocks(pos + 2)
            if end < 0:
                return None
            if label == 0xF9:  # graphic control: 4 bytes of flags, delay and transparent index
                if end - pos != 8 or data[pos + 2] != 4:
                    return None
                control = bytes(data[pos:end])
            pos = end
            continue
        if kind != 0x2C or pos + 11 > n:  # anything but an image: not plain
            return None
        left, top, w, h = (int.from_bytes(data[pos + i : pos + i + 2], "little") for i in (1, 3, 5, 7))
        if w < 1 or h < 1 or left + w > width or top + h > height:
            return None
        local = data[pos + 9]
        start = pos
        pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
        if pos >= n or not 2 <= data[pos] <= 8:  # the LZW minimum code size
            return None
        end = blocks(pos + 1)
        if end < 0:
            return None
        out += [control, bytes(data[start:end])]
        control = b""
        images += 1
        pos = end
    if images != pages:
        return None
    out.append(b";")
    return b"".join(out)
