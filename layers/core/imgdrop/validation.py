"""Field rules of an image's fields, with stable codes and JSON pointers.

The rules pydantic can say live in `imgdrop.models` (types, lengths, enums, ranges, patterns);
this module maps pydantic's errors onto imgdrop's codes (`field_errors`) and keeps what no single
field can say: a kind must belong to its type, a licensed usage needs its licence, attribution
and source. Every error of an item is reported at once, each pointing at its field, so a client
fixes a form in one round trip.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from imgdrop.errors import ImgdropError
from imgdrop.models import IMAGE_TYPES, LICENSES, ImageFields, ImagePatch, UploadItem, safe_filename

__all__ = ["DESCRIPTIVE_FIELDS", "PATCHABLE_FIELDS", "ItemSpec", "field_errors", "safe_filename", "slugify",
           "validate_item"]

# Fields any image carries; PATCH may change these and tags, album_id, slug.
DESCRIPTIVE_FIELDS = tuple(ImageFields.model_fields)
PATCHABLE_FIELDS = tuple(ImagePatch.model_fields)


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


def validate_item(
    raw: Any,
    pointer: str,
    *,
    max_bytes: int,
    model: type[ImagePatch] = UploadItem,
    today: date | None = None,
) -> tuple[ItemSpec, list[ImgdropError]]:
    """Check one item against `model` (an upload item by default, `ImagePatch` for a change);
    returns the spec and every error found (empty when valid)."""
    if not isinstance(raw, dict):
        return ItemSpec(), [ImgdropError("item_invalid", "Each item must be a JSON object.", 400, pointer)]
    errors: list[ImgdropError] = []
    item = None
    try:
        item = model.model_validate(raw, context={"max_bytes": max_bytes, "today": today or date.today()})
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False), pointer)
    errors += _across_fields(raw, pointer)
    if errors or item is None:
        return ItemSpec(), _unique(errors)
    return _spec(item, raw), []


# --------------------------------------------------------------------------- rules across fields


def _across_fields(raw: dict[str, Any], pointer: str) -> list[ImgdropError]:
    errors = []
    kind, image_type = raw.get("kind"), raw.get("type")
    # a kind or a type that is no known string is pydantic's to report
    kinds = IMAGE_TYPES.get(image_type) if isinstance(image_type, str) else None
    if kind is not None and image_type is None:
        title = "Type is required when kind is given."
        errors.append(ImgdropError("type_blank", title, 400, f"{pointer}/type"))
    elif isinstance(kind, str) and kinds is not None and kind not in kinds:
        title = "Kind must be a valid value for this image type."
        errors.append(ImgdropError("kind_inclusion", title, 400, f"{pointer}/kind"))
    if raw.get("usage_type") == "licensed":
        for name, label in (
            ("usage_license_code", "Usage license code"), ("attributed_name", "Attributed name"),
            ("source_url", "Source url"),
        ):
            if raw.get(name) in (None, ""):
                title = f"{label} is required if usage type is 'licensed'."
                errors.append(ImgdropError(f"{name}_blank", title, 400, f"{pointer}/{name}"))
    return errors


def _spec(item: BaseModel, raw: dict[str, Any]) -> ItemSpec:
    given = {name: getattr(item, name) for name in item.model_fields_set}
    spec = ItemSpec(
        filename=given.get("filename"), content_type=given.get("content_type"), size=given.get("size"),
        sha256=given.get("sha256"), profile=given.get("profile"), purpose=given.get("purpose"),
        album_id=given.get("album_id"), parent_id=given.get("parent_id"), slug=given.get("slug"),
    )
    tags = given.get("tags") or []
    if isinstance(raw.get("tags"), str):
        spec.tag_labels = list(tags)  # the seeds' comma-separated style names tags by label
    else:
        spec.tag_ids = list(dict.fromkeys(tag if isinstance(tag, str) else tag.id for tag in tags))
    out = spec.descriptive
    for name in DESCRIPTIVE_FIELDS:
        value = given.get(name)
        if value is not None:
            out[name] = value.isoformat() if isinstance(value, date) else value
    if "date" in out:
        out.setdefault("year", int(out["date"][:4]))
    if "usage_license_code" in out:
        out["usage_license_name"] = LICENSES[out["usage_license_code"]]
    return spec


# --------------------------------------------------------------------------- pydantic's errors → codes


class Rule(NamedTuple):
    """A field's codes: when it is missing (or null where required), too long, or anything else."""

    invalid: tuple[str, str]
    blank: tuple[str, str] | None = None
    long: tuple[str, str] | None = None
    item: tuple[str, str] | None = None  # an element of a list, pointed at by its index


def _text(name: str, label: str, limit: int) -> Rule:
    return Rule((f"{name}_invalid", f"{label} must be a string."),
                long=(f"{name}_too_long", f"{label} cannot be more than {limit} characters."))


def _url(name: str, label: str) -> Rule:
    return Rule((f"{name}_invalid", f"{label} must be an http or https URL."),
                long=(f"{name}_too_long", f"{label} cannot be more than 250 characters."))


