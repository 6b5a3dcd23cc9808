"""Profiles: named sets of variants, read from a JSON file, and the geometry of each variant.

The file (``imgdrop/profiles.json`` built in; a deployment passes its own path, e.g. from
``IMGDROP_PROFILES_FILE``)::

    {
      "version": 1,
      "defaults": {"formats": ["jpeg"], "quality": {"jpeg": 82, "webp": 80, "avif": 50}},
      "profiles": {
        "default": {
          "formats": ["jpeg", "webp"],            # optional, else defaults.formats
          "quality": {"jpeg": 85},                 # optional, merged over defaults.quality
          "variants": [
            {"name": "large", "mode": "fit", "width": 2048, "height": 2048},
            {"name": "thumb", "mode": "cover", "width": 256, "height": 256},
            {"name": "o", "mode": "original"}
          ]
        }
      }
    }

``mode`` is ``fit`` (inside the box), ``cover`` (crop to the box's aspect, then fill it) or
``original`` (the image at its own size). Nothing is ever upscaled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

MODES = ("fit", "cover", "original")
OUTPUT_FORMATS = ("jpeg", "webp", "avif")
DEFAULT_QUALITY = {"jpeg": 82, "webp": 80, "avif": 50}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class VariantSpec:
    name: str
    mode: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Profile:
    name: str
    variants: tuple[VariantSpec, ...]
    formats: tuple[str, ...] = ("jpeg",)
    quality: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUALITY))


@dataclass(frozen=True)
class Plan:
    """Where a variant comes from in the oriented source, and its size.

    ``crop`` is (left, top, width, height) in source pixels; ``scale`` is target/crop.
    """

    spec: VariantSpec
    crop: tuple[int, int, int, int]
    width: int
    height: int

    @property
    def scale(self) -> float:
        return max(self.width / self.crop[2], self.height / self.crop[3])


def plan(spec: VariantSpec, src_w: int, src_h: int) -> Plan:
    """The crop and target size of one variant for an oriented source of src_w x src_h."""
    if spec.mode == "original":
        return Plan(spec, (0, 0, src_w, src_h), src_w, src_h)
    if spec.mode == "fit":
        s = min(1.0, spec.width / src_w, spec.height / src_h)
        return Plan(spec, (0, 0, src_w, src_h), max(1, round(src_w * s)), max(1, round(src_h * s)))
    # cover: the largest centred crop of the box's aspect, then shrink (never grow) to the box
    aspect = spec.width / spec.height
    if src_w / src_h > aspect:
        ch, cw = src_h, min(src_w, max(1, round(src_h * aspect)))
    else:
        cw, ch = src_w, min(src_h, max(1, round(src_w / aspect)))
    s = min(1.0, spec.width / cw)
    tw = min(spec.width, max(1, round(cw * s)))
    th = min(spec.height, max(1, round(ch * s)))
    return Plan(spec, ((src_w - cw) // 2, (src_h - ch) // 2, cw, ch), tw, th)


def _parse_profile(name: str, raw: dict[str, Any], defaults: dict[str, Any]) -> Profile:
    if not isinstance(raw, dict) or not isinstance(raw.get("variants"), list) or not raw["variants"]:
        raise ValueError(f"profile {name!r}: 'variants' must be a non-empty list")
    formats = tuple(raw.get("formats", defaults.get("formats", ["jpeg"])))
    if not formats or any(f not in OUTPUT_FORMATS for f in formats) or len(set(formats)) != len(formats):
        raise ValueError(f"profile {name!r}: formats must be distinct values of {OUTPUT_FORMATS}")
    quality = dict(DEFAULT_QUALITY) | dict(defaults.get("quality", {})) | dict(raw.get("quality", {}))
    if any(f not in OUTPUT_FORMATS or not (isinstance(q, int) and 1 <= q <= 100) for f, q in quality.items()):
        raise ValueError(f"profile {name!r}: quality must map formats to 1..100")
    specs: list[VariantSpec] = []
    for i, v in enumerate(raw["variants"]):
        where = f"profile {name!r} variant {i}"
        vname, mode = v.get("name"), v.get("mode")
        if not isinstance(vname, str) or not _NAME.match(vname):
            raise ValueError(f"{where}: name must match {_NAME.pattern}")
        if mode not in MODES:
            raise ValueError(f"{where}: mode must be one of {MODES}")
        w, h = (0, 0) if mode == "original" else (v.get("width"), v.get("height", v.get("width")))
        if mode != "original" and not all(isinstance(x, int) and 0 < x <= 16384 for x in (w, h)):
            raise ValueError(f"{where}: width and height must be integers in 1..16384")
        specs.append(VariantSpec(vname, mode, w, h))
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"profile {name!r}: variant names must be unique")
    return Profile(name, tuple(specs), formats, quality)


def parse_profiles(doc: dict[str, Any]) -> dict[str, Profile]:
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles"), dict) or not doc["profiles"]:
        raise ValueError("profiles document needs a non-empty 'profiles' object")
    defaults = doc.get("defaults", {})
    return {name: _parse_profile(name, raw, defaults) for name, raw in doc["profiles"].items()}


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, Profile]:
    return parse_profiles(json.loads(Path(path).read_text(encoding="utf-8")))


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """The profiles of a JSON file; without a path, the deployment's (``IMGDROP_PROFILES_FILE``,
    else the built-in ``imgdrop/profiles.json``), as ``imgdrop.profiles`` finds it.

    Cached per path; raises ValueError for an invalid file.
    """
    from imgdrop.profiles import profiles_file

    return _load(str(path or profiles_file()))
