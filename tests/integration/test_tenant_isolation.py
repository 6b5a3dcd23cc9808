"""A tenant never sees another tenant's data, on every route of template.yaml's ApiFunction.

Given tenant `acme` with an album, a tag and a processed image (in that album, with that tag),
when tenant `rival` calls each route with its own valid token, then nothing of acme's comes back:
acme's image, tag or album answers 404 `not_found` byte for byte like an id that never existed,
lists leave them out, writes to them are 404 and change nothing, and a presign naming acme's
album, parent or tag is refused like a missing one (tags: the image ends with `tag_error`).

Requests go through the emulated HTTP API of infra/local (the authorizer function verifies a real
token, then the api function answers), in-process against moto. The route list comes from
template.yaml, so a new route without an isolation check fails `test_every_route_has_a_check`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from imgdrop_local.http_api import HttpApi
from imgdrop_local.lambda_runtime import LambdaRuntime
from imgdrop_local.tokens import issue_token

from lambdas import Functions, china_jpeg, sample_photo

API_FUNCTION = "ApiFunction"
MISSING_ID = "01NOSUCHTHING000000000000A"


# --------------------------------------------------------------------------- the gateway


class Gateway:
    """The HTTP API emulation of infra/local, called in-process: authorizer, then api function."""

    def __init__(self, aws: Any):
        self.aws = aws
        self.runtime = LambdaRuntime(aws.stack, retry_delays=(0.0,), workers=1)
        self.http = HttpApi(self.runtime, aws.stack.routes, aws.stack.cors, static_dir=Path("/nonexistent"))

    def token(self, tenant: str, scope: str = "images:read images:write tags:write", **kw: Any) -> str:
        return issue_token(self.aws.jwt_secret, tenant=tenant, scope=scope, sub=f"{tenant}-user", **kw)

    def call(self, method: str, path: str, tenant: str, *, body: Any = None,
             query: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Response:
        out_headers = {"authorization": f"Bearer {self.token(tenant)}", "host": "127.0.0.1:3000"}
        payload = b""
        if body is not None:
            out_headers["content-type"] = "application/json"
            payload = json.dumps(body).encode()
        out_headers.update(headers or {})
        target = f"{path}?{urlencode(query)}" if query else path
        status, pairs, raw = self.http.handle(method, target, out_headers, payload)
        return Response(status, dict(pairs), raw)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None


# --------------------------------------------------------------------------- acme's data


@dataclass
class Acme:
    album_id: str
    album_name: str
    tag_id: str
    tag_label: str
    image_id: str
    sha256: str
    slug: str
    title: str
    variant_keys: list[str]

    def secrets(self) -> list[str]:
        """Strings that must never appear in an answer to another tenant."""
        return [self.album_id, self.album_name, self.tag_id, self.tag_label, self.image_id, self.sha256,
                self.slug, self.title, "uploads/acme/", "images/acme/"]


def _settle(functions: Functions, gateway: Gateway, tenant: str, item: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Presign through the API, put the bytes where the POST goes, process and finalize."""
    answer = gateway.call("POST", "/v1/uploads", tenant, body={"items": [item]})
    assert answer.status == 200, answer.raw
    outcome = answer.json["items"][0]
    assert outcome.get("status") == "pending", outcome
    key = outcome["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data,
                                ContentType=item["content_type"])
    functions.process_and_finalize(key, len(data))
    image = gateway.call("GET", f"/v1/images/{outcome['id']}", tenant)
    assert image.status == 200, image.raw
    return image.json


@pytest.fixture
def gateway(aws) -> Gateway:
    return Gateway(aws)


@pytest.fixture
def functions(aws) -> Functions:
    return Functions(aws)


