"""Sharded keys: a stable shard per id, one list merged from the shards, cursors bound to theirs."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from collections import Counter

import pytest

from imgdrop.errors import ValidationFailed
from imgdrop.ids import new_id
from imgdrop.store.db import (
    DELIVERY_SHARDS,
    LISTING_SHARDS,
    album_gsi_pk,
    album_listing,
    claim_key,
    delivery_key,
    image_keys,
    listing_gsi_pk,
    tenant_listing,
)
from imgdrop.store.shards import ShardSet, ShardWalk, decode_cursor, encode_cursor, merged_page, shard_of

# --------------------------------------------------------------------------- the shard of an id


def test_the_shard_of_an_id_is_pinned():
    """Golden values: an id's shard may never change, or its updates would miss its item."""
    assert [shard_of(i, 16) for i in ("01m8r1237e8fvvdp2sqhtkz09p", "msg_01m8r12cbtnaf0gc68bkrpvccm", "a", "")] == [
        7, 10, 3, 0,
    ]
    assert shard_of("01m8r1237e8fvvdp2sqhtkz09p", 32) == 7


def test_the_shard_of_an_id_is_the_same_in_another_process():
    """Not Python's hash(): a string's hash is salted per process (PYTHONHASHSEED)."""
    ids = [new_id() for _ in range(20)]
    code = (
        "import json, sys; from imgdrop.store.shards import shard_of; "
        "print(json.dumps([shard_of(i, 16) for i in json.loads(sys.argv[1])]))"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(ids)], capture_output=True, text=True, check=True, timeout=120,
                         env={"PYTHONPATH": ":".join(sys.path), "PYTHONHASHSEED": "random"})
    assert json.loads(out.stdout) == [shard_of(i, 16) for i in ids]


def test_ids_spread_over_every_shard():
    counts = Counter(shard_of(new_id(), LISTING_SHARDS) for _ in range(16_000))
    assert set(counts) == set(range(LISTING_SHARDS))
    assert max(counts.values()) < 1.15 * 1000 and min(counts.values()) > 0.85 * 1000


def test_an_images_keys_put_it_on_its_own_partition_and_its_listing_shards():
    image_id = "01m8r1237e8fvvdp2sqhtkz09p"  # shard 7
    assert image_keys("acme", image_id, "alb1") == {
        "pk": f"T#acme#IMG#{image_id}",
        "sk": f"IMG#{image_id}",
        "gsi3pk": "T#acme#L#S7",
        "gsi3sk": f"IMG#{image_id}",
        "gsi1pk": "T#acme#ALB#alb1#S7",
        "gsi1sk": f"IMG#{image_id}",
    }
    assert image_keys("acme", image_id, None)["gsi1pk"] is None
    assert listing_gsi_pk("acme", image_id) == tenant_listing("acme").key_for(image_id)
    assert album_gsi_pk("acme", "alb1", image_id) == album_listing("acme", "alb1").key_for(image_id)
    assert claim_key("acme", "SHA", "ab12") == ("T#acme#SHA#ab12", "SHA#ab12")
    assert claim_key("acme", "SLUG", "sunset") == ("T#acme#SLUG#sunset", "SLUG#sunset")
    pk, sk = delivery_key("acme", "wh1", "msg_01m8r12cbtnaf0gc68bkrpvccm")
    assert (pk, sk) == ("T#acme#WH#wh1#S10", "DLV#msg_01m8r12cbtnaf0gc68bkrpvccm")
    assert DELIVERY_SHARDS == 16


# --------------------------------------------------------------------------- merging the shards


class FakeShards:
    """Items (sort keys) on shards, queried as DynamoDB would: newest first, `page` at a time."""

    def __init__(self, shard_set: ShardSet, keys: list[str], page: int = 3):
        self.shard_set = shard_set
        self.by_key: dict[str, list[str]] = {shard_set.key(s): [] for s in range(shard_set.count)}
        for key in keys:
            self.by_key[shard_set.key_for(key)].append(key)
        self.page = page
        self.requests: list[str] = []

    def query(self, partition_key: str, start: str | None):
        items = sorted((k for k in self.by_key[partition_key] if start is None or k <= start), reverse=True)
        for offset in range(0, max(len(items), 1), self.page):
            self.requests.append(partition_key)
            yield from items[offset : offset + self.page]


def pages(shards: FakeShards, limit: int) -> list[list[str]]:
    out, positions = [], None
    while True:
        page, positions = merged_page(shards.shard_set, shards.query, lambda k: k, limit, positions)
        out.append(page)
        if positions is None:
            return out
        assert len(out) < 1000


@pytest.mark.parametrize(("count", "limit"), [(40, 7), (40, 1), (40, 40), (40, 100), (3, 7), (0, 5), (200, 13)])
def test_merged_pages_are_newest_first_full_and_without_gaps_or_repeats(count, limit):
    rng = random.Random(count * 1000 + limit)
    keys = [f"IMG#{rng.getrandbits(64):016x}" for _ in range(count)]
    shards = FakeShards(ShardSet("T#acme#L", 16), keys)
    got = pages(shards, limit)
    flat = [k for page in got for k in page]
    assert flat == sorted(keys, reverse=True)  # every item once, newest first
    assert all(len(page) == limit for page in got[:-1])  # full pages but the last
    if count:
        assert got[-1]  # no empty page after the last one


