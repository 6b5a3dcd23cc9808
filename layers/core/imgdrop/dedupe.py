"""Near-duplicate lookup by perceptual hash, exact within a threshold and without a scan.

Multi-index hashing. The 64-bit phash is split into ``bands`` bands of ``64 / bands`` bits.
By pigeonhole, two hashes within Hamming distance r agree within ``s = r // bands`` bits on
at least one band. Each stored hash is written under every band value within ``write_radius``
of its own band value; a lookup reads every band value within ``read_radius = s - write_radius``
of the query's. Any band pair within s meets on some key (walk ``write_radius`` bits from the
stored value towards the query), so the candidates hold every hash within r, and each one is
verified by its full Hamming distance: the result is exact.

Default layout: 4 bands of 16 bits, write radius 1 (4 x 17 = 68 bucket updates per insert).
Per lookup: threshold 0-7 reads 4 keys, 8-11 reads 68 (one BatchGetItem), 12-15 reads
548 (six BatchGetItem); 16 and above would need 28 and is refused. The number of requests
does not depend on the size of the collection; the number of entries read does
(about 0.14 x N at threshold 12 for uniformly random hashes, see bench/bench_dedupe.py).

Storage on the single table: one item per (tenant, band, band value), its entries in a
string set ``e`` of ``"<phash hex>:<image id>"``. Inserts use UpdateItem ``ADD`` (atomic
and idempotent, so concurrent process functions and S3 redeliveries never lose or double
an entry; BatchWriteItem can only overwrite whole items). A bucket item holds at most
``entries_per_item`` entries; beyond that, entries overflow to shard items ``S#1``, ``S#2``...
and ``S#0`` records the shard count in ``n``, so a lookup fetches the overflow shards in a
second round (counted in the requests).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from imgdrop.errors import StorageError

if TYPE_CHECKING:  # numpy is only needed for bulk loads (benchmarks, backfills)
    import numpy as np

HASH_BITS = 64
HASH_HEX_LEN = HASH_BITS // 4
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
DEFAULT_THRESHOLD = 12  # from bench/near_duplicate_table.md: precision 1.0, recall 0.96 on real photos
MAX_LOOKUP_REQUESTS = 10
ENTRIES_PER_ITEM = 1000  # ~45 bytes each: ~45 KB per bucket item, far below the 400 KB limit

Mode = Literal["reject", "flag", "off"]
MODES: tuple[str, ...] = ("reject", "flag", "off")


# --- pure functions ---------------------------------------------------------------------


def parse_hash(value: str) -> int:
    """A 64-bit hash from its 16 hex characters; ValueError for anything else."""
    if not isinstance(value, str) or len(value) != HASH_HEX_LEN:
        raise ValueError(f"a perceptual hash is {HASH_HEX_LEN} hex characters, got {value!r}")
    try:
        return int(value, 16)
    except ValueError:
        raise ValueError(f"a perceptual hash is {HASH_HEX_LEN} hex characters, got {value!r}") from None


def format_hash(value: int) -> str:
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Hamming distance of two hex hashes (imagehash's ``h1 - h2``)."""
    return (parse_hash(a) ^ parse_hash(b)).bit_count()


@lru_cache(maxsize=64)
def neighbour_masks(bits: int, radius: int) -> tuple[int, ...]:
    """XOR masks of every value within ``radius`` of a ``bits``-bit value, distance 0 first."""
    masks = [0]
    for r in range(1, min(radius, bits) + 1):
        for positions in itertools.combinations(range(bits), r):
            mask = 0
            for p in positions:
                mask |= 1 << p
            masks.append(mask)
    return tuple(masks)


def neighbours(value: int, bits: int, radius: int) -> list[int]:
    """Every ``bits``-bit value within Hamming ``radius`` of ``value`` (value itself first)."""
    return [value ^ m for m in neighbour_masks(bits, radius)]


