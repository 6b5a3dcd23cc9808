"""S3 notifications and schedules, turned into asynchronous Lambda invocations.

moto cannot invoke an in-process function, so the bucket's notification (its event and key
filter from template.yaml) is pointed at a local SQS queue; a poller takes each record and
invokes the template's target function asynchronously, with its retries and destinations.

S3 announces a completed multipart upload once, as `ObjectCreated:CompleteMultipartUpload`;
moto also announces the object it stores for it as `ObjectCreated:Put`, which would start a
second run of the pipeline: `notify_multipart_uploads_as_s3` makes moto announce it once.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from . import iam
from .lambda_runtime import FunctionError, LambdaRuntime
from .template import ACCOUNT_ID, REGION, Notification, QueueSource, Schedule, Stack

log = logging.getLogger("imgdrop_local.dispatch")


_completing: contextvars.ContextVar[bool] = contextvars.ContextVar("imgdrop_local_completing", default=False)


def notify_multipart_uploads_as_s3() -> None:
    """moto (in this process: the local stack's server or the tests' mock) announces a completed
    multipart upload with one `ObjectCreated:CompleteMultipartUpload` event, as S3 does, and no
    `ObjectCreated:Put` for the object it stores meanwhile. Once per process."""
    from moto.s3.models import S3Backend

    complete = S3Backend.complete_multipart_upload
    if getattr(complete, "_imgdrop_as_s3", False):
        return
    put_object = S3Backend.put_object

    @functools.wraps(complete)
    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _completing.set(True)
        try:
            return complete(self, *args, **kwargs)
        finally:
            _completing.reset(token)

    @functools.wraps(put_object)
    def put_object_quietly_when_completing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _completing.get():
            kwargs["disable_notification"] = True
        return put_object(self, *args, **kwargs)

    complete_multipart_upload._imgdrop_as_s3 = True  # type: ignore[attr-defined]
    S3Backend.complete_multipart_upload = complete_multipart_upload  # type: ignore[method-assign]
    S3Backend.put_object = put_object_quietly_when_completing  # type: ignore[method-assign]


def _queue_name(stack: Stack, function: str) -> str:
    return f"{stack.bucket_name[:40]}-s3-to-{function}"[:80]


def configure_notifications(stack: Stack, s3: Any, sqs: Any) -> dict[str, str]:
    """One local queue per target function; answers {function logical id: queue URL}."""
    urls: dict[str, str] = {}
    configs = []
    for i, note in enumerate(stack.notifications):
        name = _queue_name(stack, note.function)
        if note.function not in urls:
            urls[note.function] = sqs.create_queue(QueueName=name)["QueueUrl"]
        rules = [{"Name": k, "Value": v} for k, v in (("prefix", note.prefix), ("suffix", note.suffix)) if v]
        config: dict[str, Any] = {
            "Id": f"{note.function}-{i}",
            "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}",
            "Events": [note.event],
        }
        if rules:
            config["Filter"] = {"Key": {"FilterRules": rules}}
        configs.append(config)
    if configs:
        s3.put_bucket_notification_configuration(
            Bucket=stack.bucket_name, NotificationConfiguration={"QueueConfigurations": configs})
    return urls


def lambda_record(record: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields S3 sends Lambda and moto leaves out. The key stays URL-encoded, as in
    AWS, so the handler must `unquote_plus` it (decoding here would decode twice there); moto
    also encodes "/", which S3 leaves alone, so the key is re-encoded the way S3 does it."""
    out = json.loads(json.dumps(record))
    obj = out.get("s3", {}).get("object", {})
    if "key" in obj:
        obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
    out.setdefault("eventVersion", "2.1")
    out.setdefault("eventSource", "aws:s3")
    out.setdefault("awsRegion", REGION)
    out.setdefault("eventTime", datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    out.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
    out.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
    out.setdefault("responseElements", {"x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                                        "x-amz-id-2": uuid.uuid4().hex})
    s3 = out.setdefault("s3", {})
    s3.setdefault("s3SchemaVersion", "1.0")
    bucket = s3.setdefault("bucket", {})
    bucket.setdefault("ownerIdentity", {"principalId": "LOCAL"})
    obj = s3.setdefault("object", {})
    obj.setdefault("sequencer", f"{time.time_ns():016X}")
    return out


class Dispatcher:
    def __init__(self, stack: Stack, runtime: LambdaRuntime, s3: Any, sqs: Any,
                 *, schedule_scale: float | None = None, poll_wait: int = 1):
        self.stack = stack
        self.runtime = runtime
        self.s3 = s3
        self.sqs = sqs
        self.poll_wait = poll_wait
        if schedule_scale is None:
            schedule_scale = float(os.environ.get("IMGDROP_SCHEDULE_SCALE", "1") or 1)
        self.schedule_scale = schedule_scale
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.queue_urls: dict[str, str] = {}

    def start(self) -> None:
        self.queue_urls = configure_notifications(self.stack, self.s3, self.sqs)
        for function, url in self.queue_urls.items():
            self._spawn(f"s3-poll-{function}", self._poll, function, url)
        for schedule in self.stack.schedules:
            if schedule.rate_seconds is None:
                log.warning("%s: %s is not a rate expression; not scheduled locally",
                            schedule.function, schedule.expression)
            elif self.schedule_scale <= 0:
                log.info("%s: schedules disabled (IMGDROP_SCHEDULE_SCALE=0)", schedule.function)
            else:
                self._spawn(f"schedule-{schedule.name}", self._tick, schedule)
        for source in self.stack.queue_sources:
            if not source.enabled:
                continue
            name = self.stack.queue_names[source.queue]
            with iam.acting_as(None):
                url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            pollers = queue_pollers(source)
            log.info("%s polls %s (%d at once locally, batches of %d)", source.function, name, pollers,
                     source.batch_size)
            for n in range(pollers):
                self._spawn(f"sqs-poll-{source.function}-{n}", self._poll_source, source, name, url)

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    # ------------------------------------------------------------ S3 -> Lambda

    def _poll(self, function: str, url: str) -> None:
        notes = [n for n in self.stack.notifications if n.function == function]
        while (messages := self._receive(url, url, None, MaxNumberOfMessages=10)) is not None:
            for message in messages:
                try:
                    self.handle_message(function, notes, message["Body"])
                finally:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def handle_message(self, function: str, notes: list[Notification], body: str) -> int:
        """Answers how many invocations the message started."""
        try:
            payload = json.loads(body)
        except ValueError:
            log.warning("not an S3 event: %.200s", body)
            return 0
        if payload.get("Event") == "s3:TestEvent":
            return 0
        started = 0
        for record in payload.get("Records", []):
            key = unquote_plus(record.get("s3", {}).get("object", {}).get("key", ""))
            if notes and not any(n.matches(key) for n in notes):
                continue  # moto filters too; the template is the authority
            log.info("%s %s -> %s", record.get("eventName"), key, function)
            # S3 invokes a function with one record per event.
            self.runtime.invoke_async(function, {"Records": [lambda_record(record)]})
            started += 1
        return started

    # ------------------------------------------------------------ schedules

    def _tick(self, schedule: Schedule) -> None:
        assert schedule.rate_seconds is not None  # type narrowing: only rate schedules are ticked  # nosec B101
        period = schedule.rate_seconds / self.schedule_scale
        log.info("%s runs every %.1f s (%s / %g)", schedule.function, period, schedule.expression,
                 self.schedule_scale)
        while not self._stop.wait(period):
            self.runtime.invoke_async(schedule.function, scheduled_event(schedule))


    # ------------------------------------------------------------ SQS event source mappings

    def _poll_source(self, source: QueueSource, name: str, url: str) -> None:
        """Lambda's poller of an SQS event source: receive a batch (with the function's role, as
        Lambda does), invoke the function synchronously, delete what succeeded. A failed message
        stays in the queue: SQS hands it over again after its visibility timeout, and its
        RedrivePolicy moves it to the dead-letter queue after maxReceiveCount receives."""
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        receive = {"MaxNumberOfMessages": min(10, source.batch_size), "AttributeNames": ["All"],
                   "MessageAttributeNames": ["All"]}
        while (messages := self._receive(url, name, source.function, **receive)) is not None:
            if messages:
                self.handle_batch(source, arn, url, messages)

    def _receive(
        self, url: str, label: str, acting_as: str | None, **receive: Any
    ) -> list[dict[str, Any]] | None:
        """One long poll of the queue (as `acting_as`'s role, or the administrator for None): its
        messages, [] after a failure (logged; polling goes on a second later), None once stopped."""
        if self._stop.is_set():
            return None
        try:
            with iam.acting_as(acting_as):
                return list(self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=self.poll_wait, **receive)
                            .get("Messages", []))
        except Exception as exc:  # noqa: BLE001 - keep polling through a hiccup or shutdown
            if self._stop.is_set():
                return None
            log.warning("polling %s failed: %s", label, exc)
            self._stop.wait(1.0)
            return []

    def handle_batch(
        self, source: QueueSource, arn: str, url: str, messages: list[dict[str, Any]]
    ) -> list[str]:
        """Invoke the function with one batch; answers the ids of the messages left for a retry."""
        event = {"Records": [sqs_record(message, arn) for message in messages]}
        ids = [message["MessageId"] for message in messages]
        try:
            result = self.runtime.invoke(source.function, event)
        except FunctionError:
            failed = list(ids)  # the whole batch goes back
        else:
            failed = batch_item_failures(result, ids) if source.report_batch_item_failures else []
        for message in messages:
            if message["MessageId"] in failed:
                continue
            try:
                with iam.acting_as(source.function):
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except Exception as exc:  # noqa: BLE001 - the message comes back, as it would in AWS
                log.warning("%s: could not delete message %s: %s", source.function, message["MessageId"], exc)
        return failed


def queue_pollers(source: QueueSource) -> int:
    """How many batches of a queue run at once locally: its MaximumConcurrency, at most
    IMGDROP_QUEUE_CONCURRENCY (2 by default: a laptop is not a fleet)."""
    cap = int(os.environ.get("IMGDROP_QUEUE_CONCURRENCY") or 2)
    return max(1, min(cap, source.maximum_concurrency or cap))


def sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """A received message as Lambda hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "dataType": v.get("DataType")}
                              for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def batch_item_failures(result: Any, ids: list[str]) -> list[str]:
    """The ids a ReportBatchItemFailures answer names; an answer Lambda cannot read fails them all."""
    if result is None or (isinstance(result, dict) and not result.get("batchItemFailures")):
        return []
    try:
        failed = [str(item["itemIdentifier"]) for item in result["batchItemFailures"]]
    except (TypeError, KeyError):
        return list(ids)
    return failed if all(f in ids for f in failed) else list(ids)


def scheduled_event(schedule: Schedule) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": now,
        "region": REGION,
        "resources": [f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{schedule.name}"],
        "detail": {},
    }