def _inclusion(name: str, title: str) -> Rule:
    return Rule((f"{name}_inclusion", title))


RULES: dict[str, Rule] = {
    "filename": Rule(("filename_invalid", "Filename must be a string.")),
    "content_type": Rule(
        ("unsupported_content_type", "Content type must be one of image/avif, image/gif, image/heic, "
         "image/heif, image/jpeg, image/png, image/tiff, image/webp."),
        blank=("content_type_blank", "Content type is required."),
    ),
    "size": Rule(("size_invalid", "Size must be a positive whole number of bytes."),
                 blank=("size_blank", "Size in bytes is required.")),
    "sha256": Rule(("sha256_invalid", "sha256 must be 64 hexadecimal characters.")),
    "profile": Rule(("profile_unknown", "Profile must be the name of a profile.")),
    "purpose": _inclusion("purpose", "Purpose must be 'product', 'account', 'user' or 'category'."),
    "album_id": Rule(("album_id_invalid", "album_id must be an id.")),
    "parent_id": Rule(("parent_id_invalid", "parent_id must be an id.")),
    "slug": Rule(("slug_invalid", "Slug must be 1 to 30 characters of a-z, 0-9 and hyphens, not starting or "
                  "ending with one.")),
    "tags": Rule(("tags_invalid", "Tags must be a list of at most 50 tag ids, or a comma-separated string."),
                 item=("tag_id_invalid", "A tag must be given by its id.")),
    "title": _text("title", "Title", 100),
    "description": _text("description", "Description", 250),
    "attributed_name": _text("attributed_name", "Attributed name", 100),
    "attributed_url": _url("attributed_url", "Attributed URL"),
    "source_url": _url("source_url", "Source url"),
    "type": _inclusion("type", "Type must be 'Image::Art', 'Image::Doc', 'Image::Photo' or 'Image::Screen'."),
    "kind": _inclusion("kind", "Kind must be a valid value for this image type."),
    "year": _inclusion("year", "Year must be between 1800 and the present year."),
    "date": _inclusion("date", "Date must be between 1 January 1800 and the present date."),
    "rating": _inclusion("rating", "Rating must be a whole number between 0 and 5."),
    "privacy": _inclusion("privacy", "Privacy must be 'public', 'unlisted' or 'private'."),
    "usage_type": _inclusion("usage_type", "Usage type must be 'free', 'fair', or 'licensed'."),
    "usage_license_code": _inclusion("usage_license_code", "Usage license code must be valid."),
    "metadata": Rule(("metadata_invalid", "Metadata must map at most 50 keys (≤ 64 characters) to strings "
                      "(≤ 1024 characters).")),
    # tags and albums
    "label": Rule(("label_blank", "Label is required."),
                  long=("label_too_long", "Label cannot be more than 64 characters.")),
    "category": Rule(("category_invalid", "Category must be a string of at most 64 characters.")),
    "name": Rule(("name_blank", "Name is required."),
                 long=("name_too_long", "Name cannot be more than 100 characters.")),
}
_TOO_LONG = {"string_too_long", "too_long"}


def field_errors(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> list[ImgdropError]:
    """pydantic's errors (`loc` relative to the item at `prefix`) as imgdrop's: a stable code per field
    and kind of error (see RULES), the field's JSON pointer, a plain title that echoes no input."""
    out = []
    for error in errors:
        location = list(error.get("loc", ()))
        name = str(location[0]) if location else ""
        kind = error.get("type", "")
        ctx = error.get("ctx") or {}
        pointer = f"{prefix}/{name}" if name else prefix
        if ctx.get("imgdrop"):
            out.append(ImgdropError(kind, str(error.get("msg", "")), 400, pointer))
            continue
        if kind == "extra_forbidden":
            out.append(ImgdropError("unknown_field", f"'{name}' is not a field of an image.", 400, pointer))
            continue
        rule = RULES.get(name)
        if rule is None:
            path = "/".join(str(part) for part in location)
            code = "field_missing" if kind == "missing" else "field_invalid"
            what = "missing" if kind == "missing" else "invalid"
            where = f"{prefix}/{path}" if path else prefix
            out.append(ImgdropError(code, f"Field '{name}' is {what}.", 400, where))
            continue
        index = next((part for part in location[1:] if isinstance(part, int)), None)
        if rule.item and index is not None and kind not in _TOO_LONG:
            code, title = rule.item
            pointer = f"{pointer}/{index}"
        elif rule.blank and (kind == "missing" or error.get("input") in (None, "")):
            code, title = rule.blank
        elif rule.long and kind in _TOO_LONG:
            code, title = rule.long
        else:
            code, title = rule.invalid
        out.append(ImgdropError(code, title, 400, pointer))
    return _unique(out)


def _unique(errors: list[ImgdropError]) -> list[ImgdropError]:
    seen: set[tuple[str, str | None]] = set()
    out = []
    for error in errors:
        if (error.code, error.pointer) not in seen:
            seen.add((error.code, error.pointer))
            out.append(error)
    return out


def slugify(text: str, limit: int = 30) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:limit].rstrip("-")
