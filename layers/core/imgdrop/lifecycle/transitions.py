"""The image's status. Every transition is one named, conditional write, and only this module
writes `status`:

    pending ──start_processing──▶ processing ──settle_ready─────▶ ready
       │                              │      ──settle_duplicate─▶ duplicate
       │                              └──────settle_failed──────▶ failed
       └──expire──▶ expired

A processing run is one S3 delivery (its `run_id`). The run that starts processing holds a
lease on the image until the function's timeout has surely passed: while it holds it, no other
delivery may start (a re-POST, a duplicate event, the sweep's redrive), and only that run may
store a rendition or be settled from its outcome. A retry of the same delivery takes its own
lease back; a lease whose run died is taken over once it has run out. So one set of bytes wins
and a late run can never overwrite or remove what the winner wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from imgdrop.ids import iso, now_iso
from imgdrop.store.db import IN_FLIGHT, ClaimRecord, ImageRecord, Repository, claim_key

SHA_CLAIM = "SHA"


def start_processing(
    repo: Repository, record: ImageRecord, run_id: str, now: datetime, lease: timedelta
) -> bool:
    """pending → processing for this run; False when another live run holds the image or it
    has settled."""
    held_by_this_run = ImageRecord.run_id == run_id
    lease_ran_out = ImageRecord.lease_until.does_not_exist() | (ImageRecord.lease_until < iso(now))
    return repo.update_image(
        record,
        [
            ImageRecord.status.set("processing"),
            ImageRecord.run_id.set(run_id),
            ImageRecord.lease_until.set(iso(now + lease)),
            ImageRecord.attempts.add(1),
            ImageRecord.updated_at.set(iso(now)),
        ],
        condition=(ImageRecord.status == "pending")
        | ((ImageRecord.status == "processing") & (held_by_this_run | lease_ran_out)),
    )


def _held_by(run_id: str) -> Any:
    return (ImageRecord.status == "processing") & (ImageRecord.run_id == run_id)


def store_rendition(
    repo: Repository,
    record: ImageRecord,
    run_id: str,
    *,
    result: dict[str, Any],
    variants: dict[str, Any],
    original: dict[str, Any],
    similar: list[dict[str, Any]],
) -> bool:
    """Name the files this run wrote; only while it still holds the image."""
    return repo.update_image(
        record,
        [
            ImageRecord.result.set(result),
            ImageRecord.variants.set(variants),
            ImageRecord.original.set(original),
            ImageRecord.similar.set(similar),
            ImageRecord.updated_at.set(now_iso()),
        ],
        condition=_held_by(run_id),
    )


def store_result(repo: Repository, record: ImageRecord, run_id: str, result: dict[str, Any]) -> bool:
    """What processing found about a duplicate's bytes (no files: they are the canonical's)."""
    return repo.update_image(
        record,
        [ImageRecord.result.set(result), ImageRecord.updated_at.set(now_iso())],
        condition=_held_by(run_id),
    )


def mark_redriven(repo: Repository, record: ImageRecord, now: datetime) -> bool:
    """Record the sweep's one re-announcement of an upload whose S3 event was lost."""
    return repo.update_image(
        record,
        [ImageRecord.redrives.add(1), ImageRecord.updated_at.set(iso(now))],
        condition=(ImageRecord.status == "pending") & ImageRecord.redrives.does_not_exist(),
    )


def expire(repo: Repository, record: ImageRecord, now: datetime, retention: timedelta) -> bool:
    """pending → expired: the file never arrived. DynamoDB TTL removes the record later."""
    return repo.update_image(
        record,
        [
            ImageRecord.status.set("expired"),
            ImageRecord.errors.set([{"code": "upload_expired", "title": "The file never arrived."}]),
            ImageRecord.updated_at.set(iso(now)),
            ImageRecord.ttl.set(now + retention),
            ImageRecord.gsi2pk.remove(),
            ImageRecord.gsi2sk.remove(),
        ],
        condition=ImageRecord.status == "pending",
    )


def _settling(record: ImageRecord, run_id: str | None) -> Any:
    """From an unsettled status, by the run that holds the image (or before any run started),
    and with the tags that were resolved: a PATCH of the tags meanwhile makes it try again."""
    fence = ImageRecord.run_id.does_not_exist() if run_id is None else ImageRecord.run_id == run_id
    return ImageRecord.status.is_in(*IN_FLIGHT) & fence & (ImageRecord.tag_ids == list(record.tag_ids or []))


