"""Webhooks, in-process against moto (each function as its role): registration and its SSRF checks,
Standard Webhooks signatures checked with the `standardwebhooks` package a receiver would use,
the retry schedule, delivery through the webhook queue to a receiver on 127.0.0.1, tenant
isolation, an endpoint's deletion stopping its retries, and no event lost or repeated (a URL HTTP
cannot carry as it is, SQS refusing first messages, an event told twice)."""

from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from standardwebhooks import Webhook
from webhook_receiver import Receiver

import imgdrop.lifecycle.sweep as sweep_module
from imgdrop.errors import StorageError
from imgdrop.ids import utc_now
from imgdrop.settings import Settings, get_settings
from imgdrop.store.db import DELIVERY_SHARDS, Repository, WebhookStore, bind
from imgdrop.store.queue import Queue
from imgdrop.store.shards import shard_of
from imgdrop.webhooks import delivery, events, urls
from imgdrop.webhooks.signing import signed_headers
from imgdrop.webhooks.unqueued import REQUEUE_GRACE
from imgdrop_local.dispatcher import sqs_record

from lambdas import Functions, china_jpeg, sample, sample_photo, upload

ADMIN = "images:read images:write tags:write admin"
ALL_EVENTS = ["image.ready", "image.failed", "image.duplicate", "image.deleted"]
PUBLIC_ADDRESS = "93.184.216.34"
LOCAL = {"TABLE_NAME": "t", "BUCKET_NAME": "b", "IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP": "true"}
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # Standard Webhooks' test vector's secret


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


def register(functions: Functions, url: str, events=None, tenant: str = "acme") -> tuple[int, dict]:
    return functions.api("POST", "/v1/webhooks", "/v1/webhooks", {"url": url, "events": events or ALL_EVENTS},
                         tenant=tenant, scope=ADMIN)


def deliveries(functions: Functions, webhook_id: str, tenant: str = "acme") -> tuple[int, dict]:
    return functions.api("GET", f"/v1/webhooks/{webhook_id}/deliveries", "/v1/webhooks/{id}/deliveries",
                         path_params={"id": webhook_id}, tenant=tenant, scope=ADMIN)


def ready_image(functions: Functions, data: bytes | None = None, tenant: str = "acme") -> str:
    data = data or china_jpeg()
    item = {"filename": "a.jpg", "content_type": "image/jpeg", "size": len(data)}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]}, tenant=tenant)
    assert status == 200, body
    key = body["items"][0]["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data)
    functions.process_and_finalize(key, len(data))
    return body["items"][0]["id"]


def queued(aws, wait: int = 0) -> list[dict]:
    answer = aws.sqs.receive_message(QueueUrl=aws.queue_urls["WebhookQueue"], MaxNumberOfMessages=10,
                                     WaitTimeSeconds=wait, AttributeNames=["All"])
    return answer.get("Messages", [])


def run_queue(functions: Functions, *, wait: int = 0, rounds: int = 1) -> int:
    """Hand the webhook queue's messages to the webhooks function as its event source would;
    answers how many were handled."""
    aws, handled = functions.aws, 0
    for _ in range(rounds):
        messages = queued(aws, wait)
        if not messages:
            break
        arn = f"arn:aws:sqs:us-east-1:123456789012:{aws.stack.queue_names['WebhookQueue']}"
        result = functions.invoke("WebhooksFunction", {"Records": [sqs_record(m, arn) for m in messages]})
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        assert not failed, result
        for message in messages:
            aws.sqs.delete_message(QueueUrl=aws.queue_urls["WebhookQueue"], ReceiptHandle=message["ReceiptHandle"])
        handled += len(messages)
    return handled


def png(color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 40), color).save(out, "PNG")
    return out.getvalue()


# --------------------------------------------------------------------------- registration


