"""The finalize step: settle each image's status from the process step's outcome.

Reached through the process function's Lambda destinations: OnSuccess carries an outcome,
OnFailure (retries exhausted) carries only the original S3 event. Settling is a conditional
write from an unsettled status by the run that holds the image (imgdrop.lifecycle.transitions), so a
repeated or late delivery changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from imgdrop import webhooks
from imgdrop.catalogue.presenting import present_image
from imgdrop.catalogue.tags import resolve_tags
from imgdrop.dedupe.exact import ALREADY_EXISTS, canonical_image, uploader_of
from imgdrop.errors import StorageError
from imgdrop.lifecycle import placement, transitions
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.store.db import SETTLED, ImageRecord
from imgdrop.store.storage import image_prefixes, is_reprocess_file, parse_upload_key, run_prefix

DETAIL_TYPES = {"ready": "Image Ready", "failed": "Image Failed", "duplicate": "Image Duplicate"}


class EventPublisher:
    def __init__(self, bus_name: str):
        self.bus_name = bus_name

    @cached_property
    def _client(self) -> Any:
        return boto3.client("events")

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        try:
            self._client.put_events(
                Entries=[
                    {
                        "Source": "imgdrop",
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail, default=str),
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (BotoCoreError, ClientError):
            # The image is settled either way; a lost notification must not undo that.
            logger.exception("Could not publish the image event", extra={"detail_type": detail_type})


def settle_outcome(outcome: dict[str, Any], services: Services, events: EventPublisher) -> str | None:
    """Apply one process outcome; returns the status the image settled in (None if skipped).
    Only the run that holds the image can settle it: an outcome of a run that lost it is void."""
    kind = outcome.get("outcome")
    tenant, image_id, run_id = outcome.get("tenant"), outcome.get("image_id"), outcome.get("run_id")
    if kind not in {"rendered", "duplicate", "rejected"} or not tenant or not image_id or not run_id:
        return None
    record = services.repo.get_image(tenant, image_id)
    if record is None or record.status in SETTLED or record.run_id != run_id:
        return None
    if kind == "rendered":
        return _settle_rendered(record, run_id, services, events)
    if kind == "duplicate":
        return _settle_duplicate(record, run_id, outcome["duplicate_of"], outcome["error"], services, events)
    return _settle_failed(record, run_id, [outcome["error"]], services, events)


def settle_failure(
    key: str, error: dict[str, Any], run_id: str | None, services: Services, events: EventPublisher
) -> str | None:
    """Every retry of a run failed (or the sweep found it stuck). An image whose rendition was
    stored before the crash is ready; anything else fails with processing_error, so nothing
    waits in `processing` forever. A failure of a run that no longer holds the image is void."""
    parsed = parse_upload_key(key)
    if parsed is None:
        return None
    tenant, image_id = parsed
    record = services.repo.get_image(tenant, image_id)
    if record is None or record.status in SETTLED or record.run_id not in (None, run_id):
        return None
    if record.variants and (record.result or {}).get("sha256"):
        return _settle_rendered(record, record.run_id, services, events)
    # A crash between two variant writes leaves some behind that no record names: remove this
    # run's before failing the image (and before settling, so a crash here is retried, not forgotten).
    for public in (False, True):
        services.objects.delete_prefix(run_prefix(tenant, image_id, record.run_id, public=public))
    message = str(error.get("errorMessage") or error.get("errorType") or "processing failed")[:300]
    errors = [{"code": "processing_error", "title": f"Processing failed after retries: {message}"}]
    return _settle_failed(record, record.run_id, errors, services, events)


# A settle that lost to a PATCH of the tags (or to the claim's owner changing) reads and tries again.
SETTLE_ATTEMPTS = 3
# One stored version of the lifecycle's settle: (record, tags) -> whether it was written.
Settle = Callable[[ImageRecord, list[Any]], bool]


def _retrying(
    record: ImageRecord, run_id: str | None, services: Services, settle: Settle
) -> ImageRecord | None:
    """Run `settle` with the record's tags resolved; when its condition fails, read the record
    again and retry while this run may still settle it. Answers the settled record, or None."""
    for _ in range(SETTLE_ATTEMPTS):
        if settle(record, resolve_tags(record.tenant, record.tag_ids, services)):
            return record
        fresh = services.repo.get_image(record.tenant, record.id)
        if fresh is None or fresh.status in SETTLED or fresh.run_id != run_id:
            return None
        record = fresh
    raise StorageError("The image kept changing while it was settled; try again.")


def _settle_rendered(
    record: ImageRecord, run_id: str | None, services: Services, events: EventPublisher
) -> str | None:
    """Ready and canonical for its bytes, unless a ready image the uploader may read claimed
    them first: then this upload is its duplicate, and its own files go."""
    sha256 = (record.result or {})["sha256"]
    uploader = uploader_of(record)
    outcome: dict[str, Any] = {}

    def settle(current: ImageRecord, tags: list[Any]) -> bool:
        owner, canonical = canonical_image(services.repo, current.tenant, sha256)
        if canonical is not None and canonical.id != current.id:
            if uploader.can_read_album(canonical.album_id):
                outcome["duplicate_of"] = canonical.id
                return True
            # Its bytes belong to an image the uploader may not know of: this one stands alone.
            return transitions.settle_ready(services.repo, current, run_id, tags)
        stale_owner = None if owner in (None, current.id) else owner
        refused = transitions.settle_ready_claiming(services.repo, current, run_id, tags, sha256, stale_owner)
        return refused is None

    settled = _retrying(record, run_id, services, settle)
    if settled is None:
        return None
    if "duplicate_of" in outcome:
        return _settle_duplicate(settled, run_id, outcome["duplicate_of"], ALREADY_EXISTS, services, events)
    _remove_other_runs(settled, services)
    # A PATCH of the privacy while it processed: its files move where the new privacy serves
    # them (read again: a transaction does not refresh the record it wrote).
    settled = placement.place(services.repo.get_image(settled.tenant, settled.id) or settled, services)
    return _settled(settled, "ready", services, events)


def _settle_duplicate(
    record: ImageRecord,
    run_id: str | None,
    duplicate_of: str,
    error: dict[str, Any],
    services: Services,
    events: EventPublisher,
) -> str | None:
    indexed = bool(record.variants)  # rendered first: its hash went into the index

    def settle(current: ImageRecord, tags: list[Any]) -> bool:
        return transitions.settle_duplicate(services.repo, current, run_id, tags, [error], duplicate_of)

    settled = _retrying(record, run_id, services, settle)
    if settled is None:
        return None
    # The canonical image holds these bytes: this upload keeps no files of its own.
    services.objects.delete([settled.upload_key])
    _remove_all_files(settled, services)
    phash = (settled.result or {}).get("phash")
    if phash and indexed:
        services.index.remove(settled.tenant, settled.id, phash)
    return _settled(settled, "duplicate", services, events)


def _settle_failed(
    record: ImageRecord,
    run_id: str | None,
    errors: list[dict[str, Any]],
    services: Services,
    events: EventPublisher,
) -> str | None:
    def settle(current: ImageRecord, tags: list[Any]) -> bool:
        return transitions.settle_failed(services.repo, current, run_id, tags, errors)

    settled = _retrying(record, run_id, services, settle)
    if settled is None:
        return None
    # Settled: no run can store files any more, so whatever any run left can go.
    _remove_all_files(settled, services)
    return _settled(settled, "failed", services, events)


def _remove_all_files(record: ImageRecord, services: Services) -> None:
    for prefix in image_prefixes(record.tenant, record.id):
        services.objects.delete_prefix(prefix)


def _remove_other_runs(record: ImageRecord, services: Services) -> None:
    """Files of processing runs that lost the image (died, then were taken over): nothing names
    them. Never a reprocess run's: a job may have switched the image to one since this run
    settled it (keeping the files of this run that it makes byte for byte)."""
    keep = tuple(run_prefix(record.tenant, record.id, record.run_id, public=p) for p in (False, True))
    stray = [
        key
        for prefix in image_prefixes(record.tenant, record.id)
        for key, _ in services.objects.list_keys(prefix)
        if not key.startswith(keep) and not is_reprocess_file(key)
    ]
    if stray:
        services.objects.delete(stray)


def _settled(record: ImageRecord, status: str, services: Services, events: EventPublisher) -> str:
    metrics.add_metric(name=f"Images{status.capitalize()}", unit="Count", value=1)
    if record.status != status:  # a transaction does not refresh the record it wrote
        record = services.repo.get_image(record.tenant, record.id) or record
    image = present_image(record, services)
    events.publish(DETAIL_TYPES[status], image)
    # The tenant's webhooks: queued beside the EventBridge event, from the same image object.
    webhooks.notify(services, record.tenant, f"image.{status}", image)
    return status