@pytest.fixture
def acme(gateway: Gateway, functions: Functions) -> Acme:
    album = gateway.call("POST", "/v1/albums", "acme", body={"name": "Acme secret album"})
    assert album.status == 201, album.raw
    tag = gateway.call("POST", "/v1/tags", "acme", body={"label": "acme-secret-tag", "category": "internal"})
    assert tag.status == 201, tag.raw
    data = china_jpeg()
    item = {"filename": "wall.jpg", "content_type": "image/jpeg", "size": len(data), "album_id": album.json["id"],
            "tags": [tag.json["id"]], "title": "Acme secret title", "slug": "acme-secret-slug"}
    image = _settle(functions, gateway, "acme", item, data)
    assert image["status"] == "ready", image
    assert image["tags"] == [tag.json]
    keys = [o["Key"] for o in functions.aws.s3.list_objects_v2(Bucket=functions.aws.bucket_name,
                                                                Prefix=f"images/acme/{image['id']}/")["Contents"]]
    assert keys, "acme's image has no variants stored"
    return Acme(album_id=album.json["id"], album_name="Acme secret album", tag_id=tag.json["id"],
                tag_label="acme-secret-tag", image_id=image["id"], sha256=hashlib.sha256(data).hexdigest(),
                slug="acme-secret-slug", title="Acme secret title", variant_keys=keys)


def assert_no_leak(response: Response, acme: Acme) -> None:
    text = response.raw.decode("utf-8", "replace")
    leaked = [s for s in acme.secrets() if s in text]
    assert not leaked, f"{leaked} leaked in {response.status}: {text[:500]}"


def assert_like_missing(gateway: Gateway, method: str, path_of: Callable[[str], str], acme_id: str,
                        body: Any = None) -> Response:
    """acme's id answers rival exactly like an id that never existed: 404 not_found, same body."""
    theirs = gateway.call(method, path_of(acme_id), "rival", body=body)
    missing = gateway.call(method, path_of(MISSING_ID), "rival", body=body)
    assert theirs.status == missing.status == 404, (theirs.raw, missing.raw)
    assert theirs.json["errors"][0]["code"] == "not_found"
    assert theirs.raw == missing.raw
    assert theirs.headers.get("content-type") == missing.headers.get("content-type")
    return theirs


def assert_acme_untouched(gateway: Gateway, acme: Acme) -> None:
    image = gateway.call("GET", f"/v1/images/{acme.image_id}", "acme")
    assert image.status == 200, image.raw
    body = image.json
    assert (body["title"], body["slug"], body["album_id"], body["status"]) == (
        acme.title, acme.slug, acme.album_id, "ready")
    assert [t["id"] for t in body["tags"]] == [acme.tag_id]
    s3 = gateway.aws.s3
    for key in acme.variant_keys:
        assert s3.head_object(Bucket=gateway.aws.bucket_name, Key=key)["ContentLength"] > 0


def presign_one(gateway: Gateway, item: dict[str, Any]) -> dict[str, Any]:
    answer = gateway.call("POST", "/v1/uploads", "rival", body={"items": [item]})
    assert answer.status == 200, answer.raw
    return answer.json["items"][0]


def jpeg_item(data: bytes, **fields: Any) -> dict[str, Any]:
    return {"filename": "x.jpg", "content_type": "image/jpeg", "size": len(data), **fields}


# --------------------------------------------------------------------------- per-route checks


def check_public(path: str) -> Callable[[Gateway, Functions, Acme], None]:
    def check(gateway: Gateway, functions: Functions, acme: Acme) -> None:
        answer = gateway.call("GET", path, "rival")
        assert answer.status == 200, answer.raw
        assert_no_leak(answer, acme)

    return check


