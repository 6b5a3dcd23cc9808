"""The webhook routes (scope `admin`): create, list, delete, and an endpoint's deliveries."""

from __future__ import annotations

from typing import Any

from imgdrop.auth import Principal
from imgdrop.errors import ImgdropError, NotFound
from imgdrop.ids import new_id, now_iso
from imgdrop.models import WebhookCreate
from imgdrop.services import Services
from imgdrop.store.db import (
    DELIVERY_SK_PREFIX,
    DeliveryRecord,
    WebhookRecord,
    endpoint_deliveries,
    tenant_pk,
    webhook_sk,
)
from imgdrop.store.shards import decode_cursor, encode_cursor
from imgdrop.webhooks import urls
from imgdrop.webhooks.signing import new_secret

# Each event is sent to each subscribed endpoint: a bound on a tenant's fan-out.
MAX_WEBHOOKS = 25


def present_webhook(record: WebhookRecord, *, secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"id": record.id, "url": record.url, "events": list(record.events or []),
                            "created_at": record.created_at}
    if secret:
        body["secret"] = record.secret
    return body


def present_delivery(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "type": record.type,
        "image_id": record.image_id,
        "status": record.status,
        "attempts": int(record.attempts or 0),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "next_attempt_at": record.next_attempt_at if record.status == "pending" else None,
        "last_attempts": list(record.last_attempts or []),
    }


def create_webhook(principal: Principal, body: WebhookCreate, services: Services) -> dict[str, Any]:
    """201 with the secret, shown only here. The URL must pass the SSRF checks now (and again at
    every delivery): 400 webhook_url_invalid. It is kept, and answered, percent-encoded as a
    browser would send it (urls.normalize)."""
    principal.require_whole_tenant("admin")
    url = urls.normalize(body.url)
    urls.check(url, allow_local=services.settings.webhook_allow_local_http)
    if len(services.webhooks.for_tenant(principal.tenant)) >= MAX_WEBHOOKS:
        raise ImgdropError("webhook_limit_reached", f"A tenant can have at most {MAX_WEBHOOKS} webhooks.",
                           400)
    webhook_id = new_id()
    record = WebhookRecord(
        tenant_pk(principal.tenant), webhook_sk(webhook_id), tenant=principal.tenant, id=webhook_id,
        url=url, events=list(body.events), secret=new_secret(), created_at=now_iso(),
    )
    services.webhooks.put(record)
    return present_webhook(record, secret=True)


def list_webhooks(principal: Principal, services: Services) -> dict[str, Any]:
    principal.require_whole_tenant("admin")
    return {"items": [present_webhook(w) for w in services.webhooks.for_tenant(principal.tenant)]}


def _webhook(principal: Principal, webhook_id: str, services: Services) -> WebhookRecord:
    principal.require_whole_tenant("admin")
    record = services.webhooks.get(principal.tenant, webhook_id)
    if record is None:
        raise NotFound("Webhook")
    return record


def delete_webhook(principal: Principal, webhook_id: str, services: Services) -> None:
    """Its deliveries stop: a retry finds the endpoint gone and is dropped."""
    if not services.webhooks.delete(_webhook(principal, webhook_id, services)):
        raise NotFound("Webhook")


def list_deliveries(
    principal: Principal, webhook_id: str, services: Services, limit: int = 20, cursor: str | None = None
) -> dict[str, Any]:
    """A page of the endpoint's deliveries, newest image first (a delivery's id begins with its
    image's: events.delivery_id); the cursor is only taken back for this endpoint of this tenant
    (else 400 cursor_invalid)."""
    webhook = _webhook(principal, webhook_id, services)
    shards = endpoint_deliveries(principal.tenant, webhook.id)
    records, positions = services.webhooks.list_deliveries(
        principal.tenant, webhook.id, limit, decode_cursor(cursor, shards, DELIVERY_SK_PREFIX)
    )
    return {"items": [present_delivery(r) for r in records], "next_cursor": encode_cursor(shards, positions)}
