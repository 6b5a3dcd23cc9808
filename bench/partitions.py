"""Partition model: 1,000 uploads a second into ONE tenant, key by key, against DynamoDB's
per-partition limits (1,000 WCU and 3,000 RCU a second, for the table and each index).

What each upload writes and reads is not written down here: it is recorded from the code. Two
uploads (distinct 12 MP photos, into one album, with a title so a slug is claimed, with their
sha256 so the content claim is checked first, a webhook endpoint subscribed) run through the
functions in-process against moto (bench/awsrun.py: POST /v1/uploads, the client's upload,
process, finalize, the webhook delivery, one GET of the image); every DynamoDB call is billed
as DynamoDB bills it (write units per KB of the larger item image, doubled in transactions;
index writes of the global secondary indexes; read units per 4 KB) and attributed to the
partition key it lands on, in the table or in an index.

Keys are grouped by pattern, and each group's share of the uploads decides its rate:

- a key both uploads used (the tenant's own key: its webhook endpoints, read per upload): every
  upload, 1,000 a second;
- a sharded key (``...#S<shard>``: the tenant's listing in gsi3, an album's in gsi1, a webhook
  endpoint's deliveries), its item's shard chosen from its id: one upload in its shard count
  (``LISTING_SHARDS``, ``ALBUM_SHARDS``, ``DELIVERY_SHARDS`` of imgdrop.store.db);
- the pending index (``gsi2pk = PENDING#<shard>``): one upload in ``PENDING_SHARDS``;
- dedupe buckets: spread uniformly over 42 tables x 2^19 keys (and, separately, a burst of
  near-identical uploads: every lookup reads the same buckets, which take no more writes once
  full: bench/bench_dedupe.py);
- any other key (the image's own partition, its idempotency record, its content and slug
  claims): one upload's worth, within about a second.

Run: ``PYTHONPATH=layers/core .venv/bin/python bench/partitions.py [--rate 1000]``;
exits 1 when a key is over its limit.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import awsrun  # noqa: E402

WCU_LIMIT, RCU_LIMIT = 1000, 3000
TENANT = "acme"


@dataclass
class KeyLoad:
    table: str
    index: str | None
    pk: str
    uploads: set[int] = field(default_factory=set)
    wcu: float = 0.0
    rcu: float = 0.0
    writes: int = 0
    reads: int = 0
    by_function: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def pattern(pk: str) -> str:
    """A key with its ids, hashes and shards replaced by placeholders."""
    p = re.sub(rf"^T#{TENANT}", "T#{tenant}", pk)
    p = re.sub(r"NX\d{2}#[0-9a-f]+$", "NX{table}#{value}", p)
    p = re.sub(r"PENDING#\d+$", "PENDING#{shard}", p)
    p = re.sub(r"#S\d+$", "#S{shard}", p)
    p = re.sub(r"#SLUG#[^#]+$", "#SLUG#{slug}", p)
    p = re.sub(r"(?<=#)[0-9a-z]{26}\b", "{id}", p)
    p = re.sub(r"[0-9a-f]{32,64}", "{hash}", p)
    return p


def collect(calls: list[awsrun.Call]) -> dict[tuple[str, str | None, str], KeyLoad]:
    loads: dict[tuple[str, str | None, str], KeyLoad] = {}
    for call in calls:
        if call.service != "dynamodb" or call.upload is None:
            continue
        for a in call.accesses:
            load = loads.setdefault((a.table, a.index, a.pk), KeyLoad(a.table, a.index, a.pk))
            load.uploads.add(call.upload)
            load.wcu += a.wcu
            load.rcu += a.rcu
            load.writes += a.writes
            load.reads += a.reads
            load.by_function[call.function or "?"] += a.wcu + a.rcu
    return loads


@dataclass
class Row:
    partition: str
    key: str
    example: str
    share: str
    writes: float
    wcu: float
    reads: float
    rcu: float
    note: str = ""

    @property
    def over(self) -> bool:
        return self.wcu > WCU_LIMIT or self.rcu > RCU_LIMIT


def shard_count(key: str) -> int:
    """How many shards the code spreads a key pattern over (0: not sharded)."""
    from imgdrop.store.db import ALBUM_SHARDS, DELIVERY_SHARDS, LISTING_SHARDS, PENDING_SHARDS

    if key.startswith("PENDING#"):
        return PENDING_SHARDS
    if not key.endswith("#S{shard}"):
        return 0
    for marker, count in (("#ALB#", ALBUM_SHARDS), ("#WH#", DELIVERY_SHARDS), ("#L#", LISTING_SHARDS)):
        if marker in key:
            return count
    raise ValueError(f"a sharded key the model does not know: {key}")


def model(loads: dict[tuple[str, str | None, str], KeyLoad], uploads: int, rate: float) -> list[Row]:
    from imgdrop.dedupe.bands import DEFAULT_LAYOUT, ENTRIES_PER_ITEM

    groups: dict[tuple[str | None, str], list[KeyLoad]] = defaultdict(list)
    for load in loads.values():
        groups[(load.index, pattern(load.pk))].append(load)
    rows = []
    for (index, key), members in sorted(groups.items(), key=lambda g: (g[0][0] or "", g[0][1])):
        # per upload, on one key of the group
        writes = sum(m.writes for m in members) / uploads
        wcu = sum(m.wcu for m in members) / uploads
        reads = sum(m.reads for m in members) / uploads
        rcu = sum(m.rcu for m in members) / uploads
        partition = f"index {index}" if index else "table"
        example = members[0].pk
        shared = all(len(m.uploads) == uploads for m in members) and uploads > 1
        fns = sorted({f for m in members for f in m.by_function})
        note = ", ".join(fn.replace("Function", "") for fn in fns)
        n_shards = shard_count(key)
        if n_shards:
            rows.append(
                Row(
                    partition,
                    key,
                    example,
                    f"1/{n_shards}",
                    *_scaled(writes, wcu, reads, rcu, rate / n_shards),
                    note,
                )
            )
        elif "NX{table}" in key:
            keys = DEFAULT_LAYOUT.bands * (1 << DEFAULT_LAYOUT.band_bits)
            # uniform: one key gets this upload's accesses over the whole key space
            rows.append(
                Row(
                    partition,
                    key,
                    example,
                    f"spread over {keys:,} keys",
                    *_scaled(writes, wcu, reads, rcu, rate / keys),
                    note,
                )
            )
            # a burst of near-identical uploads: each lookup reads the same 20 keys of a table
            per_key_reads = reads / (DEFAULT_LAYOUT.bands * (DEFAULT_LAYOUT.band_bits + 1))
            per_key_rcu = rcu / max(1, reads) * per_key_reads
            rows.append(
                Row(
                    partition,
                    key + " (burst of near-identical uploads)",
                    example,
                    "every upload",
                    0.0,
                    0.0,
                    per_key_reads * rate,
                    # a full bucket (64 entries, < 4 KB) is half a read unit
                    max(per_key_rcu, 0.5) * rate if per_key_reads else 0.0,
                    f"writes stop at {ENTRIES_PER_ITEM} entries a bucket",
                )
            )
        elif shared:
            rows.append(
                Row(partition, key, example, "every upload", *_scaled(writes, wcu, reads, rcu, rate), note)
            )
        else:
            # one upload's own key (its idempotency record, ...): its whole life in about a second
            n = len(members) / uploads  # keys of the group per upload
            rows.append(
                Row(partition, key, example, "one upload", writes / n, wcu / n, reads / n, rcu / n, note)
            )
    return rows


def _scaled(
    writes: float, wcu: float, reads: float, rcu: float, rate: float
) -> tuple[float, float, float, float]:
    return writes * rate, wcu * rate, reads * rate, rcu * rate


def _n(x: float) -> str:
    return f"{x:,.1f}" if x >= 0.1 or x == 0 else f"{x:.1e}"


def render(rows: list[Row], rate: float) -> str:
    lines = [
        f"Partition model: {rate:,.0f} uploads/s into one tenant; limits per partition key: "
        f"{WCU_LIMIT:,} WCU/s, {RCU_LIMIT:,} RCU/s (table and each index).",
        "",
        "| partition | key | uploads on one key | writes/s | WCU/s | reads/s | RCU/s | status | by |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -max(r.wcu / WCU_LIMIT, r.rcu / RCU_LIMIT)):
        status = "**OVER**" if r.over else "ok"
        lines.append(
            f"| {r.partition} | `{r.key}` | {r.share} | {_n(r.writes)} | {_n(r.wcu)} | {_n(r.reads)} "
            f"| {_n(r.rcu)} | {status} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="uploads a second into one tenant")
    args = parser.parse_args(argv)
    photos = [awsrun.photo_12mp("china"), awsrun.photo_12mp("flower")]
    with awsrun.recorded_stack() as run:
        album = run.add_album()
        run.add_webhook(TENANT)
        for i, data in enumerate(photos):
            run.upload(data, album_id=album, title=f"Bench photo {i}")
        calls = list(run.recorder.calls)
    rows = model(collect(calls), len(photos), args.rate)
    print(render(rows, args.rate))
    over = [r for r in rows if r.over]
    if over:
        worst = max(over, key=lambda r: max(r.wcu / WCU_LIMIT, r.rcu / RCU_LIMIT))
        ceiling = args.rate / max(worst.wcu / WCU_LIMIT, worst.rcu / RCU_LIMIT)
        print(
            f"\n{len(over)} key(s) over the limit; the worst, `{worst.key}` ({worst.partition}), caps one tenant "
            f"at about {ceiling:,.0f} uploads/s."
        )
        return 1
    print("\nEvery key within its limits.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
