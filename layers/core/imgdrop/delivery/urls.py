"""Delivery URLs of an image record: its variants (each format's URL, the auto-format URL and the
srcset per format) and its original, on the CDN, signed where the image is not public.

Bucket keys served: `public/{tenant}/{id}/{run}/{variant}.{ext}` (variants of public and unlisted
images, unsigned) and `images/{tenant}/{id}/{run}/{variant or original}.{ext}` (private images'
variants and every original, signed). A URL is `{CDN base}/{key}`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from .signing import UrlSigner

PUBLIC_PREFIX = "public/"
PRIVATE = "private"

# A format's file extension, and the order the edge function prefers them in (the fallback,
# always last in an auto URL, aside).
EXTENSIONS = {"jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif"}
PREFERENCE = ("avif", "webp", "jpeg", "png", "gif")


def _number(value: Any) -> Any:
    """Whole numbers as int (DynamoDB answers Decimal), anything else as it is."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


class DeliveryNotConfigured(RuntimeError):
    """A URL was asked for without a CDN base URL, or a signed one without a signer."""


def extension(fmt: str) -> str:
    return EXTENSIONS.get(fmt.lower(), fmt.lower())


def auto_key(variant_key: str, formats: Iterable[str], fallback: str) -> str:
    """`{dir}/{variant}.auto.{exts}`: the formats by preference, the fallback last
    (`.../medium.auto.avif-webp-jpg`). The edge function rewrites it to one of them."""
    directory, name = posixpath.split(variant_key)
    stem = name.rsplit(".", 1)[0]
    others = sorted((f for f in formats if f != fallback),
                    key=lambda f: (PREFERENCE.index(f) if f in PREFERENCE else len(PREFERENCE), f))
    exts = "-".join(extension(f) for f in [*others, fallback])
    return f"{directory}/{stem}.auto.{exts}" if directory else f"{stem}.auto.{exts}"


def _formats_of(variant: Mapping[str, Any]) -> tuple[str, dict[str, Mapping[str, Any]]]:
    """(the fallback format, {format: {"key", "bytes"}} with the fallback first). A record of the
    single-format shape ({"key", "bytes", "format"}) reads as one format."""
    formats = dict(variant.get("formats") or {})
    fallback = str(variant.get("format") or "")
    if not formats and variant.get("key"):
        formats = {fallback or posixpath.splitext(str(variant["key"]))[1].lstrip("."):
                   {"key": variant["key"], "bytes": variant.get("bytes")}}
    if not formats:
        raise ValueError("a variant without any format")
    if fallback not in formats:
        fallback = next(iter(formats))
    return fallback, {fallback: formats[fallback], **{f: v for f, v in formats.items() if f != fallback}}


class Delivery:
    """CDN URLs for bucket keys: `base_url` (CDN_BASE_URL) and, for what is not public, `signer`."""

    def __init__(self, base_url: str, signer: UrlSigner | None = None):
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    @property
    def configured(self) -> bool:
        return bool(self.base_url)

    def url(self, key: str) -> str:
        """The unsigned URL of a key."""
        if not self.base_url:
            raise DeliveryNotConfigured("CDN_BASE_URL is not set")
        return f"{self.base_url}/{quote(key, safe='/-_.~')}"

    def signed_url(self, key: str, *, now: float | None = None) -> str:
        if self.signer is None:
            raise DeliveryNotConfigured("CDN_KEY_PAIR_ID / CDN_PRIVATE_KEY_SECRET_ARN are not set")
        return self.signer.sign(self.url(key), now=now)

    def key_url(self, key: str, *, signed: bool, now: float | None = None) -> str:
        """Unsigned only where the CDN serves unsigned (`public/`): a key elsewhere is always signed."""
        if signed or not key.startswith(PUBLIC_PREFIX):
            return self.signed_url(key, now=now)
        return self.url(key)

    def variant_answers(self, variants: Mapping[str, Mapping[str, Any]], privacy: str, *,
                        fit_variants: Iterable[str] = (), now: float | None = None,
                        ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """(the image object's `variants`, its `srcset`) from the record's variants
        ({name: {"width", "height", "format", "formats": {fmt: {"key", "bytes"}}}}).

        Private images get signed URLs everywhere (url, formats, auto_url, srcset); public and
        unlisted ones unsigned URLs, the same on every read. `srcset` lists per format the
        `fit_variants` (the profile's fit variants' names) that have it, by width, one per width.
        """
        signed = privacy == PRIVATE
        answers: dict[str, dict[str, Any]] = {}
        by_format: dict[str, list[tuple[int, str, str]]] = {}
        fit = set(fit_variants)
        for name, variant in variants.items():
            fallback, formats = _formats_of(variant)
            urls = {fmt: self.key_url(str(spec["key"]), signed=signed, now=now)
                    for fmt, spec in formats.items()}
            fallback_key = str(formats[fallback]["key"])
            # The auto URL shares its directory, and so its access rule, with the fallback.
            auto_url = self.key_url(auto_key(fallback_key, formats, fallback), signed=signed, now=now)
            answers[name] = {
                "url": urls[fallback],
                "width": _number(variant.get("width")),
                "height": _number(variant.get("height")),
                "bytes": _number(formats[fallback].get("bytes")),
                "format": fallback,
                "formats": {fmt: {"url": urls[fmt], "bytes": _number(spec.get("bytes"))}
                            for fmt, spec in formats.items()},
                "auto_url": auto_url,
            }
            width = _number(variant.get("width"))
            if name in fit and isinstance(width, int):
                for fmt in formats:
                    by_format.setdefault(fmt, []).append((width, name, urls[fmt]))
        srcset: dict[str, str] = {}
        for fmt, entries in by_format.items():
            seen: set[int] = set()
            parts: list[str] = []
            for width, _name, url in sorted(entries):
                if width not in seen:
                    seen.add(width)
                    parts.append(f"{url} {width}w")
            srcset[fmt] = ", ".join(parts)
        return answers, srcset

    def original_answer(self, original: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any]:
        """The image object's `original`: always a signed URL (the original keeps EXIF and GPS)."""
        return {
            "url": self.signed_url(str(original["key"]), now=now),
            "width": _number(original.get("width")),
            "height": _number(original.get("height")),
            "bytes": _number(original.get("bytes")),
            "format": original.get("format"),
        }
