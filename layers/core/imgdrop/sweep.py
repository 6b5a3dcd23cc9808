"""The scheduled sweep: uploads that never arrived expire; stuck work is re-driven or failed.

It relies on the sparse pending index and the upload window, never on DynamoDB TTL timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from imgdrop.db import SETTLED, ImageRecord
from imgdrop.finalize import EventPublisher, settle_failure
from imgdrop.ids import iso, now_iso, utc_now
from imgdrop.services import Services
from imgdrop.storage import parse_upload_key

# Settled-as-expired records are removed by DynamoDB TTL a week later.
EXPIRED_RETENTION = timedelta(days=7)
# How long past its upload window an image may stay in processing before it is failed.
PROCESSING_GRACE = timedelta(minutes=15)


@dataclass
class SweepReport:
    expired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # arrived and fully rendered, only the outcome was lost: settled ready
    recovered: list[str] = field(default_factory=list)
    # arrived, never processed (a lost S3 event): sent through the pipeline again
    redriven: list[str] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)


def sweep(services: Services, events: EventPublisher) -> SweepReport:
    report = SweepReport()
    now = utc_now()
    for record in services.repo.iter_unsettled(iso(now)):
        if record.status in SETTLED:
            continue
        arrived = services.objects.head(record.upload_key) is not None
        if record.status == "pending" and not arrived:
            if services.repo.update_image(
                record,
                [
                    ImageRecord.status.set("expired"),
                    ImageRecord.errors.set([{"code": "upload_expired", "title": "The file never arrived."}]),
                    ImageRecord.updated_at.set(now_iso()),
                    ImageRecord.ttl.set(now + EXPIRED_RETENTION),
                    ImageRecord.gsi2pk.remove(),
                    ImageRecord.gsi2sk.remove(),
                ],
                condition=ImageRecord.status == "pending",
            ):
                report.expired.append(record.id)
        elif record.status == "pending" and not record.redrives:
            # The file arrived but processing never started: its S3 event was lost. Copying the
            # object onto itself raises a new ObjectCreated event, once.
            if services.repo.update_image(
                record,
                [ImageRecord.redrives.add(1), ImageRecord.updated_at.set(now_iso())],
                condition=(ImageRecord.status == "pending") & ImageRecord.redrives.does_not_exist(),
            ):
                services.objects.touch(record.upload_key)
                report.redriven.append(record.id)
        elif record.upload_expires_at < iso(now - PROCESSING_GRACE):
            # The file arrived but no outcome was ever settled (a lost event or a lost destination).
            settled = settle_failure(
                record.upload_key,
                {"errorMessage": "no outcome within the processing window"},
                services,
                events,
            )
            if settled == "ready":
                report.recovered.append(record.id)
            elif settled == "failed":
                report.failed.append(record.id)

    window_start = now - timedelta(seconds=services.settings.upload_expiry_seconds) - PROCESSING_GRACE
    for key, modified in services.objects.list_keys("uploads/"):
        parsed = parse_upload_key(key)
        if modified > window_start:
            continue
        if parsed is None or services.repo.get_image(*parsed) is None:
            services.objects.delete([key])
            report.orphans_removed.append(key)
    return report
