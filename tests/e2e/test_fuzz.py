"""The API against its own OpenAPI document (`/v1/openapi.json`) on the local stack.

1. Fuzzing (schemathesis + hypothesis, derandomized): for every operation, valid and invalid
   requests with a valid token; no answer is a 5xx, and every answer's status, content type and
   body match what the document says of that operation. `--fuzz-long` (see fuzz_plugin.py) runs
   many more examples: `make fuzz`.
2. Documented statuses, both ways: a table gives, per (route, status), a request that produces it;
   every status the document lists must have a row that really answers it, and every row's status
   must be listed. The fuzzer's status_code_conformance check covers statuses found at random.
   A 503 `storage_error` is made real by an outage: a Deny on the API function's role in the local
   stack's IAM (the stack enforces each function's role), lifted right after the request.
3. Real answers against their schemas: every answer of the table (errors included), and richer ones
   (a ready image with its variants, mixed batches, pages), validated with jsonschema against the
   schema the document gives for that route and status.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from fuzz_plugin import fuzz_examples
from PIL import Image

from api_client import Api, jpeg, sha256

pytestmark = [pytest.mark.fuzz]

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (requirements-dev.txt)")


def _png(size: tuple[int, int] = (8, 8), color: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def _data_uri(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


# --------------------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def api_schema(local_stack):
    schema = schemathesis.openapi.from_url(f"{local_stack.api_url}/v1/openapi.json")
    return schema


def _operations(schema) -> list[Any]:
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())
    return operations


def test_the_api_survives_fuzzing_and_keeps_to_its_document(api_schema, local_stack, request):
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    examples = fuzz_examples(request.config)
    headers = local_stack.headers(tenant="fuzz")
    session = requests.Session()
    operations = _operations(api_schema)
    assert {op.label for op in operations} >= {"POST /v1/uploads", "GET /v1/images/{image_id}"}
    started = time.monotonic()
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(case=strategy)
            def run(case) -> None:
                case.call_and_validate(base_url=local_stack.api_url, session=session, headers=headers,
                                       checks=checks, timeout=30)

            try:
                run()
            except Unsatisfiable:
                # an operation whose inputs accept any value (a string path id, no body) has no invalid
                # request to make; in positive mode that would be a broken strategy, so it fails there
                if mode is not GenerationMode.NEGATIVE:
                    failures.append(f"{operation.label} [{mode.value}]: no request could be generated")
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: one run reports all
                failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    if not request.config.getoption("--fuzz-long", default=False):
        assert elapsed < 90, f"the bounded fuzz run took {elapsed:.0f} s"


# --------------------------------------------------------------------------- documented statuses


class Ctx:
    """What the table's requests need: the stack, tokens, and a few objects made once."""

    def __init__(self, stack: Any):
        self.stack = stack
        self.url = stack.api_url + "/v1"
        self.full = stack.headers(tenant="statuses")
        self.read_only = stack.headers(tenant="statuses", scope="images:read")
        self.write_only = stack.headers(tenant="statuses", scope="images:write")
        self.expired = stack.headers(tenant="statuses", ttl=-60)
        album = self.post("/albums", {"name": "statuses"}).json()
        self.album_id = album["id"]
        self.other_album_id = self.post("/albums", {"name": "closed"}).json()["id"]
        self.album_token = stack.headers(tenant="statuses", albums={self.album_id: ["read", "upload"]})
        self.tag_id = self.post("/tags", {"label": "statuses"}).json()["id"]
        image = self.post("/images", {"file": _data_uri(_png())}).json()
        self.image_id = image["id"]
        closed = self.post("/images", {"file": _data_uri(_png(color=(1, 2, 3))), "album_id": self.other_album_id})
        self.closed_image_id = closed.json()["id"]
        self.repeat_bytes = _png(color=(9, 9, 9))
        first = self.post("/images", {"file": _data_uri(self.repeat_bytes)})
        assert first.status_code == 201, first.text
        # an exact repeat is known once the first copy's sha256 is recorded, i.e. once it settles
        settled = Api(stack.api_url, stack.token(tenant="statuses")).wait(first.json()["id"])
        assert settled["status"] == "ready", settled

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        return requests.request(method, self.url + path, headers=self.full if headers is None else headers,
                                timeout=30, **kw)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.call("POST", path, headers, json=body)

    @contextmanager
    def outage(self) -> Iterator[None]:
        """AWS unavailable to the API function (its role denied DynamoDB and S3) for the block."""
        import boto3

        from imgdrop_local.iam import ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY, role_name

        iam = boto3.client("iam", endpoint_url=self.stack.aws_url, region_name="us-east-1",
                           aws_access_key_id=ADMIN_ACCESS_KEY_ID, aws_secret_access_key=ADMIN_SECRET_ACCESS_KEY)
        deny = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Deny", "Action": ["dynamodb:*", "s3:*"], "Resource": "*"}]}
        role = role_name("ApiFunction")
        iam.put_role_policy(RoleName=role, PolicyName="e2e-outage", PolicyDocument=json.dumps(deny))
        try:
            yield
        finally:
            iam.delete_role_policy(RoleName=role, PolicyName="e2e-outage")

    def down(self, method: str, path: str, **kw: Any) -> requests.Response:
        with self.outage():
            return self.call(method, path, **kw)

    def fresh_image(self) -> str:
        answer = self.post("/images", {"file": _data_uri(jpeg(32, 32, color=(int(time.time_ns()) % 255, 5, 5)))})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]


