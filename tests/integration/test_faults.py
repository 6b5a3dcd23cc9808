"""Crashes at each stage of the pipeline, driven through the template's retries and destinations.

The local stack's LambdaRuntime runs an asynchronous invoke as Lambda does: the process
function is retried per its EventInvokeConfig (2 retries), then OnSuccess/OnFailure invoke
the finalize function, whose own failures end in the FailedEventsQueue. Whatever crashes,
every image ends `ready` (all variants stored) or `failed` with processing_error (no variant
left behind), never `pending`/`processing` for good.
"""

from __future__ import annotations

import json
import sys
import time
import types
from datetime import timedelta
from typing import Any

import botocore.endpoint
import botocore.retries.bucket
import pytest
from botocore.awsrequest import AWSResponse

from imgdrop.errors import StorageError
from imgdrop.ids import utc_now
from imgdrop.store.db import ImageRecord, Repository
from imgdrop.store.storage import ObjectStore
from imgdrop_local.lambda_runtime import LambdaRuntime

from lambdas import Functions, china_jpeg, image_files, sample, upload

VARIANTS = {"large", "medium", "small", "thumb"}
PROCESS_ATTEMPTS = 3  # template.yaml: MaximumRetryAttempts 2


class InjectedCrash(RuntimeError):
    """What a test throws into the pipeline; a plain exception, as a bug or an outage would be."""


class Injection:
    """Replace owner.name by a wrapper that raises InjectedCrash when `when` holds, `times` times
    (None: always) until stop(). `seen` records what the variant prefix held at each crash."""

    def __init__(self, monkeypatch, owner: type, name: str, when, times: int | None):
        self.original = getattr(owner, name)
        self.crashes = 0
        self.stopped = False
        self.when, self.times = when, times
        label = f"{owner.__name__}.{name}"
        original = self.original

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.stopped and self.when(*args, **kwargs) and (self.times is None or self.crashes < self.times):
                self.crashes += 1
                raise InjectedCrash(f"injected crash in {label} (#{self.crashes})")
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    def stop(self) -> None:
        self.stopped = True


def _called_from(function_name: str) -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == function_name:
            return True
        frame = frame.f_back
    return False


# Each processing stage: where the crash goes, and whether variants were stored before it.
STAGES = {
    # after the record says "processing", at the download of the upload
    "download": (ObjectStore, "read", lambda self, key, **kw: True),
    # mid-variants: the 2nd ObjectStore.write (variants are written in profile order: large, medium, ...)
    "mid_variants": (ObjectStore, "write", lambda self, key, *a, **kw: key.startswith(("images/", "public/"))
                     and key.rsplit("/", 1)[-1] == "medium.jpg"),
    # every variant stored, then the record update that names them
    "record_update": (Repository, "update_image", lambda *a, **kw: _called_from("_render_and_store")),
}


@pytest.fixture
def functions(aws):
    return Functions(aws)


@pytest.fixture
def runtime(aws):
    runtime = LambdaRuntime(aws.stack, retry_delays=(0, 0))
    yield runtime
    runtime.shutdown(0)


def s3_event(aws, key: str, size: int) -> dict[str, Any]:
    event = sample("process_s3_object_created.json")
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = aws.bucket_name
    record["s3"]["object"].update({"key": key, "size": size})
    return event


def stored_objects(aws, image_id: str) -> set[str]:
    return {key.rsplit("/", 1)[-1].split(".")[0] for key in image_files(aws, image_id)}


def stored_variants(aws, image_id: str) -> set[str]:
    """The variants stored (in any format); the verified original is kept too, once ready."""
    return stored_objects(aws, image_id) - {"original"}


