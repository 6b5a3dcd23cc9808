"""Deliveries whose first message could not be queued, and their second chance.

`notify` records a delivery, then queues its first message, trying a few times. Should SQS still
refuse, the delivery would stay `pending` with no attempt and no message to make one: it is put
in the pending index instead (gsi2, under `UNQUEUED#{shard}`, sorted by when), and the scheduled
sweep queues its first message again (`requeue`), once it is `REQUEUE_GRACE` old.

Only a failure writes to the index: a delivery queued at once costs not one write more. The
sweep's queries are bounded as its others on the same index are: one per shard, each reading only
the deliveries still waiting there (the index is sparse: `requeue` takes each out again).

A message queued again is the first one again (same token): should the first have gone after all
(an answer lost after SQS took it), one of the two makes the attempt and the other finds the
token used and changes nothing (imgdrop.webhooks.delivery.handle_message).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from imgdrop.ids import iso
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.store.db import DeliveryRecord
from imgdrop.webhooks.delivery import first_message

# A first message whose answer was lost may have been queued after all: it gets this long to make
# its attempt, after which the sweep sees the attempt and queues no copy.
REQUEUE_GRACE = timedelta(minutes=2)


def mark(services: Services, deliveries: list[DeliveryRecord], now: datetime) -> None:
    """Put these deliveries, whose first messages could not be queued, in the pending index."""
    for delivery in deliveries:
        services.webhooks.mark_unqueued(delivery, iso(now))


def requeue(services: Services, now: datetime) -> list[str]:
    """Queue again the first message of each delivery marked before `now - REQUEUE_GRACE` that is
    still pending with no attempt, and take every one looked at out of the index; answers the ids
    queued. A failure to queue leaves the rest marked, for the next sweep."""
    requeued: list[str] = []
    try:
        for delivery in services.webhooks.unqueued(iso(now - REQUEUE_GRACE)):
            if delivery.status == "pending" and not delivery.attempts:
                services.webhook_queue.send(first_message(delivery))
                requeued.append(delivery.id)
            services.webhooks.unmark_unqueued(delivery)
    finally:
        if requeued:
            metrics.add_metric(name="WebhookDeliveriesRequeued", unit="Count", value=len(requeued))
            logger.info("Unqueued webhook deliveries queued again", extra={"delivery_ids": requeued})
    return requeued
