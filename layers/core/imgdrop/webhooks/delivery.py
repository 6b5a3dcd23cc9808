"""Delivering one webhook event to one endpoint, at least once, under one `webhook-id`.

Each attempt is one message of the webhook queue (`{tenant, webhook_id, delivery_id, attempt,
token, not_before}`) handled by the webhooks function:

- the endpoint's URL is checked again (imgdrop.webhooks.urls) and the POST goes to the address
  that was checked, with SNI and certificate checks for the URL's name; no redirect is followed;
  anything but a 2xx within `WEBHOOK_TIMEOUT_SECONDS` (10 s) is a failed attempt;
- a failed attempt is retried after `base x 2^(n-1)` seconds (capped, +-20 % jitter) until
  `WEBHOOK_RETRY_WINDOW_SECONDS` (24 h) after the delivery began; the last one failing marks the
  delivery `failed` (visible at GET /webhooks/{id}/deliveries);
- SQS holds a message back 15 minutes at most: a longer wait is a chain of delayed messages
  (`not_before`), each handing over to the next;
- the delivery record names the token of the one message that may make the next attempt. The
  next message is queued before the attempt is recorded, and recording is conditional on the
  token: a crash between the two repeats an attempt (same webhook-id) and never loses the
  delivery; two copies of a message (SQS delivers at least once) never fork the chain;
- a deleted endpoint's messages are dropped: its pending retries stop.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imgdrop.ids import iso, utc_now
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.settings import Settings
from imgdrop.store.db import DeliveryRecord
from imgdrop.webhooks import urls
from imgdrop.webhooks.signing import signed_headers

HISTORY = 10  # attempts kept on a delivery, newest first
JITTER = 0.2
_random = secrets.SystemRandom()


# --------------------------------------------------------------------------- the schedule


def retry_delay(attempt: int, settings: Settings, spread: float | None = None) -> float:
    """Seconds from failed attempt `attempt` (1-based) to the next: exponential, capped, jittered."""
    raw = min(settings.webhook_retry_cap_seconds, settings.webhook_retry_base_seconds * 2 ** (attempt - 1))
    spread = _random.random() if spread is None else spread
    return raw * (1 - JITTER + 2 * JITTER * spread)


def schedule(settings: Settings, spread: float = 0.5) -> list[float]:
    """Every retry's delay, in order, for a delivery that never gets a 2xx (jitter at `spread`):
    the retries go on until the window has passed since the first attempt."""
    delays: list[float] = []
    elapsed = 0.0
    while elapsed < settings.webhook_retry_window_seconds:
        delay = retry_delay(len(delays) + 1, settings, spread)
        delays.append(delay)
        elapsed += delay
    return delays


# --------------------------------------------------------------------------- one POST


@dataclass
class AttemptResult:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Pinned:
    """Connects to the checked address, whatever the name resolves to now."""

    address: str
    sock: Any
    timeout: Any
    port: int

    def _open(self) -> socket.socket:
        return socket.create_connection((self.address, self.port), self.timeout)

    def abort(self) -> None:
        """At the deadline: unblock whatever waits on the socket."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        http.client.HTTPConnection.__init__(self, host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = self._open()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        context = ssl.create_default_context()
        http.client.HTTPSConnection.__init__(self, host, port, timeout=timeout, context=context)
        self.address = address
        self._tls = context

    def connect(self) -> None:
        self.sock = self._tls.wrap_socket(self._open(), server_hostname=self.host)


def post(target: urls.Target, body: bytes, headers: dict[str, str], timeout: float) -> AttemptResult:
    """POST `body` to the target's checked addresses (the next one only when one cannot be
    reached); any 2xx within `timeout` seconds, all phases together, is a delivery."""
    started = time.monotonic()
    deadline = started + timeout
    error = "unreachable"

    def result(status: int | None, why: str | None) -> AttemptResult:
        return AttemptResult(status, why, int((time.monotonic() - started) * 1000))

    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        connection = kind(target.host, target.port, address, timeout=remaining)
        timer = threading.Timer(remaining, connection.abort)
        timer.daemon = True
        timer.start()
        try:
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline - 0.01:
                return result(None, f"timeout: no answer within {timeout:g} s")
            error = f"{type(exc).__name__}: {exc}"[:300]
            if connection.sock is None:
                continue  # this address could not be reached: the next one may be
            return result(None, error)
        except Exception as exc:  # noqa: BLE001 - a failed attempt, retried, never a lost delivery
            # Anything else the HTTP client raises (a UnicodeEncodeError for a path it cannot
            # send, a bug of ours) would escape the attempt: nothing recorded, no retry queued,
            # the delivery pending for ever. The next address would fail the same way.
            logger.exception("Webhook attempt failed unexpectedly", extra={"host": target.host})
            return result(None, f"{type(exc).__name__}: {exc}"[:300])
        finally:
            timer.cancel()
            connection.close()
        if 200 <= status < 300:
            return result(status, None)
        if 300 <= status < 400:
            return result(status, f"redirect not followed ({status})")
        return result(status, f"HTTP {status}")
    return result(None, error)


