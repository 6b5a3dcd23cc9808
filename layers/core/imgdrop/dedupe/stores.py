"""Where the bucket items live: in memory (tests, benchmarks) or on the DynamoDB table.

Both count what DynamoDB would: requests, items, entries and bytes, and the capacity units
(a BatchGetItem item costs half a read unit per 4 KB, eventually consistent; an UpdateItem
costs a write unit per KB of the larger of the item before and after, refused or not).
A bucket holds at most ``entries_per_item`` entries: a write to a full bucket is refused by
its condition and the entry is dropped from that table (counted in ``dropped``), never
carried to another item: an insert is one UpdateItem per table, whatever the tenant holds.
"""

from __future__ import annotations

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

SORT_KEY = "B"  # one item per bucket
# Attribute names and the sort key, as DynamoDB sizes an item: "pk", "sk" + "B", "e".
ITEM_OVERHEAD = len("pk") + len("sk") + len(SORT_KEY) + len("e")


# --- storage ------------------------------------------------------------------------------


class IndexEntry(NamedTuple):
    key: str
    image_id: str
    phash: str


@dataclass
class StoreStats:
    """What a store did: requests and capacity units as DynamoDB counts them, items and
    entries read or written, entries dropped by full buckets."""

    read_requests: int = 0
    items_read: int = 0
    entries_read: int = 0
    bytes_read: int = 0
    read_units: float = 0.0
    write_requests: int = 0
    entries_written: int = 0
    write_units: int = 0
    dropped: int = 0

    def snapshot(self) -> StoreStats:
        return replace(self)

    def since(self, before: StoreStats) -> StoreStats:
        return StoreStats(*(getattr(self, f.name) - getattr(before, f.name) for f in fields(self)))


class HashIndexStore(Protocol):
    stats: StoreStats
    entries_per_item: int

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


def item_bytes(key: str, entry_bytes: int) -> int:
    """A bucket item's size as DynamoDB counts it (names and values, UTF-8)."""
    return ITEM_OVERHEAD + len(key) + entry_bytes


def read_units(size: int) -> float:
    """An eventually consistent read: half a unit per 4 KB."""
    return 0.5 * max(1, math.ceil(size / 4096))


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


