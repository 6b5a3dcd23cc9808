"""Near-duplicate index at scale: requests, bytes and capacity units per lookup and per insert,
and recall, at up to 10 M hashes in one tenant; the old exact 4 x 16-bit band index beside it.

The collection: ``size`` phash-like hashes (63 uniformly random bits under phash's DC bit,
which is always 1: uniform is the worst case for entries per bucket) plus, for every query,
planted neighbours at each distance 0..16 (two each). The new index is built in bulk one table
at a time (``table_values``): only the buckets the lookups and inserts touch are loaded into
the counting in-memory store, which answers them exactly as a fully loaded one would, so 10 M
hashes fit in well under a gigabyte and a minute. ``NearDuplicateIndex.find`` then runs every
lookup and is compared with a brute-force numpy scan; inserts run as the process function
makes them (a lookup, then ``add``).

The old scheme (exact, so recall 1.0) is measured in the same run from its bucket sizes: per
lookup the BatchGetItem requests (first shards, then overflow shards), entries and bytes;
per insert the UpdateItem walk over full shards, as its DynamoDB store made them.

Capacity units are counted as DynamoDB bills them: eventually consistent BatchGetItem at half
a unit per 4 KB of each item; UpdateItem at a unit per KB of the larger of the item before and
after.

Run: ``PYTHONPATH=layers/core .venv/bin/python bench/bench_dedupe.py [--quick] [--sizes 1000000,10000000]``
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from imgdrop.dedupe.bands import (
    BATCH_GET_LIMIT,
    DEFAULT_LAYOUT,
    ENTRIES_PER_ITEM,
    band_key,
    format_hash,
    neighbour_masks,
    read_keys,
)
from imgdrop.dedupe.index import NearDuplicateIndex, table_values
from imgdrop.dedupe.stores import InMemoryHashIndexStore, item_bytes, read_units, write_units

TENANT = "bench"
ID_LEN = 26  # imgdrop ids
ENTRY = 16 + 1 + ID_LEN  # "<phash hex>:<id>"
MAX_PLANTED = 16
TARGET_REQUESTS, TARGET_BYTES = 10, 1_000_000


class Ids(Sequence[str]):
    """Image ids made on demand (10 M strings would take a gigabyte)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        return f"{int(i):0{ID_LEN}d}"


class Hexes(Sequence[str]):
    def __init__(self, hashes: np.ndarray):
        self.hashes = hashes

    def __len__(self) -> int:
        return len(self.hashes)

    def __getitem__(self, i: Any) -> Any:
        return f"{int(self.hashes[int(i)]):016x}"


def phash_like(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, size=n, dtype=np.uint64) | np.uint64(1 << 63)


def flip_bits(rng: np.random.Generator, value: int, distance: int) -> int:
    for bit in rng.choice(63, size=distance, replace=False):
        value ^= 1 << int(bit)
    return value


def dataset(size: int, queries: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int], list[int]]:
    hashes = phash_like(rng, size)
    qs = [int(v) for v in phash_like(rng, queries)]
    inserts = [int(v) for v in phash_like(rng, 20)]
    distances = [d for d in range(MAX_PLANTED + 1) for _ in range(2)]
    slots = rng.choice(size, size=queries * len(distances), replace=False)
    k = 0
    for q in qs:
        for d in distances:
            hashes[slots[k]] = np.uint64(flip_bits(rng, q, d))
            k += 1
    return hashes, qs, inserts


# --- the new index ------------------------------------------------------------------------