def test_create_list_delete_and_the_secret_is_shown_once(functions, receiver):
    status, created = register(functions, receiver.url, ["image.ready"])
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["events"] == ["image.ready"]
    Webhook(created["secret"])  # a secret the reference package takes as it is
    status, listed = functions.api("GET", "/v1/webhooks", "/v1/webhooks", scope=ADMIN)
    assert status == 200 and listed["items"] == [{k: v for k, v in created.items() if k != "secret"}]
    status, body = functions.api("GET", "/v1/webhooks", "/v1/webhooks")  # no admin scope
    assert (status, body["errors"][0]["code"]) == (403, "insufficient_scope")
    path, route, params = f"/v1/webhooks/{created['id']}", "/v1/webhooks/{id}", {"id": created["id"]}
    assert functions.api("DELETE", path, route, path_params=params, scope=ADMIN)[0] == 204
    assert functions.api("DELETE", path, route, path_params=params, scope=ADMIN)[0] == 404
    assert deliveries(functions, created["id"])[0] == 404


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x",  # not https
    "ftp://hooks.example.com/x",
    "https://user:secret@hooks.example.com/x",  # credentials
    "https://127.0.0.2/x",  # loopback: only 127.0.0.1 itself is the local stack's exception
    "https://localhost/x",
    "https://10.0.0.5/x",
    "https://172.16.3.4/x",
    "https://192.168.1.1/x",
    "https://100.64.0.1/x",  # shared address space
    "https://169.254.169.254/latest/meta-data/",  # the instance metadata service
    "https://[fd00:ec2::254]/latest/meta-data/",  # its IPv6 address
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/x",  # 169.254.169.254, mapped
    "https://[64:ff9b::a00:1]/x",  # NAT64 of 10.0.0.1
    "https://[2002:7f00:1::]/x",  # 6to4 of 127.0.0.1
    "https://0.0.0.0/x",
    "https://224.0.0.1/x",  # multicast
    "https://[ff02::1]/x",
    "https://2130706433/x",  # 127.0.0.1 written as a number
    "https://0x7f.1/x",
])
def test_urls_that_are_not_https_or_reach_private_addresses_are_refused(url):
    with pytest.raises(urls.WebhookUrlInvalid) as refused:
        urls.check(url, allow_local=True)
    assert (refused.value.code, refused.value.status, refused.value.pointer) == ("webhook_url_invalid", 400, "/url")


def test_registration_answers_400_webhook_url_invalid(functions):
    for url in ("http://hooks.example.com/x", "https://169.254.169.254/latest/meta-data/", "not a url", "x" * 3000):
        status, body = register(functions, url)
        assert status == 400, body
        assert body["errors"][0]["code"] == "webhook_url_invalid", body
        assert body["errors"][0]["source"] == {"pointer": "/url"}


def test_registration_checks_what_the_name_resolves_to(functions, monkeypatch):
    answers = {"evil.example": ["127.0.0.1"], "internal.example": ["10.1.2.3"],
               "metadata.example": ["169.254.169.254"], "mixed.example": [PUBLIC_ADDRESS, "10.0.0.1"],
               "v6.example": ["fd00:ec2::254"], "good.example": [PUBLIC_ADDRESS, "2606:2800:220:1::1"]}

    def resolve(host, port):
        if host not in answers:
            raise OSError("no such name")
        return answers[host]

    monkeypatch.setattr(urls, "resolve", resolve)
    for host in ("evil.example", "internal.example", "metadata.example", "mixed.example", "v6.example",
                 "nowhere.example"):
        status, body = register(functions, f"https://{host}/hook")
        assert (status, body["errors"][0]["code"]) == (400, "webhook_url_invalid"), host
    status, body = register(functions, "https://good.example/hook")
    assert status == 201, body


def test_http_to_127_0_0_1_is_the_local_stacks_exception_only(functions, monkeypatch, receiver):
    assert register(functions, receiver.url)[0] == 201
    monkeypatch.setenv("IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP", "false")
    get_settings.cache_clear()
    with pytest.raises(urls.WebhookUrlInvalid):
        urls.check(receiver.url, allow_local=get_settings().webhook_allow_local_http)
    assert Settings.from_environment({"TABLE_NAME": "t", "BUCKET_NAME": "b"}).webhook_allow_local_http is False


# --------------------------------------------------------------------------- signing and delivery


