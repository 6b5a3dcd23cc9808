"""The partitions migration (imgdrop.store.migrate): items written under the keys of before #15
move to the keys the code reads, idempotently, and a run stopped halfway is simply run again."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from imgdrop.store.db import ClaimRecord, Repository, WebhookStore, bind, claim_key
from imgdrop.store.migrate import move, new_keys, run
from imgdrop.webhooks import events

from lambdas import Functions, china_jpeg, sample_photo, upload

ADMIN = "images:read images:write tags:write admin"
NEW_IMAGE_OR_CLAIM = re.compile(r"^T#([^#]+)#(IMG|SHA|SLUG)#")
NEW_DELIVERY = re.compile(r"^(T#[^#]+#WH#[^#]+)#S\d+$")


@pytest.fixture
def functions(aws, monkeypatch):
    monkeypatch.setenv("IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP", "true")
    from imgdrop.settings import get_settings

    get_settings.cache_clear()
    return Functions(aws)


def scan(aws) -> list[dict]:
    items, request = [], {"TableName": aws.table_name, "ConsistentRead": True}
    while True:
        page = aws.dynamodb.scan(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def to_old_layout(aws) -> int:
    """Rewrite every image, claim and delivery as the code of before wrote it: images and claims
    on the tenant's key, an album's index key and an endpoint's deliveries unsharded, no gsi3."""
    moved = 0
    for item in scan(aws):
        pk = item["pk"]["S"]
        old = dict(item)
        if claimed := NEW_IMAGE_OR_CLAIM.match(pk):
            tenant = claimed.group(1)
            old["pk"] = {"S": f"T#{tenant}"}
            old.pop("gsi3pk", None)
            old.pop("gsi3sk", None)
            if "gsi1pk" in old:
                old["gsi1pk"] = {"S": f"T#{tenant}#ALB#{item['album_id']['S']}"}
        elif delivered := NEW_DELIVERY.match(pk):
            old["pk"] = {"S": delivered.group(1)}
        else:
            continue
        aws.dynamodb.put_item(TableName=aws.table_name, Item=old)
        aws.dynamodb.delete_item(TableName=aws.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
        moved += 1
    return moved


def listed(functions: Functions, **query) -> list[str]:
    ids, cursor = [], None
    while True:
        params = {k: str(v) for k, v in query.items()} | ({"cursor": cursor} if cursor else {})
        status, page = functions.api("GET", "/v1/images", "/v1/images", query=params)
        assert status == 200, page
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def deliveries(functions: Functions, webhook_id: str) -> list[str]:
    status, page = functions.api("GET", f"/v1/webhooks/{webhook_id}/deliveries", "/v1/webhooks/{id}/deliveries",
                                 path_params={"id": webhook_id}, scope=ADMIN, query={"limit": "100"})
    assert status == 200, page
    return [d["id"] for d in page["items"]]


def test_the_backfill_moves_old_items_to_the_new_keys_resumably_and_idempotently(functions, aws):
    # Given a tenant's images (pending ones, ready ones with content claims, titled ones with
    # slug claims, some in an album) and an endpoint's deliveries, under today's keys ...
    _, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Old"})
    items = [{"filename": f"p{i}.png", "content_type": "image/png", "size": 100, "title": f"Photo {i}",
              **({"album_id": album["id"]} if i % 2 else {})} for i in range(12)]
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": items})
    assert status == 200, body
    pending = [item["id"] for item in body["items"]]
    ready = []
    for data in (china_jpeg(), sample_photo("flower.jpg")):  # distinct photos: no near-duplicate
        image_id, key = upload(functions, data, album_id=album["id"])
        functions.process_and_finalize(key, len(data))
        assert functions.image(image_id)[1]["status"] == "ready"
        ready.append(image_id)
    _, webhook = functions.api("POST", "/v1/webhooks", "/v1/webhooks",
                               {"url": "http://127.0.0.1:9/hook", "events": ["image.ready"]}, scope=ADMIN)
    bind(aws.table_name)
    for n in range(5):  # five events (a delivery's id is its event's: one per image and type)
        WebhookStore().put_delivery(events._delivery("acme", webhook["id"], "image.ready", f"{ready[0]}{n}", "{}"))
    repo = Repository()
    before = {
        "listing": listed(functions, limit=4),
        "album": listed(functions, album_id=album["id"], limit=4),
        "deliveries": deliveries(functions, webhook["id"]),
        "slug": repo.claim_owner("acme", "SLUG", "photo-3"),
        "sha": {image_id: repo.get_image("acme", image_id).result["sha256"] for image_id in ready},
        "unsettled": sorted(r.id for r in repo.iter_unsettled("9999")),
    }
    assert len(before["listing"]) == 14 and len(before["album"]) == 8 and len(before["deliveries"]) == 5
    assert before["slug"] == pending[3] and sorted(before["unsettled"]) == sorted(pending)
    # ... written as the code of before wrote them (one slug claim taken again since the deploy).
    old_items = to_old_layout(aws)
    assert old_items == 14 + 12 + 2 + 5  # images, slug claims, content claims, deliveries
    assert listed(functions) == []  # the deploy's window: old images are not seen until moved
    retaken, _ = claim_key("acme", "SLUG", "photo-0")
    ClaimRecord(retaken, "SLUG#photo-0", image_id="someone-new", created_at="2026-01-01T00:00:00Z").save()

    # When a backfill stops after 10 items, then runs in full, then again
    assert run(aws.table_name, aws.dynamodb, dry_run=True).moved == old_items
    first_ten = [item for item in scan(aws) if new_keys(item)][:10]
    stopped = Counter(move(aws.dynamodb, aws.table_name, item) for item in first_ten)
    rest = run(aws.table_name, aws.dynamodb, segments=3)
    again = run(aws.table_name, aws.dynamodb, segments=2)

    # Then every item moved once (the claim taken again meanwhile stays its new owner's) ...
    assert stopped["moved"] + stopped["kept"] == 10
    assert stopped["moved"] + stopped["kept"] + rest.moved + rest.kept == old_items
    assert stopped["kept"] + rest.kept == 1
    assert (again.moved, again.kept) == (0, 1)
    assert repo.claim_owner("acme", "SLUG", "photo-0") == "someone-new"
    # ... and everything reads as it did before.
    assert listed(functions, limit=4) == before["listing"]
    assert listed(functions, limit=2, album_id=album["id"]) == before["album"]
    assert deliveries(functions, webhook["id"]) == before["deliveries"]
    assert repo.claim_owner("acme", "SLUG", "photo-3") == before["slug"]
    assert {i: repo.claim_owner("acme", "SHA", sha) for i, sha in before["sha"].items()} == {i: i for i in ready}
    assert sorted(r.id for r in repo.iter_unsettled("9999")) == before["unsettled"]  # once each
    for image_id in pending + ready:
        assert functions.image(image_id)[0] == 200
    leftovers = [i for i in scan(aws) if re.match(r"^T#[^#]+$", i["pk"]["S"]) and i["sk"]["S"].startswith("IMG#")]
    assert leftovers == []