def load_new(hashes: np.ndarray, wanted: set[str], store: InMemoryHashIndexStore) -> dict[str, float]:
    """Stream the tables; load the wanted buckets; bucket-size figures of every table."""
    layout = DEFAULT_LAYOUT
    by_table: dict[int, list[int]] = {}
    prefix = f"T#{TENANT}#{layout.prefix}"
    for key in wanted:
        table, _, value = key[len(prefix) :].partition("#")
        by_table.setdefault(int(table), []).append(int(value, 16))
    keys: list[str] = []
    offsets = [0]
    parts = []
    largest, over = 0, 0
    for table, values in enumerate(table_values(hashes, layout)):
        sizes = np.bincount(values, minlength=1 << layout.band_bits)
        largest = max(largest, int(sizes.max()))
        over += int(np.maximum(sizes - ENTRIES_PER_ITEM, 0).sum())
        mask = np.zeros(1 << layout.band_bits, dtype=bool)
        mask[by_table.get(table, [])] = True
        picked = np.flatnonzero(mask[values])
        picked = picked[np.argsort(values[picked], kind="stable")]
        uniq, starts, counts = np.unique(values[picked], return_index=True, return_counts=True)
        keys.extend(band_key(TENANT, table, int(v), layout) for v in uniq.tolist())
        offsets.extend((offsets[-1] + np.cumsum(counts)).tolist())
        parts.append(picked)
    store.load_postings(keys, np.array(offsets), np.concatenate(parts), Ids(len(hashes)), Hexes(hashes))
    store.stats.dropped = 0
    return {"largest": largest, "mean": len(hashes) / (1 << layout.band_bits), "over": over}


# --- the old index (4 bands x 16 bits, write radius 1, overflow shards of 1000) -------------

OLD_BANDS, OLD_BITS, OLD_WRITE, OLD_CAP = 4, 16, 1, 1000


def old_bucket_sizes(hashes: np.ndarray) -> list[np.ndarray]:
    """Per band, entries in the bucket of every 16-bit value (each hash sits in 17 buckets)."""
    out = []
    everything = np.arange(1 << OLD_BITS)
    for band in range(OLD_BANDS):
        values = (hashes >> np.uint64(64 - OLD_BITS * (band + 1))) & np.uint64(0xFFFF)
        exact = np.bincount(values.astype(np.int64), minlength=1 << OLD_BITS)
        sizes = np.zeros_like(exact)
        for m in neighbour_masks(OLD_BITS, OLD_WRITE):
            sizes += exact[everything ^ m]
        out.append(sizes)
    return out


def _old_key(band: int, value: int) -> str:
    return f"T#{TENANT}#PH{band}#{value:04x}"


def _old_items(key: str, size: int) -> list[int]:
    """Byte sizes of a bucket's shard items (S#0 first)."""
    full, rest = divmod(size, OLD_CAP)
    sizes = [item_bytes(key, OLD_CAP * ENTRY)] * full
    if rest or not sizes:
        sizes.append(item_bytes(key, rest * ENTRY))
    return sizes


