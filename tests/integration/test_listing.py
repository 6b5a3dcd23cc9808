"""Listing: full pages whatever the filters, across the listing's shards without gaps or repeats,
cursors only as issued; direct multipart batch caps."""

from __future__ import annotations

import base64
import json

import pytest

from imgdrop.store.db import ALBUM_SHARDS, LISTING_SHARDS
from imgdrop.store.shards import shard_of

from lambdas import Functions

TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def functions(aws):
    return Functions(aws)


def direct(functions: Functions, n: int, **fields) -> str:
    uri = "data:image/png;base64," + base64.b64encode(TINY_PNG + f"#{n}".encode()).decode()
    status, image = functions.api("POST", "/v1/images", "/v1/images", {"file": uri, **fields})
    assert status == 201, image
    return image["id"]


def presigned(functions: Functions, n: int, tenant: str = "acme", **fields) -> list[str]:
    """`n` pending images in one POST /uploads (no bytes needed: a pending image is listed)."""
    items = [{"filename": f"p{i}.png", "content_type": "image/png", "size": 100, **fields} for i in range(n)]
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": items}, tenant=tenant)
    assert status == 200, body
    return [item["id"] for item in body["items"]]


def list_page(functions: Functions, tenant: str = "acme", **query) -> tuple[int, dict]:
    return functions.api("GET", "/v1/images", "/v1/images", query={k: str(v) for k, v in query.items()},
                         tenant=tenant)


def list_all(functions: Functions, **query) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        params = {k: str(v) for k, v in query.items()}
        if cursor:
            params["cursor"] = cursor
        status, page = functions.api("GET", "/v1/images", "/v1/images", query=params)
        assert status == 200, page
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if not cursor:
            return pages
        assert len(pages) < 20


def test_filtered_pages_are_full_except_the_last(functions):
    tagged = [direct(functions, n, tags=["sunset"]) for n in range(3)]  # the oldest three
    for n in range(3, 12):
        direct(functions, n)
    pages = list_all(functions, tag="sunset", limit=2)
    assert [len(p) for p in pages] == [2, 1]
    assert sorted(sum(pages, [])) == sorted(tagged)


def test_album_filtered_pages_under_an_albums_claim_are_full(functions):
    status, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Mine"})
    mine = [direct(functions, n, album_id=album["id"]) for n in range(2)]
    for n in range(2, 9):
        direct(functions, n)
    rights = {album["id"]: ["read"]}
    status, page = functions.api("GET", "/v1/images", "/v1/images", query={"limit": "2"}, albums=rights)
    assert status == 200
    assert sorted(i["id"] for i in page["items"]) == sorted(mine)


def test_pages_across_the_shards_are_newest_first_without_gaps_or_repeats(functions):
    ids = presigned(functions, 40)
    assert len({shard_of(i, LISTING_SHARDS) for i in ids}) >= 10  # the listing spans many shards
    pages = list_all(functions, limit=7)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 5]
    assert sum(pages, []) == sorted(ids, reverse=True)  # ids sort by time: newest first


def test_filtered_pages_across_the_shards_are_full_and_complete(functions):
    ids = presigned(functions, 40)
    tagged = presigned(functions, 13, tags=["sunset"])
    pages = list_all(functions, tag="sunset", limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert sum(pages, []) == sorted(tagged, reverse=True)
    assert sum(list_all(functions, status="pending", limit=9), []) == sorted(ids + tagged, reverse=True)


def test_album_pages_across_the_shards_are_newest_first_without_gaps_or_repeats(functions):
    status, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Big"})
    inside = presigned(functions, 30, album_id=album["id"])
    presigned(functions, 10)
    assert len({shard_of(i, ALBUM_SHARDS) for i in inside}) >= 10
    pages = list_all(functions, album_id=album["id"], limit=7)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert sum(pages, []) == sorted(inside, reverse=True)


def test_a_moved_image_is_listed_in_its_new_album_only(functions):
    status, first = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "First"})
    status, second = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Second"})
    image_id, *others = presigned(functions, 5, album_id=first["id"])
    status, body = functions.api("PATCH", f"/v1/images/{image_id}", "/v1/images/{id}",
                                 {"album_id": second["id"]}, path_params={"id": image_id})
    assert status == 200, body
    assert sum(list_all(functions, album_id=second["id"], limit=2), []) == [image_id]
    assert sum(list_all(functions, album_id=first["id"], limit=2), []) == sorted(others, reverse=True)