def failed_events(aws) -> list[dict[str, Any]]:
    url = aws.failed_events_queue_url
    messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def assert_settled_cleanly(functions, aws, image_id: str) -> dict[str, Any]:
    """ready with every variant stored and named, or failed with processing_error and none."""
    status, image = functions.image(image_id)
    assert status == 200
    assert image["status"] in {"ready", "failed"}, image["status"]
    if image["status"] == "ready":
        assert set(image["variants"]) == VARIANTS
        assert stored_objects(aws, image_id) == VARIANTS | {"original"}
    else:
        assert image["processing_error"] == "processing_error"
        assert image["variants"] == {}
        assert stored_objects(aws, image_id) == set()
    return image


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_crash_on_the_first_attempt_is_retried_and_the_image_ends_ready(stage, functions, aws, runtime,
                                                                          monkeypatch):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    injection = Injection(monkeypatch, *STAGES[stage], times=1)

    record = runtime.run_async("ProcessFunction", s3_event(aws, key, len(data)))

    assert injection.crashes == 1
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert runtime.invocations == [("ProcessFunction", "error"), ("ProcessFunction", "ok"), ("FinalizeFunction", "ok")]
    image = assert_settled_cleanly(functions, aws, image_id)
    assert image["status"] == "ready"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_crash_on_every_attempt_ends_failed_through_on_failure_with_no_variant_left(stage, functions, aws,
                                                                                       runtime, monkeypatch):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    written_before_crash: list[set[str]] = []
    kind, name, when = STAGES[stage]

    def when_and_seen(*args: Any, **kwargs: Any) -> bool:
        hit = when(*args, **kwargs)
        if hit:
            # variants are written in parallel: let the large one land before medium's crash
            deadline = time.monotonic() + 10
            while stage == "mid_variants" and "large" not in stored_variants(aws, image_id):
                assert time.monotonic() < deadline, "the large variant was never written"
                time.sleep(0.01)
            written_before_crash.append(stored_variants(aws, image_id))
        return hit

    injection = Injection(monkeypatch, kind, name, when_and_seen, times=None)

    record = runtime.run_async("ProcessFunction", s3_event(aws, key, len(data)))

    assert injection.crashes == PROCESS_ATTEMPTS
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["responsePayload"]["errorType"] == "InjectedCrash"
    assert runtime.invocations == [("ProcessFunction", "error")] * PROCESS_ATTEMPTS + [("FinalizeFunction", "ok")]
    # the crash really left variants behind before finalize ran (except at the download)
    if stage == "mid_variants":  # large for sure; the others as their threads went
        assert "large" in written_before_crash[-1]
    else:
        assert written_before_crash[-1] == {"download": set(), "record_update": VARIANTS}[stage]
    image = assert_settled_cleanly(functions, aws, image_id)
    assert image["status"] == "failed"
    assert "injected crash" in image["errors"][0]["title"]
    assert failed_events(aws) == []  # finalize itself succeeded


def test_a_finalize_crash_is_settled_by_the_finalize_retry(functions, aws, runtime, monkeypatch):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    Injection(monkeypatch, Repository, "update_image_and_claim", lambda *a, **kw: True, times=1)

    runtime.run_async("ProcessFunction", s3_event(aws, key, len(data)))

    assert runtime.invocations == [("ProcessFunction", "ok"), ("FinalizeFunction", "error"),
                                   ("FinalizeFunction", "ok")]
    assert assert_settled_cleanly(functions, aws, image_id)["status"] == "ready"


