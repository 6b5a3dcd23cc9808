"""One image: reading it, changing it, deleting it, its near-duplicates."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.shared.lazy_import import LazyLoader

from imgdrop.auth import Principal
from imgdrop.catalogue.presenting import present_image
from imgdrop.catalogue.tags import resolve_labels
from imgdrop.dedupe.exact import CLAIM, readable_matches
from imgdrop.errors import Forbidden, ImgdropError, NotFound, StorageError, ValidationFailed
from imgdrop.ids import now_iso
from imgdrop.lifecycle import placement
from imgdrop.models import ImagePatch
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.store.db import (
    SETTLED,
    ImageRecord,
    album_gsi_pk,
    image_sk,
)
from imgdrop.store.storage import image_prefixes
from imgdrop.validation import (
    DESCRIPTIVE_FIELDS,
    ItemSpec,
    validate_item,
)

# Only a delete notifies webhooks: the API's cold start need not load their delivery code.
webhooks = LazyLoader("imgdrop.webhooks", globals(), "imgdrop.webhooks")

# --------------------------------------------------------------------------- reading


def get_image(principal: Principal, image_id: str, services: Services) -> ImageRecord:
    """The caller's image, or 404: another tenant's image, and one in an album the caller may
    not read, answer exactly like a missing one."""
    principal.require("images:read")
    record = services.repo.get_image(principal.tenant, image_id)
    if record is None or not principal.can_read_album(record.album_id):
        raise NotFound("Image")
    return record


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
    spec, errors = validate_item(raw, "", max_bytes=0, model=ImagePatch)
    for _ in range(3):
        record = get_image(principal, image_id, services)
        _require_change_rights(principal, record)
        if errors:
            raise ValidationFailed(errors)
        assert isinstance(raw, dict)  # noqa: S101 - validate_item rejects anything else  # nosec B101
        actions, condition = _patch_actions(principal, record, raw, spec, services)
        # A change of privacy moves the files in the same write: never private with public files.
        privacy = (raw["privacy"] or "public") if "privacy" in raw else None
        move = placement.move_for(record, privacy != "private", services) if privacy else None
        if move is not None:
            if not move.complete:
                move.abandon(principal.tenant, image_id)
                continue
            actions.append(ImageRecord.variants.set(move.variants))
            condition &= ImageRecord.variants == record.variants
        if services.repo.update_image(record, actions, condition):
            if move is not None:
                move.commit()
            if privacy == "private":
                # Also when a retry finds the files moved already: the CDN may still hold them.
                services.invalidator.invalidate(
                    placement.public_paths(record), f"private:{record.updated_at}"
                )
            return record
        if move is not None:
            move.abandon(principal.tenant, image_id)
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
        # Moving: the upload right on the target too; out of every album is a move as well. The
        # right first: an album the token may not upload to answers 403 whether or not it exists.
        try:
            principal.require_album(spec.album_id, "upload")
        except Forbidden as exc:
            exc.pointer = "/album_id"
            raise
        if spec.album_id and services.repo.get_album(principal.tenant, spec.album_id) is None:
            raise ImgdropError("album_not_found", "Album not found.", 404, "/album_id")
        if spec.album_id:
            actions += [
                ImageRecord.album_id.set(spec.album_id),
                ImageRecord.gsi1pk.set(album_gsi_pk(principal.tenant, spec.album_id, record.id)),
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
            from imgdrop.catalogue.tags import resolve_tags

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
    """Remove the record, the uploaded original, the variants, their CDN copies and every claim the
    image holds. The record goes first: no processing run can start or store anything for it after
    that. A copy of it stays, written in the same transaction (Repository.delete_image): should
    the rest fail here (the CDN throttling its invalidations, the function stopped), the sweep
    finishes it, and the caller, whose image is gone, is not told to retry a DELETE that would
    answer 404."""
    record = get_image(principal, image_id, services)
    _require_change_rights(principal, record)
    if not services.repo.delete_image(record, now_iso()):
        raise NotFound("Image")
    try:
        finish_deletion(record, services)
    except Exception:  # noqa: BLE001 - the copy of the record says what is left; the sweep does it
        logger.exception("Deletion left to the sweep", extra={"image_id": record.id})
        metrics.add_metric(name="DeletionsLeftToSweep", unit="Count", value=1)


def finish_deletion(record: ImageRecord, services: Services) -> None:
    """Everything a deleted image held, removed, then the copy of its record. Each step may run again
    (the sweep finishes what a stopped DELETE left): deleting what is gone is a no-op, CloudFront
    answers a repeated invalidation with the first one, a claim is released only from its owner.
    The webhook event may then go twice (at least once, as every event)."""
    tenant = record.tenant
    services.objects.delete([record.upload_key])
    for prefix in image_prefixes(tenant, record.id):
        services.objects.delete_prefix(prefix)
    services.invalidator.invalidate(placement.public_paths(record), "deleted")
    result = record.result or {}
    if result.get("sha256"):
        services.repo.release_claim(tenant, CLAIM, result["sha256"], record.id)
    if record.slug:
        services.repo.release_claim(tenant, "SLUG", record.slug, record.id)
    if result.get("phash") and record.variants:
        services.index.remove(tenant, record.id, result["phash"])
    webhooks.notify(services, tenant, "image.deleted", present_image(record, services))
    services.repo.deletion_done(tenant, record.id)


def similar_images(
    principal: Principal, image_id: str, services: Services, limit: int = 20
) -> dict[str, Any]:
    """Ready near duplicates the caller may read, nearest first."""

    record = get_image(principal, image_id, services)
    phash = (record.result or {}).get("phash")
    if not phash:
        return {"items": []}
    threshold = services.near_duplicate_policy(record.profile).threshold
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
