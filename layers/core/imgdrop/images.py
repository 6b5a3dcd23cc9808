"""The image catalogue: creating uploads, reading, listing, changing and deleting images."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from imgdrop.auth import Principal
from imgdrop.content import CLAIM, existing_image, readable_matches
from imgdrop.db import (
    SETTLED,
    ImageRecord,
    album_gsi_pk,
    image_sk,
    pending_gsi_pk,
    pending_gsi_sk,
    tenant_pk,
)
from imgdrop.errors import Conflict, Forbidden, ImgdropError, NotFound, StorageError, ValidationFailed
from imgdrop.ids import iso, new_id, now_iso, utc_now
from imgdrop.profiles import profile_for
from imgdrop.services import Services
from imgdrop.storage import upload_key, variant_prefix
from imgdrop.tags import resolve_labels
from imgdrop.validation import (
    DESCRIPTIVE_FIELDS,
    PATCHABLE_FIELDS,
    ItemSpec,
    slugify,
    validate_item,
)

MAX_BATCH = 100


# --------------------------------------------------------------------------- presenting


def present_image(
    record: ImageRecord, services: Services, reader: Principal | None = None
) -> dict[str, Any]:
    """The contract's image object; URLs are presigned for the caller at read time. Given the
    reader, `similar` and `duplicate_of` name only images the reader may read."""
    settings = services.settings
    expires = settings.download_expiry_seconds
    result = record.result or {}
    fields = record.fields or {}
    variants = {
        name: {
            "url": services.objects.presigned_get(spec["key"], expires_in=expires),
            "width": spec["width"],
            "height": spec["height"],
            "bytes": spec["bytes"],
            "format": spec["format"],
        }
        for name, spec in (record.variants or {}).items()
    }
    original = None
    if record.original:
        original = {k: v for k, v in record.original.items() if k != "key"}
        original["url"] = services.objects.presigned_get(record.original["key"], expires_in=expires)
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
    body.update(
        {
            "tags": record.tags if record.status in SETTLED else [{"id": t} for t in record.tag_ids],
            "variants": variants,
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
    return body


def _hidden_from(record: ImageRecord, services: Services, reader: Principal | None) -> set[str]:
    """The images this one names (duplicate_of, similar) that the reader may not read: one
    BatchGet, and only for a token limited to some albums."""
    named = [i for i in [record.duplicate_of, *(s["id"] for s in record.similar or [])] if i]
    if not named or reader is None or reader.albums is None or "admin" in reader.scopes:
        return set()
    others = services.repo.get_images(record.tenant, named)
    return {i for i in named if i not in others or not reader.can_read_album(others[i].album_id)}


def image_link(services: Services, image_id: str) -> str:
    settings = services.settings
    return f"{settings.api_base_url.rstrip('/')}{settings.api_base_path}/images/{image_id}"


# --------------------------------------------------------------------------- creating


def create_uploads(principal: Principal, items: list[Any], services: Services) -> list[dict[str, Any]]:
    """One outcome per item, in order: a presigned POST, an existing image, or an error.
    Only a batch of the wrong size fails as a whole."""
    principal.require("images:write")
    _check_batch_size(len(items), "/items")
    outcomes = []
    for index, raw in enumerate(items):
        pointer = f"/items/{index}"
        try:
            outcomes.append(_create_upload(principal, raw, pointer, services))
        except ImgdropError as exc:
            outcomes.append(_item_error(exc))
    return outcomes


def _check_batch_size(count: int, pointer: str) -> None:
    if not 1 <= count <= MAX_BATCH:
        raise ValidationFailed(
            [ImgdropError("items_count", f"Send between 1 and {MAX_BATCH} items.", 400, pointer)]
        )


def _item_error(exc: ImgdropError) -> dict[str, Any]:
    errors = exc.errors if isinstance(exc, ValidationFailed) else [exc]
    return {"error": errors[0].as_dict(), "errors": [e.as_dict() for e in errors]}


def _create_upload(principal: Principal, raw: Any, pointer: str, services: Services) -> dict[str, Any]:
    spec = _checked_spec(principal, raw, pointer, services, max_bytes=services.settings.max_upload_bytes)
    assert spec.content_type is not None and spec.size is not None  # noqa: S101 - validated above  # nosec B101
    if spec.sha256:
        existing = existing_image(services.repo, principal.tenant, spec.sha256, principal)
        if existing:
            error = Conflict("image_already_exists", "This image was uploaded before.", f"{pointer}/sha256")
            return {"id": existing, "status": "duplicate", "error": error.as_dict()}
    record = _new_record(principal, spec, pointer, services)
    post = services.objects.presigned_post(
        record.upload_key,
        content_type=spec.content_type,
        max_bytes=spec.size,
        expires_in=services.settings.upload_expiry_seconds,
    )
    return {
        "id": record.id,
        "status": record.status,
        "upload": post.as_dict(),
        "links": {"self": image_link(services, record.id)},
    }


def _checked_spec(
    principal: Principal, raw: Any, pointer: str, services: Services, *, max_bytes: int
) -> ItemSpec:
    spec, errors = validate_item(raw, pointer, max_bytes=max_bytes)
    if errors:
        raise ValidationFailed(errors)
    if spec.album_id and services.repo.get_album(principal.tenant, spec.album_id) is None:
        raise ImgdropError("album_not_found", "Album not found.", 404, f"{pointer}/album_id")
    try:
        principal.require_album(spec.album_id, "upload")
    except Forbidden as exc:
        exc.pointer = f"{pointer}/album_id"
        raise
    if spec.parent_id and services.repo.get_image(principal.tenant, spec.parent_id) is None:
        raise ImgdropError("parent_not_found", "Parent image not found.", 404, f"{pointer}/parent_id")
    return spec


def _new_record(principal: Principal, spec: ItemSpec, pointer: str, services: Services) -> ImageRecord:
    settings = services.settings
    image_id = new_id()
    now = utc_now()
    created = iso(now)
    expires_at = iso(now + timedelta(seconds=settings.upload_expiry_seconds))
    tag_ids = spec.tag_ids + resolve_labels(principal, spec.tag_labels, services)
    slug = _claim_slug(principal.tenant, image_id, spec, pointer, services, created)
    record = ImageRecord(
        tenant_pk(principal.tenant),
        image_sk(image_id),
        tenant=principal.tenant,
        id=image_id,
        owner=principal.sub,
        uploader_albums=None
        if principal.albums is None or "admin" in principal.scopes
        else {album: sorted(rights) for album, rights in principal.albums.items()},
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
        gsi1pk=album_gsi_pk(principal.tenant, spec.album_id) if spec.album_id else None,
        gsi1sk=image_sk(image_id) if spec.album_id else None,
        gsi2pk=pending_gsi_pk(image_id),
        gsi2sk=pending_gsi_sk(expires_at, principal.tenant, image_id),
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


def create_direct_upload(
    principal: Principal,
    raw: dict[str, Any],
    data: bytes,
    services: Services,
    pointer: str = "",
) -> dict[str, Any]:
    """Store bytes sent through the API at the upload key; the same pipeline then runs."""
    principal.require("images:write")
    item = {**raw, "size": len(data)}
    limit = services.settings.max_direct_upload_bytes
    if not data:
        raise ValidationFailed([ImgdropError("file_blank", "File is required.", 400, f"{pointer}/file")])
    spec = _checked_spec(principal, item, pointer, services, max_bytes=limit)
    # The bytes are here already: an exact repeat is answered now, and nothing is stored.
    existing = existing_image(services.repo, principal.tenant, hashlib.sha256(data).hexdigest(), principal)
    if existing:
        error = Conflict("image_already_exists", "This image was uploaded before.", f"{pointer}/file")
        return {
            "id": existing,
            "status": "duplicate",
            "error": error.as_dict(),
            "links": {"self": image_link(services, existing)},
        }
    record = _new_record(principal, spec, pointer, services)
    services.objects.write(record.upload_key, data, content_type=record.content_type)
    return present_image(record, services, principal)


@dataclass
class DirectFile:
    """One file of a multipart direct upload: its item fields, its bytes, where it sat in the form."""

    fields: dict[str, Any]
    data: bytes
    pointer: str


def create_direct_uploads(
    principal: Principal, files: list[DirectFile], services: Services
) -> list[dict[str, Any]]:
    """Several files at once (the seeds' multipart batch): one outcome per file, in order."""
    principal.require("images:write")
    _check_batch_size(len(files), "")
    outcomes = []
    for file in files:
        try:
            outcomes.append(create_direct_upload(principal, file.fields, file.data, services, file.pointer))
        except ImgdropError as exc:
            outcomes.append(_item_error(exc))
    return outcomes


def decode_data_uri(value: Any, pointer: str) -> tuple[str, bytes]:
    """`data:image/png;base64,...` → (content type, bytes)."""
    if value in (None, ""):
        raise ValidationFailed([ImgdropError("file_blank", "File is required.", 400, pointer)])
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise ValidationFailed(
            [
                ImgdropError(
                    "file_invalid",
                    "File must be a base64 data URI (data:image/...;base64,...).",
                    400,
                    pointer,
                )
            ]
        )
    header, _, payload = value.partition(";base64,")
    content_type = header[len("data:") :].split(";")[0].strip().lower()
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(
            [ImgdropError("file_invalid", "File is not valid base64.", 400, pointer)]
        ) from exc
    return content_type, data


# --------------------------------------------------------------------------- reading


def get_image(principal: Principal, image_id: str, services: Services) -> ImageRecord:
    """The caller's image, or 404: another tenant's image, and one in an album the caller may
    not read, answer exactly like a missing one."""
    principal.require("images:read")
    record = services.repo.get_image(principal.tenant, image_id)
    if record is None or not principal.can_read_album(record.album_id):
        raise NotFound("Image")
    return record


def list_images(
    principal: Principal,
    services: Services,
    *,
    album_id: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of `limit` images (fewer only on the last page), newest first."""
    principal.require("images:read")
    if album_id:
        principal.require_album(album_id, "read")
    start = _decode_cursor(cursor, principal.tenant, album_id)
    records, last_key = services.repo.list_images(
        principal.tenant,
        album_id=album_id,
        limit=limit,
        cursor=start,
        status=status,
        tag=tag,
        readable_albums=None if album_id else _readable_albums(principal),
    )
    return {
        "items": [present_image(r, services, principal) for r in records],
        "next_cursor": _encode_cursor(last_key),
    }


def _readable_albums(principal: Principal) -> frozenset[str] | None:
    if principal.albums is None or "admin" in principal.scopes:
        return None
    return frozenset(album for album, rights in principal.albums.items() if "read" in rights)


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None, tenant: str, album_id: str | None) -> dict[str, Any] | None:
    """Only a key this API issued for this tenant and listing: anything else is cursor_invalid."""
    if not cursor:
        return None
    invalid = ValidationFailed(
        [ImgdropError("cursor_invalid", "The cursor is not one this API returned.", 400, "/cursor")]
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise invalid from exc
    expected = {"pk": tenant_pk(tenant), "sk": None}
    if album_id:
        expected.update({"gsi1pk": album_gsi_pk(tenant, album_id), "gsi1sk": None})
    if not isinstance(key, dict) or set(key) != set(expected):
        raise invalid
    for name, value in key.items():
        text = value.get("S") if isinstance(value, dict) and set(value) == {"S"} else None
        if not isinstance(text, str) or (expected[name] is not None and text != expected[name]):
            raise invalid
        if name in ("sk", "gsi1sk") and not text.startswith("IMG#"):
            raise invalid
    return key


# --------------------------------------------------------------------------- changing


def _require_change_rights(principal: Principal, record: ImageRecord) -> None:
    """Changing or deleting an image takes `images:write` and, under an albums claim, the
    `upload` right on the image's album."""
    principal.require("images:write")
    principal.require_album(record.album_id, "upload")


def patch_image(principal: Principal, image_id: str, raw: Any, services: Services) -> ImageRecord:
    """Change only the fields named in `raw`, atomically: never a write-back of a whole record
    read earlier, so nothing processing or finalize wrote meanwhile is undone, and a deleted
    image is never recreated."""
    principal.require("images:write")
    spec, errors = validate_item(raw, "", max_bytes=0, require_upload_fields=False, allowed=PATCHABLE_FIELDS)
    for _ in range(3):
        record = get_image(principal, image_id, services)
        _require_change_rights(principal, record)
        if errors:
            raise ValidationFailed(errors)
        assert isinstance(raw, dict)  # noqa: S101 - validate_item rejects anything else  # nosec B101
        actions, condition = _patch_actions(principal, record, raw, spec, services)
        if services.repo.update_image(record, actions, condition):
            return record
    # The image kept changing under us (or was deleted): answer what is there now.
    if services.repo.get_image(principal.tenant, image_id) is None:
        raise NotFound("Image")
    raise StorageError("The image kept changing; try again.")


def _patch_actions(
    principal: Principal, record: ImageRecord, raw: dict[str, Any], spec: ItemSpec, services: Services
) -> tuple[list[Any], Any]:
    """The update actions for the named fields, and the condition that the values they were
    computed from still hold."""
    now = now_iso()
    actions: list[Any] = [ImageRecord.updated_at.set(now)]
    condition: Any = (
        ImageRecord.album_id == record.album_id if record.album_id else ImageRecord.album_id.does_not_exist()
    )
    if "album_id" in raw and spec.album_id != record.album_id:
        # Moving: the upload right on the target too; out of every album is a move as well.
        if spec.album_id and services.repo.get_album(principal.tenant, spec.album_id) is None:
            raise ImgdropError("album_not_found", "Album not found.", 404, "/album_id")
        try:
            principal.require_album(spec.album_id, "upload")
        except Forbidden as exc:
            exc.pointer = "/album_id"
            raise
        if spec.album_id:
            actions += [
                ImageRecord.album_id.set(spec.album_id),
                ImageRecord.gsi1pk.set(album_gsi_pk(principal.tenant, spec.album_id)),
                ImageRecord.gsi1sk.set(image_sk(record.id)),
            ]
        else:
            gone = (ImageRecord.album_id, ImageRecord.gsi1pk, ImageRecord.gsi1sk)
            actions += [attribute.remove() for attribute in gone]
    if "slug" in raw and spec.slug != record.slug:
        if (
            spec.slug
            and services.repo.claim(principal.tenant, "SLUG", spec.slug, record.id, now) != record.id
        ):
            raise ImgdropError("slug_taken", "This slug is already used by another image.", 400, "/slug")
        if record.slug:
            services.repo.release_claim(principal.tenant, "SLUG", record.slug, record.id)
        actions.append(ImageRecord.slug.set(spec.slug) if spec.slug else ImageRecord.slug.remove())
    if "tags" in raw:
        tag_ids = spec.tag_ids + resolve_labels(principal, spec.tag_labels, services)
        actions.append(ImageRecord.tag_ids.set(tag_ids))
        # Tags resolve at settling: resolve now if settled; the status must not change meanwhile.
        condition &= ImageRecord.status == record.status
        if record.status in SETTLED:
            from imgdrop.tags import resolve_tags

            actions.append(ImageRecord.tags.set(resolve_tags(principal.tenant, tag_ids, services)))
    named = [name for name in DESCRIPTIVE_FIELDS if name in raw]
    if named:
        # The descriptive fields share one attribute: change it only from the value read.
        fields = dict(record.fields or {})
        for name in named:
            if raw[name] is None:
                fields.pop(name, None)
            elif name in spec.descriptive:
                fields[name] = spec.descriptive[name]
        if "usage_license_code" in raw:
            fields["usage_license_name"] = spec.descriptive.get("usage_license_name")
        actions.append(ImageRecord.fields.set(fields))
        condition &= ImageRecord.fields == (record.fields or {})
    return actions, condition


def delete_image(principal: Principal, image_id: str, services: Services) -> None:
    """Remove the record, the uploaded original, the variants and every claim the image holds.
    The record goes first: no processing run can start or store anything for it after that."""
    record = get_image(principal, image_id, services)
    _require_change_rights(principal, record)
    if not services.repo.delete_image(record):
        raise NotFound("Image")
    services.objects.delete([record.upload_key])
    services.objects.delete_prefix(variant_prefix(principal.tenant, record.id))
    result = record.result or {}
    if result.get("sha256"):
        services.repo.release_claim(principal.tenant, CLAIM, result["sha256"], record.id)
    if record.slug:
        services.repo.release_claim(principal.tenant, "SLUG", record.slug, record.id)
    if result.get("phash") and record.variants:
        services.index.remove(principal.tenant, record.id, result["phash"])


def similar_images(
    principal: Principal, image_id: str, services: Services, limit: int = 20
) -> dict[str, Any]:
    """Ready near duplicates the caller may read, nearest first."""
    from imgdrop.dedupe import policy_for

    record = get_image(principal, image_id, services)
    phash = (record.result or {}).get("phash")
    if not phash:
        return {"items": []}
    threshold = policy_for(record.profile).threshold
    matches = [
        (other, distance)
        for other, distance in services.index.find(principal.tenant, phash, threshold)
        if other != record.id
    ]
    items = []
    for other, distance in readable_matches(services.repo, principal.tenant, matches, principal)[:limit]:
        image = present_image(other, services, principal)
        items.append({"id": other.id, "distance": distance, "image": image})
    return {"items": items}