def test_a_cursor_of_another_tenant_or_listing_is_400_cursor_invalid(functions):
    presigned(functions, 10, tenant="rival")
    status, page = list_page(functions, tenant="rival", limit=3)
    rival_cursor = page["next_cursor"]
    assert status == 200 and rival_cursor
    status, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "A"})
    status, other = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "B"})
    presigned(functions, 10, album_id=album["id"])
    status, page = list_page(functions, album_id=album["id"], limit=3)
    album_cursor = page["next_cursor"]
    assert status == 200 and album_cursor
    status, page = list_page(functions, limit=3)
    tenant_cursor = page["next_cursor"]
    for query in (
        {"cursor": rival_cursor},  # another tenant's listing
        {"cursor": album_cursor},  # an album's cursor on the tenant's listing
        {"cursor": album_cursor, "album_id": other["id"]},  # on another album
        {"cursor": tenant_cursor, "album_id": album["id"]},  # the tenant's on an album
    ):
        status, body = list_page(functions, **query)
        assert status == 400, (query, body)
        assert body["errors"][0]["code"] == "cursor_invalid"
    status, body = list_page(functions, cursor=album_cursor, album_id=album["id"])
    assert status == 200 and len(body["items"]) == 7  # as issued: taken


def tampered(cursor: str, **changes) -> str:
    body = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    body.update(changes)
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def test_a_tampered_cursor_is_400_cursor_invalid(functions):
    presigned(functions, 10)
    status, page = list_page(functions, limit=3)
    cursor = page["next_cursor"]
    positions = json.loads(base64.urlsafe_b64decode(cursor.encode()))["at"]
    for forged in (
        tampered(cursor, **{"in": "T#rival#L"}),
        tampered(cursor, at={"99": next(iter(positions.values()))}),
        tampered(cursor, at={shard: "SHA#" + key.removeprefix("IMG#") for shard, key in positions.items()}),
        cursor[:-4],
    ):
        status, body = list_page(functions, cursor=forged)
        assert status == 400, body
        assert body["errors"][0]["code"] == "cursor_invalid"


@pytest.mark.parametrize("cursor", [
    base64.urlsafe_b64encode(json.dumps({"pk": "x"}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"pk": {"S": "T#rival"}, "sk": {"S": "IMG#01"}}).encode()).decode(),
    base64.urlsafe_b64encode(b"[1, 2]").decode(),
    "not base64 at all!",
], ids=["wrong shape", "another tenant", "not an object", "garbage"])
def test_a_cursor_imgdrop_did_not_issue_is_400_cursor_invalid(functions, cursor):
    direct(functions, 0)
    status, body = functions.api("GET", "/v1/images", "/v1/images", query={"cursor": cursor})
    assert status == 400, body
    assert body["errors"][0]["code"] == "cursor_invalid"


def multipart(parts: int) -> tuple[bytes, str]:
    boundary = "imgdropboundary"
    chunks = []
    for n in range(parts):
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image-{n}"; filename="p{n}.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode() + TINY_PNG + f"#{n}".encode() + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def test_a_direct_multipart_batch_takes_at_most_100_files(functions):
    body, content_type = multipart(101)
    status, answer = functions.api("POST", "/v1/images", "/v1/images", raw_body=body, content_type=content_type)
    assert status == 400, answer
    assert answer["errors"][0]["code"] == "items_count"

    body, content_type = multipart(3)
    status, answer = functions.api("POST", "/v1/images", "/v1/images", raw_body=body, content_type=content_type)
    assert status == 201 and len(answer["items"]) == 3
