"""Near-duplicate index: pure functions, the policy, and exactness against brute force."""

from __future__ import annotations

import itertools
import json
import math
import random

import imagehash
import numpy as np
import pytest

from imgdrop.dedupe import (
    DEFAULT_LAYOUT,
    DEFAULT_THRESHOLD,
    BandLayout,
    InMemoryHashIndexStore,
    NearDuplicateIndex,
    NearDuplicatePolicy,
    Verdict,
    band_key,
    band_postings,
    format_hash,
    hamming,
    neighbour_masks,
    neighbours,
    parse_hash,
    policy_for,
    read_keys,
    write_keys,
)


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


def test_band_values_cut_the_hash_most_significant_band_first():
    value = parse_hash("0123456789abcdef")
    assert DEFAULT_LAYOUT.band_values(value) == [0x0123, 0x4567, 0x89AB, 0xCDEF]
    assert BandLayout(bands=8).band_values(value) == [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF]
    with pytest.raises(ValueError):
        BandLayout(bands=5)


def test_keys_carry_tenant_band_and_value():
    assert band_key("acme", 2, 0xBEEF) == "T#acme#PH2#beef"
    keys = write_keys("acme", "0123456789abcdef")
    assert len(keys) == 4 * 17 and keys[0] == "T#acme#PH0#0123"
    assert all(k.startswith("T#acme#PH") for k in keys)
    with pytest.raises(ValueError):
        write_keys("ac#me", "0123456789abcdef")


@pytest.mark.parametrize(
    "threshold,keys,requests", [(0, 4, 1), (7, 4, 1), (8, 68, 1), (11, 68, 1), (12, 548, 6), (15, 548, 6)]
)
def test_read_keys_and_requests_per_threshold(threshold, keys, requests):
    assert len(read_keys("acme", "0123456789abcdef", threshold)) == keys
    assert math.ceil(keys / 100) == requests
    assert DEFAULT_LAYOUT.max_threshold() == 15


@pytest.mark.parametrize("layout", [DEFAULT_LAYOUT, BandLayout(4, 0), BandLayout(4, 2), BandLayout(8, 1)])
def test_every_pair_within_the_threshold_shares_a_key(layout):
    # The pigeonhole and the write/read split, checked pair by pair at every distance.
    rng = random.Random(11)
    for threshold in range(0, layout.max_threshold() + 1):
        for distance in range(threshold + 1):
            for _ in range(15):
                stored = rng.getrandbits(64)
                query = flip(stored, distance, rng)
                written = set(write_keys("t", format_hash(stored), layout))
                read = set(read_keys("t", format_hash(query), threshold, layout))
                assert written & read, (threshold, distance)


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
def test_find_is_exact_against_brute_force_at_every_threshold(seed):
    rng = random.Random(seed)
    queries = [rng.getrandbits(64) for _ in range(4)]
    stored = planted_collection(rng, 400, queries, 15)
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    for image_id, phash in stored.items():
        index.add("acme", image_id, phash)

    for threshold in range(0, 16):
        for q in queries:
            query = format_hash(q)
            assert index.find("acme", query, threshold) == brute_force(stored, query, threshold)


def test_find_with_a_near_copy_of_a_stored_hash_is_exact_too():
    # queries that are themselves near a stored hash: the lookup the process function makes
    rng = random.Random(5)
    stored = {f"img-{i}": format_hash(rng.getrandbits(64)) for i in range(300)}
    index = NearDuplicateIndex(InMemoryHashIndexStore())
    for image_id, phash in stored.items():
        index.add("acme", image_id, phash)
    for image_id, phash in itertools.islice(stored.items(), 40):
        for d in (0, 3, 8, 12):
            query = format_hash(flip(int(phash, 16), d, rng))
            assert (image_id, d) in index.find("acme", query, 12)
            assert index.find("acme", query, 12) == brute_force(stored, query, 12)


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


@pytest.mark.parametrize("threshold,requests", [(10, 1), (12, 6)])
def test_requests_per_lookup_do_not_grow_with_the_collection(threshold, requests):
    rng = np.random.default_rng(9)
    counts = []
    for size in (100, 2_000, 50_000):
        hashes = rng.integers(0, 2**64, size=size, dtype=np.uint64)
        store = InMemoryHashIndexStore()
        keys, offsets, members = band_postings("acme", hashes)
        store.load_postings(
            keys,
            offsets,
            members,
            [str(i) for i in range(size)],
            [format_hash(int(h)) for h in hashes.tolist()],
        )
        before = store.stats.snapshot()
        NearDuplicateIndex(store).find("acme", format_hash(int(hashes[0])), threshold)
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


def test_full_buckets_cost_extra_shard_reads_and_stay_exact():
    store = InMemoryHashIndexStore(entries_per_item=2)
    index = NearDuplicateIndex(store)
    for i in range(5):
        index.add("acme", f"img-{i}", "0f0f0f0f0f0f0f0f")

    before = store.stats.snapshot()
    found = index.find("acme", "0f0f0f0f0f0f0f0f", 0)
    used = store.stats.since(before)

    assert found == [(f"img-{i}", 0) for i in range(5)]
    assert used.read_requests == 2 and used.items_read == 4 * 3


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
