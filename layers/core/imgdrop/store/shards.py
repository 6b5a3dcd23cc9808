"""Partition keys spread over shards, and listing a shard set as one list.

One DynamoDB partition takes about 1,000 write units a second. A key that every upload of a
tenant writes (the tenant's listing, an album's, a webhook endpoint's deliveries) is therefore
split into `count` keys, ``<prefix>#S<n>``, each item on the shard its id picks (crc32, so the
same id lands on the same shard in every process and release: Python's ``hash()`` of a string
is salted per process). bench/partitions.py measures what each key takes.

Listing a shard set newest first is one query per shard, merged (`merged_page`). Its cursor
holds each shard's position, bound to the shard set it was issued for (`encode_cursor`,
`decode_cursor`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from imgdrop.errors import ImgdropError, ValidationFailed


def shard_of(item_id: str, count: int) -> int:
    """The shard of an id: stable across processes and releases (crc32, not ``hash()``)."""
    return zlib.crc32(item_id.encode()) % count


@dataclass(frozen=True)
class ShardSet:
    """One logical partition key spread over `count` keys: ``<prefix>#S0`` .. ``#S<count-1>``."""

    prefix: str
    count: int

    def key(self, shard: int) -> str:
        return f"{self.prefix}#S{shard}"

    def key_for(self, item_id: str) -> str:
        return self.key(shard_of(item_id, self.count))


def shard_page_size(limit: int, count: int) -> int:
    """Items asked of each shard per request when every item read is kept (no filter).

    A page of `limit` takes about limit/count from each shard; twice that (and at least 4)
    serves most pages with one request per shard, where `limit` from each would read `count`
    times the page. A shard that gives more than its share is read on, lazily, in the merge."""
    return min(limit, max(4, 2 * -(-limit // count)))


# Positions: for each shard not yet exhausted, the sort key of its next item (inclusive).
Positions = dict[int, str]


def merged_page[T](
    shard_set: ShardSet,
    query: Callable[[str, str | None], Iterable[T]],
    sort_key: Callable[[T], str],
    limit: int,
    positions: Positions | None,
) -> tuple[list[T], Positions | None]:
    """A page of `limit` items, highest sort key first (newest first: ids sort by time), merged
    from the shards' own newest-first queries (a k-way merge), and the positions to go on from
    (None on the last page).

    `query(partition_key, start)` answers one shard's items, newest first, from sort key `start`
    on (inclusive; None: from the newest), reading on lazily as it is iterated. `positions` None
    starts every shard from its newest item; else only the shards named, each at its position.

    Why the positions are "the next item" and not "the last one returned": after a page, every
    item of every shard newer than the page's last is on this page or earlier ones, and each
    shard's next item is known (the merge needed it to choose), so starting there neither skips
    nor repeats, and a shard with nothing left is simply not named again.

    The cost: the first page makes one query per shard (16), the following ones one per shard
    not yet exhausted. A query costs one round trip of a few milliseconds and at least half a
    read unit however little it answers, so a page costs a few read units and well under 100 ms
    more than one query on one key would; in exchange no key takes more than 1/16 of a tenant's
    uploads, which one key could not take (bench/partitions.py).
    """
    starts: dict[int, str | None] = (
        dict.fromkeys(range(shard_set.count)) if positions is None else dict(positions)
    )
    streams: dict[int, Iterator[T]] = {}
    heads: dict[int, T] = {}
    for shard, start in sorted(starts.items()):
        stream = iter(query(shard_set.key(shard), start))
        head = next(stream, None)
        if head is not None:
            streams[shard], heads[shard] = stream, head
    page: list[T] = []
    while heads and len(page) < limit:
        # 16 heads at most: a linear scan is as quick as a heap and plainer.
        shard = max(heads, key=lambda s: sort_key(heads[s]))
        page.append(heads[shard])
        following = next(streams[shard], None)
        if following is None:
            del heads[shard]
        else:
            heads[shard] = following
    return page, ({shard: sort_key(head) for shard, head in heads.items()} or None)


# --------------------------------------------------------------------------- cursors

_SORT_KEY = re.compile(r"^[A-Z]+#[0-9A-Za-z_-]{1,80}$")


def cursor_invalid() -> ValidationFailed:
    return ValidationFailed(
        [ImgdropError("cursor_invalid", "The cursor is not one this API returned.", 400, "/cursor")]
    )


def encode_cursor(shard_set: ShardSet, positions: Positions | None) -> str | None:
    """An opaque cursor: the shard set it belongs to and each remaining shard's position."""
    if not positions:
        return None
    body = {"in": shard_set.prefix, "at": {str(shard): key for shard, key in sorted(positions.items())}}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, shard_set: ShardSet, sort_key_prefix: str) -> Positions | None:
    """Only a cursor this API issued for this very shard set (this tenant, this album, this
    endpoint): anything else is 400 cursor_invalid. A cursor names positions only; every query
    still runs on the caller's own keys, so no cursor can reach another tenant's items."""
    if not cursor:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise cursor_invalid() from exc
    if not isinstance(body, dict) or set(body) != {"in", "at"} or body["in"] != shard_set.prefix:
        raise cursor_invalid()
    at = body["at"]
    if not isinstance(at, dict) or not at:
        raise cursor_invalid()
    positions: Positions = {}
    for shard, key in at.items():
        if not (isinstance(shard, str) and shard.isdigit() and str(int(shard)) == shard):
            raise cursor_invalid()
        if int(shard) >= shard_set.count:
            raise cursor_invalid()
        if not (isinstance(key, str) and key.startswith(sort_key_prefix) and _SORT_KEY.match(key)):
            raise cursor_invalid()
        positions[int(shard)] = key
    return positions


# --------------------------------------------------------------------------- every item, resumably


class ShardWalk(Iterator[Any]):
    """Every item of a shard set, shard after shard (no overall order), resumable after any
    item: `position` (JSON) is where to go on from, None once every shard is read.

    `query(partition_key, exclusive_start_key)` answers a PynamoDB result iterator, whose
    `last_evaluated_key` is the key of the last item it gave (or where DynamoDB stopped)."""

    def __init__(self, shard_set: ShardSet, query: Callable[[str, dict[str, Any] | None], Any],
                 position: dict[str, Any] | None):
        self._shards = shard_set
        self._query = query
        self._done = False
        # Anything but a position this class gave (e.g. None) starts at the first shard.
        resume = isinstance(position, dict) and isinstance(position.get("shard"), int)
        shard = int(position["shard"]) if resume and position else 0
        self._open(min(shard, shard_set.count - 1), position.get("key") if resume and position else None)

    def _open(self, shard: int, start_key: dict[str, Any] | None) -> None:
        self._shard, self._start_key, self._started = shard, start_key, False
        self._result = self._query(self._shards.key(shard), start_key)

    def __iter__(self) -> ShardWalk:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                item = next(self._result)
            except StopIteration:
                if self._shard + 1 >= self._shards.count:
                    self._done = True
                    raise
                self._open(self._shard + 1, None)
                continue
            self._started = True
            return item

    @property
    def position(self) -> dict[str, Any] | None:
        if self._done:
            return None
        if not self._started:
            return {"shard": self._shard, "key": self._start_key}
        key = self._result.last_evaluated_key
        if key:
            return {"shard": self._shard, "key": key}
        if self._shard + 1 < self._shards.count:
            return {"shard": self._shard + 1, "key": None}
        return None
