"""Near-duplicate index: pure functions, the layout, the policy, exactness within the guaranteed
radius and recall beyond it, against brute force."""

from __future__ import annotations

import itertools
import json
import math
import random

import imagehash
import numpy as np
import pytest

from imgdrop.dedupe.bands import (
    DEFAULT_LAYOUT,
    DEFAULT_THRESHOLD,
    BandLayout,
    band_key,
    format_hash,
    hamming,
    neighbour_masks,
    neighbours,
    parse_hash,
    read_keys,
    write_keys,
)
from imgdrop.dedupe.index import NearDuplicateIndex, band_postings, table_values
from imgdrop.dedupe.policy import NearDuplicatePolicy, Verdict, policy_for
from imgdrop.dedupe.stores import IndexEntry, InMemoryHashIndexStore

PINNED_FIRST_BITS = (43, 5, 62, 46, 48)
PINNED_KEYS = ["T#acme#NX00#1ab3a", "T#acme#NX01#4a8c6"]


def flip(value: int, distance: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), distance):
        value ^= 1 << bit
    return value


def brute_force(stored: dict[str, str], query: str, threshold: int) -> list[tuple[str, int]]:
    found = [(i, hamming(h, query)) for i, h in stored.items()]
    return sorted(((i, d) for i, d in found if d <= threshold), key=lambda m: (m[1], m[0]))


# --- pure functions ---------------------------------------------------------------------


def test_hamming_agrees_with_imagehash():
    rng = random.Random(3)
    for _ in range(200):
        a, b = format_hash(rng.getrandbits(64)), format_hash(rng.getrandbits(64))
        assert hamming(a, b) == imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)
    assert hamming("ffffffffffffffff", "0000000000000000") == 64
    assert hamming("0123456789ABCDEF", "0123456789abcdef") == 0


@pytest.mark.parametrize("bad", ["", "0123", "0123456789abcdeg", "0123456789abcdef0", None, 12])
def test_parse_hash_rejects_anything_but_16_hex_characters(bad):
    with pytest.raises(ValueError):
        parse_hash(bad)


@pytest.mark.parametrize("bits,radius", [(16, 0), (16, 1), (16, 2), (16, 3), (8, 8)])
def test_neighbour_masks_enumerate_the_hamming_ball_exactly_once(bits, radius):
    masks = neighbour_masks(bits, radius)
    assert len(masks) == sum(math.comb(bits, k) for k in range(radius + 1))
    assert len(set(masks)) == len(masks)
    assert masks[0] == 0
    assert all(m.bit_count() <= radius and m < 1 << bits for m in masks)
    assert sorted(neighbours(0x5A5A, bits, radius)) == sorted(0x5A5A ^ m for m in masks)


def test_layout_tables_sample_disjoint_bands_of_the_informative_bits():
    layout = DEFAULT_LAYOUT
    assert (layout.groups, layout.bands_per_group, layout.bands, layout.band_bits) == (14, 3, 42, 19)
    assert len(layout.tables) == 42
    for g in range(layout.groups):
        group = layout.tables[g * 3 : g * 3 + 3]
        bits = [b for table in group for b in table]
        assert len(bits) == len(set(bits)) == 57  # disjoint bands; 6 bits left over
        assert 63 not in bits  # phash's DC bit is always 1: never keyed
    # the left-over bits of the first ten groups are disjoint (the exactness guarantee)
    left_over = [set(range(63)) - {b for t in layout.tables[g * 3 : g * 3 + 3] for b in t} for g in range(10)]
    assert all(not (a & b) for a, b in itertools.combinations(left_over, 2))
    with pytest.raises(ValueError):
        BandLayout(band_bits=0)
    with pytest.raises(ValueError):
        BandLayout(band_bits=33)


def test_band_values_pick_each_tables_bits():
    rng = random.Random(4)
    for _ in range(50):
        value = rng.getrandbits(64)
        for bits, key in zip(DEFAULT_LAYOUT.tables, DEFAULT_LAYOUT.band_values(value), strict=True):
            assert key == sum(((value >> b) & 1) << j for j, b in enumerate(bits))


