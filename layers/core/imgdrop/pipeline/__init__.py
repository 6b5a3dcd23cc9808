"""The image pipeline: ``render(data, profile)`` -> ``Rendition``. Pure (no AWS, no env).

    from imgdrop.pipeline import render
    # profiles: the deployment's file (IMGDROP_PROFILES_FILE) or the built-in one, by default
    r = render(data, "default", max_pixels=settings.max_pixels, max_frames=settings.max_frames,
               max_animation_pixels=settings.max_animation_pixels)
    for name, encodings in r.variants.items():      # {name: [Encoding, ...]}, fallback first
        for e in encodings:                           # Encoding(data, format, width, height)
            put(f"images/{tenant}/{image_id}/{name}.{e.ext}", e.data, e.mime)

Input. ``data`` is the source's bytes, or the path of a file holding them (``str`` or a path
object): the process function streams an upload (up to MAX_UPLOAD_BYTES, 2 GiB) to /tmp and
renders it from there, so libvips reads the file as it decodes and nothing holds it whole in
memory (``sha256=`` passes a digest already computed). The format is sniffed from the bytes
(JPEG, PNG, WebP, GIF, HEIC/HEIF, AVIF, TIFF's first page); the declared type is never
trusted. Refusals raise ``ImageRejected``:
``file_error`` (no image of any kind: empty, text, HTML, random bytes; or a corrupt or
truncated image of an accepted format), ``unsupported_format`` (an image format imgdrop
recognises and does not take: SVG, PDF, PostScript, PSD, BMP, ICO, JPEG 2000, JPEG XL, TGA,
Netpbm, OpenEXR, ...; see ``sniff``), ``image_too_large`` (width*height > max_pixels or
frames > max_frames; for an animated GIF or WebP, frames*width*height of its canvas >
max_animation_pixels, or a canvas over an eighth of it; all read from the header before any
pixel is decoded; Pillow's decompression-bomb error maps here too). An unknown profile name
raises ``ImgdropError("unknown_profile")``.

Variants. Every variant is oriented (EXIF orientation applied), converted to sRGB from any
embedded ICC profile (CMYK included), tagged with libvips' compact sRGB profile (GIF carries
none: it is sRGB by convention), and keeps no other metadata (no EXIF, XMP, IPTC, comments).
Nothing is upscaled: ``fit`` of a smaller source keeps its size; ``cover`` crops to the box's
aspect then shrinks, so a small source gives a smaller image of the box's aspect; ``original``
is the image at its own size.

Formats. ``Rendition.variants`` maps each variant name to a list of ``Encoding`` (a NamedTuple
``(data, format, width, height)`` with ``ext``, ``mime`` and ``bytes`` = len(data)), one per
format, all of the same size, **the fallback first**:
- the fallback: ``jpeg``, or ``png`` when the image has real transparency (an alpha channel
  with a pixel below 255), or for an animation an animated ``gif``;
- then the profile's other formats, in the profile's order: ``webp`` and ``avif`` (both keep
  alpha); for an animation only ``webp`` (animated), never avif.
Formats are named jpeg | png | gif | webp | avif; extensions jpg | png | gif | webp | avif;
MIME types image/jpeg, image/png, image/gif, image/webp, image/avif (``EXT``/``OUTPUT_MIME``
here; ``MIME`` is the sniffed source's). ``Rendition.summary()`` gives each variant as
``{"width", "height", "format", "bytes", "formats": {fmt: bytes}}`` (format/bytes: the fallback's).
The built-in profiles list ``["webp", "avif"]`` with ``"format_max_box": {"avif": 1024}``:
every variant gets webp, and avif too when its box (the larger side of its width/height; for
an ``original`` variant, the source's) is at most 1024 px. A deployment changes this per
profile (``formats``, ``format_max_box``) or per variant (``formats``) in its profiles file;
see ``profiles`` for the file format. Qualities: JPEG 85, WebP 80, AVIF 60 (libheif's scale,
aom at its fastest effort), per profile in the file; see ``encode`` for the encoder settings.

Animation. An animated GIF or WebP (more than one frame) gives animated variants, an animated
GIF (the fallback; 255 colours a frame, alpha below 128 transparent) and animated WebP, frame
delays and loop count kept. ``animated`` and ``frames`` say so. AVIF/HEIC sequences and
multi-page TIFFs render their first (primary) image; ``frames`` still counts pages. Variants
are made and encoded one at a time, the big ones streamed from the source into their
encoder, so memory holds one variant's frames at most (``max_animation_pixels`` bounds those,
and the time); a streamed variant is decoded once per format, its GIF written frame by frame.

Analysis. ``phash``/``dhash`` equal ``str(imagehash.phash(img))``/``str(imagehash.dhash(img))``
of the oriented sRGB image flattened on white, bit for bit for sources up to ~2 MP (decoded
at full size); for bigger ones they are computed from a rendition of at least 256 px on its
shorter side and may differ from the full-size hash by a bit or two (see the tests and the
bench). No scipy: the DCT is numpy. Colours, grayscale and blurhash come from small images.

Speed. libvips does the decoding (with JPEG shrink-on-load) and resizing: one decode to the
largest size any variant needs, then each variant from the smallest rendition already made
that is big enough. Pillow reads headers and EXIF, and decodes HEIC through pillow-heif.
"""

from imgdrop.profiles import Profile, VariantSpec, load_profiles, parse_profiles

from .encode import EXT, FORMATS, Encoding
from .encode import MIME as OUTPUT_MIME
from .engine import Rendition, render
from .sniff import MIME, sniff

__all__ = [
    "EXT",
    "FORMATS",
    "MIME",
    "OUTPUT_MIME",
    "Encoding",
    "Profile",
    "Rendition",
    "VariantSpec",
    "load_profiles",
    "parse_profiles",
    "render",
    "sniff",
]
