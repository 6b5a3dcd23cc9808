"""Lambda, emulated in-process: handlers loaded from functions/<name>/app.py, a LambdaContext,
synchronous invokes, and asynchronous invokes with the template's retries and destinations.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from . import iam
from .template import ACCOUNT_ID, REGION, REPO_ROOT, Destination, Function, Stack

log = logging.getLogger("imgdrop_local.lambda")

LAYER_PATHS = (REPO_ROOT / "layers" / "core",)
DEFAULT_RETRY_DELAYS = (0.2, 0.5)  # seconds; AWS waits ~1 min then ~2 min


class FunctionError(Exception):
    """The handler raised (or returned something Lambda cannot serialize)."""

    def __init__(self, payload: dict[str, Any]):
        super().__init__(payload.get("errorMessage", ""))
        self.payload = payload


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context that powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_s: int
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    tenant_id: str | None = None

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error_payload(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _json_roundtrip(value: Any) -> Any:
    """What crosses Lambda's boundary is JSON: callers see what they would see in AWS."""
    return json.loads(json.dumps(value))


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_environment(stack: Stack, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Set os.environ to the union of every function's resolved variables plus `extra`
    (endpoint, secret, ...). All functions share this process, so a disagreement fails loudly."""
    env = stack.environment(check=True)
    for key, value in (extra or {}).items():
        if key in env and env[key] != value:
            raise ValueError(f"{key}: the local stack sets {value!r} but template.yaml says {env[key]!r}")
        env[key] = value
    os.environ.update(env)
    return env


class LambdaRuntime:
    """Loads handlers lazily and invokes them as Lambda would.

    Like Lambda, one loaded copy of a function (an "execution environment") serves one request
    at a time: module state is never shared by two concurrent requests. A function gets another
    copy when all of its copies are busy, the functions behind API routes up to ``api_copies``
    (the API's resolver keeps its request per thread, so copies never read each other's).

    Unlike Lambda, every copy shares this one process and its GIL, on the machine's cores, with
    the pipeline. Measured with bench/bench_load.py on 2 cores (200 uploads, 20 polling
    clients, p95 time to ready): one or two API copies 12.5-13.1 s, four 18.2 s, as many as
    asked 20-25 s. Answered sooner, the clients poll more often, and the pipeline gets less CPU.
    """

    def __init__(
        self,
        stack: Stack,
        *,
        retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
        workers: int = 4,
        api_copies: int = 1,
        sqs_client: Any = None,
        handlers: dict[str, Callable[..., Any]] | None = None,
    ):
        self.stack = stack
        self.retry_delays = tuple(retry_delays) or (0.0,)
        self._sqs = sqs_client
        self._queue_urls: dict[str, str] = {}
        self._injected: dict[str, Callable[..., Any]] = dict(handlers or {})
        self._idle: dict[str, list[Callable[..., Any]]] = {}
        self._loaded: dict[str, int] = {}
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda-async")
        self._inflight: set[Future[Any]] = set()
        self._inflight_lock = threading.Lock()
        self.invocations: list[tuple[str, str]] = []  # (function, outcome), for tests and logs
        self._api_copies = {
            route.function: threading.BoundedSemaphore(api_copies)
            for route in getattr(stack, "routes", ())
            if route.function
        }

    # ------------------------------------------------------------ loading

    def handler(self, logical_id: str) -> Callable[..., Any]:
        """An idle copy of the function (loaded now if none is idle); give it back with release()."""
        if logical_id in self._injected:
            return self._injected[logical_id]
        with self._load_lock:
            idle = self._idle.setdefault(logical_id, [])
            if idle:
                return idle.pop()
            copy_number = self._loaded.get(logical_id, 0)
            handler = load_handler(self.stack.function(logical_id), copy_number)
            self._loaded[logical_id] = copy_number + 1
            return handler

    def release(self, logical_id: str, handler: Callable[..., Any]) -> None:
        if logical_id not in self._injected:
            with self._load_lock:
                self._idle.setdefault(logical_id, []).append(handler)

    def preload(self) -> list[str]:
        """Import every handler now, so a broken import shows at start-up; answers the failures."""
        failed = []
        for logical_id in self.stack.functions:
            try:
                self.release(logical_id, self.handler(logical_id))
            except Exception as exc:  # noqa: BLE001 - reported, then raised again on invoke
                log.warning("cannot load %s: %s: %s", logical_id, type(exc).__name__, exc)
                failed.append(logical_id)
        return failed

    # ------------------------------------------------------------ invoking

    def context(self, fn: Function, request_id: str | None = None) -> LambdaContext:
        return LambdaContext(
            function_name=fn.name,
            memory_limit_in_mb=fn.memory_mb,
            invoked_function_arn=fn.arn,
            aws_request_id=request_id or str(uuid.uuid4()),
            timeout_s=fn.timeout_s,
        )

    def invoke(self, logical_id: str, event: Any, *, request_id: str | None = None) -> Any:
        """RequestResponse: answers the handler's JSON result or raises FunctionError."""
        fn = self.stack.function(logical_id)
        context = self.context(fn, request_id)
        started = time.monotonic()
        handler = None
        try:
            handler = self.handler(logical_id)
            # the function's AWS calls carry its role's credentials
            with self._api_copies.get(logical_id) or contextlib.nullcontext(), iam.acting_as(logical_id):
                result = _json_roundtrip(handler(_json_roundtrip(event), context))
        except Exception as exc:  # noqa: BLE001 - a function error, as Lambda reports it
            payload = _error_payload(exc)
            payload["requestId"] = context.aws_request_id
            log.warning("%s failed in %.0f ms: %s: %s", fn.logical_id,
                        (time.monotonic() - started) * 1000, payload["errorType"], payload["errorMessage"])
            self.invocations.append((logical_id, "error"))
            raise FunctionError(payload) from exc
        finally:
            if handler is not None:
                self.release(logical_id, handler)
        elapsed = time.monotonic() - started
        if elapsed > fn.timeout_s:
            log.warning("%s took %.1f s, over its %d s timeout", fn.logical_id, elapsed, fn.timeout_s)
        self.invocations.append((logical_id, "ok"))
        return result

    def invoke_async(self, logical_id: str, event: Any) -> Future[Any]:
        """Event invocation: queued, retried per EventInvokeConfig, then sent to a destination."""
        future = self._executor.submit(self.run_async, logical_id, event)
        with self._inflight_lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)
        exc = future.exception()
        if exc is not None:
            log.error("asynchronous invocation crashed: %r", exc)

    def run_async(self, logical_id: str, event: Any) -> dict[str, Any]:
        """The asynchronous invocation, in the calling thread; answers the destination record."""
        fn = self.stack.function(logical_id)
        config = fn.invoke_config
        request_id = str(uuid.uuid4())
        attempts = config.maximum_retry_attempts + 1
        result: Any = None
        error: dict[str, Any] | None = None
        attempt = 0
        for attempt in range(1, attempts + 1):
            try:
                result = self.invoke(logical_id, event, request_id=request_id)
                error = None
                break
            except FunctionError as exc:
                error = exc.payload
                if attempt < attempts:
                    delay = self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)]
                    log.info("%s: retry %d of %d in %.1f s", fn.logical_id, attempt,
                             config.maximum_retry_attempts, delay)
                    time.sleep(delay)
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": _timestamp(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{fn.arn}:$LATEST",
                "condition": "Success" if error is None else "RetriesExhausted",
                "approximateInvokeCount": attempt,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "responsePayload": result,
        }
        if error is not None:
            record["responseContext"]["functionError"] = "Unhandled"
            record["responsePayload"] = {k: error[k] for k in ("errorMessage", "errorType", "stackTrace")}
            destination = config.on_failure
            if destination is None:
                log.error("%s: event dropped after %d attempts (no OnFailure destination)",
                          fn.logical_id, attempt)
        else:
            destination = config.on_success
        if destination is not None:
            self.deliver(destination, record, source=logical_id)
        return record

    def deliver(self, destination: Destination, record: dict[str, Any], *, source: str | None = None) -> None:
        """Lambda delivers a destination record with the source function's execution role: a role
        without the permission loses the record (AWS counts a DestinationDeliveryFailure)."""
        if destination.type == "Lambda":
            if source is not None and not iam.permits(source, "lambda:InvokeFunction", destination.arn):
                log.error("%s: destination record dropped: its role may not lambda:InvokeFunction %s",
                          source, destination.arn)
                return
            # Destinations are invoked asynchronously too; run the chain in this thread so a
            # bounded pool never waits on itself.
            self.run_async(destination.target, record)
        elif destination.type == "SQS":
            queue = self.stack.queue_names.get(destination.target) or destination.arn.rsplit(":", 1)[-1]
            self._send_sqs(queue, record, source)
        else:
            log.error("destination type %s is not emulated; record dropped", destination.type)

    def _send_sqs(self, queue: str, record: dict[str, Any], source: str | None = None) -> None:
        from botocore.exceptions import ClientError

        if self._sqs is None:
            import boto3

            self._sqs = boto3.client("sqs", region_name=REGION)
        if queue not in self._queue_urls:  # Lambda needs no lookup: it holds the ARN
            with iam.acting_as(None):
                answer = self._sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=ACCOUNT_ID)
            self._queue_urls[queue] = answer["QueueUrl"]
        try:
            with iam.acting_as(source):
                self._sqs.send_message(QueueUrl=self._queue_urls[queue], MessageBody=json.dumps(record))
        except ClientError as exc:
            log.error("%s: destination record dropped: SQS %s refused it: %s", source, queue, exc)
            return
        log.info("sent a destination record to SQS %s", queue)

    # ------------------------------------------------------------ lifecycle

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait for in-flight asynchronous invocations; answers whether all finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._inflight_lock:
                if not self._inflight:
                    return True
            time.sleep(0.05)
        return False

    def shutdown(self, timeout: float = 10.0) -> None:
        self.drain(timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)