def old_lookup(sizes: list[np.ndarray], q: int, threshold: int) -> dict[str, float]:
    radius = max(0, threshold // OLD_BANDS - OLD_WRITE)
    masks = neighbour_masks(OLD_BITS, radius)
    keys = items = entries = overflow = 0
    nbytes = 0
    units = 0.0
    for band in range(OLD_BANDS):
        v = (q >> (64 - OLD_BITS * (band + 1))) & 0xFFFF
        for m in masks:
            keys += 1
            s = int(sizes[band][v ^ m])
            if not s:
                continue
            shards = _old_items(_old_key(band, v ^ m), s)
            items += len(shards)
            overflow += len(shards) - 1
            entries += s
            nbytes += sum(shards)
            units += sum(read_units(b) for b in shards)
    requests = math.ceil(keys / BATCH_GET_LIMIT) + math.ceil(overflow / BATCH_GET_LIMIT)
    return {
        "keys": keys,
        "requests": requests,
        "items": items,
        "entries": entries,
        "bytes": nbytes,
        "rru": units,
    }


def old_insert(sizes: list[np.ndarray], h: int) -> tuple[int, int]:
    """UpdateItem requests and write units of one insert: per bucket, a refused conditional
    write and a shard-count update per full shard, then the write (the old store's walk)."""
    requests = units = 0
    for band in range(OLD_BANDS):
        v = (h >> (64 - OLD_BITS * (band + 1))) & 0xFFFF
        for m in neighbour_masks(OLD_BITS, OLD_WRITE):
            key = _old_key(band, v ^ m)
            shards = _old_items(key, int(sizes[band][v ^ m]))
            head = shards[0]
            for full in shards[:-1]:
                requests += 2
                units += write_units(full) + write_units(head)
            requests += 1
            units += write_units(shards[-1] + ENTRY)
    return requests, units


# --- the run ----------------------------------------------------------------------------------


def run(size: int, queries: int, thresholds: list[int], rng: np.random.Generator) -> dict[str, Any]:
    t0 = time.perf_counter()
    hashes, qs, inserts = dataset(size, queries, rng)
    wanted = {k for q in qs for k in read_keys(TENANT, format_hash(q), max(thresholds))}
    wanted |= {k for h in inserts for k in read_keys(TENANT, format_hash(h), max(thresholds))}
    store = InMemoryHashIndexStore()
    buckets = load_new(hashes, wanted, store)
    old_sizes = old_bucket_sizes(hashes)
    build = time.perf_counter() - t0
    index = NearDuplicateIndex(store)

    lookups = []
    recall_by_distance: dict[int, list[int]] = {}
    for threshold in thresholds:
        new: dict[str, list[float]] = {
            k: [] for k in ("requests", "items", "entries", "bytes", "rru", "cand", "ms")
        }
        old: dict[str, list[float]] = {k: [] for k in ("requests", "items", "entries", "bytes", "rru")}
        expected = found = extra = 0
        for q in qs:
            before = store.stats.snapshot()
            t = time.perf_counter()
            matches = index.find(TENANT, format_hash(q), threshold)
            new["ms"].append(1000 * (time.perf_counter() - t))
            used = store.stats.since(before)
            new["requests"].append(used.read_requests)
            new["items"].append(used.items_read)
            new["entries"].append(used.entries_read)
            new["bytes"].append(used.bytes_read)
            new["rru"].append(used.read_units)
            assert index.last_lookup is not None
            new["cand"].append(index.last_lookup.candidates)
            distances = np.bitwise_count(hashes ^ np.uint64(q))
            truth = {str(i).zfill(ID_LEN): int(distances[i]) for i in np.flatnonzero(distances <= threshold)}
            got = dict(matches)
            expected += len(truth)
            found += len(truth.keys() & got.keys())
            extra += len(got.keys() - truth.keys())
            if threshold == max(thresholds):
                for image_id, d in truth.items():
                    recall_by_distance.setdefault(d, []).append(image_id in got)
            for k, v in old_lookup(old_sizes, q, threshold).items():
                if k in old:
                    old[k].append(v)
        old_keys = old_lookup(old_sizes, qs[0], threshold)["keys"]
        lookups.append(
            {
                "threshold": threshold,
                "keys": index.last_lookup.keys,
                "new": new,
                "old": old,
                "old_keys": old_keys,
                "recall": found / expected if expected else 1.0,
                "pairs": expected,
                "false": extra,
            }
        )

    # inserts as the process function makes them: a lookup, then add
    writes = []
    for h in inserts:
        index.find(TENANT, format_hash(h), max(thresholds))
        before = store.stats.snapshot()
        index.add(TENANT, f"new-{h:016x}".ljust(ID_LEN, "0"), format_hash(h))
        used = store.stats.since(before)
        writes.append((used.read_requests + used.write_requests, used.write_units, used.dropped))
    old_writes = [old_insert(old_sizes, h) for h in inserts]
    return {
        "size": size,
        "build": build,
        "lookups": lookups,
        "writes": writes,
        "old_writes": old_writes,
        "buckets": buckets,
        "old_largest": max(int(s.max()) for s in old_sizes),
        "recall_by_distance": recall_by_distance,
    }


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def report(results: list[dict[str, Any]]) -> int:
    layout = DEFAULT_LAYOUT
    print(
        f"new: {layout.bands} tables ({layout.groups} groups of {layout.bands_per_group} disjoint "
        f"{layout.band_bits}-bit bands of the 63 informative bits), insert = 1 UpdateItem per table, "
        f"lookup = each table's key and its {layout.band_bits} one-bit neighbours "
        f"(threshold >= {layout.exact_radius(0) + 1}), bucket capacity {ENTRIES_PER_ITEM}; exact up to "
        f"{layout.exact_radius(1)} bits, verified by full distance beyond."
    )
    print(
        "old (baseline): 4 bands x 16 bits, write radius 1, exact; bucket items of 1000 entries "
        "with overflow shards.\n"
    )
    print("## Per lookup (mean over the queries; requests and KB: max)\n")
    print(
        "| stored | threshold | scheme | keys | BatchGet requests | items | entries read | KB read "
        "| read units | recall | false matches | ms |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    for r in results:
        for lk in r["lookups"]:
            old, new = lk["old"], lk["new"]
            print(
                f"| {r['size']:,} | {lk['threshold']} | old | {lk['old_keys']} | {max(old['requests']):.0f} "
                f"| {_mean(old['items']):,.0f} | {_mean(old['entries']):,.0f} | {max(old['bytes']) / 1000:,.0f} "
                f"| {_mean(old['rru']):,.0f} | 1.000 | 0 | |"
            )
            print(
                f"| {r['size']:,} | {lk['threshold']} | **new** | {lk['keys']} | {max(new['requests']):.0f} "
                f"| {_mean(new['items']):,.0f} | {_mean(new['entries']):,.0f} | {max(new['bytes']) / 1000:,.0f} "
                f"| {_mean(new['rru']):,.0f} | {lk['recall']:.3f} | {lk['false']} | {_mean(new['ms']):.1f} |"
            )
            if r["size"] >= 10_000_000 and (
                max(new["requests"]) > TARGET_REQUESTS or max(new["bytes"]) > TARGET_BYTES
            ):
                failed = True
    print("\n## Per insert (a lookup first, as the process function does; mean)\n")
    print(
        "| stored | scheme | requests | write units | largest bucket | mean bucket | entries over capacity |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        ow = np.array(r["old_writes"], dtype=float)
        nw = np.array(r["writes"], dtype=float)
        b = r["buckets"]
        print(
            f"| {r['size']:,} | old | {ow[:, 0].mean():.0f} (max {ow[:, 0].max():.0f}) | {ow[:, 1].mean():,.0f} "
            f"| {r['old_largest']:,} | {r['size'] * 17 / 65536:,.0f} | (overflow shards) |"
        )
        print(
            f"| {r['size']:,} | **new** | {nw[:, 0].mean():.0f} (max {nw[:, 0].max():.0f}) | {nw[:, 1].mean():,.0f} "
            f"| {b['largest']} | {b['mean']:.1f} | {b['over']:,} of {r['size'] * layout.bands:,} |"
        )
    last = results[-1]
    print(
        f"\n## Recall of the new index by distance ({last['size']:,} stored, threshold {max(last['recall_by_distance'])})\n"
    )
    print("| distance | " + " | ".join(str(d) for d in sorted(last["recall_by_distance"])) + " |")
    print("|---|" + "---:|" * len(last["recall_by_distance"]))
    print(
        "| found | "
        + " | ".join(f"{sum(v)}/{len(v)}" for _, v in sorted(last["recall_by_distance"].items()))
        + " |"
    )
    print("\nbuild (s): " + ", ".join(f"{r['size']:,}: {r['build']:.1f}" for r in results))
    if failed:
        print(
            f"\nFAIL: a lookup at 10 M needs more than {TARGET_REQUESTS} requests or {TARGET_BYTES:,} bytes"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,10000000")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--thresholds", default="10,12")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100 k and 1 M, 10 queries")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries = "100000,1000000", 10
    rng = np.random.default_rng(args.seed)
    thresholds = [int(t) for t in args.thresholds.split(",")]
    results = [run(int(s), args.queries, thresholds, rng) for s in args.sizes.split(",")]
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
