"""Creating uploads: per item a presigned POST (or an S3 multipart upload for a large file), an
error, or the existing image."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from imgdrop.auth import Principal
from imgdrop.catalogue.presenting import image_link
from imgdrop.catalogue.tags import resolve_labels
from imgdrop.dedupe.exact import existing_image, readable_albums
from imgdrop.errors import Conflict, Forbidden, ImgdropError, StorageError, ValidationFailed
from imgdrop.ids import iso, new_id, utc_now
from imgdrop.profiles import profile_for
from imgdrop.services import Services
from imgdrop.store.db import (
    ImageRecord,
    image_keys,
    pending_gsi_pk,
    pending_gsi_sk,
)
from imgdrop.store.storage import upload_key
from imgdrop.uploads import multipart
from imgdrop.validation import (
    ItemSpec,
    slugify,
    validate_item,
)

MAX_BATCH = 100


# --------------------------------------------------------------------------- creating


def create_uploads(principal: Principal, items: list[Any], services: Services) -> list[dict[str, Any]]:
    """One outcome per item, in order: a presigned POST, an existing image, or an error.
    Only a batch of the wrong size fails as a whole."""
    principal.require("images:write")
    check_batch_size(len(items), "/items")
    outcomes = []
    for index, raw in enumerate(items):
        pointer = f"/items/{index}"
        try:
            outcomes.append(_create_upload(principal, raw, pointer, services))
        except StorageError:
            raise  # AWS is unavailable: the request answers 503, as every route does
        except ImgdropError as exc:
            outcomes.append(item_error(exc))
    return outcomes


def check_batch_size(count: int, pointer: str) -> None:
    if not 1 <= count <= MAX_BATCH:
        raise ValidationFailed(
            [ImgdropError("items_count", f"Send between 1 and {MAX_BATCH} items.", 400, pointer)]
        )


def item_error(exc: ImgdropError) -> dict[str, Any]:
    errors = exc.errors if isinstance(exc, ValidationFailed) else [exc]
    return {"error": errors[0].as_dict(), "errors": [e.as_dict() for e in errors]}


def _create_upload(principal: Principal, raw: Any, pointer: str, services: Services) -> dict[str, Any]:
    spec = checked_spec(principal, raw, pointer, services, max_bytes=services.settings.max_upload_bytes)
    assert spec.content_type is not None and spec.size is not None  # noqa: S101 - validated above  # nosec B101
    if spec.sha256:
        existing = existing_image(services.repo, principal.tenant, spec.sha256, principal)
        if existing:
            error = Conflict("image_already_exists", "This image was uploaded before.", f"{pointer}/sha256")
            return {"id": existing, "status": "duplicate", "error": error.as_dict()}
    settings = services.settings
    if multipart.wanted(spec.size, raw, settings):
        # It may take up to the multipart window to arrive (created within the POST form's).
        record = new_record(
            principal, spec, pointer, services, window_seconds=settings.multipart_upload_window_seconds
        )
        upload = multipart.upload_answer(record, services)
    else:
        record = new_record(principal, spec, pointer, services)
        upload = services.objects.presigned_post(
            record.upload_key,
            content_type=spec.content_type,
            max_bytes=spec.size,
            expires_in=settings.upload_expiry_seconds,
        ).as_dict()
    return {
        "id": record.id,
        "status": record.status,
        "upload": upload,
        "links": {"self": image_link(services, record.id)},
    }


def checked_spec(
    principal: Principal, raw: Any, pointer: str, services: Services, *, max_bytes: int
) -> ItemSpec:
    spec, errors = validate_item(raw, pointer, max_bytes=max_bytes)
    if errors:
        raise ValidationFailed(errors)
    # The right first: an album the token may not upload to answers 403 whether or not it exists.
    try:
        principal.require_album(spec.album_id, "upload")
    except Forbidden as exc:
        exc.pointer = f"{pointer}/album_id"
        raise
    if spec.album_id and services.repo.get_album(principal.tenant, spec.album_id) is None:
        raise ImgdropError("album_not_found", "Album not found.", 404, f"{pointer}/album_id")
    if spec.parent_id:
        # A parent the token may not read answers exactly like a missing one.
        parent = services.repo.get_image(principal.tenant, spec.parent_id)
        if parent is None or not principal.can_read_image(parent.album_id):
            raise ImgdropError("parent_not_found", "Parent image not found.", 404, f"{pointer}/parent_id")
    return spec


def new_record(
    principal: Principal,
    spec: ItemSpec,
    pointer: str,
    services: Services,
    *,
    window_seconds: int | None = None,
) -> ImageRecord:
    """A pending image. Its upload must start within UPLOAD_EXPIRY_SECONDS, when the sweep first
    looks at it (the pending index's sort key), and arrive by `upload_expires_at`: the same moment
    for a POST form, `window_seconds` later for a multipart upload (the sweep leaves one in
    progress alone until then)."""
    settings = services.settings
    image_id = new_id()
    now = utc_now()
    created = iso(now)
    look_at = iso(now + timedelta(seconds=settings.upload_expiry_seconds))
    expires_at = iso(now + timedelta(seconds=window_seconds)) if window_seconds else look_at
    tag_ids = spec.tag_ids + resolve_labels(principal, spec.tag_labels, services)
    slug = _claim_slug(principal.tenant, image_id, spec, pointer, services, created)
    record = ImageRecord(
        # its own partition, and its entries in the tenant's listing and its album's (sharded)
        **image_keys(principal.tenant, image_id, spec.album_id),
        tenant=principal.tenant,
        id=image_id,
        owner=principal.sub,
        uploader_albums=readable_albums(principal),
        status="pending",
        filename=spec.filename,
        content_type=spec.content_type or "application/octet-stream",
        declared_bytes=spec.size or 0,
        profile=profile_for(spec.profile, spec.purpose),
        purpose=spec.purpose,
        album_id=spec.album_id,
        parent_id=spec.parent_id,
        slug=slug,
        tag_ids=tag_ids,
        fields=spec.descriptive,
        upload_key=upload_key(principal.tenant, image_id),
        upload_expires_at=expires_at,
        created_at=created,
        updated_at=created,
        gsi2pk=pending_gsi_pk(image_id),
        gsi2sk=pending_gsi_sk(look_at, principal.tenant, image_id),
    )
    services.repo.put_new_image(record)
    return record


def _claim_slug(
    tenant: str, image_id: str, spec: ItemSpec, pointer: str, services: Services, now: str
) -> str | None:
    """A requested slug must be free; a generated one (from the title) takes the first free suffix."""
    if spec.slug:
        if services.repo.claim(tenant, "SLUG", spec.slug, image_id, now) != image_id:
            raise ImgdropError(
                "slug_taken", "This slug is already used by another image.", 400, f"{pointer}/slug"
            )
        return spec.slug
    base = slugify(str(spec.descriptive.get("title") or ""))
    if not base:
        return None
    for attempt in range(1, 10):
        suffix = "" if attempt == 1 else f"-{attempt}"
        candidate = f"{base[: 30 - len(suffix)].rstrip('-')}{suffix}"
        if services.repo.claim(tenant, "SLUG", candidate, image_id, now) == image_id:
            return candidate
    candidate = f"{base[:23].rstrip('-')}-{image_id[-6:]}"
    services.repo.claim(tenant, "SLUG", candidate, image_id, now)
    return candidate
