"""Queueing an image event for the tenant's endpoints that subscribed to it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from imgdrop.errors import ImgdropError
from imgdrop.ids import new_id, now_iso, utc_now
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.store.db import DeliveryRecord, delivery_key
from imgdrop.webhooks.delivery import first_message, new_token

# How long a delivery stays listed (DynamoDB TTL), past the 24 hours of retries.
DELIVERY_RETENTION = timedelta(days=30)


def event_body(event_type: str, image: dict[str, Any], timestamp: str | None = None) -> str:
    """The body every attempt sends: {"type", "timestamp", "data": <the image object>}."""
    body = {"type": event_type, "timestamp": timestamp or now_iso(), "data": image}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def notify(services: Services, tenant: str, event_type: str, image: dict[str, Any]) -> int:
    """Queue `event_type` about `image` (the image object) for each of the tenant's endpoints
    subscribed to it; answers how many. Like the EventBridge event beside it, a notification that
    cannot be queued is logged and never undoes what happened to the image."""
    try:
        endpoints = [w for w in services.webhooks.for_tenant(tenant) if event_type in (w.events or [])]
        if not endpoints:
            return 0
        body = event_body(event_type, image)
        messages = []
        for webhook in endpoints:
            delivery = _delivery(tenant, webhook.id, event_type, str(image.get("id")), body)
            services.webhooks.put_delivery(delivery)
            messages.append(first_message(delivery))
        services.webhook_queue.send_many(messages)
    except ImgdropError:
        logger.exception("Could not queue the webhook event", extra={"tenant": tenant, "type": event_type})
        metrics.add_metric(name="WebhookEventsLost", unit="Count", value=1)
        return 0
    metrics.add_metric(name="WebhookDeliveriesQueued", unit="Count", value=len(messages))
    return len(messages)


def _delivery(tenant: str, webhook_id: str, event_type: str, image_id: str, body: str) -> DeliveryRecord:
    delivery_id = "msg_" + new_id()
    now = now_iso()
    return DeliveryRecord(
        *delivery_key(tenant, webhook_id, delivery_id), tenant=tenant, webhook_id=webhook_id,
        id=delivery_id, type=event_type, image_id=image_id, body=body, status="pending", attempts=0,
        created_at=now, updated_at=now, next_attempt_at=now, next_token=new_token(), last_attempts=[],
        ttl=utc_now() + DELIVERY_RETENTION,
    )