def test_the_layout_is_pinned():
    # The layout is stored data: changing the shuffle silently would orphan every bucket.
    assert DEFAULT_LAYOUT.tables[0][:5] == PINNED_FIRST_BITS
    assert write_keys("acme", "0123456789abcdef")[:2] == PINNED_KEYS


def test_keys_carry_tenant_table_and_value():
    assert band_key("acme", 2, 0xBEEF) == "T#acme#NX02#0beef"
    keys = write_keys("acme", "0123456789abcdef")
    assert len(keys) == 42 and len(set(keys)) == 42
    assert all(k.startswith("T#acme#NX") for k in keys)
    with pytest.raises(ValueError):
        write_keys("ac#me", "0123456789abcdef")


@pytest.mark.parametrize(
    "threshold,keys,requests", [(0, 42, 1), (2, 42, 1), (3, 840, 9), (12, 840, 9), (15, 840, 9)]
)
def test_read_keys_and_requests_per_threshold(threshold, keys, requests):
    assert len(read_keys("acme", "0123456789abcdef", threshold)) == keys
    assert math.ceil(keys / 100) == requests
    assert DEFAULT_LAYOUT.max_threshold() == 15
    # the query's own keys (where its insert writes) are read first
    assert read_keys("acme", "0123456789abcdef", threshold)[:: keys // 42] == write_keys(
        "acme", "0123456789abcdef"
    )


@pytest.mark.parametrize(
    "layout",
    [DEFAULT_LAYOUT, BandLayout(groups=4, band_bits=16), BandLayout(groups=5, band_bits=21)],
)
def test_every_pair_within_the_exact_radius_shares_a_key(layout):
    # The pigeonhole over each group's bands and the disjoint left-over sets, pair by pair.
    rng = random.Random(11)
    assert DEFAULT_LAYOUT.exact_radius(0) == 2 and DEFAULT_LAYOUT.exact_radius(1) == 5
    for threshold in range(0, layout.max_threshold() + 1):
        exact = min(threshold, layout.exact_radius(layout.read_radius(threshold)))
        for distance in range(exact + 1):
            for _ in range(15):
                stored = rng.getrandbits(64)
                query = flip(stored, distance, rng)
                written = set(write_keys("t", format_hash(stored), layout))
                read = set(read_keys("t", format_hash(query), threshold, layout))
                assert written & read, (threshold, distance)


def test_recall_beyond_the_exact_radius():
    # Uniformly random differences (phash's DC bit never differs): the curve in
    # bench/near_duplicate_table.md; the real-photo transforms do as well. A pair shares a key
    # when some table's bits hold at most one of its differences (checked on keys below).
    rng = random.Random(12)
    masks = DEFAULT_LAYOUT.table_masks
    for distance, floor in ((6, 0.999), (8, 0.995), (10, 0.98), (12, 0.9)):
        found = 0
        for i in range(3000):
            diff = sum(1 << bit for bit in rng.sample(range(63), distance))
            hit = any((diff & m).bit_count() <= 1 for m in masks)
            found += hit
            if i < 20:
                stored = rng.getrandbits(64)
                written = set(write_keys("t", format_hash(stored)))
                assert hit == bool(written & set(read_keys("t", format_hash(stored ^ diff), 12)))
        assert found / 3000 >= floor, (distance, found)


# --- the index, in memory ---------------------------------------------------------------


