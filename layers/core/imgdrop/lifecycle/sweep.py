"""The scheduled sweep: uploads that never arrived expire; stuck work is re-driven or failed;
deletions that stopped half-way are finished; webhook deliveries whose first message SQS refused
are queued again (imgdrop.webhooks.unqueued).

It relies on the sparse pending index and the upload window, never on DynamoDB TTL timing, and
it is patient: an image whose event may still come is left alone (see `patience`).

A multipart upload still in progress is left alone until the image's upload deadline
(`upload_expires_at`: MULTIPART_UPLOAD_WINDOW_SECONDS, a day at most, after POST /uploads);
past it, or once the client aborted it (nothing in progress, nothing arrived), the image
expires, and any upload of its key still in progress is aborted first, so its parts go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from imgdrop.catalogue.images import finish_deletion
from imgdrop.errors import ImgdropError
from imgdrop.ids import iso, utc_now
from imgdrop.lifecycle import transitions
from imgdrop.lifecycle.finalize import EventPublisher, settle_failure
from imgdrop.observability import logger
from imgdrop.services import Services
from imgdrop.settings import Settings
from imgdrop.store.db import SETTLED, ImageRecord
from imgdrop.store.storage import parse_upload_key
from imgdrop.webhooks import unqueued

# Settled-as-expired records are removed by DynamoDB TTL a week later.
EXPIRED_RETENTION = timedelta(days=7)
# Slack beyond the longest time an S3 event can legitimately take to be processed.
PROCESSING_GRACE = timedelta(minutes=15)
# A DELETE finishes its own deletion within the API's 29 s: one still unfinished after this
# stopped half-way, and the sweep does the rest (not sooner, not to race the DELETE itself).
DELETION_GRACE = timedelta(minutes=5)


def patience(settings: Settings) -> timedelta:
    """How long an image that arrived may wait for its outcome: its event may wait in Lambda's
    queue up to the maximum event age, then run three times (two retries); a backlog is not a
    failure. Past this, an event or a destination record was lost."""
    return (
        timedelta(seconds=settings.process_event_max_age_seconds)
        + 3 * timedelta(seconds=settings.process_timeout_seconds)
        + PROCESSING_GRACE
    )


@dataclass
class SweepReport:
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # arrived and fully rendered, only the outcome was lost: settled ready
    recovered: list[str] = field(default_factory=list)
    # arrived, never processed (a lost S3 event): sent through the pipeline again
    redriven: list[str] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    # deleted images whose files, CDN copies, claims or event a stopped DELETE left behind
    deletions_finished: list[str] = field(default_factory=list)
    # ... and those that failed again (the CDN still throttling): the next run tries them again
    deletions_left: list[str] = field(default_factory=list)


def sweep(services: Services, events: EventPublisher) -> SweepReport:
    report = SweepReport()
    now = utc_now()
    stale_before = iso(now - patience(services.settings))
    for record in services.repo.iter_unsettled(iso(now)):
        if record.status in SETTLED:
            continue
        head = services.objects.head(record.upload_key)
        if record.status == "pending" and head is None:
            head = _expire_unless_uploading(record, now, services, report)
            if head is None:
                continue
        if _last_activity(record, head) >= stale_before:
            continue  # queued or at work: its outcome may still come
        if record.status == "processing" and record.lease_until and record.lease_until >= iso(now):
            continue
        if record.status == "pending" and not record.redrives:
            # Arrived, never processed: its S3 event was lost. Copying the object onto itself
            # raises a new ObjectCreated event, once.
            if transitions.mark_redriven(services.repo, record, now):
                services.objects.touch(record.upload_key)
                report.redriven.append(record.id)
            continue
        # Arrived, and no outcome came in time (a lost event, a lost destination record).
        settled = settle_failure(
            record.upload_key,
            {"errorMessage": "no outcome within the processing window"},
            record.run_id,
            services,
            events,
        )
        if settled == "ready":
            report.recovered.append(record.id)
        elif settled == "failed":
            report.failed.append(record.id)

    for deleted in services.repo.iter_deletions(iso(now - DELETION_GRACE)):
        try:
            finish_deletion(deleted, services)
        except Exception:  # noqa: BLE001 - one deletion's failure must not hold up the others
            logger.exception("Deletion still not finished", extra={"image_id": deleted.id})
            report.deletions_left.append(deleted.id)
        else:
            report.deletions_finished.append(deleted.id)

    try:
        unqueued.requeue(services, now)  # logs and counts what it queues
    except ImgdropError:  # what is left stays marked: the next run queues it
        logger.exception("Webhook deliveries still not queued")

    window_start = now - timedelta(seconds=services.settings.upload_expiry_seconds) - PROCESSING_GRACE
    for key, modified in services.objects.list_keys("uploads/"):
        parsed = parse_upload_key(key)
        if modified > window_start:
            continue
        if parsed is None or services.repo.get_image(*parsed) is None:
            services.objects.delete([key])
            report.orphans_removed.append(key)
    return report


def _expire_unless_uploading(
    record: ImageRecord, now: datetime, services: Services, report: SweepReport
) -> dict[str, Any] | None:
    """A pending image whose file has not arrived: left alone while a multipart upload of its
    key is in progress within its deadline; else its uploads in progress are aborted and it
    expires. Answers the object's head should it have arrived meanwhile (a completion between
    the two looks), for the sweep to go on with."""
    key = record.upload_key
    uploading = services.objects.multipart_uploads(key)
    if uploading and iso(now) < record.upload_expires_at:
        return None
    for upload_id in uploading:
        services.objects.abort_multipart_upload(key, upload_id)
    head = services.objects.head(key)  # completed after the first look: it arrived after all
    if head is None and transitions.expire(services.repo, record, now, EXPIRED_RETENTION):
        report.expired.append(record.id)
    return head


def _last_activity(record: ImageRecord, head: dict[str, Any] | None) -> str:
    """When the image last moved: its record's last write, or its bytes' arrival."""
    moments = [record.updated_at]
    modified = (head or {}).get("LastModified")
    if isinstance(modified, datetime):
        moments.append(iso(modified))
    return max(moments)