def test_a_finalize_crash_past_its_retries_is_settled_by_the_sweep(functions, aws, runtime, monkeypatch):
    """Finalize fails 3 times: its OnFailure keeps the record in SQS, the image stays `processing`,
    and the scheduled sweep settles it once its event and retries could no longer be at work."""
    data = china_jpeg()
    image_id, key = upload(functions, data)
    outage = Injection(monkeypatch, Repository, "update_image_and_claim", lambda *a, **kw: True, times=None)

    runtime.run_async("ProcessFunction", s3_event(aws, key, len(data)))

    assert runtime.invocations == [("ProcessFunction", "ok")] + [("FinalizeFunction", "error")] * 3
    kept = failed_events(aws)
    assert len(kept) == 1
    assert kept[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert kept[0]["requestPayload"]["responsePayload"]["outcomes"][0]["image_id"] == image_id
    assert functions.image(image_id)[1]["status"] == "processing"
    outage.stop()

    import imgdrop.lifecycle.sweep

    sweep_event = sample("sweep_schedule.json")
    assert functions.invoke("SweepFunction", sweep_event)["failed"] == []  # within the window: left alone
    assert functions.image(image_id)[1]["status"] == "processing"
    from imgdrop.settings import get_settings

    # Past the time its event and retries could take (a backlog is not a failure), it is stuck.
    later = utc_now() + imgdrop.lifecycle.sweep.patience(get_settings())
    monkeypatch.setattr(imgdrop.lifecycle.sweep, "utc_now", lambda: later + timedelta(minutes=1))
    report = functions.invoke("SweepFunction", sweep_event)

    image = assert_settled_cleanly(functions, aws, image_id)
    assert image["status"] == "ready"  # every variant was stored and recorded: nothing is lost
    # every variant was stored before finalize was lost: the sweep recovers the image as ready
    assert report["recovered"] == [image_id] and report["failed"] == []


def aws_upload_window(functions) -> int:
    from imgdrop.settings import get_settings

    return get_settings().upload_expiry_seconds


# ------------------------------------------------------------------ idempotency at the edges


def test_finalize_delivered_twice_and_a_late_retries_exhausted_change_nothing(functions, aws):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    processed = functions.process(key, len(data))
    assert functions.finalize_success(processed)["settled"] == ["ready"]
    before = functions.image(image_id)[1]

    assert functions.finalize_success(processed)["settled"] == [None]
    # a RetriesExhausted record arriving late (another delivery's) must not fail a ready image
    # nor delete its variants
    assert functions.finalize_failure(key)["settled"] == [None]

    after = functions.image(image_id)[1]
    assert (after["status"], after["updated_at"], after["processed_at"]) == (
        "ready", before["updated_at"], before["processed_at"])
    assert stored_variants(aws, image_id) == VARIANTS


def test_retries_exhausted_twice_fails_once(functions, aws):
    image_id, key = upload(functions, b"not an image")
    assert functions.finalize_failure(key)["settled"] == ["failed"]
    first = functions.image(image_id)[1]
    assert functions.finalize_failure(key)["settled"] == [None]
    assert functions.image(image_id)[1]["updated_at"] == first["updated_at"]


@pytest.mark.parametrize("settled_as", ["ready", "failed"])
def test_an_s3_event_after_the_image_settled_is_skipped(settled_as, functions, aws):
    data = china_jpeg() if settled_as == "ready" else b"<html>not an image</html>"
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    before = functions.image(image_id)[1]
    assert before["status"] == settled_as

    # a new delivery (another sequencer, so the idempotency record does not answer it)
    event = s3_event(aws, key, len(data))
    event["Records"][0]["s3"]["object"]["sequencer"] = "0B0000000000000000"
    processed = functions.invoke("ProcessFunction", event)
    assert processed["outcomes"][0]["outcome"] == "skipped"
    assert functions.finalize_success(processed)["settled"] == [None]
    after = functions.image(image_id)[1]
    assert {k: after[k] for k in ("status", "updated_at", "errors", "sha256")} == {
        k: before[k] for k in ("status", "updated_at", "errors", "sha256")}
    assert stored_variants(aws, image_id) == (VARIANTS if settled_as == "ready" else set())


# ------------------------------------------------------------------ SDK retries: throttling and 5xx


class FakeTime:
    """botocore.endpoint's `time`, with sleep recorded instead of slept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def fail_first(client, event_name: str, count: int, status: int, body: bytes, headers: dict[str, str]):
    """Answer the first `count` requests of event_name with an error, before moto sees them."""
    calls = {"n": 0}

    def handler(request, **kwargs):
        calls["n"] += 1
        if calls["n"] <= count:
            return AWSResponse(request.url, status, headers, types.SimpleNamespace(content=body, stream=lambda: [body]))
        return None

    client.meta.events.register_first(f"before-send.{event_name}", handler)
    return calls


S3_ERROR = b"<?xml version='1.0'?><Error><Code>{code}</Code><Message>try again</Message></Error>"


@pytest.mark.parametrize("code,status", [("InternalError", 500), ("SlowDown", 503), ("ServiceUnavailable", 503)])
def test_s3_5xx_and_slowdown_are_retried_by_the_sdk(code, status, aws, monkeypatch):
    fake_time = FakeTime()
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    # adaptive mode also rate-limits the client itself after a throttle; that wait is botocore's
    # business, not what this test measures
    monkeypatch.setattr(botocore.retries.bucket.TokenBucket, "acquire", lambda self, amount=1, block=True: True)
    aws.s3.put_object(Bucket=aws.bucket_name, Key="uploads/acme/x", Body=b"12345")
    store = ObjectStore(aws.bucket_name)
    calls = fail_first(store._client, "s3.GetObject", 4, status, S3_ERROR.replace(b"{code}", code.encode()),
                       {"Content-Type": "application/xml"})

    assert store.read("uploads/acme/x", max_bytes=5) == b"12345"
    assert calls["n"] == 5
    assert len(fake_time.sleeps) == 4

    # storage.py: retries max_attempts 5 (botocore: retries, not counting the first call)
    calls = fail_first(store._client, "s3.PutObject", 6, status, S3_ERROR.replace(b"{code}", code.encode()),
                       {"Content-Type": "application/xml"})
    with pytest.raises(StorageError) as failure:
        store.write("images/acme/x/large.jpg", b"jpeg", content_type="image/jpeg")
    assert calls["n"] == 6  # and no more: then the function fails and Lambda retries it
    assert failure.value.status == 503 and failure.value.code == "storage_error"


def test_dynamodb_throttling_is_retried_by_pynamodb(aws, functions, monkeypatch):
    fake_time = FakeTime()
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    image_id, _ = upload(functions, china_jpeg())  # binds the models to the template's table
    client = ImageRecord._get_connection().connection.client
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                       "message": "Rate exceeded"}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    calls = fail_first(client, "dynamodb.GetItem", 3, 400, body, headers)

    record = Repository().get_image("acme", image_id)
    assert record is not None and record.id == image_id
    assert calls["n"] == 4  # PynamoDB's max_retry_attempts (3) after the first call
    assert len(fake_time.sleeps) == 3

    calls = fail_first(client, "dynamodb.UpdateItem", 4, 400, body, headers)
    with pytest.raises(StorageError):
        Repository().update_image(record, [ImageRecord.attempts.add(1)])
    assert calls["n"] == 4


# ------------------------------------------------------------------ what a failed image leaves behind


def test_the_same_bytes_after_a_crashed_attempt_are_processed_afresh(functions, aws, runtime, monkeypatch):
    data = china_jpeg()
    failed_id, key = upload(functions, data)
    crash = Injection(monkeypatch, *STAGES["mid_variants"], times=None)
    runtime.run_async("ProcessFunction", s3_event(aws, key, len(data)))
    assert functions.image(failed_id)[1]["status"] == "failed"
    crash.stop()

    again_id, again_key = upload(functions, data)
    functions.process_and_finalize(again_key, len(data))
    again = functions.image(again_id)[1]
    assert (again["status"], again["duplicate_of"]) == ("ready", None)
