"""EXIF to JSON-clean values: the tag dict, GPS, taken_at and camera. Reads headers only."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin

_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_IFD_INTEROP = 0xA005
# Blobs and pointers that say nothing to a client (or are huge).
_SKIP = {
    0x927C,  # MakerNote
    0x02BC,  # XMLPacket (XMP)
    0x83BB,  # IPTC
    0x8773,  # InterColorProfile
    0x8649,  # Photoshop
    0x9C9B,
    0x9C9C,
    0x9C9D,
    0x9C9E,
    0x9C9F,  # XP* (UTF-16 blobs)
    0x0201,
    0x0202,  # JPEGInterchangeFormat(Length): thumbnail offsets
    0x0111,
    0x0117,
    0x0144,
    0x0145,  # strip/tile offsets
    _IFD_EXIF,
    _IFD_GPS,
    _IFD_INTEROP,
}
_MAX_STR = 1024
_MAX_LIST = 64


def _clean(value: Any) -> Any:
    """A JSON-clean form of one EXIF value, or None to drop it."""
    if isinstance(value, TiffImagePlugin.IFDRational):
        if value.denominator == 0:
            return None
        f = float(value)
        return int(f) if f.is_integer() else round(f, 6)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        value = value.replace("\x00", "").strip()
        return value[:_MAX_STR] if value else None
    if isinstance(value, bytes):
        # Short printable blobs (ExifVersion b"0232", UserComment "ASCII\0\0\0...") read as text.
        if value.startswith(b"ASCII\x00\x00\x00"):
            value = value[8:]
        text = value.replace(b"\x00", b"").strip()
        if text and len(text) <= 64 and all(32 <= c < 127 for c in text):
            return text.decode("ascii")
        return None
    if isinstance(value, tuple | list):
        items = [_clean(v) for v in value[:_MAX_LIST]]
        items = [v for v in items if v is not None]
        return items or None
    return None


def _named(ifd: dict[int, Any], names: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, value in ifd.items():
        if tag in _SKIP:
            continue
        clean = _clean(value)
        if clean is not None:
            out[names.get(tag, f"Tag0x{tag:04X}")] = clean
    return out


def read_exif(raw: bytes | None, image: Image.Image | None = None) -> Image.Exif | None:
    """Parse EXIF bytes (with or without the ``Exif\\0\\0`` header), or the TIFF's own tags."""
    exif = Image.Exif()
    try:
        if raw:
            exif.load(raw)
        elif image is not None and image.format == "TIFF":
            exif = image.getexif()
        else:
            return None
    except Exception:  # a broken EXIF block must not fail the image
        return None
    return exif


def orientation(exif: Image.Exif | None) -> int:
    try:
        value = int(exif.get(0x0112, 1)) if exif is not None else 1
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):  # a float inf, a x/0 rational
        return 1
    return value if 1 <= value <= 8 else 1


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:
        return {}


def _dms(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(x) for x in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(x) for x in (d, m, s)):
        return None
    deg = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if str(ref).strip().upper()[:1] in ("S", "W"):
        deg = -deg
    return round(deg, 7)


def gps_of(gps: dict[int, Any]) -> dict[str, float | None] | None:
    lat = _dms(gps.get(2), gps.get(1))
    lon = _dms(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    alt = None
    if 6 in gps:
        try:
            alt = float(gps[6])
            ref = gps.get(5, 0)
            if (ref[0] if isinstance(ref, bytes) and ref else ref) == 1:
                alt = -alt
            alt = round(alt, 2) if math.isfinite(alt) else None
        except (TypeError, ValueError, ZeroDivisionError):
            alt = None
    return {"lat": lat, "lon": lon, "alt": alt}


# EXIF's own forms, ASCII digits only: str.isdigit() and int() also take "²" or "٢", and
# disagree on which (the first is a digit to isdigit(), not to int()).
_DATE = re.compile(r"([0-9]{4}):([0-9]{2}):([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_SUBSEC = re.compile(r"[0-9]+")
_OFFSET = re.compile(r"[+-](?:0[0-9]|1[0-4]):[0-5][0-9]")  # UTC-14:59 .. UTC+14:59


def _taken_at(exif_ifd: dict[int, Any], base: dict[int, Any]) -> str | None:
    """ISO 8601 of the first well-formed date, with its subseconds and offset when those are
    well formed too (a bad part is left out, never raised)."""
    # (date tag, subsec tag, offset tag): DateTimeOriginal, DateTimeDigitized, DateTime
    for date_tag, sub_tag, off_tag, where in (
        (0x9003, 0x9291, 0x9011, exif_ifd),
        (0x9004, 0x9292, 0x9012, exif_ifd),
        (0x0132, 0x9290, 0x9010, base),
    ):
        raw = _clean(where.get(date_tag))
        match = _DATE.match(raw) if isinstance(raw, str) else None
        if match is None:
            continue
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        try:
            moment = datetime(year, month, day, hour, minute, second)
        except ValueError:  # month 13, 00:00:00 on day 0, ...
            continue
        sub = _clean(exif_ifd.get(sub_tag))
        if isinstance(sub, int) and not isinstance(sub, bool) and sub >= 0:
            sub = str(sub)
        if isinstance(sub, str) and _SUBSEC.fullmatch(sub):
            moment = moment.replace(microsecond=int(sub[:6].ljust(6, "0")))
        text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
        offset = _clean(exif_ifd.get(off_tag))
        if isinstance(offset, str) and _OFFSET.fullmatch(offset):
            text += offset
        return text
    return None


def extract(exif: Image.Exif | None) -> tuple[dict[str, Any], dict | None, str | None, dict | None]:
    """(exif dict, gps, taken_at, camera) from a parsed Exif; GPS stays out of the dict."""
    if exif is None:
        return {}, None, None, None
    base = dict(exif)
    exif_ifd = _ifd(exif, _IFD_EXIF)
    gps_ifd = _ifd(exif, _IFD_GPS)
    out = _named(base, ExifTags.TAGS)
    out.update(_named(exif_ifd, ExifTags.TAGS))
    make, model = _clean(base.get(0x010F)), _clean(base.get(0x0110))
    camera = {"make": make, "model": model} if isinstance(make, str) or isinstance(model, str) else None
    return out, gps_of(gps_ifd), _taken_at(exif_ifd, base), camera
