"""The image object as the contract shows it to a reader."""

from __future__ import annotations

from typing import Any

from imgdrop.auth import Principal
from imgdrop.models import Image
from imgdrop.profiles import fit_variant_names
from imgdrop.services import Services
from imgdrop.store.db import (
    SETTLED,
    ImageRecord,
)
from imgdrop.validation import (
    DESCRIPTIVE_FIELDS,
)

# --------------------------------------------------------------------------- presenting


def present_image(record: ImageRecord, services: Services, reader: Principal | None = None) -> dict[str, Any]:
    """The contract's image object, its URLs delivery URLs (see imgdrop.delivery). Given the
    reader, `similar` and `duplicate_of` name only images the reader may read."""
    result = record.result or {}
    fields = record.fields or {}
    # Files are shown once the image is ready: a processing run's may still lose the image.
    ready = record.status == "ready"
    privacy = fields.get("privacy") or "public"
    variants, srcset = (
        services.delivery.variant_answers(
            record.variants, privacy, fit_variants=fit_variant_names(record.profile)
        )
        if ready and record.variants
        else ({}, {})
    )
    original = services.delivery.original_answer(record.original) if ready and record.original else None
    errors = record.errors or []
    hidden = _hidden_from(record, services, reader)
    body: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "filename": record.filename,
        "content_type": record.content_type,
        "bytes": record.declared_bytes,
        "sha256": result.get("sha256"),
        "format": result.get("format"),
        "width": result.get("width"),
        "height": result.get("height"),
        "profile": record.profile,
        "purpose": record.purpose,
        "album_id": record.album_id,
        "parent_id": record.parent_id,
        "slug": record.slug,
    }
    for name in (*DESCRIPTIVE_FIELDS, "usage_license_name"):
        body.setdefault(name, fields.get(name))
    body["privacy"] = privacy
    body.update(
        {
            "tags": record.tags if record.status in SETTLED else [{"id": t} for t in record.tag_ids],
            "variants": variants,
            "srcset": srcset,
            "original": original,
            "phash": result.get("phash"),
            "dhash": result.get("dhash"),
            "exif": result.get("exif"),
            "gps": result.get("gps"),
            "taken_at": result.get("taken_at"),
            "camera": result.get("camera"),
            "colors": result.get("colors"),
            "grayscale": result.get("grayscale"),
            "has_alpha": result.get("has_alpha"),
            "blurhash": result.get("blurhash"),
            "animated": result.get("animated"),
            "frames": result.get("frames"),
            "duplicate_of": record.duplicate_of if record.duplicate_of not in hidden else None,
            "similar": [entry for entry in record.similar or [] if entry["id"] not in hidden],
            "errors": errors,
            "processed": record.status in SETTLED,
            "processing_error": errors[0]["code"] if errors and record.status == "failed" else None,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "processed_at": record.processed_at,
            "links": {"self": image_link(services, record.id)},
        }
    )
    # The one definition of the image object: the API's answers, EventBridge events and webhook
    # payloads all pass through it, so none can drift from the OpenAPI document.
    return Image.model_validate(body).model_dump(mode="json")


def _hidden_from(record: ImageRecord, services: Services, reader: Principal | None) -> set[str]:
    """The images this one names (duplicate_of, similar) that the reader may not read: one
    BatchGet, and only for a token limited to some albums."""
    named = [i for i in [record.duplicate_of, *(s["id"] for s in record.similar or [])] if i]
    if not named or reader is None or reader.albums is None:
        return set()
    others = services.repo.get_images(record.tenant, named)
    return {i for i in named if i not in others or not reader.can_read_album(others[i].album_id)}


def image_link(services: Services, image_id: str) -> str:
    settings = services.settings
    return f"{settings.api_base_url.rstrip('/')}{settings.api_base_path}/images/{image_id}"