def test_a_settled_image_is_posted_signed_as_standard_webhooks_specify(functions, receiver):
    _, created = register(functions, receiver.url, ["image.ready"])
    image_id = ready_image(functions)
    assert run_queue(functions) == 1
    [request] = receiver.wait_for(1, timeout=5)
    body = Webhook(created["secret"]).verify(request.body, request.headers)  # raises unless signed right
    assert request.headers["webhook-id"].startswith("msg_")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert body["type"] == "image.ready"
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    _, image = functions.image(image_id)
    assert body["data"] == image  # the image object, exactly as the API answers it
    with pytest.raises(Exception, match="signature"):
        Webhook(created["secret"]).verify(request.body.replace(b"ready", b"faked"), request.headers)
    _, listed = deliveries(functions, created["id"])
    [entry] = listed["items"]
    assert (entry["id"], entry["status"], entry["attempts"], entry["image_id"]) == (
        request.headers["webhook-id"], "delivered", 1, image_id)
    assert entry["last_attempts"][0]["status_code"] == 200


def test_signed_headers_verify_with_the_reference_package():
    secret = SECRET
    body = json.dumps({"type": "image.ready", "timestamp": "2026-01-01T00:00:00Z", "data": {}})
    headers = signed_headers(secret, "msg_1", body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    # Standard Webhooks' own test vector: the same id, timestamp and body give the same signature.
    vector = signed_headers(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", '{"test": 2432232314}',
                            datetime.fromtimestamp(1614265330, UTC))
    assert vector["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_retry_schedule_backs_off_exponentially_with_jitter_for_at_least_24_hours():
    deployed = Settings.from_environment({"TABLE_NAME": "t", "BUCKET_NAME": "b"})
    assert deployed.webhook_timeout_seconds == 10
    delays = delivery.schedule(deployed)
    assert 4 <= delays[0] <= 6, "the first retry comes within 10 s"
    assert delays[1] == pytest.approx(2 * delays[0]) and delays[2] == pytest.approx(4 * delays[0])
    assert max(delays) == pytest.approx(deployed.webhook_retry_cap_seconds)
    assert sum(delays) >= 24 * 3600 and len(delays) < 40
    for spread in (0.0, 1.0):  # the jitter's bounds: +-20 %
        assert 4.0 - 1e-9 <= delivery.retry_delay(1, deployed, spread) <= 6.0 + 1e-9
    jittered = {round(delivery.retry_delay(3, deployed), 3) for _ in range(20)}
    assert len(jittered) > 1 and all(16 <= d <= 24 for d in jittered)


def test_a_failed_attempt_is_retried_with_the_same_webhook_id_then_recorded(functions):
    with Receiver(statuses=[500]) as receiver:
        _, created = register(functions, receiver.url, ["image.ready"])
        ready_image(functions)
        assert run_queue(functions) == 1
        _, listed = deliveries(functions, created["id"])
        [pending] = listed["items"]
        assert (pending["status"], pending["attempts"]) == ("pending", 1)
        assert pending["next_attempt_at"] and pending["last_attempts"][0]["status_code"] == 500
        assert run_queue(functions, wait=3) == 1  # the retry waits in the queue (DelaySeconds)
        first, second = receiver.wait_for(2, timeout=5)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert second.at - first.at < 10
    Webhook(created["secret"]).verify(second.body, second.headers)
    _, listed = deliveries(functions, created["id"])
    [done] = listed["items"]
    assert (done["status"], done["attempts"], done["next_attempt_at"]) == ("delivered", 2, None)
    assert [a["status_code"] for a in done["last_attempts"]] == [200, 500]


def test_when_the_window_has_passed_the_delivery_is_recorded_failed(functions, monkeypatch):
    monkeypatch.setenv("WEBHOOK_RETRY_WINDOW_SECONDS", "2")
    get_settings.cache_clear()
    with Receiver(then=503) as receiver:
        _, created = register(functions, receiver.url, ["image.ready"])
        ready_image(functions)
        run_queue(functions, wait=3, rounds=10)
        _, listed = deliveries(functions, created["id"])
    [failed] = listed["items"]
    assert failed["status"] == "failed" and failed["attempts"] >= 2, failed
    assert failed["next_attempt_at"] is None
    assert all(a["status_code"] == 503 for a in failed["last_attempts"])
    assert len(receiver.requests) == failed["attempts"]
    assert queued(functions.aws) == []


def test_a_wait_over_15_minutes_is_chained_through_delayed_messages(functions, aws, receiver):
    from imgdrop.services import build_services

    _, created = register(functions, receiver.url, ["image.ready"])
    ready_image(functions)
    [message] = queued(aws)
    body = json.loads(message["Body"])
    services = build_services()
    later = {**body, "not_before": time.time() + 3600}
    assert delivery.handle_message(later, services) == "waiting"
    assert receiver.requests == []
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_urls["WebhookQueue"],
                                              AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    # Another copy of the first message after this one went on changes nothing.
    assert delivery.handle_message(body, services) == "delivered"
    assert delivery.handle_message(body, services) == "stale"
    assert len(receiver.requests) == 1


def test_the_url_is_checked_again_at_delivery_and_the_checked_address_is_the_one_connected(
    functions, monkeypatch, receiver
):
    calls: list[str] = []
    answer = {"hook.example": [PUBLIC_ADDRESS]}

    def resolve(host, port):
        calls.append(host)
        return answer[host]

    monkeypatch.setattr(urls, "resolve", resolve)
    _, created = register(functions, f"https://hook.example:{receiver.port}/hook", ["image.ready"])
    answer["hook.example"] = ["127.0.0.1"]  # DNS rebinding after registration
    ready_image(functions)
    run_queue(functions)
    assert receiver.requests == []
    _, listed = deliveries(functions, created["id"])
    assert listed["items"][0]["last_attempts"][0]["error"].startswith("refused: ")
    # The connection goes to the checked address, with the name in Host (no second resolution).
    target = urls.Target("http", "hook.example", receiver.port, "/pinned", ("127.0.0.1",))
    calls.clear()
    result = delivery.post(target, b"{}", {"content-type": "application/json"}, timeout=5)
    assert (result.status_code, result.delivered, calls) == (200, True, [])
    assert receiver.requests[-1].headers["host"] == f"hook.example:{receiver.port}"


def test_redirects_are_not_followed():
    with Receiver() as elsewhere, Receiver(then=302) as first:
        first.location = elsewhere.url
        result = delivery.attempt(first.url, SECRET, "msg_x", "{}", Settings.from_environment(LOCAL))
        time.sleep(0.2)
        assert (result.status_code, result.error) == (302, "redirect not followed (302)")
        assert len(first.requests) == 1 and elsewhere.requests == []


def test_no_answer_within_the_timeout_is_a_failed_attempt():
    settings = Settings.from_environment({**LOCAL, "WEBHOOK_TIMEOUT_SECONDS": "1"})
    with Receiver(delay=3) as slow:
        result = delivery.attempt(slow.url, SECRET, "msg_x", "{}", settings)
    assert result.status_code is None and result.error.startswith("timeout"), result
    assert result.duration_ms < 2500


# --------------------------------------------------------------------------- listing the deliveries


def deliveries_page(functions: Functions, webhook_id: str, **query) -> tuple[int, dict]:
    return functions.api("GET", f"/v1/webhooks/{webhook_id}/deliveries", "/v1/webhooks/{id}/deliveries",
                         path_params={"id": webhook_id}, scope=ADMIN, query={k: str(v) for k, v in query.items()})


def test_deliveries_page_across_their_shards_newest_first_without_gaps_or_repeats(functions, aws, receiver):
    _, created = register(functions, receiver.url, ["image.ready"])
    _, other = register(functions, receiver.url, ["image.ready"])
    bind(aws.table_name)
    store, ids = WebhookStore(), []
    for n in range(40):
        record = events._delivery("acme", created["id"], "image.ready", f"img{n}", "{}")
        store.put_delivery(record)
        ids.append(record.id)
    assert len({shard_of(i, DELIVERY_SHARDS) for i in ids}) >= 10
    pages, cursor = [], None
    while True:
        status, page = deliveries_page(functions, created["id"], limit=7, **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        pages.append([d["id"] for d in page["items"]])
        cursor = page["next_cursor"]
        if not cursor:
            break
        assert len(pages) < 20
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 5]
    assert sum(pages, []) == sorted(ids, reverse=True)  # ids sort by time: newest first
    _, first = deliveries_page(functions, created["id"], limit=7)
    assert [d["id"] for d in first["items"]] == pages[0]  # the default: the latest, no cursor needed
    # Another endpoint's cursor is refused, as a cursor imgdrop did not issue.
    status, body = deliveries_page(functions, other["id"], cursor=first["next_cursor"])
    assert (status, body["errors"][0]["code"]) == (400, "cursor_invalid"), body
    status, body = deliveries_page(functions, created["id"], cursor="garbage!")
    assert (status, body["errors"][0]["code"]) == (400, "cursor_invalid"), body


# --------------------------------------------------------------------------- tenants, deletion, events


def test_a_tenants_endpoints_get_only_its_own_events(functions):
    with Receiver() as acme_receiver, Receiver() as rival_receiver:
        _, acme_hook = register(functions, acme_receiver.url, tenant="acme")
        _, rival_hook = register(functions, rival_receiver.url, tenant="rival")
        rival_image = ready_image(functions, sample_photo("flower.jpg"), tenant="rival")
        run_queue(functions)
        assert [r.json["data"]["id"] for r in rival_receiver.wait_for(1, 5)] == [rival_image]
        assert acme_receiver.requests == []
        assert deliveries(functions, acme_hook["id"])[1]["items"] == []
        # Another tenant's endpoint is not found, exactly like a missing one.
        assert deliveries(functions, rival_hook["id"], tenant="acme")[0] == 404
        path, route = f"/v1/webhooks/{rival_hook['id']}", "/v1/webhooks/{id}"
        assert functions.api("DELETE", path, route, path_params={"id": rival_hook["id"]}, scope=ADMIN)[0] == 404
        _, listed = functions.api("GET", "/v1/webhooks", "/v1/webhooks", scope=ADMIN)
        assert [w["id"] for w in listed["items"]] == [acme_hook["id"]]


def test_deleting_an_endpoint_drops_its_pending_retries(functions):
    with Receiver(then=500) as receiver:
        _, created = register(functions, receiver.url, ["image.ready"])
        ready_image(functions)
        run_queue(functions)
        assert len(receiver.requests) == 1
        path, route = f"/v1/webhooks/{created['id']}", "/v1/webhooks/{id}"
        assert functions.api("DELETE", path, route, path_params={"id": created["id"]}, scope=ADMIN)[0] == 204
        assert run_queue(functions, wait=3) == 1  # the retry comes, and is dropped
        time.sleep(0.2)
        assert len(receiver.requests) == 1
        assert queued(functions.aws) == []


def test_every_event_type_and_a_repeat_refused_at_post_uploads_sends_nothing(functions, aws, receiver):
    register(functions, receiver.url)
    data = china_jpeg()
    first = ready_image(functions, data)
    second_id, second_key = upload(functions, data)  # the same bytes, undeclared: processed, a duplicate
    functions.process_and_finalize(second_key, len(data))
    broken, broken_key = upload(functions, b"no image at all")
    functions.process_and_finalize(broken_key, len(b"no image at all"))
    item = {"filename": "a.jpg", "content_type": "image/jpeg", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
    _, refused = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert refused["items"][0]["error"]["code"] == "image_already_exists"
    path, route = f"/v1/images/{first}", "/v1/images/{id}"
    assert functions.api("DELETE", path, route, path_params={"id": first})[0] == 204
    run_queue(functions, rounds=3)
    events = [(r.json["type"], r.json["data"]["id"]) for r in receiver.wait_for(4, 5)]
    assert sorted(events) == sorted([("image.ready", first), ("image.duplicate", second_id),
                                     ("image.failed", broken), ("image.deleted", first)])
    duplicate = next(r.json["data"] for r in receiver.requests if r.json["type"] == "image.duplicate")
    assert duplicate["duplicate_of"] == first


def test_the_sample_events_drive_the_queue_functions(functions):
    """events/ serves `sam local invoke`: a message about nothing that exists is handled, not retried."""
    from lambdas import sample

    assert functions.invoke("WebhooksFunction", sample("webhooks_sqs_attempt.json")) == {"batchItemFailures": []}
    assert functions.invoke("ReprocessFunction", sample("reprocess_sqs_image.json")) == {"batchItemFailures": []}


def test_an_endpoint_the_replica_does_not_show_yet_still_gets_its_delivery(functions, receiver, monkeypatch):
    """The webhooks function reads the endpoint from a replica (half a read unit on the tenant's
    key); a replica behind a registration answers nothing, and the endpoint is read again
    consistently before its delivery is dropped."""
    register(functions, receiver.url, ["image.ready"])
    read = WebhookStore.get
    asked: list[bool] = []

    def replica_behind(self, tenant, webhook_id, *, consistent=True):
        asked.append(consistent)
        return read(self, tenant, webhook_id) if consistent else None

    monkeypatch.setattr(WebhookStore, "get", replica_behind)
    ready_image(functions)
    assert run_queue(functions) == 1
    assert len(receiver.requests) == 1
    assert asked == [False, True]


# --------------------------------------------------------------------------- events never lost, never repeated


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
    status, created = register(functions, receiver.url + "/h\u00e9", ["image.ready"])
    assert status == 201, created
    assert created["url"] == receiver.url + "/h%C3%A9"
    ready_image(functions)
    assert run_queue(functions) == 1
    [request] = receiver.wait_for(1, timeout=5)
    assert request.path == "/hook/h%C3%A9"
    [entry] = deliveries(functions, created["id"])[1]["items"]
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)


# --------------------------------------------------------------------------- SQS refusing


def test_a_first_message_sqs_refuses_once_is_sent_again_at_once(functions, receiver, monkeypatch):
    status, created = register(functions, receiver.url, ["image.ready"])
    assert status == 201, created
    calls = queue_refusing(monkeypatch, refusals=1)
    ready_image(functions)
    assert calls["n"] == 2
    assert run_queue(functions) == 1
    assert len(receiver.wait_for(1, timeout=5)) == 1
    [entry] = deliveries(functions, created["id"])[1]["items"]
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)


def test_a_first_message_sqs_keeps_refusing_is_queued_by_the_sweep(functions, receiver, monkeypatch):
    """SQS refusing every try while finalize tells image.ready: the delivery waits in the pending
    index, and the sweep queues it once the grace has passed (before: pending for ever, 0 attempts,
    no message to make one)."""
    status, created = register(functions, receiver.url, ["image.ready"])
    assert status == 201, created
    send_many = Queue.send_many
    refused = queue_refusing(monkeypatch, refusals=None)
    ready_image(functions)
    assert refused["n"] >= 2
    monkeypatch.setattr(Queue, "send_many", send_many)  # SQS is back
    [waiting] = deliveries(functions, created["id"])[1]["items"]
    assert (waiting["status"], waiting["attempts"]) == ("pending", 0)
    assert run_queue(functions) == 0  # nothing carries it

    sweep_later(functions, monkeypatch, timedelta(seconds=1))
    assert run_queue(functions) == 0  # within its grace: left alone
    sweep_later(functions, monkeypatch, REQUEUE_GRACE + timedelta(seconds=1))
    assert run_queue(functions) == 1
    [request] = receiver.wait_for(1, timeout=5)
    assert request.headers["webhook-id"] == waiting["id"]
    [entry] = deliveries(functions, created["id"])[1]["items"]
    assert (entry["status"], entry["attempts"]) == ("delivered", 1)
    # Out of the pending index: the next sweep queues nothing again.
    sweep_later(functions, monkeypatch, REQUEUE_GRACE * 2)
    assert run_queue(functions) == 0


# --------------------------------------------------------------------------- an event told twice


def test_image_deleted_told_again_by_the_sweep_is_the_same_delivery(functions, receiver, monkeypatch):
    """DELETE tells image.deleted, which is delivered, then fails to record the deletion as done;
    the sweep finishes the deletion and tells the event again: one delivery, one POST, one
    `webhook-id` (before: a second delivery under a new id, posted again)."""
    status, created = register(functions, receiver.url, ["image.deleted"])
    assert status == 201, created
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
    [entry] = deliveries(functions, created["id"])[1]["items"]
    assert (entry["id"], entry["status"], entry["attempts"]) == (first.headers["webhook-id"], "delivered", 1)