def test_a_page_reads_each_shard_once_or_twice_not_limit_times():
    keys = [f"IMG#{i:04d}" for i in range(400)]
    shards = FakeShards(ShardSet("T#acme#L", 16), keys, page=2 * -(-50 // 16))
    merged_page(shards.shard_set, shards.query, lambda k: k, 50, None)
    per_shard = Counter(shards.requests)
    assert len(per_shard) == 16 and max(per_shard.values()) <= 3


def test_later_pages_query_only_the_shards_with_items_left():
    keys = ["IMG#9", "IMG#8", "IMG#7"]
    shards = FakeShards(ShardSet("T#acme#ALB#a", 16), keys)
    page, positions = merged_page(shards.shard_set, shards.query, lambda k: k, 2, None)
    assert page == ["IMG#9", "IMG#8"] and positions == {shard_of("IMG#7", 16): "IMG#7"}
    shards.requests.clear()
    page, positions = merged_page(shards.shard_set, shards.query, lambda k: k, 2, positions)
    assert (page, positions, shards.requests) == (["IMG#7"], None, [shards.shard_set.key_for("IMG#7")])


def test_an_item_added_between_pages_does_not_shift_the_pages():
    keys = [f"IMG#{i:03d}" for i in range(100, 140)]
    shards = FakeShards(ShardSet("T#acme#L", 16), keys)
    first, positions = merged_page(shards.shard_set, shards.query, lambda k: k, 7, None)
    shards.by_key[shards.shard_set.key_for("IMG#999")].append("IMG#999")  # newer than all
    rest = [k for page in pages_from(shards, 7, positions) for k in page]
    assert first + rest == sorted(keys, reverse=True)


def pages_from(shards: FakeShards, limit: int, positions):
    while positions is not None:
        page, positions = merged_page(shards.shard_set, shards.query, lambda k: k, limit, positions)
        yield page


# --------------------------------------------------------------------------- cursors


def b64(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_a_cursor_round_trips_for_its_own_shard_set():
    listing = tenant_listing("acme")
    positions = {0: "IMG#01m8r1237e8fvvdp2sqhtkz09p", 15: "IMG#01m8r12cbtnaf0gc68bkrpvccm"}
    cursor = encode_cursor(listing, positions)
    assert cursor is not None and decode_cursor(cursor, listing, "IMG#") == positions
    assert encode_cursor(listing, None) is None and decode_cursor(None, listing, "IMG#") is None


@pytest.mark.parametrize(
    "other",
    [tenant_listing("rival"), album_listing("acme", "a1"), ShardSet("T#acme#WH#w1", 16)],
    ids=["another tenant", "an album", "an endpoint"],
)
def test_a_cursor_of_another_listing_is_cursor_invalid(other):
    cursor = encode_cursor(other, {3: "IMG#01m8r1237e8fvvdp2sqhtkz09p"})
    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(cursor, tenant_listing("acme"), "IMG#")
    assert raised.value.code == "cursor_invalid" and raised.value.status == 400


@pytest.mark.parametrize(
    "cursor",
    [
        b64({"in": "T#acme#L", "at": {"16": "IMG#01a"}}),  # no such shard
        b64({"in": "T#acme#L", "at": {"-1": "IMG#01a"}}),
        b64({"in": "T#acme#L", "at": {"03": "IMG#01a"}}),  # not as issued
        b64({"in": "T#acme#L", "at": {"3": "DLV#msg_01a"}}),  # another kind of item
        b64({"in": "T#acme#L", "at": {"3": "IMG#a b"}}),
        b64({"in": "T#acme#L", "at": {"3": 7}}),
        b64({"in": "T#acme#L", "at": {}}),
        b64({"in": "T#acme#L", "at": ["IMG#01a"]}),
        b64({"in": "T#acme#L", "at": {"3": "IMG#01a"}, "more": 1}),
        b64({"pk": {"S": "T#acme"}, "sk": {"S": "IMG#01"}}),  # the unsharded cursor of old
        b64([1, 2]),
        "not base64 at all!",
    ],
)
def test_a_cursor_imgdrop_did_not_issue_is_cursor_invalid(cursor):
    with pytest.raises(ValidationFailed) as raised:
        decode_cursor(cursor, tenant_listing("acme"), "IMG#")
    assert raised.value.code == "cursor_invalid"


# --------------------------------------------------------------------------- walking every shard


class FakeResult:
    """A PynamoDB result iterator over one shard: last_evaluated_key is the last item's key."""

    def __init__(self, items: list[str], start: dict | None):
        self.items = [i for i in items if start is None or i > start["sk"]]
        self.index = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.index >= len(self.items):
            raise StopIteration
        self.index += 1
        return self.items[self.index - 1]

    @property
    def last_evaluated_key(self):
        return {"sk": self.items[self.index - 1]} if 0 < self.index < len(self.items) else None


def test_a_walk_resumed_from_any_position_reads_every_item_once():
    shard_set = ShardSet("T#acme#L", 4)
    items = {shard_set.key(s): sorted(f"IMG#{s}{i}" for i in range(s)) for s in range(4)}  # shard 0 empty

    def query(partition_key, start):
        return FakeResult(items[partition_key], start)

    everything = sorted(i for shard in items.values() for i in shard)
    for stop_after in range(len(everything) + 1):
        walk, seen = ShardWalk(shard_set, query, None), []
        while len(seen) < stop_after:
            seen.append(next(walk))
        position = walk.position
        seen.extend(ShardWalk(shard_set, query, position) if position else [])
        assert sorted(seen) == everything, stop_after
    finished = ShardWalk(shard_set, query, None)
    assert sorted(finished) == everything and finished.position is None