def attempt(url: str, secret: str, message_id: str, body: str, settings: Settings) -> AttemptResult:
    """One signed attempt, the URL checked again first (its DNS may have changed)."""
    try:
        target = urls.check(url, allow_local=settings.webhook_allow_local_http)
    except urls.WebhookUrlInvalid as exc:
        return AttemptResult(None, f"refused: {exc.title}", 0)
    headers = signed_headers(secret, message_id, body)
    return post(target, body.encode(), headers, settings.webhook_timeout_seconds)


# --------------------------------------------------------------------------- the queue's messages


def new_token() -> str:
    return secrets.token_hex(8)


def first_message(delivery: DeliveryRecord) -> dict[str, Any]:
    return {"tenant": delivery.tenant, "webhook_id": delivery.webhook_id, "delivery_id": delivery.id,
            "attempt": 1, "token": delivery.next_token, "not_before": 0}


def handle_message(message: dict[str, Any], services: Services) -> str:
    """One message of the webhook queue; answers what came of it (for logs and tests):
    stale | dropped | waiting | delivered | retrying | failed."""
    store = services.webhooks
    tenant, webhook_id = str(message["tenant"]), str(message["webhook_id"])
    number, token = int(message["attempt"]), str(message["token"])
    delivery = store.get_delivery(tenant, webhook_id, str(message["delivery_id"]))
    if delivery is None or delivery.status != "pending" or delivery.next_token != token:
        return "stale"  # settled, or another copy of this message went on already
    wait = float(message.get("not_before") or 0) - time.time()
    if wait > 1:
        services.webhook_queue.send(message, delay_seconds=math.ceil(wait))
        return "waiting"
    # Half a read unit, on the tenant's own partition key that every upload reads: an endpoint's
    # attempts would otherwise add 1,000 RCU/s to it at 1,000 uploads/s (bench/partitions.py). An
    # endpoint deleted a moment ago may so get one more attempt; one made a moment ago, missing
    # from the replica read, is read again consistently before its delivery is dropped.
    webhook = store.get(tenant, webhook_id, consistent=False) or store.get(tenant, webhook_id)
    if webhook is None:
        return "dropped"  # the endpoint was deleted: its retries stop
    outcome = attempt(webhook.url, webhook.secret, delivery.id, delivery.body, services.settings)
    now = utc_now()
    entry = {"at": iso(now), "status_code": outcome.status_code, "error": outcome.error,
             "duration_ms": outcome.duration_ms}
    actions: list[Any] = [
        DeliveryRecord.attempts.set(number),
        DeliveryRecord.last_attempts.set([entry, *(delivery.last_attempts or [])][:HISTORY]),
        DeliveryRecord.updated_at.set(iso(now)),
    ]
    log = {"delivery_id": delivery.id, "webhook_id": webhook_id, "attempt": number,
           "status_code": outcome.status_code, "error": outcome.error}
    if outcome.delivered or _window_over(delivery, now, services.settings):
        status = "delivered" if outcome.delivered else "failed"
        actions += [DeliveryRecord.status.set(status), DeliveryRecord.next_attempt_at.remove(),
                    DeliveryRecord.next_token.remove()]
        if store.record_attempt(delivery, token, actions):
            metrics.add_metric(name=f"WebhookDeliveries{status.capitalize()}", unit="Count", value=1)
            logger.info(f"Webhook {status}", extra=log)
        return status
    delay = retry_delay(number, services.settings)
    follow_up = new_token()
    due = time.time() + delay
    actions += [DeliveryRecord.next_attempt_at.set(iso(datetime.fromtimestamp(due, now.tzinfo))),
                DeliveryRecord.next_token.set(follow_up)]
    # Queued first: a crash before the record repeats this attempt rather than losing the delivery.
    services.webhook_queue.send(
        {**message, "attempt": number + 1, "token": follow_up, "not_before": due},
        delay_seconds=math.ceil(delay),
    )
    if store.record_attempt(delivery, token, actions):
        metrics.add_metric(name="WebhookAttemptsFailed", unit="Count", value=1)
        logger.info("Webhook attempt failed; retrying", extra={**log, "retry_in_s": round(delay, 1)})
    return "retrying"


def _window_over(delivery: DeliveryRecord, now: datetime, settings: Settings) -> bool:
    began = datetime.fromisoformat(delivery.created_at.replace("Z", "+00:00"))
    return (now - began).total_seconds() >= settings.webhook_retry_window_seconds
