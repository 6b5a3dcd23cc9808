"""Where the band index lives: in memory (tests, benchmarks) or on the DynamoDB table."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from imgdrop.dedupe.bands import BATCH_GET_LIMIT, ENTRIES_PER_ITEM, HASH_HEX_LEN
from imgdrop.errors import StorageError

if TYPE_CHECKING:  # numpy is only needed for bulk loads (benchmarks, backfills)
    import numpy as np


# --- storage ------------------------------------------------------------------------------


class IndexEntry(NamedTuple):
    key: str
    image_id: str
    phash: str


@dataclass
class StoreStats:
    """What a store did: requests as DynamoDB counts them, items and entries read or written."""

    read_requests: int = 0
    items_read: int = 0
    entries_read: int = 0
    bytes_read: int = 0
    write_requests: int = 0
    entries_written: int = 0

    def snapshot(self) -> StoreStats:
        return replace(self)

    def since(self, before: StoreStats) -> StoreStats:
        return StoreStats(*(getattr(self, f.name) - getattr(before, f.name) for f in fields(self)))


class HashIndexStore(Protocol):
    stats: StoreStats

    def batch_get(self, keys: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """Entries ``(image_id, phash_hex)`` of each bucket that exists."""
        ...

    def batch_add(self, entries: Iterable[IndexEntry]) -> None: ...

    def remove(self, entries: Iterable[IndexEntry]) -> None: ...


def _entry_value(image_id: str, phash: str) -> str:
    return f"{phash}:{image_id}"


def _parse_entry(value: str) -> tuple[str, str]:
    phash, _, image_id = value.partition(":")
    return image_id, phash


def _entry_bytes(image_id: str) -> int:
    return HASH_HEX_LEN + 1 + len(image_id)


class InMemoryHashIndexStore:
    """A store in a dict that counts requests as the DynamoDB store makes them.

    Reads: one BatchGetItem per 100 keys for the first shard of each bucket, then one per
    100 overflow shards. Writes: one UpdateItem per bucket item touched.
    """

    def __init__(self, entries_per_item: int = ENTRIES_PER_ITEM):
        self.entries_per_item = entries_per_item
        self.stats = StoreStats()
        self._buckets: dict[str, dict[str, str]] = {}
        # bulk-loaded buckets: key -> member indexes into the loaded ids/hashes (no copies)
        self._frozen: dict[str, Any] = {}
        self._ids: Sequence[str] = ()
        self._hexes: Sequence[str] = ()

    def _items_of(self, size: int) -> int:
        return max(1, math.ceil(size / self.entries_per_item))

    def _bucket(self, key: str) -> dict[str, str] | None:
        frozen = self._frozen.pop(key, None)
        if frozen is not None:  # thaw on first change
            self._buckets[key] = {self._ids[i]: self._hexes[i] for i in frozen.tolist()}
        return self._buckets.get(key)

    def batch_get(self, keys: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, list[tuple[str, str]]] = {}
        overflow = 0
        ids, hexes = self._ids, self._hexes
        for key in keys:
            frozen = self._frozen.get(key)
            if frozen is not None:
                entries = [(ids[i], hexes[i]) for i in frozen.tolist()]
            elif key in self._buckets and self._buckets[key]:
                entries = list(self._buckets[key].items())
            else:
                continue
            out[key] = entries
            items = self._items_of(len(entries))
            overflow += items - 1
            self.stats.items_read += items
            self.stats.entries_read += len(entries)
            self.stats.bytes_read += len(key) + sum(_entry_bytes(i) for i, _ in entries)
        first_round = math.ceil(len(keys) / BATCH_GET_LIMIT)
        self.stats.read_requests += first_round + math.ceil(overflow / BATCH_GET_LIMIT)
        return out

    def batch_add(self, entries: Iterable[IndexEntry]) -> None:
        for e in entries:
            bucket = self._bucket(e.key)
            if bucket is None:
                bucket = self._buckets[e.key] = {}
            # a full first shard costs a refused conditional update per full shard, then the write
            self.stats.write_requests += 1 + len(bucket) // self.entries_per_item
            self.stats.entries_written += 1
            bucket[e.image_id] = e.phash

    def remove(self, entries: Iterable[IndexEntry]) -> None:
        for e in entries:
            bucket = self._bucket(e.key)
            if bucket is None:
                continue
            items = self._items_of(len(bucket))
            self.stats.write_requests += items + (1 if items > 1 else 0)
            bucket.pop(e.image_id, None)

    def load_postings(
        self,
        keys: Sequence[str],
        offsets: np.ndarray,
        members: np.ndarray,
        ids: Sequence[str],
        hexes: Sequence[str],
    ) -> None:
        """Bulk load (benchmarks): bucket ``keys[k]`` holds ``members[offsets[k]:offsets[k+1]]``,
        indexes into ``ids``/``hexes``. Replaces anything loaded before; not counted as requests."""
        self._buckets.clear()
        self._ids, self._hexes = ids, hexes
        self._frozen = {key: members[offsets[k] : offsets[k + 1]] for k, key in enumerate(keys)}


class DynamoHashIndexStore:
    """Bucket items on the single table: ``pk`` = band key, ``sk`` = ``S#<shard>``."""

    ENTRIES = "e"
    SHARDS = "n"

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        entries_per_item: int = ENTRIES_PER_ITEM,
        max_workers: int = 8,
        max_attempts: int = 6,
    ):
        self.table_name = table_name
        self._client = client
        self.entries_per_item = entries_per_item
        self.max_workers = max_workers
        self.max_attempts = max_attempts
        self.stats = StoreStats()

    @property
    def client(self) -> Any:
        """The low-level DynamoDB client; built on first use (honours AWS_ENDPOINT_URL)."""
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    @staticmethod
    def _key(key: str, shard: int = 0) -> dict[str, Any]:
        return {"pk": {"S": key}, "sk": {"S": f"S#{shard}"}}

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            if code == "ConditionalCheckFailedException":
                raise
            raise StorageError(f"Hash index {operation} failed ({code}).") from exc

    # reads
    def _batch_get_items(self, item_keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(item_keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": item_keys[start : start + BATCH_GET_LIMIT],
                    "ProjectionExpression": "#pk, #e, #n",
                    "ExpressionAttributeNames": {"#pk": "pk", "#e": self.ENTRIES, "#n": self.SHARDS},
                }
            }
            for attempt in range(self.max_attempts):
                self.stats.read_requests += 1
                answer = self._call("batch_get_item", RequestItems=request)
                found.extend(answer.get("Responses", {}).get(self.table_name, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise StorageError("Hash index read throttled: keys left unprocessed.")
        return found

    def batch_get(self, keys: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, list[tuple[str, str]]] = {}
        overflow: list[dict[str, Any]] = []
        first = self._batch_get_items([self._key(k) for k in keys])
        for item in first:
            shards = int(item.get(self.SHARDS, {}).get("N", "1"))
            overflow.extend(self._key(item["pk"]["S"], s) for s in range(1, shards))
        for item in first + (self._batch_get_items(overflow) if overflow else []):
            values = item.get(self.ENTRIES, {}).get("SS", [])
            self.stats.items_read += 1
            self.stats.entries_read += len(values)
            self.stats.bytes_read += len(item["pk"]["S"]) + sum(len(v) for v in values)
            out.setdefault(item["pk"]["S"], []).extend(_parse_entry(v) for v in values)
        return out

    # writes
    def _add_one(self, entry: IndexEntry) -> int:
        from botocore.exceptions import ClientError

        value = _entry_value(entry.image_id, entry.phash)
        requests = 0
        shard = 0
        while True:
            requests += 1
            try:
                self._call(
                    "update_item",
                    TableName=self.table_name,
                    Key=self._key(entry.key, shard),
                    UpdateExpression="ADD #e :set",
                    ConditionExpression="attribute_not_exists(#e) OR size(#e) < :cap OR contains(#e, :one)",
                    ExpressionAttributeNames={"#e": self.ENTRIES},
                    ExpressionAttributeValues={
                        ":set": {"SS": [value]},
                        ":one": {"S": value},
                        ":cap": {"N": str(self.entries_per_item)},
                    },
                )
                return requests
            except ClientError:  # this shard is full: record one more shard on S#0 first
                shard += 1
                requests += 1
                # refused when another writer already recorded at least as many shards
                with contextlib.suppress(ClientError):
                    self._call(
                        "update_item",
                        TableName=self.table_name,
                        Key=self._key(entry.key, 0),
                        UpdateExpression="SET #n = :n",
                        ConditionExpression="attribute_not_exists(#n) OR #n < :n",
                        ExpressionAttributeNames={"#n": self.SHARDS},
                        ExpressionAttributeValues={":n": {"N": str(shard + 1)}},
                    )

    def _remove_one(self, entry: IndexEntry) -> int:
        value = _entry_value(entry.image_id, entry.phash)
        head = self._call(
            "get_item",
            TableName=self.table_name,
            Key=self._key(entry.key),
            ProjectionExpression="#n",
            ExpressionAttributeNames={"#n": self.SHARDS},
        )
        shards = int(head.get("Item", {}).get(self.SHARDS, {}).get("N", "1"))
        for shard in range(shards):
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=self._key(entry.key, shard),
                UpdateExpression="DELETE #e :set",
                ExpressionAttributeNames={"#e": self.ENTRIES},
                ExpressionAttributeValues={":set": {"SS": [value]}},
            )
        return 1 + shards

    def _run(self, fn: Any, entries: Iterable[IndexEntry]) -> None:
        entries = list(entries)
        if not entries:
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(entries))) as pool:
            counts = list(pool.map(fn, entries))
        self.stats.write_requests += sum(counts)

    def batch_add(self, entries: Iterable[IndexEntry]) -> None:
        entries = list(entries)
        self._run(self._add_one, entries)
        self.stats.entries_written += len(entries)

    def remove(self, entries: Iterable[IndexEntry]) -> None:
        self._run(self._remove_one, entries)