Request = Callable[[Ctx], requests.Response]

UPLOAD_ITEM = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 100}
HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["image.deleted"]}


def _admin(c: Ctx) -> dict[str, str]:
    return c.stack.headers(tenant="statuses", scope="images:read images:write tags:write admin")


def _webhook(c: Ctx) -> str:
    answer = c.post("/webhooks", HOOK, headers=_admin(c))
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _multipart_upload(c: Ctx) -> str:
    """A pending image answered with a multipart upload (large uploads): its sign route's subject."""
    answer = c.post("/uploads", {"items": [{**UPLOAD_ITEM, "multipart": True}]})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"][0]["id"]


def _settled(c: Ctx, image_id: str) -> str:
    return Api(c.stack.api_url, c.stack.token(tenant="statuses")).wait(image_id)["id"]


# (method, OpenAPI path) -> {status: a request that answers it}
STATUS_TABLE: dict[tuple[str, str], dict[int, Request]] = {
    ("GET", "/v1/health"): {200: lambda c: c.call("GET", "/health", headers={})},  # 503: see DOCUMENTED_ONLY
    ("POST", "/v1/uploads"): {
        200: lambda c: c.post("/uploads", {"items": [UPLOAD_ITEM]}),
        400: lambda c: c.post("/uploads", {"items": []}),
        401: lambda c: c.post("/uploads", {"items": [UPLOAD_ITEM]}, headers={}),
        403: lambda c: c.post("/uploads", {"items": [UPLOAD_ITEM]}, headers=c.read_only),
        503: lambda c: c.down("POST", "/uploads", json={"items": [UPLOAD_ITEM]}),
    },
    ("POST", "/v1/uploads/{image_id}/sign"): {
        200: lambda c: c.post(f"/uploads/{_multipart_upload(c)}/sign", {"method": "POST"}),
        400: lambda c: c.post(f"/uploads/{_multipart_upload(c)}/sign", {"method": "PATCH"}),
        401: lambda c: c.post(f"/uploads/{_multipart_upload(c)}/sign", {"method": "POST"}, headers={}),
        403: lambda c: c.post(f"/uploads/{_multipart_upload(c)}/sign", {"method": "POST"}, headers=c.read_only),
        404: lambda c: c.post("/uploads/01NOSUCHIMAGE/sign", {"method": "POST"}),
        409: lambda c: c.post(f"/uploads/{_settled(c, c.image_id)}/sign", {"method": "POST"}),
        503: lambda c: c.down("POST", f"/uploads/{_multipart_upload(c)}/sign", json={"method": "POST"}),
    },
    ("POST", "/v1/images"): {
        201: lambda c: c.post("/images", {"file": _data_uri(jpeg(24, 24, color=(7, int(time.time_ns()) % 255, 7)))}),
        200: lambda c: c.post("/images", {"file": _data_uri(c.repeat_bytes)}),
        400: lambda c: c.post("/images", {"file": "not a data uri"}),
        401: lambda c: c.post("/images", {"file": _data_uri(_png())}, headers=c.expired),
        403: lambda c: c.post("/images", {"file": _data_uri(_png())}, headers=c.read_only),
        404: lambda c: c.post("/images", {"file": _data_uri(_png()), "album_id": "01NOSUCHALBUM"}),
        413: lambda c: c.call("POST", "/images", data=b"x" * (6 * 1024 * 1024),
                              headers={**c.full, "content-type": "application/octet-stream"}),
        503: lambda c: c.down("POST", "/images", json={"file": _data_uri(_png(color=(4, 5, 6)))}),
    },
    ("GET", "/v1/images"): {
        200: lambda c: c.call("GET", "/images"),
        400: lambda c: c.call("GET", "/images", params={"limit": "0"}),
        401: lambda c: c.call("GET", "/images", headers={}),
        403: lambda c: c.call("GET", "/images", headers=c.write_only),
        503: lambda c: c.down("GET", "/images"),
    },
    ("GET", "/v1/images/{image_id}"): {
        200: lambda c: c.call("GET", f"/images/{c.image_id}"),
        401: lambda c: c.call("GET", f"/images/{c.image_id}", headers={"Authorization": "Bearer nope"}),
        403: lambda c: c.call("GET", f"/images/{c.image_id}", headers=c.write_only),
        # an image in an album the token may not read answers like a missing one
        404: lambda c: c.call("GET", f"/images/{c.closed_image_id}", headers=c.album_token),
        503: lambda c: c.down("GET", f"/images/{c.image_id}"),
    },
    ("PATCH", "/v1/images/{image_id}"): {
        200: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"title": "changed"}),
        400: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"rating": 9}),
        401: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"title": "x"}, headers={}),
        403: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"title": "x"}, headers=c.read_only),
        404: lambda c: c.call("PATCH", "/images/01NOSUCHIMAGE", json={"title": "x"}),
        503: lambda c: c.down("PATCH", f"/images/{c.image_id}", json={"title": "x"}),
    },
    ("DELETE", "/v1/images/{image_id}"): {
        204: lambda c: c.call("DELETE", f"/images/{c.fresh_image()}"),
        401: lambda c: c.call("DELETE", f"/images/{c.image_id}", headers={}),
        403: lambda c: c.call("DELETE", f"/images/{c.image_id}", headers=c.read_only),
        404: lambda c: c.call("DELETE", "/images/01NOSUCHIMAGE"),
        503: lambda c: c.down("DELETE", f"/images/{c.image_id}"),
    },
    ("GET", "/v1/images/{image_id}/similar"): {
        200: lambda c: c.call("GET", f"/images/{c.image_id}/similar"),
        401: lambda c: c.call("GET", f"/images/{c.image_id}/similar", headers={}),
        403: lambda c: c.call("GET", f"/images/{c.image_id}/similar", headers=c.write_only),
        404: lambda c: c.call("GET", "/images/01NOSUCHIMAGE/similar"),
        503: lambda c: c.down("GET", f"/images/{c.image_id}/similar"),
    },
    ("POST", "/v1/tags"): {
        201: lambda c: c.post("/tags", {"label": "sunset"}),
        400: lambda c: c.post("/tags", {"label": ""}),
        401: lambda c: c.post("/tags", {"label": "x"}, headers={}),
        403: lambda c: c.post("/tags", {"label": "x"}, headers=c.stack.headers(tenant="statuses",
                                                                                scope="images:read images:write")),
        503: lambda c: c.down("POST", "/tags", json={"label": "x"}),
    },
    ("GET", "/v1/tags"): {
        200: lambda c: c.call("GET", "/tags"),
        401: lambda c: c.call("GET", "/tags", headers={}),
        403: lambda c: c.call("GET", "/tags", headers=c.write_only),
        503: lambda c: c.down("GET", "/tags"),
    },
    ("GET", "/v1/tags/{tag_id}"): {
        200: lambda c: c.call("GET", f"/tags/{c.tag_id}"),
        401: lambda c: c.call("GET", f"/tags/{c.tag_id}", headers={}),
        403: lambda c: c.call("GET", f"/tags/{c.tag_id}", headers=c.write_only),
        404: lambda c: c.call("GET", "/tags/01NOSUCHTAG"),
        503: lambda c: c.down("GET", f"/tags/{c.tag_id}"),
    },
    ("POST", "/v1/albums"): {
        201: lambda c: c.post("/albums", {"name": "more"}),
        400: lambda c: c.post("/albums", {"name": "x" * 101}),
        401: lambda c: c.post("/albums", {"name": "x"}, headers={}),
        403: lambda c: c.post("/albums", {"name": "x"}, headers=c.read_only),
        503: lambda c: c.down("POST", "/albums", json={"name": "x"}),
    },
    ("GET", "/v1/albums/{album_id}"): {
        200: lambda c: c.call("GET", f"/albums/{c.album_id}"),
        401: lambda c: c.call("GET", f"/albums/{c.album_id}", headers={}),
        403: lambda c: c.call("GET", f"/albums/{c.album_id}", headers=c.write_only),
        # an album the token may not read answers as a missing one
        404: lambda c: c.call("GET", f"/albums/{c.other_album_id}", headers=c.album_token),
        503: lambda c: c.down("GET", f"/albums/{c.album_id}"),
    },
    # Webhooks and jobs: scope admin. The local stack allows http://127.0.0.1 endpoints (nothing listens
    # on port 9: an endpoint is only called when an event of its kind comes).
    ("POST", "/v1/webhooks"): {
        201: lambda c: c.post("/webhooks", HOOK, headers=_admin(c)),
        400: lambda c: c.post("/webhooks", {"url": "https://169.254.169.254/", "events": ["image.ready"]},
                              headers=_admin(c)),
        401: lambda c: c.post("/webhooks", HOOK, headers={}),
        403: lambda c: c.post("/webhooks", HOOK),
        503: lambda c: c.down("POST", "/webhooks", json=HOOK, headers=_admin(c)),
    },
    ("GET", "/v1/webhooks"): {
        200: lambda c: c.call("GET", "/webhooks", headers=_admin(c)),
        401: lambda c: c.call("GET", "/webhooks", headers={}),
        403: lambda c: c.call("GET", "/webhooks"),
        503: lambda c: c.down("GET", "/webhooks", headers=_admin(c)),
    },
    ("DELETE", "/v1/webhooks/{webhook_id}"): {
        204: lambda c: c.call("DELETE", f"/webhooks/{_webhook(c)}", headers=_admin(c)),
        401: lambda c: c.call("DELETE", "/webhooks/01NOSUCHHOOK", headers={}),
        403: lambda c: c.call("DELETE", "/webhooks/01NOSUCHHOOK"),
        404: lambda c: c.call("DELETE", "/webhooks/01NOSUCHHOOK", headers=_admin(c)),
        503: lambda c: c.down("DELETE", "/webhooks/01NOSUCHHOOK", headers=_admin(c)),
    },
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): {
        200: lambda c: c.call("GET", f"/webhooks/{_webhook(c)}/deliveries", headers=_admin(c)),
        400: lambda c: c.call("GET", "/webhooks/01NOSUCHHOOK/deliveries", params={"limit": "0"}, headers=_admin(c)),
        401: lambda c: c.call("GET", "/webhooks/01NOSUCHHOOK/deliveries", headers={}),
        403: lambda c: c.call("GET", "/webhooks/01NOSUCHHOOK/deliveries"),
        404: lambda c: c.call("GET", "/webhooks/01NOSUCHHOOK/deliveries", headers=_admin(c)),
        503: lambda c: c.down("GET", "/webhooks/01NOSUCHHOOK/deliveries", headers=_admin(c)),
    },
    ("POST", "/v1/reprocess"): {
        202: lambda c: c.post("/reprocess", {"ids": [c.image_id]}, headers=_admin(c)),
        400: lambda c: c.post("/reprocess", {"profile": "no-such-profile"}, headers=_admin(c)),
        401: lambda c: c.post("/reprocess", {}, headers={}),
        403: lambda c: c.post("/reprocess", {}),
        503: lambda c: c.down("POST", "/reprocess", json={}, headers=_admin(c)),
    },
    ("GET", "/v1/jobs/{job_id}"): {
        200: lambda c: c.call("GET", f"/jobs/{c.post('/reprocess', {'ids': ['01NOSUCHIMAGE']}, _admin(c)).json()['id']}",
                              headers=_admin(c)),
        401: lambda c: c.call("GET", "/jobs/01NOSUCHJOB", headers={}),
        403: lambda c: c.call("GET", "/jobs/01NOSUCHJOB"),
        404: lambda c: c.call("GET", "/jobs/01NOSUCHJOB", headers=_admin(c)),
        503: lambda c: c.down("GET", "/jobs/01NOSUCHJOB", headers=_admin(c)),
    },
}
# Documented, and no request can produce it: the health check reads no storage (design.md: a 503
# storage_error is documented on every route).
DOCUMENTED_ONLY = {("GET", "/v1/health"): {503}}