def planted_collection(
    rng: random.Random, size: int, queries: list[int], max_distance: int
) -> dict[str, str]:
    stored = {f"rand-{i}": format_hash(rng.getrandbits(64)) for i in range(size)}
    for qi, q in enumerate(queries):
        for d in range(max_distance + 5):
            stored[f"q{qi}-d{d}"] = format_hash(flip(q, d, rng))
    return stored


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_find_is_exact_within_the_exact_radius_and_never_wrong_beyond(seed):
    rng = random.Random(seed)
    queries = [rng.getrandbits(64) for _ in range(4)]
    stored = planted_collection(rng, 400, queries, 15)
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    for image_id, phash in stored.items():
        index.add("acme", image_id, phash)

    for threshold in range(0, 16):
        exact = DEFAULT_LAYOUT.exact_radius(DEFAULT_LAYOUT.read_radius(threshold))
        for q in queries:
            query = format_hash(q)
            found = index.find("acme", query, threshold)
            truth = brute_force(stored, query, threshold)
            assert set(found) <= set(truth)  # every answer is a true one, at its distance
            assert [m for m in truth if m[1] <= exact] == [m for m in found if m[1] <= exact]
            assert found == sorted(found, key=lambda m: (m[1], m[0]))


def test_find_with_a_near_copy_of_a_stored_hash():
    # queries that are themselves near a stored hash: the lookup the process function makes
    rng = random.Random(5)
    stored = {f"img-{i}": format_hash(rng.getrandbits(64)) for i in range(300)}
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    for image_id, phash in stored.items():
        index.add("acme", image_id, phash)
    hits = total = 0
    for image_id, phash in itertools.islice(stored.items(), 40):
        for d in (0, 2, 4, 8, 12):
            query = format_hash(flip(int(phash, 16), d, rng))
            found = index.find("acme", query, 12)
            assert set(found) <= set(brute_force(stored, query, 12))
            if d <= 5:
                assert (image_id, d) in found
            else:
                total += 1
                hits += (image_id, d) in found
    assert hits / total >= 0.9


def test_exclude_limit_remove_and_idempotent_add():
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    index.add("acme", "a", "00000000000000ff")
    index.add("acme", "a", "00000000000000ff")
    index.add("acme", "b", "00000000000000fe")
    index.add("acme", "c", "00000000000000fc")

    assert index.find("acme", "00000000000000ff", 4) == [("a", 0), ("b", 1), ("c", 2)]
    assert index.find("acme", "00000000000000ff", 4, exclude="a", limit=1) == [("b", 1)]
    index.remove("acme", "b", "00000000000000fe")
    assert index.find("acme", "00000000000000ff", 4) == [("a", 0), ("c", 2)]
    assert index.last_lookup.candidates == 2


def test_tenants_are_isolated():
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    index.add("acme", "a", "00000000000000ff")
    assert index.find("globex", "00000000000000ff", 12) == []


def test_threshold_beyond_the_layout_is_refused():
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    with pytest.raises(ValueError):
        index.find("acme", "00000000000000ff", 16)


@pytest.mark.parametrize("threshold,requests", [(2, 1), (12, 9)])
def test_requests_per_lookup_do_not_grow_with_the_collection(threshold, requests):
    rng = np.random.default_rng(9)
    counts = []
    for size in (100, 2_000, 50_000):
        hashes = rng.integers(0, 2**64, size=size, dtype=np.uint64)
        store = InMemoryHashIndexStore()
        query = format_hash(int(hashes[0]))
        keys, offsets, members = band_postings("acme", hashes, only=read_keys("acme", query, threshold))
        store.load_postings(
            keys,
            offsets,
            members,
            [str(i) for i in range(size)],
            [format_hash(int(h)) for h in hashes.tolist()],
        )
        before = store.stats.snapshot()
        NearDuplicateIndex(store).find("acme", query, threshold)
        counts.append(store.stats.since(before).read_requests)
    assert counts == [requests] * 3


