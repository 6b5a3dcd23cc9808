"""The process step: verify what S3 received, render it, dedupe it, store variants.

It never settles an image's status itself: it returns an outcome that the finalize step
(reached through the function's Lambda destinations) turns into ready, duplicate or failed.
Every step is safe to repeat: S3 delivers events at least once and Lambda retries crashes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from imgdrop.content import claim_content, point_claim_at
from imgdrop.db import SETTLED, ImageRecord
from imgdrop.errors import ImageRejected
from imgdrop.ids import now_iso
from imgdrop.observability import logger
from imgdrop.services import Services
from imgdrop.storage import parse_upload_key, variant_prefix

IMMUTABLE = "private, max-age=31536000, immutable"
ORIGINAL_EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}


@dataclass
class Outcome:
    """What finalize needs; small, since a destination record is limited to 256 KB."""

    outcome: str  # rendered | duplicate | rejected | skipped
    tenant: str | None = None
    image_id: str | None = None
    duplicate_of: str | None = None
    error: dict[str, str] | None = None
    similar: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_upload(key: str, services: Services) -> Outcome:
    parsed = parse_upload_key(key)
    if parsed is None:
        logger.warning("Ignoring an object outside uploads/{tenant}/{id}", extra={"key": key})
        return Outcome("skipped")
    tenant, image_id = parsed
    record = services.repo.get_image(tenant, image_id)
    if record is None:
        # No record: nobody asked for this upload (or it was deleted). Keep nothing unaccounted for.
        services.objects.delete([key])
        return Outcome(
            "skipped", tenant, image_id, error={"code": "orphan_upload", "title": "No image record."}
        )
    if record.status in SETTLED:
        if record.status in {"ready", "duplicate"}:
            # The verified bytes live under images/ now: anything here was sent after settling.
            services.objects.delete([key])
        return Outcome("skipped", tenant, image_id)
    started = services.repo.update_image(
        record,
        [
            ImageRecord.status.set("processing"),
            ImageRecord.attempts.add(1),
            ImageRecord.updated_at.set(now_iso()),
        ],
        condition=ImageRecord.status.is_in("pending", "processing"),
    )
    if not started:  # settled meanwhile (the sweep): nothing left to do
        return Outcome("skipped", tenant, image_id)
    try:
        return _render_and_store(record, services)
    except ImageRejected as exc:
        return Outcome("rejected", tenant, image_id, error={"code": exc.code, "title": exc.title})


def _render_and_store(record: ImageRecord, services: Services) -> Outcome:
    from imgdrop.dedupe import policy_for
    from imgdrop.pipeline import render

    settings = services.settings
    data = services.objects.read(record.upload_key, max_bytes=record.declared_bytes)
    if len(data) != record.declared_bytes:
        raise ImageRejected(
            "size_mismatch",
            f"The upload has {'more' if len(data) > record.declared_bytes else len(data)} bytes; "
            f"{record.declared_bytes} were declared.",
        )
    rendition = render(data, record.profile, max_pixels=settings.max_pixels, max_frames=settings.max_frames)
    tenant, image_id = record.tenant, record.id
    now = now_iso()

    canonical = claim_content(services.repo, tenant, rendition.sha256, image_id, now)
    if canonical != image_id:
        services.objects.delete([record.upload_key])
        return _duplicate(record, rendition, canonical, services)

    policy = policy_for(record.profile)
    matches = (
        []
        if policy.mode == "off"
        else [
            (other, distance)
            for other, distance in services.index.find(tenant, rendition.phash, policy.threshold)
            if other != image_id
        ]
    )
    verdict = policy.decide(matches)
    near = verdict.similar
    if verdict.duplicate_of:
        nearest = verdict.duplicate_of
        # The sha claim must name the canonical image, never this duplicate.
        point_claim_at(services.repo, tenant, rendition.sha256, nearest, now)
        services.objects.delete([record.upload_key])
        return _duplicate(record, rendition, nearest, services)

    prefix = variant_prefix(tenant, image_id)
    variants = {}
    for name, variant in rendition.variants.items():
        key = prefix + variant.filename
        services.objects.write(key, variant.data, content_type=variant.mime, cache_control=IMMUTABLE)
        variants[name] = {
            "key": key,
            "width": variant.width,
            "height": variant.height,
            "bytes": len(variant.data),
            "format": variant.format,
        }
    # The bytes that were verified, kept where no presigned POST can replace them.
    original_key = f"{prefix}original.{ORIGINAL_EXTENSIONS.get(rendition.format, rendition.format)}"
    services.objects.write(original_key, data, content_type=rendition.mime, cache_control=IMMUTABLE)
    similar = [{"id": other, "distance": distance} for other, distance in near]
    stored = services.repo.update_image(
        record,
        [
            ImageRecord.result.set(_result_of(rendition)),
            ImageRecord.variants.set(variants),
            ImageRecord.original.set(
                {
                    "key": original_key,
                    "width": rendition.width,
                    "height": rendition.height,
                    "bytes": len(data),
                    "format": rendition.format,
                }
            ),
            ImageRecord.similar.set(similar),
            ImageRecord.updated_at.set(now_iso()),
        ],
        condition=ImageRecord.status == "processing",
    )
    if not stored:
        # Settled while we worked (the sweep failed it): leave nothing behind it.
        services.objects.delete_prefix(prefix)
        return Outcome("skipped", tenant, image_id)
    services.objects.delete([record.upload_key])
    services.index.add(tenant, image_id, rendition.phash)
    return Outcome("rendered", tenant, image_id, similar=similar)


def _duplicate(record: ImageRecord, rendition: Any, canonical: str, services: Services) -> Outcome:
    services.repo.update_image(
        record,
        [ImageRecord.result.set(_result_of(rendition)), ImageRecord.updated_at.set(now_iso())],
    )
    return Outcome(
        "duplicate",
        record.tenant,
        record.id,
        duplicate_of=canonical,
        error={"code": "image_already_exists", "title": "This image was uploaded before."},
    )


RESULT_FIELDS = (
    "format",
    "width",
    "height",
    "sha256",
    "phash",
    "dhash",
    "exif",
    "gps",
    "taken_at",
    "camera",
    "colors",
    "grayscale",
    "has_alpha",
    "blurhash",
    "animated",
    "frames",
)


def _result_of(rendition: Any) -> dict[str, Any]:
    return {name: getattr(rendition, name, None) for name in RESULT_FIELDS}