@pytest.fixture(scope="module")
def document(local_stack) -> dict[str, Any]:
    return requests.get(f"{local_stack.api_url}/v1/openapi.json", timeout=30).json()


@pytest.fixture(scope="module")
def documented(document) -> dict[tuple[str, str], set[int]]:
    return {
        (method.upper(), path): {int(code) for code in operation["responses"]}
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def schema_mismatch(document: dict[str, Any], method: str, path: str, answer: requests.Response) -> str | None:
    """Why `answer` does not conform to what the document says of (method, path) and its status, or None:
    its status documented, its Content-Type the documented one, its body valid against the schema."""
    from jsonschema import Draft202012Validator

    responses = document["paths"][path][method.lower()]["responses"]
    spec = responses.get(str(answer.status_code))
    if spec is None:
        return f"status {answer.status_code} is not documented ({sorted(responses)})"
    content = spec.get("content") or {}
    if not content:
        return None if not answer.content else f"a {answer.status_code} documents no body: {answer.text[:200]}"
    media = (answer.headers.get("content-type") or "").split(";")[0].strip()
    if media not in content:
        return f"Content-Type {media!r} is not documented ({sorted(content)})"
    schema = {**content[media]["schema"], "components": document["components"]}  # "#/components/..." resolves
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(answer.json()), key=lambda e: list(e.absolute_path))
    if errors:
        return "; ".join(f"/{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:5])
    return None


def test_the_status_table_covers_the_documented_statuses_and_no_others(documented):
    table = {route: set(statuses) | DOCUMENTED_ONLY.get(route, set()) for route, statuses in STATUS_TABLE.items()}
    assert set(table) == set(documented), "routes differ between the document and the status table"
    differences = {route: {"documented only": sorted(documented[route] - table[route]),
                           "returned, undocumented": sorted(table[route] - documented[route])}
                   for route in table if table[route] != documented[route]}
    assert not differences, differences


def test_each_status_in_the_table_is_what_the_route_answers_in_its_schema(local_stack, document):
    ctx = Ctx(local_stack)
    wrong = []
    for (method, path), statuses in STATUS_TABLE.items():
        for status, make in statuses.items():
            answer = make(ctx)
            if answer.status_code != status:
                wrong.append(f"{method} {path}: expected {status}, got {answer.status_code} {answer.text[:200]}")
                continue
            if status >= 400:
                error = answer.json()["errors"][0]
                if error["status"] != str(status) or not error["code"]:
                    wrong.append(f"{method} {path} {status}: error shape {error}")
                if status == 503 and error["code"] != "storage_error":
                    wrong.append(f"{method} {path} 503: {error['code']}")
            mismatch = schema_mismatch(document, method, path, answer)
            if mismatch:
                wrong.append(f"{method} {path} {status}: {mismatch}")
    assert not wrong, "\n".join(wrong)


def _multipart(parts: list[tuple[str, bytes, str, dict[str, Any] | None]]) -> list[tuple[str, tuple]]:
    files: list[tuple[str, tuple]] = []
    for name, data, content_type, fields in parts:
        files.append((name, (f"{name}.bin", data, content_type)))
        if fields is not None:
            files.append((f"{name}-data", (None, json.dumps(fields), "application/json")))
    return files


def test_richer_answers_conform_to_their_documented_schemas(local_stack, document):
    """Answers with more in them than the status table's: ready images with variants, srcset and
    original, EXIF and colours; every kind of upload outcome; pages; tags; similar."""
    token = local_stack.token(tenant="conformance", scope="images:read images:write tags:write")
    api = Api(local_stack.api_url, token)
    tag = api.call("POST", "/tags", json={"label": "conformance", "category": "tests"}).json()
    photo = jpeg(400, 300, color=(120, 10, 200))
    first = api.call("POST", "/images", json={
        "file": _data_uri(photo, "image/jpeg"), "title": "Conformance", "tags": [tag["id"], "01NOSUCHTAG"],
        "type": "Image::Photo", "kind": "scene", "rating": 4, "privacy": "unlisted", "metadata": {"k": "v"},
        "usage_type": "licensed", "usage_license_code": "cc_by_4_0", "attributed_name": "Me",
        "source_url": "https://example.org/a.jpg", "date": "2020-01-02"})
    assert first.status_code == 201, first.text
    ready = api.wait(first.json()["id"])
    assert ready["status"] == "ready" and ready["variants"], ready
    private = api.call("POST", "/images", json={"file": _data_uri(jpeg(64, 48, color=(1, 99, 7)), "image/jpeg"),
                                               "privacy": "private"}).json()
    api.wait(private["id"])
    broken = api.call("POST", "/images", json={"file": _data_uri(b"not an image at all", "image/png")}).json()
    api.wait(broken["id"])

    answers: list[tuple[str, str, requests.Response]] = [
        ("POST", "/v1/images", first),
        ("GET", "/v1/images/{image_id}", api.call("GET", f"/images/{ready['id']}")),
        ("GET", "/v1/images/{image_id}", api.call("GET", f"/images/{private['id']}")),
        ("GET", "/v1/images/{image_id}", api.call("GET", f"/images/{broken['id']}")),
        ("GET", "/v1/images", api.call("GET", "/images", params={"limit": 2})),
        ("GET", "/v1/images", api.call("GET", "/images", params={"status": "failed"})),
        ("GET", "/v1/images/{image_id}/similar", api.call("GET", f"/images/{ready['id']}/similar")),
        ("PATCH", "/v1/images/{image_id}", api.call("PATCH", f"/images/{ready['id']}",
                                                     json={"tags": "conformance, other", "year": 2019})),
        ("GET", "/v1/tags", api.call("GET", "/tags")),
        ("POST", "/v1/uploads", api.call("POST", "/uploads", json={"items": [
            UPLOAD_ITEM, {**UPLOAD_ITEM, "sha256": sha256(photo)}, {**UPLOAD_ITEM, "content_type": "text/html"},
            {**UPLOAD_ITEM, "title": "t" * 101, "rating": 9}]})),
        ("POST", "/v1/images", api.call("POST", "/images", files=_multipart([
            ("image-1", jpeg(40, 30, color=(int(time.time_ns()) % 255, 1, 2)), "image/jpeg", {"tags": "mp"}),
            ("image-2", photo, "image/jpeg", None),
            ("image-3", b"<svg/>", "text/html", None)]))),
        ("POST", "/v1/images", api.call("POST", "/images", files=_multipart([
            ("image-1", b"x", "text/plain", None), ("image-2", b"y", "image/png", {"rating": 9})]))),
        ("POST", "/v1/images", api.call("POST", "/images", json={"file": _data_uri(photo, "image/jpeg")})),
        ("POST", "/v1/images", api.call("POST", "/images", json={"file": "data:image/png;base64,@@"})),
        ("POST", "/v1/images", api.call("POST", "/images", data=b"not json",
                                        headers={"content-type": "application/json"})),
        ("POST", "/v1/uploads", api.call("POST", "/uploads", data=b"items", headers={"content-type": "text/plain"})),
        ("POST", "/v1/tags", api.call("POST", "/tags", data=b"label=x",
                                      headers={"content-type": "application/x-www-form-urlencoded"})),
    ]
    statuses = [answer.status_code for _, _, answer in answers]
    assert statuses == [201, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201, 400, 200, 400, 400, 400, 400], statuses
    outcomes = [set(item) for item in answers[9][2].json()["items"]]
    assert [("upload" in o, "error" in o and "id" in o, "errors" in o) for o in outcomes] == [
        (True, False, False), (False, True, False), (False, False, True), (False, False, True)]
    wrong = [f"{method} {path} {answer.status_code}: {mismatch}" for method, path, answer in answers
             if (mismatch := schema_mismatch(document, method, path, answer))]
    assert not wrong, "\n".join(wrong)
