"""The local Lambda, API Gateway and S3-notification emulation, driven with stand-in handlers
(no sockets, no moto): retries, destination records, payload 2.0 events and answers."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import pytest
from thread_runs import Run

from imgdrop_local.dispatcher import Dispatcher, lambda_record
from imgdrop_local.http_api import MAX_PAYLOAD_BYTES, HttpApi
from imgdrop_local.lambda_runtime import FunctionError, LambdaRuntime, apply_environment, load_handler
from imgdrop_local.template import load


class FakeSqs:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def get_queue_url(self, QueueName, **_):
        return {"QueueUrl": f"https://sqs.local/{QueueName}"}

    def send_message(self, QueueUrl, MessageBody):
        self.sent.append((QueueUrl, json.loads(MessageBody)))


@pytest.fixture(scope="module")
def stack():
    return load()


def runtime_with(stack, sqs=None, **handlers):
    return LambdaRuntime(stack, retry_delays=(0, 0), workers=2, sqs_client=sqs or FakeSqs(),
                         handlers=handlers)


def s3_event(key="uploads/t/abc"):
    return {"Records": [{"eventName": "ObjectCreated:Post", "s3": {"bucket": {"name": "b"},
                                                                   "object": {"key": key, "size": 3}}}]}


def test_success_is_delivered_once_to_on_success_with_aws_record_format(stack):
    seen = []

    def process(event, context):
        assert context.function_name == "ProcessFunction"
        assert context.memory_limit_in_mb == 2048
        assert 0 < context.get_remaining_time_in_millis() <= 300_000  # the template's Processing timeout
        return {"sha256": "ab"}

    runtime = runtime_with(stack, ProcessFunction=process, FinalizeFunction=lambda e, c: seen.append(e))
    record = runtime.run_async("ProcessFunction", s3_event())

    assert seen == [record]
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"].endswith(":function:ProcessFunction:$LATEST")
    assert record["requestPayload"] == s3_event()
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"sha256": "ab"}


def test_failure_is_retried_twice_then_sent_to_on_failure(stack):
    calls, seen = [], []

    def process(event, context):
        calls.append(context.aws_request_id)
        raise ValueError("broken image")

    runtime = runtime_with(stack, ProcessFunction=process, FinalizeFunction=lambda e, c: seen.append(e))
    record = runtime.run_async("ProcessFunction", s3_event())

    assert len(calls) == 3 and len(set(calls)) == 1  # retries keep the request id
    assert seen == [record]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    payload = record["responsePayload"]
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "broken image")
    assert any("in process" in line for line in payload["stackTrace"])


def test_a_retry_that_succeeds_reports_its_invoke_count(stack):
    attempts = []

    def flaky(event, context):
        attempts.append(1)
        if len(attempts) < 2:
            raise TimeoutError("slow")
        return "ok"

    runtime = runtime_with(stack, ProcessFunction=flaky, FinalizeFunction=lambda e, c: None)
    record = runtime.run_async("ProcessFunction", s3_event())
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_finalize_failures_land_in_the_failed_events_queue(stack):
    sqs = FakeSqs()

    def finalize(event, context):
        raise RuntimeError("table down")

    runtime = runtime_with(stack, sqs, ProcessFunction=lambda e, c: {}, FinalizeFunction=finalize)
    runtime.run_async("ProcessFunction", s3_event())

    ((url, record),) = sqs.sent
    assert url.endswith("/imgdrop-dev-failed-events")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["functionArn"].endswith(":function:FinalizeFunction:$LATEST")
    assert record["requestPayload"]["requestContext"]["condition"] == "Success"


def test_results_cross_the_boundary_as_json(stack):
    runtime = runtime_with(stack, ApiFunction=lambda e, c: {"when": object()})
    with pytest.raises(FunctionError) as info:
        runtime.invoke("ApiFunction", {})
    assert info.value.payload["errorType"] == "TypeError"


def test_invoke_async_runs_in_the_pool(stack):
    seen = []
    runtime = runtime_with(stack, ProcessFunction=lambda e, c: 1,
                           FinalizeFunction=lambda e, c: seen.append(e))
    runtime.invoke_async("ProcessFunction", s3_event()).result(5)
    assert runtime.drain(1)
    runtime.shutdown()
    assert len(seen) == 1


def test_apply_environment_refuses_to_contradict_the_template(stack, monkeypatch):
    monkeypatch.setattr("os.environ", dict())
    env = apply_environment(stack, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    assert env["TABLE_NAME"] == "imgdrop-dev" and env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    with pytest.raises(ValueError, match="TABLE_NAME"):
        apply_environment(stack, {"TABLE_NAME": "other"})


def test_handlers_load_under_unique_module_names(stack, tmp_path):
    from dataclasses import replace

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(f"def lambda_handler(e, c):\n    return {name!r}\n")
    fn = stack.function("ApiFunction")
    one = load_handler(replace(fn, logical_id="A", code_uri=tmp_path / "a"))
    two = load_handler(replace(fn, logical_id="B", code_uri=tmp_path / "b"))
    assert (one({}, None), two({}, None)) == ("a", "b")


# ---------------------------------------------------------------- HTTP API


def api_with(stack, authorizer=None, api=None, origins=None, static_dir=None):
    seen: dict[str, dict] = {}

    def default_authorizer(event, context):
        seen["authorizer"] = event
        return {"isAuthorized": event["headers"].get("authorization") != "Bearer no",
                "context": {"tenant": "t1", "scopes": "images:read"}}

    def default_api(event, context):
        seen["api"] = event
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}

    runtime = runtime_with(stack, AuthorizerFunction=authorizer or default_authorizer,
                           ApiFunction=api or default_api)
    return HttpApi(runtime, stack.routes, stack.cors, cors_origins=origins, static_dir=static_dir), seen


def test_payload_2_event_for_an_authorized_route(stack):
    api, seen = api_with(stack)
    status, headers, _ = api.handle("GET", "/v1/images/01abc?tag=a&tag=b&limit=5",
                                    {"Authorization": "Bearer t", "Cookie": "a=1; b=2", "X-Thing": "x"}, b"")
    assert status == 200
    event = seen["api"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /v1/images/{id}"
    assert event["rawPath"] == "/v1/images/01abc"
    assert event["rawQueryString"] == "tag=a&tag=b&limit=5"
    assert event["queryStringParameters"] == {"tag": "a,b", "limit": "5"}
    assert event["pathParameters"] == {"id": "01abc"}
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-thing"] == "x"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["authorizer"] == {"lambda": {"tenant": "t1", "scopes": "images:read"}}
    assert "body" not in event and event["isBase64Encoded"] is False

    auth = seen["authorizer"]
    assert (auth["version"], auth["type"]) == ("2.0", "REQUEST")
    assert auth["routeArn"].endswith("/$default/GET/v1/images/01abc")
    assert auth["identitySource"] == ["Bearer t"]


def test_public_routes_skip_the_authorizer(stack):
    api, seen = api_with(stack)
    status, _, _ = api.handle("GET", "/v1/health", {}, b"")
    assert status == 200 and "authorizer" not in seen
    assert "authorizer" not in seen["api"]["requestContext"]


def test_denied_requests_answer_403_like_api_gateway(stack):
    api, seen = api_with(stack)
    status, _, body = api.handle("GET", "/v1/images", {"authorization": "Bearer no"}, b"")
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert "api" not in seen


def test_unknown_routes_and_methods_answer_404(stack):
    api, _ = api_with(stack)
    for method, path in (("GET", "/v1/nothing"), ("PUT", "/v1/images/x"), ("GET", "/v1/images/x/y/z")):
        status, _, body = api.handle(method, path, {}, b"")
        assert (status, json.loads(body)) == (404, {"message": "Not Found"})


def test_binary_and_multipart_bodies_are_base64_text_is_not(stack):
    api, seen = api_with(stack)
    api.handle("POST", "/v1/images", {"content-type": "multipart/form-data; boundary=x"}, b"\xff\x00--x")
    assert seen["api"]["isBase64Encoded"] is True
    assert base64.b64decode(seen["api"]["body"]) == b"\xff\x00--x"
    api.handle("POST", "/v1/uploads", {"content-type": "application/json"}, b'{"items": []}')
    assert seen["api"]["isBase64Encoded"] is False and seen["api"]["body"] == '{"items": []}'


def test_bodies_over_10_mb_answer_413(stack):
    api, seen = api_with(stack)
    status, _, _ = api.handle("POST", "/v1/images", {}, b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert status == 413 and "api" not in seen


def test_response_mapping(stack):
    def answer(event, context):
        return {"statusCode": 201, "headers": {"Location": "/v1/images/1"}, "cookies": ["s=1"],
                "multiValueHeaders": {"X-Multi": ["a", "b"]},
                "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True}

    api, _ = api_with(stack, api=answer)
    status, headers, body = api.handle("POST", "/v1/images", {}, b"")
    assert status == 201 and body == b"\x89PNG"
    assert ("location", "/v1/images/1") in headers and ("set-cookie", "s=1") in headers
    assert [v for k, v in headers if k == "x-multi"] == ["a", "b"]

    api, _ = api_with(stack, api=lambda e, c: {"items": []})  # no statusCode: inferred JSON 200
    status, headers, body = api.handle("GET", "/v1/health", {}, b"")
    assert (status, json.loads(body)) == (200, {"items": []})
    assert ("content-type", "application/json") in headers


def test_a_crashing_function_answers_500(stack):
    def crash(event, context):
        raise RuntimeError("bug")

    api, _ = api_with(stack, api=crash)
    status, _, body = api.handle("GET", "/v1/health", {}, b"")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    api, _ = api_with(stack, authorizer=lambda e, c: {"allow": True})
    assert api.handle("GET", "/v1/images", {}, b"")[0] == 500


def test_cors_preflight_and_origins(stack):
    api, _ = api_with(stack)
    status, headers, _ = api.handle("OPTIONS", "/v1/uploads", {"origin": "http://app",
                                                               "access-control-request-method": "POST"}, b"")
    headers = dict(headers)
    assert status == 204
    assert headers["access-control-allow-origin"] == "*"
    assert "PATCH" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"]
    assert headers["access-control-max-age"] == "600"

    narrow, _ = api_with(stack, origins=["http://ok"])
    ok = dict(narrow.handle("GET", "/v1/health", {"origin": "http://ok"}, b"")[1])
    bad = dict(narrow.handle("GET", "/v1/health", {"origin": "http://evil"}, b"")[1])
    assert ok["access-control-allow-origin"] == "http://ok"
    assert "access-control-allow-origin" not in bad


def test_web_folder_is_served_outside_v1(stack, tmp_path):
    (tmp_path / "index.html").write_text("<h1>up</h1>")
    (tmp_path / "app.js").write_text("1")
    api, _ = api_with(stack, static_dir=tmp_path)
    status, headers, body = api.handle("GET", "/", {}, b"")
    assert (status, body) == (200, b"<h1>up</h1>") and dict(headers)["content-type"].startswith("text/html")
    assert api.handle("GET", "/web/app.js", {}, b"")[2] == b"1"
    assert api.handle("GET", "/../../etc/passwd", {}, b"")[0] == 404
    assert api.handle("GET", "/missing.png", {}, b"")[0] == 404


# ---------------------------------------------------------------- dispatcher


class RecordingRuntime:
    def __init__(self):
        self.calls = []

    def invoke_async(self, function, event):
        self.calls.append((function, event))


def test_dispatcher_invokes_process_once_per_record_and_skips_test_events(stack):
    runtime = RecordingRuntime()
    dispatcher = Dispatcher(stack, runtime, s3=None, sqs=None, schedule_scale=0)
    notes = stack.notifications
    assert dispatcher.handle_message("ProcessFunction", notes, json.dumps({"Event": "s3:TestEvent"})) == 0
    moto_key = quote_plus("uploads/t/a b+c.png")  # moto encodes "/" too
    body = {"Records": [s3_event(moto_key)["Records"][0], s3_event("images%2Ft%2Fx")["Records"][0]]}
    assert dispatcher.handle_message("ProcessFunction", notes, json.dumps(body)) == 1
    ((function, event),) = runtime.calls
    assert function == "ProcessFunction"
    (record,) = event["Records"]
    assert record["s3"]["object"]["key"] == "uploads/t/a+b%2Bc.png"  # encoded as S3 encodes it


def test_lambda_record_fills_what_s3_sends(stack):
    record = lambda_record(s3_event()["Records"][0])
    assert record["eventSource"] == "aws:s3" and record["awsRegion"] == "us-east-1"
    assert record["s3"]["object"]["sequencer"]
    assert "principalId" in record["userIdentity"]


@pytest.mark.parametrize("copies", [1, 2])
def test_the_api_function_takes_as_many_requests_at_once_as_it_has_copies(stack, copies):
    """With two copies a second request is answered while the first is busy (its copy's resolver
    keeps its own request: tests/unit/test_rest_requests.py); with one (the default) it waits
    until the first request's handler returned."""
    import threading

    first_waiting, second_done = threading.Event(), threading.Event()

    def api(event, context):
        if event["n"] == 1:
            first_waiting.set()
            return second_done.wait(5 if copies > 1 else 0.2)  # False: the second request queued
        second_done.set()
        return True

    runtime = LambdaRuntime(stack, retry_delays=(0, 0), workers=2, api_copies=copies, sqs_client=FakeSqs(),
                            handlers={"ApiFunction": api})
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault(1, runtime.invoke("ApiFunction", {"n": 1})))
    first.start()
    assert first_waiting.wait(5)
    answers[2] = runtime.invoke("ApiFunction", {"n": 2})
    first.join(10)
    assert answers == {1: copies > 1, 2: True}


