"""Move a deployment's items from the keys of before #15 (partitions) to the keys the code uses.

Before, a tenant's images and their content and slug claims shared the tenant's key, an album's
images one index key and a webhook endpoint's deliveries one key: at about 70 uploads a second
into one tenant, one partition was full. Now (imgdrop.store.db):

  item               before                                  now
  image              T#<tenant> / IMG#<id>                   T#<tenant>#IMG#<id> / IMG#<id>,
                     gsi1pk T#<tenant>#ALB#<album>           gsi1pk T#<tenant>#ALB#<album>#S<shard>,
                                                             gsi3pk T#<tenant>#L#S<shard> (new index)
  content claim      T#<tenant> / SHA#<sha256>               T#<tenant>#SHA#<sha256> / SHA#<sha256>
  slug claim         T#<tenant> / SLUG#<slug>                T#<tenant>#SLUG#<slug> / SLUG#<slug>
  delivery           T#<tenant>#WH#<webhook> / DLV#<id>      T#<tenant>#WH#<webhook>#S<shard> / DLV#<id>

Tags, albums, webhook endpoints, jobs and the dedupe index keep their keys.

Upgrading:

1. Deploy (CloudFormation adds the index gsi3). From then on the code reads and writes only the
   new keys: until step 2 is over an image made before the deploy is neither listed nor found
   (404), its claims are not seen, and a retry of a delivery made before is dropped as stale.
   Deploy at a quiet time and run step 2 at once; let reprocess jobs finish first (a job planned
   across the deploy starts its listing over, and counts the images it finds again).
2. ``python -m imgdrop.store.migrate backfill --table <table> [--segments 4] [--dry-run]`` scans
   the table (strongly consistent, parallel segments) and moves each old item in one
   transaction: the item is put under its new keys (only if nothing is there) and the old one
   deleted (only if it did not change since the scan read it). A run stopped anywhere is simply
   run again: what was moved is no longer under an old key, and a second run moves nothing.
   Per item about 2 write units for the put and 2 for the delete (transactions bill twice),
   plus its index entries.

An old claim whose new key a claim made after the deploy already holds (the same bytes or slug
used again meanwhile) is left where it is, and counted as `kept`: no code reads it any more.
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

from imgdrop.store.db import claim_key, delivery_key, image_keys

OLD_TENANT_KEY = re.compile(r"^T#([^#]+)$")
OLD_DELIVERIES_KEY = re.compile(r"^T#([^#]+)#WH#([^#]+)$")
# A change of the old item between the scan and the move (by code of before the deploy still
# running) fails the move's condition: the item is read again and moved as it is now.
MOVE_ATTEMPTS = 3


@dataclass
class Counts:
    scanned: int = 0
    moved: int = 0
    kept: int = 0


def new_keys(item: dict[str, Any]) -> dict[str, str | None] | None:
    """The key attributes an item of the old layout has now (None: not an old item). A None
    value is an index key the item no longer has."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    kind, _, value = sk.partition("#")
    tenant = OLD_TENANT_KEY.match(pk)
    if tenant and kind == "IMG" and value:
        album = item.get("album_id", {}).get("S")
        keys = image_keys(tenant.group(1), value, album)
        return {name: keys[name] for name in ("pk", "sk", "gsi3pk", "gsi3sk", "gsi1pk", "gsi1sk")}
    if tenant and kind in ("SHA", "SLUG") and value:
        new_pk, new_sk = claim_key(tenant.group(1), kind, value)
        return {"pk": new_pk, "sk": new_sk}
    endpoint = OLD_DELIVERIES_KEY.match(pk)
    if endpoint and kind == "DLV" and value:
        new_pk, new_sk = delivery_key(endpoint.group(1), endpoint.group(2), value)
        return {"pk": new_pk, "sk": new_sk}
    return None


def _moved(item: dict[str, Any], keys: dict[str, str | None]) -> dict[str, Any]:
    moved = {name: value for name, value in item.items() if name not in keys}
    moved.update({name: {"S": value} for name, value in keys.items() if value is not None})
    return moved


def _unchanged(item: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A condition that the old item is as read: its version attributes hold the values read."""
    names, values, parts = {"#pk": "pk"}, {}, ["attribute_exists(#pk)"]
    for n, attribute in enumerate(("updated_at", "image_id", "status")):
        if attribute in item:
            names[f"#v{n}"] = attribute
            values[f":v{n}"] = item[attribute]
            parts.append(f"#v{n} = :v{n}")
    return " AND ".join(parts), names, values


def move(client: Any, table: str, item: dict[str, Any]) -> str:
    """Move one old item to its new keys: "moved", "kept" (a newer item holds the new key),
    "gone" (deleted meanwhile) or "skipped" (not an old item)."""
    for _ in range(MOVE_ATTEMPTS):
        keys = new_keys(item)
        if keys is None:
            return "skipped"
        condition, names, values = _unchanged(item)
        delete: dict[str, Any] = {
            "TableName": table,
            "Key": {"pk": item["pk"], "sk": item["sk"]},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            delete["ExpressionAttributeValues"] = values
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": _moved(item, keys),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Delete": delete},
                ]
            )
            return "moved"
        except client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return "kept"
            if len(reasons) < 2 or reasons[1] != "ConditionalCheckFailed":
                raise
        key = {"pk": item["pk"], "sk": item["sk"]}
        current = client.get_item(TableName=table, Key=key, ConsistentRead=True)
        if "Item" not in current:
            return "gone"
        item = current["Item"]
    raise RuntimeError(f"{item['pk']['S']} / {item['sk']['S']} kept changing; run the backfill again")


def _scan(client: Any, table: str, segment: int, segments: int) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": table,
        "Segment": segment,
        "TotalSegments": segments,
        "ConsistentRead": True,
        "FilterExpression": "begins_with(pk, :t)",
        "ExpressionAttributeValues": {":t": {"S": "T#"}},
    }
    while True:
        page = client.scan(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def backfill_segment(table: str, client: Any, segment: int, segments: int, *, dry_run: bool) -> Counts:
    counts = Counts()
    for item in _scan(client, table, segment, segments):
        counts.scanned += 1
        if new_keys(item) is None:
            continue
        outcome = "moved" if dry_run else move(client, table, item)
        counts.moved += outcome == "moved"
        counts.kept += outcome == "kept"
    return counts


def run(table: str, client: Any = None, *, segments: int = 1, dry_run: bool = False) -> Counts:
    """Move every old item of the table, the segments in parallel."""
    if client is None:
        import boto3

        client = boto3.client("dynamodb")
    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(pool.map(lambda s: backfill_segment(table, client, s, segments, dry_run=dry_run),
                              range(segments)))
    return Counts(*(sum(getattr(p, f) for p in parts) for f in ("scanned", "moved", "kept")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("backfill",))
    parser.add_argument("--table", required=True)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true", help="count what would move; change nothing")
    args = parser.parse_args(argv)
    counts = run(args.table, segments=args.segments, dry_run=args.dry_run)
    print(json.dumps(counts.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
