"""Profiles: named sets of variants, read from one JSON file (the only reader of it).

The file (``imgdrop/profiles.json`` built in; a deployment's replaces it, named by Settings'
``IMGDROP_PROFILES_FILE``: ``deployed_profiles()``)::

    {
      "version": 1,
      "defaults": {                                  # optional; these are the code's defaults
        "formats": ["webp", "avif"],
        "format_max_box": {"avif": 1024},
        "quality": {"jpeg": 85, "webp": 80, "avif": 60}
      },
      "profiles": {
        "default": {
          "formats": ["webp"],                       # optional, else defaults.formats
          "format_max_box": {"avif": null},          # optional, merged over the defaults'
          "quality": {"jpeg": 80},                   # optional, merged over defaults.quality
          "variants": [
            {"name": "large", "mode": "fit", "width": 2048, "height": 2048},
            {"name": "thumb", "mode": "cover", "width": 256, "height": 256,
             "formats": ["webp", "avif"]},           # optional: exactly these, for this variant
            {"name": "o", "mode": "original"}
          ]
        }
      }
    }

``mode`` is ``fit`` (inside the box), ``cover`` (crop to the box's aspect, then fill it) or
``original`` (the image at its own size). Nothing is ever upscaled.

Formats. Every variant is encoded in its *fallback* first, always, without being listed:
``jpeg``, or ``png`` when the image has real transparency, or ``gif`` (animated) for an
animation. ``formats`` lists the other encodings, among ``webp`` and ``avif``; an animation
gets animated ``webp`` when it is listed (never avif). ``format_max_box`` limits a format to
the variants whose box (the larger side of ``width``/``height``; for ``original``, of the
source) is at most that many pixels; ``null`` lifts a default's limit. A variant's own
``formats`` is exactly what it gets (no box limit). ``jpeg`` may still be listed, as files
before the fallback was implied did (``["jpeg", "webp"]``): it names the fallback and adds
nothing. Unknown formats, or listing ``png``/``gif``, are refused with a ValueError.

``Profile.extra_formats(spec, src_w, src_h)`` answers a variant's formats besides the fallback;
for ``fit`` and ``cover`` variants it depends on the profile alone, so the formats a variant
has are known before any image is rendered (only ``original`` depends on the source's size).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

MODES = ("fit", "cover", "original")
# What ``formats`` may list (the fallback is implied); ``jpeg`` is accepted and ignored.
OUTPUT_FORMATS = ("webp", "avif")
FALLBACK_FORMATS = ("jpeg", "png", "gif")
DEFAULT_FORMATS = ("webp", "avif")
DEFAULT_FORMAT_MAX_BOX = {"avif": 1024}
# JPEG q85, WebP q80: the naive baseline's. AVIF q60 (libheif's scale, encoded at effort 0)
# lands near Pillow's AVIF q60 in SSIM (-0.001..-0.007) for files 7-20% bigger, in a tenth of
# the time or less; see encode.py and bench/bench_formats.py.
DEFAULT_QUALITY = {"jpeg": 85, "webp": 80, "avif": 60}
MAX_SIDE = 16384
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class VariantSpec:
    name: str
    mode: str
    width: int = 0
    height: int = 0
    formats: tuple[str, ...] | None = None  # this variant's own extra formats, if it sets them

    @property
    def box(self) -> int:
        """The larger side of the box (0 for ``original``: the source's size decides)."""
        return max(self.width, self.height)


@dataclass(frozen=True)
class Profile:
    name: str
    variants: tuple[VariantSpec, ...]
    formats: tuple[str, ...] = DEFAULT_FORMATS
    quality: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUALITY))
    format_max_box: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FORMAT_MAX_BOX))

    def extra_formats(self, spec: VariantSpec, src_w: int = 0, src_h: int = 0) -> tuple[str, ...]:
        """The formats besides the fallback of variant ``spec`` (of a src_w x src_h source)."""
        if spec.formats is not None:
            return spec.formats
        box = max(src_w, src_h) if spec.mode == "original" else spec.box
        return tuple(f for f in self.formats if box <= self.format_max_box.get(f, box))


def _formats(value: Any, where: str) -> tuple[str, ...]:
    """A validated ``formats`` list, without the implied fallback."""
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise ValueError(f"{where}: 'formats' must be a list of format names")
    for f in value:
        if f in ("png", "gif"):
            raise ValueError(
                f"{where}: {f!r} cannot be listed in 'formats': the fallback (jpeg, png with "
                f"transparency, gif for animations) is always made; list only {', '.join(OUTPUT_FORMATS)}"
            )
        if f != "jpeg" and f not in OUTPUT_FORMATS:
            raise ValueError(
                f"{where}: unknown format {f!r} in 'formats'; known: {', '.join(OUTPUT_FORMATS)} "
                "(the fallback jpeg/png/gif is implied)"
            )
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: 'formats' lists a format twice")
    return tuple(f for f in value if f != "jpeg")


def _max_box(value: Any, where: str) -> dict[str, int | None]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: 'format_max_box' must map formats to a box size or null")
    for f, box in value.items():
        if f not in OUTPUT_FORMATS:
            raise ValueError(
                f"{where}: unknown format {f!r} in 'format_max_box'; known: {', '.join(OUTPUT_FORMATS)}"
            )
        if box is not None and not (
            isinstance(box, int) and not isinstance(box, bool) and 1 <= box <= MAX_SIDE
        ):
            raise ValueError(f"{where}: format_max_box[{f!r}] must be an integer in 1..{MAX_SIDE} or null")
    return dict(value)


