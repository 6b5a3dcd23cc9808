"""Field rules of an image's descriptive and upload fields, with stable codes and JSON pointers.

Every rule reports all of an item's errors at once, each pointing at its field, so a client
fixes a form in one round trip.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlparse

from imgdrop.errors import ImgdropError
from imgdrop.profiles import PURPOSE_PROFILES, profile_names

ACCEPTED_CONTENT_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/heic",
        "image/heif",
        "image/avif",
        "image/tiff",
    }
)
IMAGE_TYPES = {
    "Image::Photo": frozenset({"likeness", "scene", "event", "product", "other"}),
    "Image::Art": frozenset({"concept", "cover", "fan", "logo", "other"}),
    "Image::Doc": frozenset({"manual", "map", "box", "other"}),
    "Image::Screen": frozenset({"gameplay", "menu", "title", "other"}),
}
USAGE_TYPES = frozenset({"free", "fair", "licensed"})
LICENSES = {
    "cc0_1_0": "Creative Commons Zero 1.0",
    "cc_by_4_0": "Creative Commons Attribution 4.0",
    "cc_by_sa_4_0": "Creative Commons Attribution-ShareAlike 4.0",
    "cc_by_nd_4_0": "Creative Commons Attribution-NoDerivatives 4.0",
    "cc_by_nc_4_0": "Creative Commons Attribution-NonCommercial 4.0",
    "cc_by_nc_sa_4_0": "Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
    "cc_by_nc_nd_4_0": "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0",
    "all_rights_reserved": "All rights reserved",
}
PRIVACY_LEVELS = frozenset({"public", "unlisted", "private"})
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

# Fields any image carries; PATCH may change these.
DESCRIPTIVE_FIELDS = (
    "title",
    "description",
    "type",
    "kind",
    "date",
    "year",
    "rating",
    "privacy",
    "usage_type",
    "usage_license_code",
    "attributed_name",
    "attributed_url",
    "source_url",
    "metadata",
)
UPLOAD_FIELDS = (
    "filename",
    "content_type",
    "size",
    "sha256",
    "profile",
    "purpose",
    "album_id",
    "tags",
    "parent_id",
    "slug",
)
PATCHABLE_FIELDS = (*DESCRIPTIVE_FIELDS, "tags", "album_id", "slug")


@dataclass
class ItemSpec:
    """A validated item: what the domain stores. Absent optional fields are None."""

    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    profile: str | None = None
    purpose: str | None = None
    album_id: str | None = None
    parent_id: str | None = None
    slug: str | None = None
    tag_ids: list[str] = field(default_factory=list)
    tag_labels: list[str] = field(default_factory=list)
    descriptive: dict[str, Any] = field(default_factory=dict)


class _Collector:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.errors: list[ImgdropError] = []

    def add(self, name: str, code: str, title: str) -> None:
        self.errors.append(ImgdropError(code, title, 400, f"{self.prefix}/{name}"))


def validate_item(
    raw: Any,
    pointer: str,
    *,
    max_bytes: int,
    require_upload_fields: bool = True,
    allowed: tuple[str, ...] = (*UPLOAD_FIELDS, *DESCRIPTIVE_FIELDS),
    today: date | None = None,
) -> tuple[ItemSpec, list[ImgdropError]]:
    """Check one item; returns the spec and every error found (empty when valid)."""
    errors = _Collector(pointer)
    spec = ItemSpec()
    if not isinstance(raw, dict):
        errors.errors.append(ImgdropError("item_invalid", "Each item must be a JSON object.", 400, pointer))
        return spec, errors.errors
    for name in raw:
        if name not in allowed:
            errors.add(name, "unknown_field", f"'{name}' is not a field of an image.")

    if require_upload_fields:
        _upload_fields(raw, spec, errors, max_bytes)
    _relations(raw, spec, errors)
    _descriptive(raw, spec, errors, today or date.today())
    return spec, errors.errors


def _upload_fields(raw: dict[str, Any], spec: ItemSpec, errors: _Collector, max_bytes: int) -> None:
    filename = raw.get("filename")
    if filename is not None:
        if not isinstance(filename, str):
            errors.add("filename", "filename_invalid", "Filename must be a string.")
        else:
            spec.filename = safe_filename(filename)

    content_type = raw.get("content_type")
    if content_type in (None, ""):
        errors.add("content_type", "content_type_blank", "Content type is required.")
    elif not isinstance(content_type, str) or content_type.lower() not in ACCEPTED_CONTENT_TYPES:
        errors.add(
            "content_type",
            "unsupported_content_type",
            "Content type must be one of " + ", ".join(sorted(ACCEPTED_CONTENT_TYPES)) + ".",
        )
    else:
        spec.content_type = content_type.lower()

    size = raw.get("size")
    if size is None:
        errors.add("size", "size_blank", "Size in bytes is required.")
    elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
        errors.add("size", "size_invalid", "Size must be a positive whole number of bytes.")
    elif size > max_bytes:
        errors.add("size", "file_too_large", f"Files cannot be larger than {max_bytes} bytes.")
    else:
        spec.size = size

    sha256 = raw.get("sha256")
    if sha256 is not None:
        if not isinstance(sha256, str) or not SHA256_PATTERN.match(sha256.lower()):
            errors.add("sha256", "sha256_invalid", "sha256 must be 64 hexadecimal characters.")
        else:
            spec.sha256 = sha256.lower()

    profile = raw.get("profile")
    if profile is not None:
        if not isinstance(profile, str) or profile not in profile_names():
            errors.add(
                "profile",
                "profile_unknown",
                "Profile must be one of " + ", ".join(sorted(profile_names())) + ".",
            )
        else:
            spec.profile = profile
    purpose = raw.get("purpose")
    if purpose is not None:
        if purpose not in PURPOSE_PROFILES:
            errors.add(
                "purpose", "purpose_inclusion", "Purpose must be 'product', 'account', 'user' or 'category'."
            )
        else:
            spec.purpose = purpose


def _relations(raw: dict[str, Any], spec: ItemSpec, errors: _Collector) -> None:
    for name in ("album_id", "parent_id"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            errors.add(name, f"{name}_invalid", f"{name} must be an id.")
        else:
            setattr(spec, name, value)

    slug = raw.get("slug")
    if slug is not None:
        if not isinstance(slug, str) or not SLUG_PATTERN.match(slug):
            errors.add(
                "slug",
                "slug_invalid",
                "Slug must be 1 to 30 characters of a-z, 0-9 and hyphens, not starting or ending with one.",
            )
        else:
            spec.slug = slug

    tags = raw.get("tags")
    if tags is None:
        return
    if isinstance(tags, str):
        # The seeds' comma-separated style names tags by label; they are found or created.
        labels = [label.strip() for label in tags.split(",") if label.strip()]
        if any(len(label) > 64 for label in labels):
            errors.add("tags", "tag_label_too_long", "Tag labels cannot be more than 64 characters.")
        spec.tag_labels = list(dict.fromkeys(labels))
        return
    if not isinstance(tags, list) or len(tags) > 50:
        errors.add(
            "tags", "tags_invalid", "Tags must be a list of at most 50 tag ids, or a comma-separated string."
        )
        return
    for position, tag in enumerate(tags):
        tag_id = tag.get("id") if isinstance(tag, dict) else tag
        if not isinstance(tag_id, str) or not ID_PATTERN.match(tag_id):
            errors.add(f"tags/{position}", "tag_id_invalid", "A tag must be given by its id.")
        else:
            spec.tag_ids.append(tag_id)
    spec.tag_ids = list(dict.fromkeys(spec.tag_ids))


def _descriptive(raw: dict[str, Any], spec: ItemSpec, errors: _Collector, today: date) -> None:
    out = spec.descriptive
    _text(raw, out, errors, "title", 100, "Title")
    _text(raw, out, errors, "description", 250, "Description")
    _text(raw, out, errors, "attributed_name", 100, "Attributed name")
    for name, label in (("attributed_url", "Attributed URL"), ("source_url", "Source url")):
        if _text(raw, out, errors, name, 250, label) and not _is_http_url(out[name]):
            errors.add(name, f"{name}_invalid", f"{label} must be an http or https URL.")
            del out[name]

    image_type = raw.get("type")
    if image_type is not None:
        if image_type not in IMAGE_TYPES:
            errors.add(
                "type",
                "type_inclusion",
                "Type must be 'Image::Art', 'Image::Doc', 'Image::Photo' or 'Image::Screen'.",
            )
        else:
            out["type"] = image_type
    kind = raw.get("kind")
    if kind is not None:
        if image_type is None:
            errors.add("type", "type_blank", "Type is required when kind is given.")
        elif image_type in IMAGE_TYPES and kind not in IMAGE_TYPES[image_type]:
            errors.add("kind", "kind_inclusion", "Kind must be a valid value for this image type.")
        elif image_type in IMAGE_TYPES:
            out["kind"] = kind

    year = raw.get("year")
    if year not in (None, ""):
        parsed_year = _as_int(year)
        if parsed_year is None or not 1800 <= parsed_year <= today.year:
            errors.add("year", "year_inclusion", "Year must be between 1800 and the present year.")
        else:
            out["year"] = parsed_year
    when = raw.get("date")
    if when not in (None, ""):
        try:
            parsed = date.fromisoformat(when) if isinstance(when, str) and len(when) == 10 else None
        except ValueError:
            parsed = None
        if parsed is None or not date(1800, 1, 1) <= parsed <= today:
            errors.add("date", "date_inclusion", "Date must be between 1 January 1800 and the present date.")
        else:
            out["date"] = parsed.isoformat()
            out.setdefault("year", parsed.year)

    rating = raw.get("rating")
    if rating is not None:
        parsed_rating = _as_int(rating)
        if parsed_rating is None or not 0 <= parsed_rating <= 5:
            errors.add("rating", "rating_inclusion", "Rating must be a whole number between 0 and 5.")
        else:
            out["rating"] = parsed_rating

    privacy = raw.get("privacy")
    if privacy is not None:
        if privacy not in PRIVACY_LEVELS:
            errors.add("privacy", "privacy_inclusion", "Privacy must be 'public', 'unlisted' or 'private'.")
        else:
            out["privacy"] = privacy

    usage_type = raw.get("usage_type")
    if usage_type is not None:
        if usage_type not in USAGE_TYPES:
            errors.add(
                "usage_type", "usage_type_inclusion", "Usage type must be 'free', 'fair', or 'licensed'."
            )
        else:
            out["usage_type"] = usage_type
    license_code = raw.get("usage_license_code")
    if license_code not in (None, ""):
        if license_code not in LICENSES:
            errors.add(
                "usage_license_code", "usage_license_code_inclusion", "Usage license code must be valid."
            )
        else:
            out["usage_license_code"] = license_code
            out["usage_license_name"] = LICENSES[license_code]
    if usage_type == "licensed":
        if license_code in (None, ""):
            errors.add(
                "usage_license_code",
                "usage_license_code_blank",
                "Usage license code is required if usage type is 'licensed'.",
            )
        if not raw.get("attributed_name"):
            errors.add(
                "attributed_name",
                "attributed_name_blank",
                "Attributed name is required if usage type is 'licensed'.",
            )
        if not raw.get("source_url"):
            errors.add(
                "source_url", "source_url_blank", "Source url is required if usage type is 'licensed'."
            )

    metadata = raw.get("metadata")
    if metadata is not None:
        if (
            not isinstance(metadata, dict)
            or len(metadata) > 50
            or not all(
                isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 64 and len(v) <= 1024
                for k, v in metadata.items()
            )
        ):
            errors.add(
                "metadata",
                "metadata_invalid",
                "Metadata must map at most 50 keys (≤ 64 characters) to strings (≤ 1024 characters).",
            )
        else:
            out["metadata"] = metadata


def _text(
    raw: dict[str, Any], out: dict[str, Any], errors: _Collector, name: str, limit: int, label: str
) -> bool:
    value = raw.get(name)
    if value is None:
        return False
    if not isinstance(value, str):
        errors.add(name, f"{name}_invalid", f"{label} must be a string.")
        return False
    if len(value) > limit:
        errors.add(name, f"{name}_too_long", f"{label} cannot be more than {limit} characters.")
        return False
    out[name] = value
    return True


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc)


def safe_filename(name: str, limit: int = 255) -> str:
    """The last path component, without control characters, shortened to `limit` characters
    keeping its extension: a long name is a client's habit, not an error worth refusing."""
    base = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    cleaned = cleaned.lstrip(".") or "upload"
    if len(cleaned) <= limit:
        return cleaned
    stem, dot, ext = cleaned.rpartition(".")
    if dot and 0 < len(ext) <= 10:
        return stem[: limit - len(ext) - 1] + "." + ext
    return cleaned[:limit]


def slugify(text: str, limit: int = 30) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:limit].rstrip("-")
