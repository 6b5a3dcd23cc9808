"""Run the functions of template.yaml in-process against moto, as tests/integration do, and
record every AWS call the code makes (bench/partitions.py, bench/cost.py).

Calls are recorded with botocore event hooks on every client created while the recorder is
installed (``before-parameter-build`` and ``after-call``): the operation, its parameters, its
answer, and which function was running. For DynamoDB, every written item is read before and
after the write (by a client the hooks leave alone), so each write is billed as DynamoDB bills
it: write units per KB of the larger image of the item, doubled in a transaction, and the
global secondary indexes' writes (an index holds the item when it has the index's keys; with
ALL projection any change of the item is an index write; a change of the index key a delete
and a put). Reads are billed per 4 KB (half for eventually consistent reads).

Usage::

    with recorded_stack() as run:
        image_id = run.upload(photo_bytes, album_id=..., title=...)
    run.recorder.calls  # [Call, ...]
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import importlib.util
import io
import json
import math
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "layers" / "core", ROOT / "infra" / "local", ROOT / "tests" / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

DYNAMO_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
GSI_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds to each index entry


# --- DynamoDB sizes -------------------------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, as DynamoDB sizes items."""
    kind, v = next(iter(value.items()))
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v) if isinstance(v, bytes) else len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_number_size(s) for s in v)
    if kind == "BS":
        return sum(len(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(e) for k, e in v.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


@dataclass
class Index:
    name: str
    hash_key: str
    range_key: str | None


@dataclass
class TableSchema:
    hash_key: str
    range_key: str | None
    indexes: list[Index]


@dataclass
class Access:
    """Capacity one call used on one partition (a table's or an index's partition key)."""

    table: str
    index: str | None  # None: the base table
    pk: str
    wcu: float = 0.0
    rcu: float = 0.0
    writes: int = 0
    reads: int = 0
    sk: str = ""  # the base item's sort key ("" for a query)


@dataclass
class Call:
    function: str | None
    service: str
    operation: str
    params: dict[str, Any]
    started: float = 0.0
    response: dict[str, Any] | None = None
    error: str | None = None
    before: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)
    after: list[dict[str, Any] | None] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    upload: int | None = None  # which upload of the run (Run.upload), None outside one


# --- the recorder ---------------------------------------------------------------------------


class Recorder:
    """Hooks every botocore client created while installed; see the module's docstring."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        # while not enabled: only when each call ran, (function, start, end), no probes
        self.timings: list[tuple[str | None, float, float]] = []
        self.function: str | None = None
        self.upload: int | None = None
        self.enabled = True
        self._lock = threading.Lock()
        self._pause = threading.local()
        self._probe: Any = None
        self._schemas: dict[str, TableSchema] = {}
        self._original: Any = None

    # installing
    def install(self) -> None:
        from botocore.client import ClientCreator

        original = ClientCreator.create_client
        recorder = self

        def create_client(creator: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(creator, *args, **kwargs)
            if not getattr(recorder._pause, "on", False):
                client.meta.events.register("before-parameter-build", recorder._before)
                client.meta.events.register("after-call", recorder._after)
            return client

        self._original = original
        ClientCreator.create_client = create_client  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from botocore.client import ClientCreator

        if self._original is not None:
            ClientCreator.create_client = self._original  # type: ignore[method-assign]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Clients created in the block get no hooks (the probe)."""
        self._pause.on = True
        try:
            yield
        finally:
            self._pause.on = False

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Calls made in the block (this thread) are neither recorded nor timed."""
        self._pause.quiet = True
        try:
            yield
        finally:
            self._pause.quiet = False

    @contextlib.contextmanager
    def running(self, function: str | None) -> Iterator[None]:
        previous, self.function = self.function, function
        try:
            yield
        finally:
            self.function = previous

    @property
    def probe(self) -> Any:
        if self._probe is None:
            import boto3

            with self.paused():
                self._probe = boto3.session.Session().client("dynamodb")
        return self._probe

    def schema(self, table: str) -> TableSchema:
        if table not in self._schemas:
            with self.paused():
                desc = self.probe.describe_table(TableName=table)["Table"]

            def keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
                h = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
                r = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
                return h, r

            h, r = keys(desc["KeySchema"])
            indexes = [
                Index(g["IndexName"], *keys(g["KeySchema"])) for g in desc.get("GlobalSecondaryIndexes", [])
            ]
            self._schemas[table] = TableSchema(h, r, indexes)
        return self._schemas[table]

    # items touched by a write
    def _targets(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
        """(table, key, kind) of every item a write names; kind: put|update|delete|check."""
        out = []

        def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
            s = self.schema(table)
            return {k: item[k] for k in (s.hash_key, s.range_key) if k and k in item}

        if operation == "PutItem":
            out.append((params["TableName"], key_of(params["TableName"], params["Item"]), "put"))
        elif operation in ("UpdateItem", "DeleteItem"):
            out.append(
                (params["TableName"], params["Key"], "update" if operation == "UpdateItem" else "delete")
            )
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                kind, body = next(iter(entry.items()))
                key = body["Key"] if "Key" in body else key_of(body["TableName"], body["Item"])
                out.append(
                    (
                        body["TableName"],
                        key,
                        {"Put": "put", "Update": "update", "Delete": "delete"}.get(kind, "check"),
                    )
                )
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        out.append((table, key_of(table, request["PutRequest"]["Item"]), "put"))
                    else:
                        out.append((table, request["DeleteRequest"]["Key"], "delete"))
        return out

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        with self.paused():
            return self.probe.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    # hooks
    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if getattr(self._pause, "quiet", False):
            return
        if not self.enabled:
            context["_imgdrop_t0"] = (self.function, time.perf_counter())
            return
        service = model.service_model.service_name
        if service == "dynamodb":
            kept = copy.deepcopy(params)
        else:  # bodies may be streams: keep their size only
            kept = {k: v for k, v in params.items() if k != "Body"}
            body = params.get("Body")
            if isinstance(body, (bytes, bytearray)):
                kept["BodyBytes"] = len(body)
            elif body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
                with contextlib.suppress(Exception):
                    here = body.tell()
                    kept["BodyBytes"] = body.seek(0, 2) - here
                    body.seek(here)
        call = Call(self.function, service, model.name, kept, started=time.perf_counter(), upload=self.upload)
        if call.service == "dynamodb" and call.operation in DYNAMO_WRITES:
            targets = self._targets(call.operation, params)
            call.before = [(table, key, self._get(table, key)) for table, key, _ in targets]
            call.params["_kinds"] = [kind for _, _, kind in targets]
        context["_imgdrop_call"] = call

    def _after(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        timing = context.pop("_imgdrop_t0", None)
        if timing is not None:
            with self._lock:
                self.timings.append((timing[0], timing[1], time.perf_counter()))
        call = context.pop("_imgdrop_call", None)
        if call is None:
            return
        call.response = parsed
        if getattr(http_response, "status_code", 200) >= 300:
            call.error = parsed.get("Error", {}).get("Code", "Error")
        if call.service == "dynamodb":
            if call.operation in DYNAMO_WRITES:
                call.after = [self._get(table, key) for table, key, _ in call.before]
            try:
                call.accesses = self._account(call)
            except Exception as exc:  # an accounting gap must not break the run
                call.accesses = []
                call.error = call.error or f"accounting: {exc!r}"
        with self._lock:
            self.calls.append(call)

    # DynamoDB accounting
    def _pk(self, table: str, item: dict[str, Any] | None, index: Index | None) -> str | None:
        if not item:
            return None
        attr = index.hash_key if index else self.schema(table).hash_key
        if index and (attr not in item or (index.range_key and index.range_key not in item)):
            return None
        value = item.get(attr)
        return next(iter(value.values())) if value else None

    def _account(self, call: Call) -> list[Access]:
        op, params = call.operation, call.params
        out: list[Access] = []
        if op in DYNAMO_WRITES:
            factor = 2 if op == "TransactWriteItems" else 1
            kinds = params.get("_kinds", [])
            failed = call.error is not None
            for (table, key, before), after, kind in zip(call.before, call.after, kinds, strict=False):
                old, new = item_size(before), item_size(after)
                schema = self.schema(table)
                pk = next(iter(key[schema.hash_key].values()))
                sk = str(next(iter(key[schema.range_key].values()))) if schema.range_key in key else ""
                if kind == "check":
                    out.append(Access(table, None, pk, wcu=factor * write_units(old), writes=1, sk=sk))
                    continue
                changed = before != after
                out.append(Access(table, None, pk, wcu=factor * write_units(max(old, new)), writes=1, sk=sk))
                if failed or not changed:
                    continue
                for index in self.schema(table).indexes:
                    old_pk, new_pk = self._pk(table, before, index), self._pk(table, after, index)
                    old_key = (old_pk, (before or {}).get(index.range_key or "")) if old_pk else None
                    new_key = (new_pk, (after or {}).get(index.range_key or "")) if new_pk else None
                    if old_key and new_key and old_key == new_key:
                        size = max(old, new) + GSI_ENTRY_OVERHEAD
                        out.append(
                            Access(table, index.name, new_pk or "", wcu=write_units(size), writes=1, sk=sk)
                        )
                        continue
                    if old_key:
                        out.append(
                            Access(
                                table,
                                index.name,
                                old_pk or "",
                                wcu=write_units(old + GSI_ENTRY_OVERHEAD),
                                writes=1,
                                sk=sk,
                            )
                        )
                    if new_key:
                        out.append(
                            Access(
                                table,
                                index.name,
                                new_pk or "",
                                wcu=write_units(new + GSI_ENTRY_OVERHEAD),
                                writes=1,
                                sk=sk,
                            )
                        )
            return out
        if op == "GetItem":
            item = self._get(params["TableName"], params["Key"])
            schema = self.schema(params["TableName"])
            pk = next(iter(params["Key"][schema.hash_key].values()))
            sk = (
                str(next(iter(params["Key"][schema.range_key].values())))
                if schema.range_key in params["Key"]
                else ""
            )
            rcu = read_units(item_size(item), bool(params.get("ConsistentRead")))
            return [Access(params["TableName"], None, pk, rcu=rcu, reads=1, sk=sk)]
        if op in ("BatchGetItem", "TransactGetItems"):
            if op == "BatchGetItem":
                requests = [
                    (table, key, bool(spec.get("ConsistentRead")))
                    for table, spec in params["RequestItems"].items()
                    for key in spec["Keys"]
                ]
                factor = 1.0
            else:
                requests = [(e["Get"]["TableName"], e["Get"]["Key"], True) for e in params["TransactItems"]]
                factor = 2.0
            unprocessed = (call.response or {}).get("UnprocessedKeys") or {}
            skipped = {
                json.dumps(k, sort_keys=True) for spec in unprocessed.values() for k in spec.get("Keys", [])
            }
            for table, key, consistent in requests:
                if json.dumps(key, sort_keys=True) in skipped:
                    continue
                item = self._get(table, key)
                schema = self.schema(table)
                pk = next(iter(key[schema.hash_key].values()))
                sk = str(next(iter(key[schema.range_key].values()))) if schema.range_key in key else ""
                out.append(
                    Access(
                        table, None, pk, rcu=factor * read_units(item_size(item), consistent), reads=1, sk=sk
                    )
                )
            return out
        if op in ("Query", "Scan"):
            table = params["TableName"]
            index = next((i for i in self.schema(table).indexes if i.name == params.get("IndexName")), None)
            items = (call.response or {}).get("Items", [])
            s = self.schema(table)
            sizes = []
            for item in items:
                full = self._get(table, {k: item[k] for k in (s.hash_key, s.range_key) if k and k in item})
                sizes.append(item_size(full) + (GSI_ENTRY_OVERHEAD if index else 0))
            scanned = (call.response or {}).get("ScannedCount", len(items))
            total = sum(sizes) * (scanned / len(items) if items else 0)
            pk = (
                self._query_pk(params, index.hash_key if index else s.hash_key) if op == "Query" else "(scan)"
            )
            rcu = max(1, math.ceil(total / 4096)) * (1.0 if params.get("ConsistentRead") else 0.5)
            return [Access(table, index.name if index else None, pk, rcu=rcu, reads=1)]
        return out

    @staticmethod
    def _query_pk(params: dict[str, Any], attr: str) -> str:
        names = params.get("ExpressionAttributeNames", {})
        values = params.get("ExpressionAttributeValues", {})
        for name, placeholder in re.findall(
            r"(#?\w+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")
        ):
            if names.get(name, name) == attr:
                return str(next(iter(values[placeholder].values())))
        return "?"


# --- the stack ------------------------------------------------------------------------------


def _integration_conftest() -> Any:
    """tests/integration/conftest.py under its own name (its `aws_environment`)."""
    spec = importlib.util.spec_from_file_location(
        "imgdrop_integration_conftest", ROOT / "tests" / "integration" / "conftest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """Wall time covered by possibly overlapping intervals."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


@dataclass
class Run:
    aws: Any
    functions: Any
    recorder: Recorder
    durations: dict[str, list[float]] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)

    def invoke(self, logical_id: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with self.recorder.running(logical_id):
            t0 = time.perf_counter()
            result = fn(*args, **kwargs)
            self.durations.setdefault(logical_id, []).append(time.perf_counter() - t0)
        return result

    def api(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        result: tuple[int, Any] = self.invoke("ApiFunction", self.functions.api, *args, **kwargs)
        return result

    def upload(self, data: bytes, *, album_id: str | None = None, title: str | None = None) -> str:
        """The whole life of one upload: POST /v1/uploads, the client's upload to S3, process,
        finalize, the webhook deliveries, one GET of the image."""
        item: dict[str, Any] = {
            "filename": "photo.jpg",
            "content_type": "image/jpeg",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if album_id:
            item["album_id"] = album_id
        if title:
            item["title"] = title
        self.recorder.upload = len(self.images)
        try:
            return self._upload(data, item)
        finally:
            self.recorder.upload = None

    def _upload(self, data: bytes, item: dict[str, Any]) -> str:
        status, body = self.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
        assert status == 200, body
        answer = body["items"][0]
        assert answer["status"] == "pending", answer
        key = answer["upload"]["fields"]["key"]
        with self.recorder.running("client"):  # the browser's presigned POST
            self.aws.s3.put_object(Bucket=self.aws.bucket_name, Key=key, Body=data, ContentType="image/jpeg")
        processed = self.invoke("ProcessFunction", self.functions.process, key, len(data))
        self.invoke("FinalizeFunction", self.functions.finalize_success, processed)
        self.deliver_webhooks()
        status, image = self.api(
            "GET", f"/v1/images/{answer['id']}", "/v1/images/{id}", path_params={"id": answer["id"]}
        )
        assert status == 200 and image["status"] == "ready", image
        self.images.append(answer["id"])
        return str(answer["id"])

    def deliver_webhooks(self) -> None:
        from imgdrop_local.dispatcher import sqs_record

        queue = self.aws.queue_urls.get("WebhookQueue")
        if not queue:
            return
        answer = self.setup(
            self.aws.sqs.receive_message, QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return
        arn = f"arn:aws:sqs:us-east-1:123456789012:{queue.rsplit('/', 1)[-1]}"
        event = {"Records": [sqs_record(m, arn) for m in messages]}
        self.invoke("WebhooksFunction", self.functions.invoke, "WebhooksFunction", event)
        for m in messages:
            self.setup(self.aws.sqs.delete_message, QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    def setup(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run something that is not part of an upload's life (neither recorded nor timed)."""
        with self.recorder.quiet(), self.recorder.running(None):
            return fn(*args, **kwargs)

    def add_webhook(self, tenant: str = "acme") -> str:
        """A subscribed endpoint whose every attempt succeeds: written straight to the table
        (registering resolves the host, and delivering would call it)."""
        from imgdrop.webhooks import delivery

        delivery.attempt = lambda *a, **k: delivery.AttemptResult(200, None, 5)  # type: ignore[assignment]
        from imgdrop.ids import new_id

        webhook_id = new_id()
        item = {
            "pk": {"S": f"T#{tenant}"},
            "sk": {"S": f"WH#{webhook_id}"},
            "tenant": {"S": tenant},
            "id": {"S": webhook_id},
            "url": {"S": "https://hooks.example.com/imgdrop"},
            "events": {"L": [{"S": "image.ready"}, {"S": "image.duplicate"}]},
            "secret": {"S": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            "created_at": {"S": "2026-01-01T00:00:00.000Z"},
        }
        self.setup(self.aws.dynamodb.put_item, TableName=self.aws.table_name, Item=item)
        return webhook_id

    def add_album(self, name: str = "bench") -> str:
        status, body = self.setup(
            self.functions.api,
            "POST",
            "/v1/albums",
            "/v1/albums",
            {"name": name},
            scope="images:read images:write tags:write admin",
        )
        assert status in (200, 201), body
        return str(body["id"])


@contextlib.contextmanager
def recorded_stack() -> Iterator[Run]:
    """moto with template.yaml's resources (IAM not enforced: only the code's own calls are
    recorded), the recorder installed, and the functions ready to invoke."""
    import pytest

    from imgdrop_local.template import load

    recorder = Recorder()
    recorder.install()
    conftest = _integration_conftest()
    from lambdas import Functions

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP", "true")
            with conftest.aws_environment(load(), mp, enforce_iam=False) as aws:
                yield Run(aws, Functions(aws), recorder)
    finally:
        recorder.uninstall()


def photo_12mp(name: str, *, mirror: bool = False) -> bytes:
    """scikit-learn's sample photo upscaled to 4000 x 3000 and saved as JPEG q90 (bench_formats)."""
    import sklearn
    from PIL import Image, ImageOps

    path = Path(sklearn.__file__).parent / "datasets" / "images" / f"{name}.jpg"
    img = Image.open(path).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    if mirror:
        img = ImageOps.mirror(img)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()
