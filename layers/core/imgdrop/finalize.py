"""The finalize step: settle each image's status from the process step's outcome.

Reached through the process function's Lambda destinations: OnSuccess carries an outcome,
OnFailure (retries exhausted) carries only the original S3 event. Settling is a conditional
write from an unsettled status, so a repeated delivery changes nothing.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from imgdrop.db import SETTLED, ImageRecord
from imgdrop.ids import now_iso
from imgdrop.images import present_image
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.storage import parse_upload_key, variant_prefix
from imgdrop.tags import resolve_tags

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
    """Apply one process outcome; returns the status the image settled in (None if skipped)."""
    kind = outcome.get("outcome")
    tenant, image_id = outcome.get("tenant"), outcome.get("image_id")
    if kind not in {"rendered", "duplicate", "rejected"} or not tenant or not image_id:
        return None
    record = services.repo.get_image(tenant, image_id)
    if record is None:
        return None
    if kind == "rendered":
        return _settle(record, "ready", services, events)
    if kind == "duplicate":
        return _settle(
            record,
            "duplicate",
            services,
            events,
            errors=[outcome["error"]],
            duplicate_of=outcome.get("duplicate_of"),
        )
    return _settle(record, "failed", services, events, errors=[outcome["error"]])


def settle_failure(key: str, error: dict[str, Any], services: Services, events: EventPublisher) -> str | None:
    """Every retry failed. An image whose variants were stored before the crash is ready;
    anything else fails with processing_error, so nothing waits in `processing` forever."""
    parsed = parse_upload_key(key)
    if parsed is None:
        return None
    tenant, image_id = parsed
    record = services.repo.get_image(tenant, image_id)
    if record is None or record.status in SETTLED:
        return None
    if record.variants and (record.result or {}).get("sha256"):
        return _settle(record, "ready", services, events)
    # A crash between two variant writes leaves some behind that no record names: remove them
    # before failing the image (and before settling, so a crash here is retried, not forgotten).
    services.objects.delete_prefix(variant_prefix(tenant, image_id))
    message = str(error.get("errorMessage") or error.get("errorType") or "processing failed")[:300]
    return _settle(
        record,
        "failed",
        services,
        events,
        errors=[{"code": "processing_error", "title": f"Processing failed after retries: {message}"}],
    )


def _settle(
    record: ImageRecord,
    status: str,
    services: Services,
    events: EventPublisher,
    *,
    errors: list[dict[str, Any]] | None = None,
    duplicate_of: str | None = None,
) -> str | None:
    """Settle from pending/processing only: the conditional write makes redelivery a no-op."""
    if record.status in SETTLED:
        return None
    now = now_iso()
    actions = [
        ImageRecord.status.set(status),
        ImageRecord.tags.set(resolve_tags(record.tenant, record.tag_ids, services)),
        ImageRecord.errors.set(errors or []),
        ImageRecord.processed_at.set(now),
        ImageRecord.updated_at.set(now),
        ImageRecord.gsi2pk.remove(),
        ImageRecord.gsi2sk.remove(),
    ]
    if duplicate_of:
        actions.append(ImageRecord.duplicate_of.set(duplicate_of))
    settled = services.repo.update_image(
        record, actions, condition=ImageRecord.status.is_in("pending", "processing")
    )
    if not settled:
        return None
    metrics.add_metric(name=f"Images{status.capitalize()}", unit="Count", value=1)
    events.publish(DETAIL_TYPES[status], present_image(record, services))
    return status
