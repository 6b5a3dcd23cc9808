"""S3 notifications and schedules, turned into asynchronous Lambda invocations.

moto cannot invoke an in-process function, so the bucket's notification (its event and key
filter from template.yaml) is pointed at a local SQS queue; a poller takes each record and
invokes the template's target function asynchronously, with its retries and destinations.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from .lambda_runtime import LambdaRuntime
from .template import ACCOUNT_ID, REGION, Notification, Schedule, Stack

log = logging.getLogger("imgdrop_local.dispatch")


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
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=self.poll_wait
                ).get("Messages", [])
            except Exception as exc:  # noqa: BLE001 - keep polling through a hiccup or shutdown
                if self._stop.is_set():
                    return
                log.warning("polling %s failed: %s", url, exc)
                self._stop.wait(1.0)
                continue
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
