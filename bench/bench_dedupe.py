"""Near-duplicate index at scale: requests, items and candidates per lookup, and recall.

For 1k, 10k, 100k and 1M stored synthetic 64-bit hashes (uniformly random, the worst case
for candidates per key, plus planted near neighbours of every query at each distance
0..threshold and a few just beyond), builds the index in bulk into the counting in-memory
store (which mimics BatchGetItem's 100 keys per request and the per-item entry cap), runs
``NearDuplicateIndex.find`` and compares with a brute-force numpy scan of the same data.

Run: ``PYTHONPATH=layers/core .venv/bin/python bench/bench_dedupe.py [--sizes 1000,10000] [--queries 40]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from imgdrop.dedupe import (
    DEFAULT_LAYOUT,
    InMemoryHashIndexStore,
    NearDuplicateIndex,
    band_postings,
    format_hash,
)

TENANT = "bench"


def flip_bits(rng: np.random.Generator, value: int, distance: int) -> int:
    for bit in rng.choice(64, size=distance, replace=False):
        value ^= 1 << int(bit)
    return value


def dataset(
    size: int, queries: int, max_planted: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    hashes = rng.integers(0, 2**64, size=size, dtype=np.uint64, endpoint=False)
    qs = [int(v) for v in rng.integers(0, 2**64, size=queries, dtype=np.uint64)]
    distances = [*range(max_planted + 1), max_planted + 2, max_planted + 4]
    slots = rng.choice(size, size=queries * len(distances), replace=False)
    k = 0
    for q in qs:
        for d in distances:
            hashes[slots[k]] = np.uint64(flip_bits(rng, q, d))
            k += 1
    return hashes, qs


def run(size: int, queries: int, thresholds: list[int], rng: np.random.Generator) -> list[dict]:
    hashes, qs = dataset(size, queries, max(thresholds), rng)
    t0 = time.perf_counter()
    ids = [f"{i:026d}" for i in range(size)]  # 26 characters, like imgdrop ids
    hexes = [format_hash(int(h)) for h in hashes.tolist()]
    keys, offsets, members = band_postings(TENANT, hashes, DEFAULT_LAYOUT)
    store = InMemoryHashIndexStore()
    store.load_postings(keys, offsets, members, ids, hexes)
    build = time.perf_counter() - t0
    index = NearDuplicateIndex(store)
    largest = int(np.diff(offsets).max())

    rows = []
    for threshold in thresholds:
        requests, items, entries, kbytes, candidates, seconds = [], [], [], [], [], []
        expected = found = extra = 0
        for q in qs:
            before = store.stats.snapshot()
            t = time.perf_counter()
            matches = index.find(TENANT, format_hash(q), threshold)
            seconds.append(time.perf_counter() - t)
            used = store.stats.since(before)
            requests.append(used.read_requests)
            items.append(used.items_read)
            entries.append(used.entries_read)
            kbytes.append(used.bytes_read / 1024)
            candidates.append(index.last_lookup.candidates)
            truth = {ids[i] for i in np.flatnonzero(np.bitwise_count(hashes ^ np.uint64(q)) <= threshold)}
            got = {i for i, _ in matches}
            expected += len(truth)
            found += len(truth & got)
            extra += len(got - truth)
        rows.append(
            {
                "size": size,
                "threshold": threshold,
                "keys": index.last_lookup.keys,
                "requests": max(requests),
                "items": float(np.mean(items)),
                "entries": float(np.mean(entries)),
                "kbytes": float(np.mean(kbytes)),
                "candidates": float(np.mean(candidates)),
                "pairs": expected,
                "recall": found / expected if expected else 1.0,
                "false": extra,
                "ms": 1000 * float(np.mean(seconds)),
                "build": build,
                "largest": largest,
            }
        )
    return rows


def write_cost() -> tuple[int, int]:
    store = InMemoryHashIndexStore()
    NearDuplicateIndex(store).add(TENANT, "x" * 26, "0123456789abcdef")
    return store.stats.write_requests, store.stats.entries_written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--thresholds", default="10,12")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    thresholds = [int(t) for t in args.thresholds.split(",")]
    layout = DEFAULT_LAYOUT
    writes, entries = write_cost()
    print(
        f"layout: {layout.bands} bands x {layout.band_bits} bits, write radius {layout.write_radius}; "
        f"insert = {entries} bucket entries in {writes} UpdateItem requests; "
        f"max threshold within 10 requests: {layout.max_threshold()}"
    )
    print(
        f"{args.queries} lookups per size; each query has planted neighbours at every distance "
        f"0..{max(thresholds)} and 2 and 4 beyond; truth = brute-force numpy scan.\n"
    )
    header = (
        "| stored | threshold | keys | BatchGet requests (max) | items read | entries read | KB read "
        "| candidates verified | true pairs | recall | false matches | ms/lookup | largest bucket |"
    )
    print(header)
    print("|" + "---:|" * (header.count("|") - 1))
    for size in (int(s) for s in args.sizes.split(",")):
        for r in run(size, args.queries, thresholds, rng):
            print(
                f"| {r['size']:,} | {r['threshold']} | {r['keys']} | {r['requests']} | {r['items']:.0f} "
                f"| {r['entries']:,.0f} | {r['kbytes']:,.0f} | {r['candidates']:,.0f} | {r['pairs']} "
                f"| {r['recall']:.3f} | {r['false']} | {r['ms']:.1f} | {r['largest']} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
