"""Listing: full pages whatever the filters, cursors only as issued; direct multipart batch caps."""

from __future__ import annotations

import base64
import json

import pytest

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