def test_bulk_postings_match_incremental_adds():
    rng = np.random.default_rng(2)
    hashes = rng.integers(0, 2**64, size=500, dtype=np.uint64)
    hashes[1:10] = [hashes[0] ^ np.uint64(1 << b) for b in range(0, 27, 3)]  # near neighbours
    ids = [f"img-{i}" for i in range(len(hashes))]
    hexes = [format_hash(int(h)) for h in hashes.tolist()]
    bulk, incremental = InMemoryHashIndexStore(), InMemoryHashIndexStore()
    bulk.load_postings(*band_postings("acme", hashes), ids, hexes)
    for image_id, phash in zip(ids, hexes, strict=True):
        NearDuplicateIndex(incremental).add("acme", image_id, phash)

    for phash in hexes[:20]:
        assert NearDuplicateIndex(bulk).find("acme", phash, 12) == NearDuplicateIndex(incremental).find(
            "acme", phash, 12
        )
    # a bulk-loaded bucket thaws on change
    NearDuplicateIndex(bulk).remove("acme", ids[1], hexes[1])
    assert ids[1] not in dict(NearDuplicateIndex(bulk).find("acme", hexes[0], 12))


def test_bulk_postings_of_only_some_keys_and_table_values():
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 2**64, size=2_000, dtype=np.uint64)
    full = dict(zip(*_buckets(band_postings("acme", hashes)), strict=True))
    wanted = read_keys("acme", format_hash(int(hashes[7])), 12)
    keys, buckets = _buckets(band_postings("acme", hashes, only=wanted))
    assert set(keys) <= set(wanted)
    assert {k: full[k] for k in wanted if k in full} == dict(zip(keys, buckets, strict=True))
    for values, t in zip(table_values(hashes[:5]), range(42), strict=False):
        assert values.tolist() == [DEFAULT_LAYOUT.band_values(int(h))[t] for h in hashes[:5].tolist()]


def _buckets(postings):
    keys, offsets, members = postings
    return keys, [members[offsets[k] : offsets[k + 1]].tolist() for k in range(len(keys))]


def test_a_full_bucket_takes_no_more_writes_and_no_walk():
    store = InMemoryHashIndexStore(entries_per_item=2)
    index = NearDuplicateIndex(store)
    for i in range(5):
        index.add("acme", f"img-{i}", "0f0f0f0f0f0f0f0f")
    # two entries fill every bucket; the later inserts read them (one request) and write nothing
    assert store.stats.write_requests == 2 * 42 and store.stats.read_requests == 5
    assert store.stats.dropped == 0

    before = store.stats.snapshot()
    found = index.find("acme", "0f0f0f0f0f0f0f0f", 0)
    used = store.stats.since(before)
    assert found == [("img-0", 0), ("img-1", 0)]
    assert used.read_requests == 1 and used.items_read == 42

    # after a lookup the insert knows its full buckets: no read, no write
    before = store.stats.snapshot()
    index.add("acme", "img-5", "0f0f0f0f0f0f0f0f")
    assert store.stats.since(before).read_requests == 0 and store.stats.since(before).write_requests == 0

    # a writer that raced past the check is refused by the bucket: one request, dropped
    store.batch_add([IndexEntry(write_keys("acme", "0f0f0f0f0f0f0f0f")[0], "img-6", "0f0f0f0f0f0f0f0f")])
    assert store.stats.dropped == 1 and store.stats.write_requests == 2 * 42 + 1

    # a removal frees a slot in every table
    index.remove("acme", "img-0", "0f0f0f0f0f0f0f0f")
    index.add("acme", "img-7", "0f0f0f0f0f0f0f0f")
    assert index.find("acme", "0f0f0f0f0f0f0f0f", 0) == [("img-1", 0), ("img-7", 0)]


def test_store_counts_capacity_units_as_dynamodb_does():
    store = InMemoryHashIndexStore()
    index = NearDuplicateIndex(store)
    for i in range(60):  # 60 entries of 43 bytes: an item of about 2.6 KB
        index.add("acme", f"{i:026d}", "0f0f0f0f0f0f0f0f")
    before = store.stats.snapshot()
    index.find("acme", "0f0f0f0f0f0f0f0f", 0)
    used = store.stats.since(before)
    assert used.read_units == 42 * 0.5  # each item under 4 KB: half a unit, eventually consistent
    assert 60 * 43 < used.bytes_read / 42 < 60 * 43 + 40
    before = store.stats.snapshot()
    index.add("acme", "x" * 26, "0f0f0f0f0f0f0f0f")
    assert store.stats.since(before).write_units == 42 * 3  # 2.6 KB: three write units each