def load_handler(fn: Function, copy_number: int = 0) -> Callable[..., Any]:
    """Import functions/<name>/app.py under a unique module name, with the layers on sys.path
    as /opt/python would be. The function folders stay off sys.path: five of them share one
    process here, and each holds only its thin app.py."""
    for path in LAYER_PATHS:
        if str(path) not in sys.path:
            sys.path.append(str(path))
    module_name = f"imgdrop_local_fn_{fn.logical_id}_{copy_number}"
    spec = importlib.util.spec_from_file_location(module_name, fn.module_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{fn.module_path}: cannot load {fn.logical_id}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with iam.acting_as(fn.logical_id):  # the init phase runs with the function's role too
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    serialize_metric_flushes()
    return getattr(module, fn.handler_attr)


# Held while a request adds to powertools' shared metric set, and while one prints and clears it.
_METRICS_LOCK = threading.RLock()
_METRICS_CALLS = ("add_metric", "add_dimension", "add_metadata", "serialize_metric_set", "clear_metrics",
                  "flush_metrics")


def serialize_metric_flushes() -> None:
    """Make powertools' metric set safe to share between requests served at the same time.

    Lambda serves one request at a time in an execution environment; here every function shares
    imgdrop.observability's Metrics (one module in one process), and requests run on threads.
    One request's flush found the set emptied by another's between its emptiness check and its
    serialization, and raised: GET /v1/images answered 500 ("Must contain at least one metric",
    bench_load under load). Under one lock, a flush prints whatever the set holds then (possibly
    another request's metrics too: locally they all reach the same log) and no metric is lost,
    also those that a request's own worker threads add, as in Lambda. Once per process."""
    observability = sys.modules.get("imgdrop.observability")
    if observability is None:
        return
    provider = observability.metrics.provider
    if getattr(provider, "_imgdrop_serialized", False):
        return
    for name in _METRICS_CALLS:
        setattr(provider, name, _holding_the_metrics_lock(provider, name))
    provider._imgdrop_serialized = True


def _holding_the_metrics_lock(provider: Any, name: str) -> Callable[..., Any]:
    """``provider.name``, called under the lock (the class's method, looked up at each call)."""

    @functools.wraps(getattr(type(provider), name))
    def call(*args: Any, **kwargs: Any) -> Any:
        with _METRICS_LOCK:
            return getattr(type(provider), name)(provider, *args, **kwargs)

    return call