@pytest.fixture
def metrics(stack, tmp_path):
    """imgdrop's Metrics once a function that uses it is loaded (as every one does)."""
    from dataclasses import replace

    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(
        "from imgdrop.observability import metrics\n\ndef lambda_handler(e, c):\n    return None\n")
    load_handler(replace(stack.function("ApiFunction"), logical_id="Observed", code_uri=tmp_path / "fn"))
    from imgdrop.observability import metrics

    return metrics


class AnnouncedLock:
    """The metrics lock, saying when a thread has to wait for it."""

    def __init__(self, waiting):
        import threading

        self._lock, self._waiting = threading.RLock(), waiting

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            self._waiting.set()
            self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


def test_a_flush_never_finds_its_metrics_cleared_by_another_request(metrics, monkeypatch, capsys):
    """Made on purpose: while the first request's flush is between its emptiness check and its
    serialization, the second request adds a metric and flushes. Unserialized, the second printed
    both requests' metrics and cleared them, and the first raised SchemaValidationError (an API
    request answered 500 under load). Serialized, the second waits; each prints its own."""
    import threading

    from imgdrop_local import lambda_runtime

    checked, moved_on = threading.Event(), threading.Event()  # the second flushed, or had to wait
    monkeypatch.setattr(lambda_runtime, "_METRICS_LOCK", AnnouncedLock(moved_on))
    serialize = type(metrics.provider).serialize_metric_set

    def serialize_once_the_second_moved_on(self, *args, **kwargs):
        if threading.current_thread().name == "first":
            checked.set()
            assert moved_on.wait(5)
        return serialize(self, *args, **kwargs)

    monkeypatch.setattr(type(metrics.provider), "serialize_metric_set", serialize_once_the_second_moved_on)

    def first():
        metrics.add_metric("First", "Count", 1)
        metrics.flush_metrics()

    def second():
        assert checked.wait(5)
        metrics.add_metric("Second", "Count", 1)
        metrics.flush_metrics()
        moved_on.set()

    runs = [Run("first", first), Run("second", second)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(10)
    assert [run.error for run in runs] == [None, None]
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    names = sorted([m["Name"] for m in p["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for p in printed)
    assert names == [["First"], ["Second"]]


def test_metrics_a_request_adds_from_its_worker_threads_are_flushed_with_it(metrics, capsys):
    """As in Lambda, where the process is the environment: the webhooks function sends a batch's
    deliveries from a pool, and each adds its metric there."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: metrics.add_metric("Delivered", "Count", 1), range(4)))
    metrics.flush_metrics()
    [printed] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert printed["Delivered"] == [1.0] * 4