def _settle_actions(status: str, tags: list[Any], errors: list[dict[str, Any]]) -> list[Any]:
    now = now_iso()
    return [
        ImageRecord.status.set(status),
        ImageRecord.tags.set(tags),
        ImageRecord.errors.set(errors),
        ImageRecord.processed_at.set(now),
        ImageRecord.updated_at.set(now),
        ImageRecord.lease_until.remove(),
        ImageRecord.gsi2pk.remove(),
        ImageRecord.gsi2sk.remove(),
    ]


def settle_failed(
    repo: Repository, record: ImageRecord, run_id: str | None, tags: list[Any], errors: list[dict[str, Any]]
) -> bool:
    return repo.update_image(
        record, _settle_actions("failed", tags, errors), condition=_settling(record, run_id)
    )


def settle_duplicate(
    repo: Repository,
    record: ImageRecord,
    run_id: str | None,
    tags: list[Any],
    errors: list[dict[str, Any]],
    duplicate_of: str,
) -> bool:
    # Its files go: the canonical image's are the ones to serve.
    actions = [
        *_settle_actions("duplicate", tags, errors),
        ImageRecord.duplicate_of.set(duplicate_of),
        ImageRecord.variants.set({}),
        ImageRecord.original.remove(),
        ImageRecord.similar.set([]),
    ]
    return repo.update_image(record, actions, condition=_settling(record, run_id))


def settle_ready(repo: Repository, record: ImageRecord, run_id: str | None, tags: list[Any]) -> bool:
    """Ready without claiming the bytes (another canonical image the uploader may not read
    holds them)."""
    return repo.update_image(record, _settle_actions("ready", tags, []), condition=_settling(record, run_id))


def settle_ready_claiming(
    repo: Repository,
    record: ImageRecord,
    run_id: str | None,
    tags: list[Any],
    sha256: str,
    previous_owner: str | None,
) -> str | None:
    """Ready, and the canonical image of its bytes, in one transaction: a content claim only
    ever names an image that became ready. `previous_owner` is a stale claim's image (deleted
    or never ready) to take the claim from. Answers None on success, else "image" (this run no
    longer holds the image) or "claim" (another image claimed the bytes first)."""
    pk, sk = claim_key(record.tenant, SHA_CLAIM, sha256)
    claim = ClaimRecord(pk, sk, image_id=record.id, created_at=now_iso())
    claim_condition = (
        ClaimRecord.pk.does_not_exist() | (ClaimRecord.image_id == record.id)
        if previous_owner is None
        else ClaimRecord.image_id == previous_owner
    )
    return repo.update_image_and_claim(
        record, _settle_actions("ready", tags, []), _settling(record, run_id), claim, claim_condition
    )


def place_variants(repo: Repository, record: ImageRecord, variants: dict[str, Any]) -> bool:
    """Name the variants' new keys after they moved between the public and the private folder
    (a change of privacy): only while the image is ready from the same run, its variants and
    its fields (privacy among them) are what the move was computed from."""
    return repo.update_image(
        record,
        [ImageRecord.variants.set(variants), ImageRecord.updated_at.set(now_iso())],
        condition=(ImageRecord.status == "ready")
        & (ImageRecord.run_id == record.run_id)
        & (ImageRecord.variants == record.variants)
        & (ImageRecord.fields == record.fields),
    )


# Writes the image's part of a rendition swap: (record, actions, condition) -> whether it held.
SwapWrite = Callable[[ImageRecord, list[Any], Any], bool]


def swap_rendition(
    repo: Repository,
    record: ImageRecord,
    expected_run_id: str | None,
    new_run_id: str,
    variants: dict[str, Any],
    *,
    write: SwapWrite | None = None,
) -> bool:
    """ready → ready on a new set of variants (reprocessing): the record switches from the files
    of run `expected_run_id` to those of `new_run_id`, written before, in one conditional write:
    only while the image is ready, still on that run, and its variants are the ones read (no
    privacy move, no other swap meanwhile). So a reader always finds one whole set, the old or
    the new. `write` lets the caller make it part of a transaction (the job's bookkeeping)."""
    fence = ImageRecord.run_id == expected_run_id if expected_run_id else ImageRecord.run_id.does_not_exist()
    condition = (ImageRecord.status == "ready") & fence & (ImageRecord.variants == (record.variants or {}))
    actions = [
        ImageRecord.run_id.set(new_run_id),
        ImageRecord.variants.set(variants),
        ImageRecord.updated_at.set(now_iso()),
    ]
    if write is not None:
        return write(record, actions, condition)
    return repo.update_image(record, actions, condition)
