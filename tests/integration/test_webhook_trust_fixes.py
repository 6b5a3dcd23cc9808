"""Webhook trust fixes, in-process against moto (each function as its role): an endpoint with a
non-ASCII path gets its events, an event survives SQS refusing its first message (briefly, or
until the sweep), and an event told twice is one delivery under one `webhook-id`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from webhook_receiver import Receiver

import imgdrop.lifecycle.sweep as sweep_module
from imgdrop.errors import StorageError
from imgdrop.ids import utc_now
from imgdrop.settings import get_settings
from imgdrop.store.db import Repository
from imgdrop.store.queue import Queue
from imgdrop.webhooks.unqueued import REQUEUE_GRACE
from imgdrop_local.dispatcher import sqs_record

from lambdas import Functions, china_jpeg, sample

ADMIN = "images:read images:write tags:write admin"


@pytest.fixture
def functions(aws, monkeypatch):
    """The local stack's one exception (http://127.0.0.1 receivers) and a quick retry schedule."""
    monkeypatch.setenv("IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_BASE_SECONDS", "0.5")
    get_settings.cache_clear()
    return Functions(aws)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def register(functions: Functions, url: str, events: list[str]) -> dict:
    status, created = functions.api("POST", "/v1/webhooks", "/v1/webhooks", {"url": url, "events": events},
                                    scope=ADMIN)
    assert status == 201, created
    return created


def deliveries(functions: Functions, webhook_id: str) -> list[dict]:
    status, body = functions.api("GET", f"/v1/webhooks/{webhook_id}/deliveries", "/v1/webhooks/{id}/deliveries",
                                 path_params={"id": webhook_id}, scope=ADMIN)
    assert status == 200, body
    return body["items"]


def ready_image(functions: Functions) -> str:
    data = china_jpeg()
    item = {"filename": "a.jpg", "content_type": "image/jpeg", "size": len(data)}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert status == 200, body
    key = body["items"][0]["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data)
    functions.process_and_finalize(key, len(data))
    return body["items"][0]["id"]


def run_queue(functions: Functions) -> int:
    """One batch of the webhook queue through the webhooks function, which must fail none of it;
    answers how many messages it handled."""
    aws = functions.aws
    url = aws.queue_urls["WebhookQueue"]
    messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    if not messages:
        return 0
    arn = f"arn:aws:sqs:us-east-1:123456789012:{aws.stack.queue_names['WebhookQueue']}"
    result = functions.invoke("WebhooksFunction", {"Records": [sqs_record(m, arn) for m in messages]})
    assert result["batchItemFailures"] == []
    for message in messages:
        aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def sweep_later(functions: Functions, monkeypatch, later: timedelta) -> dict:
    """The scheduled sweep, run as its function, as if `later` had passed."""
    moment = utc_now() + later
    monkeypatch.setattr(sweep_module, "utc_now", lambda: moment)
    return functions.invoke("SweepFunction", sample("sweep_schedule.json"))


def queue_refusing(monkeypatch, refusals: int | None) -> dict[str, int]:
    """SQS refuses the next `refusals` batches (None: every one) of first messages."""
    send_many = Queue.send_many
    calls = {"n": 0}

    def refusing(self, bodies):
        calls["n"] += 1
        if refusals is None or calls["n"] <= refusals:
            raise StorageError("The messages could not be queued.")
        return send_many(self, bodies)

    monkeypatch.setattr(Queue, "send_many", refusing)
    return calls


# --------------------------------------------------------------------------- a non-ASCII path


def test_an_endpoint_with_a_non_ascii_path_is_stored_encoded_and_gets_its_events(functions, receiver):
    """Given `/hé` at registration, the URL is kept as a browser sends it, and an event reaches it
    (before: accepted raw, then every attempt raised UnicodeEncodeError and none was recorded)."""
    created = register(functions, receiver.url + "/h\u00e9", ["image.ready"])
    assert created["url"] == receiver.url + "/h%C3%A9"
    ready_image(functions)
    assert run_queue(functions) == 1
    [request] = receiver.wait_for(1, timeout=5)
    assert request.path == "/hook/h%C3%A9"
    [entry] = deliveries(functions, created["id"])
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)


# --------------------------------------------------------------------------- SQS refusing


def test_a_first_message_sqs_refuses_once_is_sent_again_at_once(functions, receiver, monkeypatch):
    created = register(functions, receiver.url, ["image.ready"])
    calls = queue_refusing(monkeypatch, refusals=1)
    ready_image(functions)
    assert calls["n"] == 2
    assert run_queue(functions) == 1
    assert len(receiver.wait_for(1, timeout=5)) == 1
    [entry] = deliveries(functions, created["id"])
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)


def test_a_first_message_sqs_keeps_refusing_is_queued_by_the_sweep(functions, receiver, monkeypatch):
    """SQS refusing every try while finalize tells image.ready: the delivery waits in the pending
    index, and the sweep queues it once the grace has passed (before: pending for ever, 0 attempts,
    no message to make one)."""
    created = register(functions, receiver.url, ["image.ready"])
    send_many = Queue.send_many
    refused = queue_refusing(monkeypatch, refusals=None)
    ready_image(functions)
    assert refused["n"] >= 2
    monkeypatch.setattr(Queue, "send_many", send_many)  # SQS is back
    [waiting] = deliveries(functions, created["id"])
    assert (waiting["status"], waiting["attempts"]) == ("pending", 0)
    assert run_queue(functions) == 0  # nothing carries it

    sweep_later(functions, monkeypatch, timedelta(seconds=1))
    assert run_queue(functions) == 0  # within its grace: left alone
    sweep_later(functions, monkeypatch, REQUEUE_GRACE + timedelta(seconds=1))
    assert run_queue(functions) == 1
    [request] = receiver.wait_for(1, timeout=5)
    assert request.headers["webhook-id"] == waiting["id"]
    [entry] = deliveries(functions, created["id"])
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)
    # Out of the pending index: the next sweep queues nothing again.
    sweep_later(functions, monkeypatch, REQUEUE_GRACE * 2)
    assert run_queue(functions) == 0


# --------------------------------------------------------------------------- an event told twice


def test_image_deleted_told_again_by_the_sweep_is_the_same_delivery(functions, receiver, monkeypatch):
    """DELETE tells image.deleted, which is delivered, then fails to record the deletion as done;
    the sweep finishes the deletion and tells the event again: one delivery, one POST, one
    `webhook-id` (before: a second delivery under a new id, posted again)."""
    created = register(functions, receiver.url, ["image.deleted"])
    image_id = ready_image(functions)
    deletion_done = Repository.deletion_done
    blips = {"n": 0}

    def blip_once(self, tenant, iid):
        blips["n"] += 1
        if blips["n"] == 1:
            raise StorageError("The deletion could not be recorded as done.")
        return deletion_done(self, tenant, iid)

    monkeypatch.setattr(Repository, "deletion_done", blip_once)
    path, route = f"/v1/images/{image_id}", "/v1/images/{id}"
    assert functions.api("DELETE", path, route, path_params={"id": image_id})[0] == 204
    assert run_queue(functions) == 1
    [first] = receiver.wait_for(1, timeout=5)

    report = sweep_later(functions, monkeypatch, timedelta(minutes=10))
    assert report["deletions_finished"] == [image_id] and blips["n"] == 2
    assert run_queue(functions) == 0  # delivered already: nothing is queued again
    assert len(receiver.requests) == 1
    [entry] = deliveries(functions, created["id"])
    assert (entry["id"], entry["status"], entry["attempts"]) == (first.headers["webhook-id"], "delivered", 1)
