"""The image pipeline: ``render(data, profile)`` -> ``Rendition``. Pure (no AWS, no env).

    from imgdrop.pipeline import render
    # profiles: the deployment's file (IMGDROP_PROFILES_FILE) or the built-in one, by default
    r = render(data, "default", max_pixels=settings.max_pixels, max_frames=settings.max_frames,
               max_animation_pixels=settings.max_animation_pixels)
    for name, v in r.variants.items():
        put(f"images/{tenant}/{image_id}/{v.filename}", v.data, v.mime)

Input. The format is sniffed from the bytes (JPEG, PNG, WebP, GIF, HEIC/HEIF, AVIF, TIFF's
first page); the declared type is never trusted. Refusals raise ``ImageRejected``:
``file_error`` (empty, corrupt or truncated; a recognised signature that does not decode),
``unsupported_format`` (no accepted signature: SVG, PDF, HTML, text, random bytes),
``image_too_large`` (width*height > max_pixels or frames > max_frames; for an animated GIF or
WebP, frames*width*height of its canvas > max_animation_pixels, or a canvas over an eighth of
it; all read from the header before any pixel is decoded; Pillow's decompression-bomb error
maps here too). An unknown profile name raises ``ImgdropError("unknown_profile")``.

Variants. Every variant is oriented (EXIF orientation applied), converted to sRGB from any
embedded ICC profile (CMYK included), tagged with libvips' compact sRGB profile, and keeps no
other metadata (no EXIF, XMP, IPTC, comments). Nothing is upscaled: ``fit`` of a smaller
source keeps its size; ``cover`` crops to the box's aspect then shrinks, so a small source
gives a smaller image of the box's aspect; ``original`` is the image at its own size.

Naming. A profile's ``formats`` (default ``["jpeg"]``) lists the encodings; the first is the
*primary* and is stored under the bare variant name (``large``); each other one is a
*sibling* named ``<variant>.<format>`` (``large.webp``, ``large.avif``). ``Variant.filename``
is the object name to store it under: ``large.jpg`` / ``large.png`` for the primary,
``large.webp`` for the sibling ``large.webp``. The primary ``jpeg`` becomes ``png`` when the
image has real transparency (an alpha channel with a pixel below 255); webp and avif keep
alpha as they are.

Animation. An animated GIF or WebP (more than one frame) gives animated WebP variants
(format ``webp``, frame delays and loop kept), stored under the bare names; siblings are not
made for animations. ``animated`` and ``frames`` say so. AVIF/HEIC sequences and multi-page
TIFFs render their first (primary) image; ``frames`` still counts pages. Variants are made and
encoded one at a time, the big ones streamed from the source into their encoder, so memory
holds one variant's frames at most (``max_animation_pixels`` bounds those, and the time).

Analysis. ``phash``/``dhash`` equal ``str(imagehash.phash(img))``/``str(imagehash.dhash(img))``
of the oriented sRGB image flattened on white, bit for bit for sources up to ~2 MP (decoded
at full size); for bigger ones they are computed from a rendition of at least 256 px on its
shorter side and may differ from the full-size hash by a bit or two (see the tests and the
bench). No scipy: the DCT is numpy. Colours, grayscale and blurhash come from small images.

Speed. libvips does the decoding (with JPEG shrink-on-load) and resizing: one decode to the
largest size any variant needs, then each variant from the smallest rendition already made
that is big enough. Pillow reads headers and EXIF, and decodes HEIC through pillow-heif.
"""

from .engine import Rendition, Variant, render
from .profiles import Profile, VariantSpec, load_profiles, parse_profiles
from .sniff import MIME, sniff

__all__ = [
    "MIME",
    "Profile",
    "Rendition",
    "Variant",
    "VariantSpec",
    "load_profiles",
    "parse_profiles",
    "render",
    "sniff",
]
