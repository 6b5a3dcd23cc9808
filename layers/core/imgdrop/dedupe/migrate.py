"""Move a deployment's near-duplicate index to the current layout.

The index is derived data: every entry is a ready image's phash. A new layout writes under a
new key prefix (``BandLayout.prefix``), so old and new items never mix, and a deployment
migrates in three steps:

1. Deploy. New uploads are indexed under the new layout at once; lookups read only it, so
   until step 2 ends an upload is not compared with the images indexed before the deploy.
2. Backfill: ``python -m imgdrop.dedupe.migrate backfill --table <table> [--segments 8]``
   scans the table for ready images with a phash and adds each to the new index (idempotent:
   run it again, or alongside live traffic, and nothing is doubled). Per image: one
   BatchGetItem and 42 UpdateItem, about 42 write units.
3. Purge: ``python -m imgdrop.dedupe.migrate purge --table <table>`` deletes the items of
   every other layout (the old 4 x 16-bit bands: keys ``T#<tenant>#PH<band>#<value>``).

Both steps scan the whole table (parallel segments); ``--dry-run`` only counts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from imgdrop.dedupe.bands import DEFAULT_LAYOUT, BandLayout
from imgdrop.dedupe.index import NearDuplicateIndex
from imgdrop.dedupe.stores import DynamoHashIndexStore

# Bucket items of any layout: T#<tenant>#<prefix><table>#<hex value>.
BUCKET_KEY = re.compile(r"^T#[^#]+#([A-Z]+)\d+#[0-9a-f]+$")


@dataclass
class Counts:
    scanned: int = 0
    indexed: int = 0
    deleted: int = 0


def _scan(client: Any, table: str, segment: int, segments: int, **kwargs: Any) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"TableName": table, "Segment": segment, "TotalSegments": segments, **kwargs}
    while True:
        page = client.scan(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _indexable(item: dict[str, Any]) -> tuple[str, str, str] | None:
    """(tenant, image id, phash) of a ready image the process function would have indexed."""
    if not item.get("sk", {}).get("S", "").startswith("IMG#") or item.get("status", {}).get("S") != "ready":
        return None
    result = json.loads(item.get("result", {}).get("S") or "{}")
    variants = json.loads(item.get("variants", {}).get("S") or "{}")
    phash = result.get("phash")
    if not phash or not variants:
        return None
    return item["tenant"]["S"], item["id"]["S"], phash


def backfill_segment(
    table: str, client: Any, segment: int, segments: int, *, layout: BandLayout, dry_run: bool
) -> Counts:
    counts = Counts()
    index = NearDuplicateIndex(DynamoHashIndexStore(table, client), layout)
    names = {"#sk": "sk", "#st": "status", "#t": "tenant", "#i": "id", "#r": "result", "#v": "variants"}
    for item in _scan(
        client,
        table,
        segment,
        segments,
        FilterExpression="begins_with(#sk, :img) AND #st = :ready",
        ProjectionExpression="#sk, #st, #t, #i, #r, #v",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":img": {"S": "IMG#"}, ":ready": {"S": "ready"}},
    ):
        counts.scanned += 1
        found = _indexable(item)
        if found is None:
            continue
        if not dry_run:
            index.add(*found)
        counts.indexed += 1
    return counts


def purge_segment(
    table: str, client: Any, segment: int, segments: int, *, layout: BandLayout, dry_run: bool
) -> Counts:
    counts = Counts()
    for item in _scan(client, table, segment, segments, ProjectionExpression="pk, sk"):
        counts.scanned += 1
        match = BUCKET_KEY.match(item["pk"]["S"])
        sk = item["sk"]["S"]
        if match is None or match.group(1) == layout.prefix or not (sk == "B" or sk.startswith("S#")):
            continue
        if not dry_run:
            client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
        counts.deleted += 1
    return counts


def run(
    step: str,
    table: str,
    client: Any = None,
    *,
    segments: int = 1,
    layout: BandLayout = DEFAULT_LAYOUT,
    dry_run: bool = False,
) -> Counts:
    """Run ``backfill`` or ``purge`` over every segment of the table, in parallel."""
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    fn = {"backfill": backfill_segment, "purge": purge_segment}[step]
    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(
            pool.map(
                lambda s: fn(table, client, s, segments, layout=layout, dry_run=dry_run),
                range(segments),
            )
        )
    return Counts(*(sum(getattr(p, f) for p in parts) for f in ("scanned", "indexed", "deleted")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("backfill", "purge"))
    parser.add_argument("--table", required=True)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    counts = run(args.step, args.table, segments=args.segments, dry_run=args.dry_run)
    print(json.dumps(counts.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