@dataclass(frozen=True)
class BandLayout:
    """How hashes are cut into bands and how the neighbour radius is split write/read."""

    bands: int = 4
    write_radius: int = 1

    def __post_init__(self) -> None:
        if self.bands < 1 or HASH_BITS % self.bands:
            raise ValueError(f"bands must divide {HASH_BITS}")
        if self.write_radius < 0:
            raise ValueError("write_radius must be >= 0")

    @property
    def band_bits(self) -> int:
        return HASH_BITS // self.bands

    def band_values(self, value: int) -> list[int]:
        """Band 0 is the most significant ``band_bits`` bits."""
        bits = self.band_bits
        mask = (1 << bits) - 1
        return [(value >> (HASH_BITS - bits * (b + 1))) & mask for b in range(self.bands)]

    def read_radius(self, threshold: int) -> int:
        return max(0, threshold // self.bands - self.write_radius)

    def read_keys(self, threshold: int) -> int:
        return self.bands * len(neighbour_masks(self.band_bits, self.read_radius(threshold)))

    def max_threshold(self, max_requests: int = MAX_LOOKUP_REQUESTS) -> int:
        """The largest threshold whose keys fit in ``max_requests`` BatchGetItem calls."""
        best = -1
        for t in range(HASH_BITS + 1):
            if math.ceil(self.read_keys(t) / BATCH_GET_LIMIT) > max_requests:
                break
            best = t
        return best


DEFAULT_LAYOUT = BandLayout()


def check_tenant(tenant: str) -> str:
    if not tenant or "#" in tenant:
        raise ValueError(f"invalid tenant {tenant!r}")
    return tenant


def band_key(tenant: str, band: int, value: int, layout: BandLayout = DEFAULT_LAYOUT) -> str:
    """The partition key of one bucket: the tenant is in the key, so tenants never meet."""
    width = (layout.band_bits + 3) // 4
    return f"T#{tenant}#PH{band}#{value:0{width}x}"


def write_keys(tenant: str, phash: str, layout: BandLayout = DEFAULT_LAYOUT) -> list[str]:
    """Every bucket a stored hash is written to (bands x write-radius neighbours)."""
    check_tenant(tenant)
    masks = neighbour_masks(layout.band_bits, layout.write_radius)
    return [
        band_key(tenant, band, value ^ m, layout)
        for band, value in enumerate(layout.band_values(parse_hash(phash)))
        for m in masks
    ]


def read_keys(tenant: str, phash: str, threshold: int, layout: BandLayout = DEFAULT_LAYOUT) -> list[str]:
    """Every bucket a lookup within ``threshold`` must read (distinct keys, stable order)."""
    check_tenant(tenant)
    masks = neighbour_masks(layout.band_bits, layout.read_radius(threshold))
    keys = [
        band_key(tenant, band, value ^ m, layout)
        for band, value in enumerate(layout.band_values(parse_hash(phash)))
        for m in masks
    ]
    return list(dict.fromkeys(keys))


# --- policy -------------------------------------------------------------------------------


class Verdict(NamedTuple):
    status: Literal["ready", "duplicate"]
    duplicate_of: str | None
    similar: list[tuple[str, int]]


@dataclass(frozen=True)
class NearDuplicatePolicy:
    """What a near duplicate does to a new image; per deployment, overridden per profile.

    ``reject``: the new image becomes ``duplicate`` of its nearest match; ``flag``: it is
    ``ready`` with a ``similar`` list; ``off``: no lookup. ``dhash_threshold``, when set,
    is a second opinion: a match also needs its dhash within that distance.
    """

    threshold: int = DEFAULT_THRESHOLD
    mode: Mode = "flag"
    dhash_threshold: int | None = None
    max_similar: int = 20

    def __post_init__(self) -> None:
        limit = DEFAULT_LAYOUT.max_threshold()
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise ValueError("near_duplicate.threshold must be an integer")
        if not 0 <= self.threshold <= limit:
            raise ValueError(f"near_duplicate.threshold must be between 0 and {limit}")
        if self.mode not in MODES:
            raise ValueError(f"near_duplicate.mode must be one of {', '.join(MODES)}")
        if self.dhash_threshold is not None and not 0 <= self.dhash_threshold <= HASH_BITS:
            raise ValueError(f"near_duplicate.dhash_threshold must be between 0 and {HASH_BITS}")
        if self.max_similar < 1:
            raise ValueError("near_duplicate.max_similar must be >= 1")

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, *, base: NearDuplicatePolicy | None = None
    ) -> NearDuplicatePolicy:
        """``base`` (or the defaults) with the keys of ``data`` applied; unknown keys are errors."""
        base = base or cls()
        if not data:
            return base
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"profiles"})
        if unknown:
            raise ValueError(f"unknown near_duplicate settings: {', '.join(unknown)}")
        return replace(base, **{k: v for k, v in data.items() if k in known})

    @classmethod
    def for_profile(cls, config: Mapping[str, Any] | None, profile: str | None = None) -> NearDuplicatePolicy:
        """The deployment's settings, then the profile's overrides under ``profiles``.

        ``{"threshold": 12, "mode": "flag", "profiles": {"avatar": {"mode": "off"}}}``
        """
        deployment = cls.from_dict(config)
        overrides = ((config or {}).get("profiles") or {}).get(profile or "") if profile else None
        return cls.from_dict(overrides, base=deployment)

    def decide(
        self, matches: Sequence[tuple[str, int]], dhash_distance: Mapping[str, int] | None = None
    ) -> Verdict:
        """The verdict for a new image given its matches (nearest first, as ``find`` answers).

        Only canonical images are indexed (a duplicate is never added), so ``duplicate_of``
        always names a canonical image.
        """
        kept = [(i, d) for i, d in matches if d <= self.threshold]
        if self.dhash_threshold is not None and dhash_distance is not None:
            kept = [(i, d) for i, d in kept if dhash_distance.get(i, HASH_BITS + 1) <= self.dhash_threshold]
        if self.mode == "off" or not kept:
            return Verdict("ready", None, [])
        if self.mode == "reject":
            return Verdict("duplicate", kept[0][0], kept[: self.max_similar])
        return Verdict("ready", None, kept[: self.max_similar])


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


# --- configuration -----------------------------------------------------------------------


