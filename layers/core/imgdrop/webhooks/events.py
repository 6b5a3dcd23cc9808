"""Queueing an image event for the tenant's endpoints that subscribed to it."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from typing import Any

from imgdrop.errors import ImgdropError, StorageError
from imgdrop.ids import now_iso, utc_now
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.store.db import DeliveryRecord, delivery_key
from imgdrop.webhooks import unqueued
from imgdrop.webhooks.delivery import first_message, new_token

# How long a delivery stays listed (DynamoDB TTL), past the 24 hours of retries.
DELIVERY_RETENTION = timedelta(days=30)
# Sending the first messages: SQS refusing a moment is tried again at once, briefly (the caller
# is finalize or a DELETE waiting on its answer); past that the sweep queues them (unqueued).
SEND_TRIES = 3
SEND_BACKOFF_SECONDS = 0.1


def event_body(event_type: str, image: dict[str, Any], timestamp: str | None = None) -> str:
    """The body every attempt sends: {"type", "timestamp", "data": <the image object>}."""
    body = {"type": event_type, "timestamp": timestamp or now_iso(), "data": image}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def delivery_id(tenant: str, webhook_id: str, event_type: str, image_id: str) -> str:
    """The `webhook-id` of an event about an image for one endpoint: the same every time the event
    is told (a deletion the sweep finishes after DELETE told it already), so a receiver dedupes
    it. An image settles once and is deleted once, so no image has two events of one type.
    The image id leads, so an endpoint's deliveries list newest image first."""
    event = "\n".join((tenant, webhook_id, event_type, image_id))
    return f"msg_{image_id}_{hashlib.sha256(event.encode()).hexdigest()[:16]}"


def notify(services: Services, tenant: str, event_type: str, image: dict[str, Any]) -> int:
    """Queue `event_type` about `image` (the image object) for each of the tenant's endpoints
    subscribed to it; answers how many first messages were queued (or left to the sweep).

    Telling an event again reuses its deliveries (same id, same body); the first message of one
    that has made no attempt yet is queued again, a copy of one that may be lost (a copy changes
    nothing: imgdrop.webhooks.delivery). Like the EventBridge event beside it, a notification
    that cannot be queued is logged and never undoes what happened to the image."""
    try:
        endpoints = [w for w in services.webhooks.for_tenant(tenant) if event_type in (w.events or [])]
        if not endpoints:
            return 0
        body = event_body(event_type, image)
        image_id = str(image.get("id"))
        waiting = []
        for webhook in endpoints:
            delivery = _recorded(services, _delivery(tenant, webhook.id, event_type, image_id, body))
            if delivery.status == "pending" and not delivery.attempts:
                waiting.append(delivery)
        if waiting:
            _queue_first_messages(services, waiting)
    except ImgdropError:
        logger.exception("Could not queue the webhook event", extra={"tenant": tenant, "type": event_type})
        metrics.add_metric(name="WebhookEventsLost", unit="Count", value=1)
        return 0
    return len(waiting)


def _recorded(services: Services, delivery: DeliveryRecord) -> DeliveryRecord:
    """The delivery as recorded: this new one, or the one an earlier telling of the event made."""
    if services.webhooks.put_delivery(delivery):
        return delivery
    existing = services.webhooks.get_delivery(delivery.tenant, delivery.webhook_id, delivery.id)
    if existing is None:  # there a moment ago, gone now (its endpoint deleted): nothing to send
        raise StorageError("The delivery vanished while it was recorded.")
    return existing


def _queue_first_messages(services: Services, deliveries: list[DeliveryRecord]) -> None:
    """Queue each delivery's first message, trying again briefly; should SQS still refuse, the
    deliveries are marked for the sweep to queue (unqueued.mark): recorded, they would otherwise
    wait for ever for a message that no one sends."""
    messages = [first_message(delivery) for delivery in deliveries]
    for tries in range(SEND_TRIES):
        if tries:
            time.sleep(SEND_BACKOFF_SECONDS * 2 ** (tries - 1))
        try:
            services.webhook_queue.send_many(messages)
        except StorageError:
            logger.warning("The webhook queue refused the first messages", exc_info=True,
                           extra={"try": tries + 1, "delivery_ids": [d.id for d in deliveries]})
            continue
        metrics.add_metric(name="WebhookDeliveriesQueued", unit="Count", value=len(messages))
        return
    unqueued.mark(services, deliveries, utc_now())
    metrics.add_metric(name="WebhookDeliveriesLeftToSweep", unit="Count", value=len(deliveries))
    logger.error("Webhook deliveries left for the sweep to queue",
                 extra={"delivery_ids": [d.id for d in deliveries]})


def _delivery(tenant: str, webhook_id: str, event_type: str, image_id: str, body: str) -> DeliveryRecord:
    identifier = delivery_id(tenant, webhook_id, event_type, image_id)
    now = now_iso()
    return DeliveryRecord(
        *delivery_key(tenant, webhook_id, identifier), tenant=tenant, webhook_id=webhook_id,
        id=identifier, type=event_type, image_id=image_id, body=body, status="pending", attempts=0,
        created_at=now, updated_at=now, next_attempt_at=now, next_token=new_token(), last_attempts=[],
        ttl=utc_now() + DELIVERY_RETENTION,
    )