# --- policy -------------------------------------------------------------------------------


def test_policy_defaults_and_profile_overrides():
    config = {
        "threshold": 10,
        "mode": "reject",
        "profiles": {"avatar": {"mode": "off"}, "product": {"threshold": 6}},
    }

    assert NearDuplicatePolicy() == NearDuplicatePolicy(threshold=DEFAULT_THRESHOLD, mode="flag")
    assert NearDuplicatePolicy.for_profile(config, "default") == NearDuplicatePolicy(
        threshold=10, mode="reject"
    )
    assert NearDuplicatePolicy.for_profile(config, "avatar") == NearDuplicatePolicy(threshold=10, mode="off")
    assert NearDuplicatePolicy.for_profile(config, "product") == NearDuplicatePolicy(
        threshold=6, mode="reject"
    )
    assert NearDuplicatePolicy.for_profile(None, "avatar") == NearDuplicatePolicy()


@pytest.mark.parametrize(
    "data",
    [
        {"threshold": 16},
        {"threshold": -1},
        {"threshold": "12"},
        {"threshold": True},
        {"mode": "block"},
        {"max_similar": 0},
        {"treshold": 10},
    ],
)
def test_policy_rejects_bad_settings(data):
    with pytest.raises(ValueError):
        NearDuplicatePolicy.from_dict(data)


def test_policy_decides_per_mode():
    matches = [("a", 2), ("b", 8), ("c", 14)]

    assert NearDuplicatePolicy(threshold=12, mode="reject").decide(matches) == Verdict(
        "duplicate", "a", [("a", 2), ("b", 8)]
    )
    assert NearDuplicatePolicy(threshold=12, mode="flag").decide(matches) == Verdict(
        "ready", None, [("a", 2), ("b", 8)]
    )
    assert NearDuplicatePolicy(mode="off").decide(matches) == Verdict("ready", None, [])
    assert NearDuplicatePolicy(mode="reject").decide([]) == Verdict("ready", None, [])
    assert NearDuplicatePolicy(threshold=4, mode="flag", max_similar=1).decide(matches).similar == [("a", 2)]


def test_policy_for_reads_the_profiles_document_and_the_deployments_overrides():
    document = {
        "near_duplicate": {"threshold": 10, "mode": "reject"},
        "profiles": {
            "default": {"variants": []},
            "avatar": {"variants": [], "near_duplicate": {"mode": "off"}},
        },
    }

    assert policy_for("default", document) == NearDuplicatePolicy(threshold=10, mode="reject")
    assert policy_for("avatar", document) == NearDuplicatePolicy(threshold=10, mode="off")
    assert policy_for("default", document, mode="flag").mode == "flag"
    assert policy_for("avatar", document, mode="flag").mode == "off"
    assert policy_for("default", document, threshold=8).threshold == 8


def test_policy_for_the_built_in_profiles_is_the_measured_default():
    from imgdrop.profiles import BUILTIN_PROFILES_FILE

    document = json.loads(BUILTIN_PROFILES_FILE.read_text())
    assert policy_for("default", document).threshold == DEFAULT_THRESHOLD == 12


# --- what the package loads ---------------------------------------------------------


def test_the_content_claims_load_none_of_the_index_modules():
    import subprocess
    import sys
    from pathlib import Path

    core = Path(__file__).resolve().parents[2] / "layers" / "core"
    code = ("import sys, imgdrop.dedupe.exact; "
            "print(sorted(m for m in sys.modules if m.startswith('imgdrop.dedupe.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env={"PYTHONPATH": str(core), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "['imgdrop.dedupe.exact']"