class InMemoryHashIndexStore:
    """A store in a dict that counts requests as the DynamoDB store makes them.

    Reads: one BatchGetItem per 100 keys. Writes: one UpdateItem per bucket touched.
    """

    def __init__(self, entries_per_item: int = ENTRIES_PER_ITEM):
        self.entries_per_item = entries_per_item
        self.stats = StoreStats()
        self._buckets: dict[str, dict[str, str]] = {}
        # bulk-loaded buckets: key -> member indexes into the loaded ids/hexes (no copies)
        self._frozen: dict[str, Any] = {}
        self._ids: Sequence[str] = ()
        self._hexes: Sequence[str] = ()

    def _bucket(self, key: str) -> dict[str, str] | None:
        frozen = self._frozen.pop(key, None)
        if frozen is not None:  # thaw on first change
            self._buckets[key] = {self._ids[i]: self._hexes[i] for i in frozen.tolist()}
        return self._buckets.get(key)

    @staticmethod
    def _size(key: str, bucket: dict[str, str]) -> int:
        return item_bytes(key, sum(_entry_bytes(i) for i in bucket))

    def batch_get(self, keys: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, list[tuple[str, str]]] = {}
        ids, hexes = self._ids, self._hexes
        for key in keys:
            frozen = self._frozen.get(key)
            if frozen is not None:
                entries = [(ids[i], hexes[i]) for i in frozen.tolist()]
            elif self._buckets.get(key):
                entries = list(self._buckets[key].items())
            else:
                continue
            out[key] = entries
            size = item_bytes(key, sum(_entry_bytes(i) for i, _ in entries))
            self.stats.items_read += 1
            self.stats.entries_read += len(entries)
            self.stats.bytes_read += size
            self.stats.read_units += read_units(size)
        self.stats.read_requests += math.ceil(len(keys) / BATCH_GET_LIMIT)
        return out

    def batch_add(self, entries: Iterable[IndexEntry]) -> None:
        for e in entries:
            bucket = self._bucket(e.key)
            if bucket is None:
                bucket = self._buckets[e.key] = {}
            before = self._size(e.key, bucket) if bucket else 0
            self.stats.write_requests += 1
            if len(bucket) >= self.entries_per_item and e.image_id not in bucket:
                self.stats.dropped += 1  # refused by the condition: the write still costs
                self.stats.write_units += write_units(before)
                continue
            bucket[e.image_id] = e.phash
            self.stats.entries_written += 1
            self.stats.write_units += write_units(max(before, self._size(e.key, bucket)))

    def remove(self, entries: Iterable[IndexEntry]) -> None:
        for e in entries:
            bucket = self._bucket(e.key)
            if bucket is None:
                continue
            self.stats.write_requests += 1
            self.stats.write_units += write_units(self._size(e.key, bucket))
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
        indexes into ``ids``/``hexes`` (any sequence: the benchmark's make their strings on
        demand). Members beyond a bucket's capacity are dropped, as the conditional writes
        would drop them (the first ones stay). Replaces anything loaded before; no requests."""
        self._buckets.clear()
        self._ids, self._hexes = ids, hexes
        cap = self.entries_per_item
        self._frozen = {}
        for k, key in enumerate(keys):
            start, end = int(offsets[k]), int(offsets[k + 1])
            self.stats.dropped += max(0, end - start - cap)
            self._frozen[key] = members[start : min(end, start + cap)]


class DynamoHashIndexStore:
    """Bucket items on the single table: ``pk`` = bucket key, ``sk`` = ``B``."""

    ENTRIES = "e"

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
        """The low-level DynamoDB client; built on first use (honours AWS_ENDPOINT_URL).

        It skips botocore's client-side check of each request against the API model: this store
        builds every request itself, never from input, and DynamoDB checks them anyway. The
        check was half the client's CPU for a lookup's 840 keys (8 of 17.5 ms)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("dynamodb", config=Config(parameter_validation=False))
        return self._client

    @staticmethod
    def _key(key: str) -> dict[str, Any]:
        return {"pk": {"S": key}, "sk": {"S": SORT_KEY}}

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
    def batch_get(self, keys: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, list[tuple[str, str]]] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [self._key(k) for k in keys[start : start + BATCH_GET_LIMIT]],
                    "ProjectionExpression": "#pk, #e",
                    "ExpressionAttributeNames": {"#pk": "pk", "#e": self.ENTRIES},
                }
            }
            for attempt in range(self.max_attempts):
                self.stats.read_requests += 1
                answer = self._call("batch_get_item", RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    key = item["pk"]["S"]
                    values = item.get(self.ENTRIES, {}).get("SS", [])
                    size = item_bytes(key, sum(len(v) for v in values))
                    self.stats.items_read += 1
                    self.stats.entries_read += len(values)
                    self.stats.bytes_read += size
                    self.stats.read_units += read_units(size)
                    out.setdefault(key, []).extend(_parse_entry(v) for v in values)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise StorageError("Hash index read throttled: keys left unprocessed.")
        return out

    # writes
    def _add_one(self, entry: IndexEntry) -> tuple[int, int]:
        """One conditional UpdateItem: (entries written, entries dropped)."""
        from botocore.exceptions import ClientError

        value = _entry_value(entry.image_id, entry.phash)
        try:
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=self._key(entry.key),
                UpdateExpression="ADD #e :set",
                ConditionExpression="attribute_not_exists(#e) OR size(#e) < :cap OR contains(#e, :one)",
                ExpressionAttributeNames={"#e": self.ENTRIES},
                ExpressionAttributeValues={
                    ":set": {"SS": [value]},
                    ":one": {"S": value},
                    ":cap": {"N": str(self.entries_per_item)},
                },
            )
        except ClientError:  # the bucket is full: this table does without the entry
            return 0, 1
        return 1, 0

    def _remove_one(self, entry: IndexEntry) -> tuple[int, int]:
        self._call(
            "update_item",
            TableName=self.table_name,
            Key=self._key(entry.key),
            UpdateExpression="DELETE #e :set",
            ExpressionAttributeNames={"#e": self.ENTRIES},
            ExpressionAttributeValues={":set": {"SS": [_entry_value(entry.image_id, entry.phash)]}},
        )
        return 0, 0

    def _run(self, fn: Any, entries: Iterable[IndexEntry]) -> None:
        entries = list(entries)
        if not entries:
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(entries))) as pool:
            counts = list(pool.map(fn, entries))
        self.stats.write_requests += len(entries)
        self.stats.entries_written += sum(c[0] for c in counts)
        self.stats.dropped += sum(c[1] for c in counts)

    def batch_add(self, entries: Iterable[IndexEntry]) -> None:
        self._run(self._add_one, entries)

    def remove(self, entries: Iterable[IndexEntry]) -> None:
        self._run(self._remove_one, entries)
