"""Three of moto's per-request costs, cut for the local stack under load (`bench/bench_load.py`,
where the AWS process was the bottleneck at about 90 % of a core), each without changing an
answer:

- **Routing.** moto finds the backend of each request by its host (from the signature's scope)
  by listing its own package directory (a listdir and a stat per service) and then trying every
  service's URL patterns, on every request and under the lock that serializes all routing. The
  answer depends on the host alone, from a small set (service and region): remember it.
- **DynamoDB answers.** moto serializes each answer by walking botocore's output shape member by
  member, about 0.7 ms of CPU per KB: a BatchGetItem of the near-duplicate index took 7.7 ms,
  and item reads were a fifth of the AWS process's CPU. An answer that carries items (moto's
  `DynamoResult`) is DynamoDB's JSON already, binary values aside: keep the members the output
  shape names (as moto's serializer does) without walking into attribute values, dump it as JSON,
  base64 for bytes, and leave anything else (a timestamp) to moto's serializer.
- **A query of a table's own key.** moto collects and sorts every item of the table, then keeps
  those of the queried partition, under the lock that serializes its reads with its writes
  (`aws_process._serialize_table_iterations`): each image's webhook lookup sorted the whole table,
  near-duplicate buckets included. Hand such a query its partition's items only; queries of an
  index still read the whole table, as moto keeps no index.

`tests/unit/test_local_moto_fast.py` compares the answers with moto's own.

Local only, and in moto's process only (`aws_process.moto_server`).
"""

from __future__ import annotations

import base64
import contextvars
import functools
import json
from typing import Any

CONTENT_TYPE = "application/x-amz-json-1.0"  # DynamoDB's JSON protocol, version 1.0


def route_hosts_once() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    if getattr(original, "_imgdrop_remembered", False):
        return
    routes: dict[str | None, Any] = {}

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in routes:  # the caller holds moto's routing lock
            routes[host] = original(self, host)
        return routes[host]

    get_backend_for_host._imgdrop_remembered = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


class _NotPlainJson(TypeError):
    pass


def _binary_as_base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise _NotPlainJson(type(value).__name__)


def _pruned(value: Any, shape: Any) -> Any:
    """`value` with only the members its shape names, and no None; attribute values as they are
    (dynamo_to_dict made them exact)."""
    if shape is None or shape.name == "AttributeValue":
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _pruned(v, members[k]) for k, v in value.items() if k in members and v is not None}
    if kind == "list" and isinstance(value, list):
        return [_pruned(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _pruned(v, shape.value) for k, v in value.items() if v is not None}
    return value


def dumped(result: Any, output_shape: Any) -> str | None:
    """The JSON body of a DynamoDB answer that holds only JSON values and bytes; None otherwise."""
    try:
        return json.dumps(_pruned(result, output_shape), default=_binary_as_base64, separators=(",", ":"),
                          allow_nan=False)
    except (_NotPlainJson, ValueError):
        return None


def dump_dynamodb_results() -> None:
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    if getattr(original, "_imgdrop_dumped", False):
        return

    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        body = dumped(self.result, context.operation_model.output_shape)
        if body is None:
            return original(self, context)
        return 200, {"Content-Type": CONTENT_TYPE}, body

    execute_result._imgdrop_dumped = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


# The partition a query of the table's own key reads, while moto's Table.query runs.
_queried_partition: contextvars.ContextVar[Any] = contextvars.ContextVar("imgdrop_queried_partition",
                                                                         default=None)
_INDEX_NAME_ARG = 6  # Table.query(hash_key, range_comparison, range_objs, limit, exclusive_start_key,
#                                  scan_index_forward, projection_expressions, index_name, ...)


def query_partitions_only() -> None:
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items
    if getattr(original_query, "_imgdrop_partition", False):
        return

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[_INDEX_NAME_ARG] if len(args) > _INDEX_NAME_ARG else kwargs.get("index_name")
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        token = _queried_partition.set(hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _queried_partition.reset(token)

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> Any:
        hash_key = _queried_partition.get()
        if hash_key is None:
            return original_all_items(self)
        partition = self.items.get(hash_key)  # .get: the items are a defaultdict
        if partition is None:
            return []
        if not self.range_key_attr:
            return [partition]
        return sorted(partition.values(), key=lambda item: item.range_key)

    query._imgdrop_partition = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def apply() -> None:
    route_hosts_once()
    dump_dynamodb_results()
    query_partitions_only()