def check_create_uploads(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    data = china_jpeg()
    # Another tenant's album or parent is refused exactly like one that does not exist.
    for field, code in (("album_id", "album_not_found"), ("parent_id", "parent_not_found")):
        theirs = presign_one(gateway, jpeg_item(data, **{field: getattr(acme, field.replace("parent", "image"))}))
        missing = presign_one(gateway, jpeg_item(data, **{field: MISSING_ID}))
        assert theirs == missing, (theirs, missing)
        assert theirs["error"]["code"] == code and theirs["error"]["status"] == "404"
        assert "id" not in theirs and "upload" not in theirs
    # The same bytes (by sha256) and the same slug are free in another tenant: nothing says "taken".
    free = presign_one(gateway, jpeg_item(data, sha256=acme.sha256, slug=acme.slug))
    assert free["status"] == "pending" and free["id"] != acme.image_id, free
    # Another tenant's tag id never resolves: the image settles with tag_error for it.
    image = _settle(functions, gateway, "rival", jpeg_item(data, tags=[acme.tag_id]), data)
    assert image["status"] == "ready" and image["duplicate_of"] is None, image
    assert image["tags"] == [{"id": acme.tag_id, "error": "tag_error"}]
    assert image["similar"] == []
    # A tag *label* equal to acme's makes rival's own tag, never acme's.
    labelled = presign_one(gateway, jpeg_item(data, tags=acme.tag_label))
    record = gateway.call("GET", f"/v1/images/{labelled['id']}", "rival").json
    assert record["tags"] and all(t["id"] != acme.tag_id for t in record["tags"]), record
    assert_acme_untouched(gateway, acme)


def check_create_images(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    data = china_jpeg()
    file = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    for field in ("album_id", "parent_id"):
        value = acme.album_id if field == "album_id" else acme.image_id
        theirs = gateway.call("POST", "/v1/images", "rival", body={"file": file, field: value})
        missing = gateway.call("POST", "/v1/images", "rival", body={"file": file, field: MISSING_ID})
        assert theirs.status == missing.status == 404, (theirs.raw, missing.raw)
        assert theirs.raw == missing.raw
    # acme's exact bytes are new to rival: 201 created, never 200 "already exists" with acme's id.
    created = gateway.call("POST", "/v1/images", "rival", body={"file": file, "tags": [acme.tag_id],
                                                                "slug": acme.slug})
    assert created.status == 201, created.raw
    assert created.json["id"] != acme.image_id and acme.image_id not in created.raw.decode()
    assert_acme_untouched(gateway, acme)


def check_list_images(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    own = gateway.call("POST", "/v1/images", "rival", body={
        "file": "data:image/jpeg;base64," + base64.b64encode(sample_photo("flower.jpg")).decode()})
    assert own.status == 201, own.raw
    everything = gateway.call("GET", "/v1/images", "rival")
    assert everything.status == 200
    assert [i["id"] for i in everything.json["items"]] == [own.json["id"]]
    for query in ({"album_id": acme.album_id}, {"tag": acme.tag_id}, {"status": "ready"},
                  {"album_id": acme.album_id, "tag": acme.tag_id, "status": "ready"}):
        answer = gateway.call("GET", "/v1/images", "rival", query=query)
        assert answer.status == 200, (query, answer.raw)
        assert answer.json["items"] == [], query
        assert_no_leak(answer, acme)
    # acme's own listing, for contrast, does hold the image.
    assert [i["id"] for i in gateway.call("GET", "/v1/images", "acme").json["items"]] == [acme.image_id]


def check_get_image(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    answer = assert_like_missing(gateway, "GET", lambda i: f"/v1/images/{i}", acme.image_id)
    assert_no_leak(answer, acme)


def check_patch_image(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    change = {"title": "pwned", "slug": "pwned", "album_id": None, "tags": []}
    assert_like_missing(gateway, "PATCH", lambda i: f"/v1/images/{i}", acme.image_id, body=change)
    # rival's own image cannot be moved into acme's album, and acme's tag stays a tag_error.
    own = gateway.call("POST", "/v1/images", "rival", body={
        "file": "data:image/jpeg;base64," + base64.b64encode(sample_photo("flower.jpg")).decode()}).json
    theirs = gateway.call("PATCH", f"/v1/images/{own['id']}", "rival", body={"album_id": acme.album_id})
    missing = gateway.call("PATCH", f"/v1/images/{own['id']}", "rival", body={"album_id": MISSING_ID})
    assert theirs.status == missing.status == 404 and theirs.raw == missing.raw, theirs.raw
    assert theirs.json["errors"][0]["code"] == "album_not_found"
    tagged = gateway.call("PATCH", f"/v1/images/{own['id']}", "rival", body={"tags": [acme.tag_id]})
    assert tagged.status == 200, tagged.raw
    assert tagged.json["tags"] in ([{"id": acme.tag_id}], [{"id": acme.tag_id, "error": "tag_error"}])
    assert_acme_untouched(gateway, acme)


def check_delete_image(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    assert_like_missing(gateway, "DELETE", lambda i: f"/v1/images/{i}", acme.image_id)
    assert_acme_untouched(gateway, acme)


def check_similar(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    assert_like_missing(gateway, "GET", lambda i: f"/v1/images/{i}/similar", acme.image_id)
    # rival's copy of acme's very photo finds no neighbour in acme's index.
    data = china_jpeg()
    own = _settle(functions, gateway, "rival", jpeg_item(data), data)
    assert own["status"] == "ready" and own["duplicate_of"] is None, own
    similar = gateway.call("GET", f"/v1/images/{own['id']}/similar", "rival")
    assert similar.status == 200 and similar.json == {"items": []}, similar.raw


def check_sign_upload(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    # acme's own pending upload: signable by acme, and exactly like a missing one to rival
    answer = gateway.call("POST", "/v1/uploads", "acme", body={"items": [
        {"filename": "big.tif", "content_type": "image/tiff", "size": 1000, "multipart": True}]})
    pending = answer.json["items"][0]
    assert pending["upload"]["method"] == "multipart", answer.raw
    for body in ({"method": "POST"}, {"method": "PUT", "upload_id": "u", "part_number": 1}):
        assert gateway.call("POST", f"/v1/uploads/{pending['id']}/sign", "acme", body=body).status == 200
        assert_no_leak(assert_like_missing(gateway, "POST", lambda i: f"/v1/uploads/{i}/sign", pending["id"],
                                           body=body), acme)


def check_create_tag(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    answer = gateway.call("POST", "/v1/tags", "rival", body={"label": acme.tag_label})
    assert answer.status == 201, answer.raw
    assert answer.json["id"] != acme.tag_id
    listed = gateway.call("GET", "/v1/tags", "acme").json["items"]
    assert [t["id"] for t in listed] == [acme.tag_id]


def check_list_tags(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    answer = gateway.call("GET", "/v1/tags", "rival")
    assert answer.status == 200 and answer.json == {"items": []}, answer.raw
    assert_no_leak(answer, acme)


def check_get_tag(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    assert_no_leak(assert_like_missing(gateway, "GET", lambda i: f"/v1/tags/{i}", acme.tag_id), acme)


def check_create_album(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    answer = gateway.call("POST", "/v1/albums", "rival", body={"name": acme.album_name})
    assert answer.status == 201, answer.raw
    assert answer.json["id"] != acme.album_id
    assert gateway.call("GET", f"/v1/albums/{answer.json['id']}", "acme").status == 404


def check_get_album(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    assert_no_leak(assert_like_missing(gateway, "GET", lambda i: f"/v1/albums/{i}", acme.album_id), acme)


# Webhooks and jobs are `admin` routes: both tenants call them as administrators.
ADMIN_SCOPE = "images:read images:write tags:write admin"
PUBLIC_HOOK = "https://93.184.216.34/hook"  # a public address: no DNS needed


def admin_call(gateway: Gateway, method: str, path: str, tenant: str, body: Any = None) -> Response:
    token = gateway.token(tenant, scope=ADMIN_SCOPE)
    return gateway.call(method, path, tenant, body=body, headers={"authorization": f"Bearer {token}"})


def admin_like_missing(gateway: Gateway, method: str, path_of: Callable[[str], str], acme_id: str) -> Response:
    theirs = admin_call(gateway, method, path_of(acme_id), "rival")
    missing = admin_call(gateway, method, path_of(MISSING_ID), "rival")
    assert theirs.status == missing.status == 404, (theirs.raw, missing.raw)
    assert theirs.json["errors"][0]["code"] == "not_found" and theirs.raw == missing.raw
    return theirs


def acme_webhook(gateway: Gateway) -> dict[str, Any]:
    created = admin_call(gateway, "POST", "/v1/webhooks", "acme", {"url": PUBLIC_HOOK, "events": ["image.ready"]})
    assert created.status == 201, created.raw
    return created.json


def check_create_webhook(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    theirs = acme_webhook(gateway)
    answer = admin_call(gateway, "POST", "/v1/webhooks", "rival", {"url": PUBLIC_HOOK, "events": ["image.ready"]})
    assert answer.status == 201 and answer.json["id"] != theirs["id"], answer.raw
    listed = admin_call(gateway, "GET", "/v1/webhooks", "acme").json["items"]
    assert [w["id"] for w in listed] == [theirs["id"]]


def check_list_webhooks(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    theirs = acme_webhook(gateway)
    answer = admin_call(gateway, "GET", "/v1/webhooks", "rival")
    assert answer.status == 200 and answer.json == {"items": []}, answer.raw
    assert theirs["id"] not in answer.raw.decode() and theirs["secret"] not in answer.raw.decode()


def check_delete_webhook(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    theirs = acme_webhook(gateway)
    admin_like_missing(gateway, "DELETE", lambda i: f"/v1/webhooks/{i}", theirs["id"])
    assert [w["id"] for w in admin_call(gateway, "GET", "/v1/webhooks", "acme").json["items"]] == [theirs["id"]]


def check_webhook_deliveries(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    theirs = acme_webhook(gateway)
    assert_no_leak(admin_like_missing(gateway, "GET", lambda i: f"/v1/webhooks/{i}/deliveries", theirs["id"]), acme)


def check_reprocess(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    # acme's image named by id is as unknown to rival as a missing one: nothing matches, nothing changes.
    answer = admin_call(gateway, "POST", "/v1/reprocess", "rival", {"ids": [acme.image_id]})
    assert answer.status == 202 and answer.json["total"] == 0, answer.raw
    everything = admin_call(gateway, "POST", "/v1/reprocess", "rival", {})
    assert everything.status == 202 and everything.json["total"] == 0, everything.raw
    assert_acme_untouched(gateway, acme)


def check_get_job(gateway: Gateway, functions: Functions, acme: Acme) -> None:
    theirs = admin_call(gateway, "POST", "/v1/reprocess", "acme", {"ids": [acme.image_id]})
    assert theirs.status == 202 and theirs.json["total"] == 1, theirs.raw
    admin_like_missing(gateway, "GET", lambda i: f"/v1/jobs/{i}", theirs.json["id"])


CHECKS: dict[str, Callable[[Gateway, Functions, Acme], None]] = {
    "GET /v1/health": check_public("/v1/health"),
    "GET /v1/openapi.json": check_public("/v1/openapi.json"),
    "GET /v1/docs": check_public("/v1/docs"),
    "POST /v1/uploads": check_create_uploads,
    "POST /v1/uploads/{id}/sign": check_sign_upload,
    "POST /v1/images": check_create_images,
    "GET /v1/images": check_list_images,
    "GET /v1/images/{id}": check_get_image,
    "PATCH /v1/images/{id}": check_patch_image,
    "DELETE /v1/images/{id}": check_delete_image,
    "GET /v1/images/{id}/similar": check_similar,
    "POST /v1/tags": check_create_tag,
    "GET /v1/tags": check_list_tags,
    "GET /v1/tags/{id}": check_get_tag,
    "POST /v1/albums": check_create_album,
    "GET /v1/albums/{id}": check_get_album,
    "POST /v1/webhooks": check_create_webhook,
    "GET /v1/webhooks": check_list_webhooks,
    "DELETE /v1/webhooks/{id}": check_delete_webhook,
    "GET /v1/webhooks/{id}/deliveries": check_webhook_deliveries,
    "POST /v1/reprocess": check_reprocess,
    "GET /v1/jobs/{id}": check_get_job,
}


def _api_routes() -> list[str]:
    from imgdrop_local.template import load

    return sorted(r.route_key for r in load().routes if r.function == API_FUNCTION)


def test_every_route_has_a_check():
    routes = _api_routes()
    assert len(routes) >= 15
    assert sorted(CHECKS) == routes, (
        f"routes without an isolation check: {sorted(set(routes) - set(CHECKS))}; "
        f"checks of routes that no longer exist: {sorted(set(CHECKS) - set(routes))}"
    )


@pytest.mark.parametrize("route_key", _api_routes())
def test_another_tenant_sees_nothing(route_key: str, gateway: Gateway, functions: Functions, acme: Acme):
    check = CHECKS.get(route_key)
    assert check is not None, f"{route_key} is in template.yaml but has no tenant-isolation check"
    check(gateway, functions, acme)