def policy_for(profile: str | None = None, document: Mapping[str, Any] | None = None) -> NearDuplicatePolicy:
    """The policy of a profile, from the profiles document (``IMGDROP_PROFILES_FILE`` or the built-in).

    Precedence, lowest first: the defaults; the document's top-level ``near_duplicate``; the
    environment (``IMGDROP_NEAR_DUPLICATE_THRESHOLD``, ``IMGDROP_NEAR_DUPLICATE_MODE``); the
    profile's own ``near_duplicate`` (``profiles.<name>.near_duplicate``).
    """
    import os

    if document is None:
        from imgdrop.profiles import profiles_document

        document = profiles_document()
    config: dict[str, Any] = dict(document.get("near_duplicate") or {})
    if os.environ.get("IMGDROP_NEAR_DUPLICATE_THRESHOLD"):
        config["threshold"] = int(os.environ["IMGDROP_NEAR_DUPLICATE_THRESHOLD"])
    if os.environ.get("IMGDROP_NEAR_DUPLICATE_MODE"):
        config["mode"] = os.environ["IMGDROP_NEAR_DUPLICATE_MODE"]
    config["profiles"] = {
        name: raw["near_duplicate"]
        for name, raw in (document.get("profiles") or {}).items()
        if isinstance(raw, dict) and raw.get("near_duplicate")
    }
    return NearDuplicatePolicy.for_profile(config, profile)


# --- the index ----------------------------------------------------------------------------


class LookupStats(NamedTuple):
    keys: int  # bucket keys asked for
    candidates: int  # distinct images verified by full Hamming distance
    matches: int


@dataclass
class NearDuplicateIndex:
    store: HashIndexStore
    layout: BandLayout = field(default=DEFAULT_LAYOUT)
    last_lookup: LookupStats | None = field(default=None, init=False)

    def _entries(self, tenant: str, image_id: str, phash: str) -> list[IndexEntry]:
        phash = phash.lower()
        return [IndexEntry(k, image_id, phash) for k in write_keys(tenant, phash, self.layout)]

    def add(self, tenant: str, image_id: str, phash: str) -> None:
        """Index a canonical image (idempotent)."""
        self.store.batch_add(self._entries(tenant, image_id, phash))

    def remove(self, tenant: str, image_id: str, phash: str) -> None:
        self.store.remove(self._entries(tenant, image_id, phash))

    def find(
        self, tenant: str, phash: str, threshold: int, *, exclude: str | None = None, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """Every indexed image of ``tenant`` within ``threshold`` of ``phash``, nearest first."""
        max_threshold = self.layout.max_threshold()
        if not 0 <= threshold <= max_threshold:
            raise ValueError(f"threshold must be between 0 and {max_threshold} for this index layout")
        query = parse_hash(phash)
        keys = read_keys(tenant, phash, threshold, self.layout)
        candidates: dict[str, str] = {}
        for entries in self.store.batch_get(keys).values():
            candidates.update(entries)
        candidates.pop(exclude, None)  # type: ignore[arg-type]
        matches = []
        for image_id, stored in candidates.items():
            distance = (int(stored, 16) ^ query).bit_count()
            if distance <= threshold:
                matches.append((image_id, distance))
        matches.sort(key=lambda m: (m[1], m[0]))
        self.last_lookup = LookupStats(len(keys), len(candidates), len(matches))
        return matches[:limit] if limit is not None else matches


def band_postings(
    tenant: str, hashes: np.ndarray, layout: BandLayout = DEFAULT_LAYOUT
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bulk form of ``write_keys`` for many hashes at once (numpy uint64 array).

    Returns ``(keys, offsets, members)``: bucket ``keys[k]`` holds the hash indexes
    ``members[offsets[k]:offsets[k+1]]``. Feeds ``InMemoryHashIndexStore.load_postings``.
    """
    import numpy as np

    check_tenant(tenant)
    bits = layout.band_bits
    masks = np.array(neighbour_masks(bits, layout.write_radius), dtype=np.uint64)
    n = len(hashes)
    index = np.arange(n, dtype=np.int32)
    all_keys: list[str] = []
    offsets_parts: list[np.ndarray] = []
    members_parts: list[np.ndarray] = []
    base = 0
    for band in range(layout.bands):
        shift = np.uint64(HASH_BITS - bits * (band + 1))
        values = (hashes >> shift) & np.uint64((1 << bits) - 1)
        keyed = (values[None, :] ^ masks[:, None]).ravel()  # len(masks) * n band values
        order = np.argsort(keyed, kind="stable")
        sorted_values = keyed[order]
        members = np.tile(index, len(masks))[order]
        uniq, starts = np.unique(sorted_values, return_index=True)
        all_keys.extend(band_key(tenant, band, int(v), layout) for v in uniq.tolist())
        offsets_parts.append(starts.astype(np.int64) + base)
        members_parts.append(members)
        base += len(members)
    offsets = np.concatenate([*offsets_parts, np.array([base], dtype=np.int64)])
    return all_keys, offsets, np.concatenate(members_parts)