def _quality(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: 'quality' must map formats to 1..100")
    for f, q in value.items():
        if f not in ("jpeg", *OUTPUT_FORMATS):
            raise ValueError(
                f"{where}: unknown format {f!r} in 'quality'; known: jpeg, {', '.join(OUTPUT_FORMATS)}"
            )
        if not (isinstance(q, int) and not isinstance(q, bool) and 1 <= q <= 100):
            raise ValueError(f"{where}: quality[{f!r}] must be an integer in 1..100")
    return dict(value)


def _parse_profile(name: str, raw: dict[str, Any], defaults: dict[str, Any]) -> Profile:
    where = f"profile {name!r}"
    if not isinstance(raw, dict) or not isinstance(raw.get("variants"), list) or not raw["variants"]:
        raise ValueError(f"{where}: 'variants' must be a non-empty list")
    if "formats" in raw:
        formats = _formats(raw["formats"], where)
    elif "formats" in defaults:
        formats = _formats(defaults["formats"], "defaults")
    else:
        formats = DEFAULT_FORMATS
    max_box = (
        dict(DEFAULT_FORMAT_MAX_BOX)
        | _max_box(defaults.get("format_max_box", {}), "defaults")
        | _max_box(raw.get("format_max_box", {}), where)
    )
    quality = (
        dict(DEFAULT_QUALITY)
        | _quality(defaults.get("quality", {}), "defaults")
        | _quality(raw.get("quality", {}), where)
    )
    specs: list[VariantSpec] = []
    for i, v in enumerate(raw["variants"]):
        at = f"{where} variant {i}"
        if not isinstance(v, dict):
            raise ValueError(f"{at}: a variant is an object with name and mode")
        vname, mode = v.get("name"), v.get("mode")
        if not isinstance(vname, str) or not _NAME.match(vname):
            raise ValueError(f"{at}: name must match {_NAME.pattern}")
        if mode not in MODES:
            raise ValueError(f"{at}: mode must be one of {MODES}")
        w, h = (0, 0) if mode == "original" else (v.get("width"), v.get("height", v.get("width")))
        if not (isinstance(w, int) and isinstance(h, int)) or (
            mode != "original" and not all(not isinstance(x, bool) and 0 < x <= MAX_SIDE for x in (w, h))
        ):
            raise ValueError(f"{at}: width and height must be integers in 1..{MAX_SIDE}")
        own = _formats(v["formats"], f"{where} variant {vname!r}") if "formats" in v else None
        specs.append(VariantSpec(vname, mode, w, h, own))
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"{where}: variant names must be unique")
    limits = {f: box for f, box in max_box.items() if box is not None}
    return Profile(name, tuple(specs), formats, quality, limits)


def parse_profiles(doc: dict[str, Any]) -> dict[str, Profile]:
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles"), dict) or not doc["profiles"]:
        raise ValueError("profiles document needs a non-empty 'profiles' object")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ValueError("profiles document: 'defaults' must be an object")
    return {name: _parse_profile(name, raw, defaults) for name, raw in doc["profiles"].items()}


def _stamp(path: str) -> int:
    """The file's modification time: a file changed in place (the local stack's profiles, before a
    reprocess job) is read again; deployed, the file changes only with a new deployment."""
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return 0


@lru_cache(maxsize=8)
def _load_version(path: str, stamp: int) -> dict[str, Profile]:
    return parse_profiles(_document(path, stamp))


@lru_cache(maxsize=8)
def _document(path: str, stamp: int) -> dict[str, Any]:
    """The file as read, once per version: the parsed profiles and the policy share it."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _load(path: str) -> dict[str, Profile]:
    return _load_version(path, _stamp(path))


BUILTIN_PROFILES_FILE = Path(__file__).with_name("profiles.json")

PURPOSE_PROFILES = {"product": "product", "account": "avatar", "user": "avatar", "category": "default"}


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """The profiles of a JSON file, the built-in ``imgdrop/profiles.json`` without one. Cached
    per path; raises ValueError for an invalid file."""
    return _load(str(path or BUILTIN_PROFILES_FILE))


def profiles_file() -> Path:
    """The deployment's file (Settings' IMGDROP_PROFILES_FILE), else the built-in one."""
    from imgdrop.settings import get_settings

    override = get_settings().profiles_file
    return Path(override) if override else BUILTIN_PROFILES_FILE


def deployed_profiles() -> dict[str, Profile]:
    """The profiles this deployment renders with."""
    return load_profiles(profiles_file())


def profiles_document() -> dict[str, Any]:
    """The deployment's whole file: `profiles`, and the `near_duplicate` policy beside them."""
    path = str(profiles_file())
    return _document(path, _stamp(path))


def profile_names() -> frozenset[str]:
    return frozenset(deployed_profiles())


def profile_for(profile: str | None, purpose: str | None) -> str:
    if profile:
        return profile
    if purpose:
        return PURPOSE_PROFILES[purpose]
    return "default"


def fit_variant_names(profile: str | None) -> frozenset[str]:
    """The profile's `fit` variants: those a `<picture>` srcset may offer (same aspect, by width)."""
    chosen = deployed_profiles().get(profile or "default")
    return frozenset(v.name for v in chosen.variants if v.mode == "fit") if chosen else frozenset()
