"""The API against its own OpenAPI document (`/v1/openapi.json`) on the local stack.

1. Fuzzing (schemathesis + hypothesis, derandomized): for every operation, valid and invalid
   requests with a valid token; no answer is a 5xx, and every answer's status, content type and
   body match what the document says of that operation. `--fuzz-long` (see fuzz_plugin.py) runs
   many more examples: `make fuzz`.
2. Documented statuses, both ways: a table gives, per (route, status), a request that produces it;
   every status the document lists must have a row that really answers it, and every row's status
   must be listed. The fuzzer's status_code_conformance check covers statuses found at random.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from fuzz_plugin import fuzz_examples
from PIL import Image

from api_client import Api, jpeg

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

    def fresh_image(self) -> str:
        answer = self.post("/images", {"file": _data_uri(jpeg(32, 32, color=(int(time.time_ns()) % 255, 5, 5)))})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]


Request = Callable[[Ctx], requests.Response]

UPLOAD_ITEM = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 100}

# (method, OpenAPI path) -> {status: a request that answers it}
STATUS_TABLE: dict[tuple[str, str], dict[int, Request]] = {
    ("GET", "/v1/health"): {200: lambda c: c.call("GET", "/health", headers={})},
    ("POST", "/v1/uploads"): {
        200: lambda c: c.post("/uploads", {"items": [UPLOAD_ITEM]}),
        400: lambda c: c.post("/uploads", {"items": []}),
        401: lambda c: c.post("/uploads", {"items": [UPLOAD_ITEM]}, headers={}),
        403: lambda c: c.post("/uploads", {"items": [UPLOAD_ITEM]}, headers=c.read_only),
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
    },
    ("GET", "/v1/images"): {
        200: lambda c: c.call("GET", "/images"),
        400: lambda c: c.call("GET", "/images", params={"limit": "0"}),
        401: lambda c: c.call("GET", "/images", headers={}),
        403: lambda c: c.call("GET", "/images", headers=c.write_only),
    },
    ("GET", "/v1/images/{image_id}"): {
        200: lambda c: c.call("GET", f"/images/{c.image_id}"),
        401: lambda c: c.call("GET", f"/images/{c.image_id}", headers={"Authorization": "Bearer nope"}),
        403: lambda c: c.call("GET", f"/images/{c.image_id}", headers=c.write_only),
        # an image in an album the token may not read answers like a missing one
        404: lambda c: c.call("GET", f"/images/{c.closed_image_id}", headers=c.album_token),
    },
    ("PATCH", "/v1/images/{image_id}"): {
        200: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"title": "changed"}),
        400: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"rating": 9}),
        401: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"title": "x"}, headers={}),
        403: lambda c: c.call("PATCH", f"/images/{c.image_id}", json={"title": "x"}, headers=c.read_only),
        404: lambda c: c.call("PATCH", "/images/01NOSUCHIMAGE", json={"title": "x"}),
    },
    ("DELETE", "/v1/images/{image_id}"): {
        204: lambda c: c.call("DELETE", f"/images/{c.fresh_image()}"),
        401: lambda c: c.call("DELETE", f"/images/{c.image_id}", headers={}),
        403: lambda c: c.call("DELETE", f"/images/{c.image_id}", headers=c.read_only),
        404: lambda c: c.call("DELETE", "/images/01NOSUCHIMAGE"),
    },
    ("GET", "/v1/images/{image_id}/similar"): {
        200: lambda c: c.call("GET", f"/images/{c.image_id}/similar"),
        401: lambda c: c.call("GET", f"/images/{c.image_id}/similar", headers={}),
        403: lambda c: c.call("GET", f"/images/{c.image_id}/similar", headers=c.write_only),
        404: lambda c: c.call("GET", "/images/01NOSUCHIMAGE/similar"),
    },
    ("POST", "/v1/tags"): {
        201: lambda c: c.post("/tags", {"label": "sunset"}),
        400: lambda c: c.post("/tags", {"label": ""}),
        401: lambda c: c.post("/tags", {"label": "x"}, headers={}),
        403: lambda c: c.post("/tags", {"label": "x"}, headers=c.stack.headers(tenant="statuses",
                                                                                scope="images:read images:write")),
    },
    ("GET", "/v1/tags"): {
        200: lambda c: c.call("GET", "/tags"),
        401: lambda c: c.call("GET", "/tags", headers={}),
        403: lambda c: c.call("GET", "/tags", headers=c.write_only),
    },
    ("GET", "/v1/tags/{tag_id}"): {
        200: lambda c: c.call("GET", f"/tags/{c.tag_id}"),
        401: lambda c: c.call("GET", f"/tags/{c.tag_id}", headers={}),
        403: lambda c: c.call("GET", f"/tags/{c.tag_id}", headers=c.write_only),
        404: lambda c: c.call("GET", "/tags/01NOSUCHTAG"),
    },
    ("POST", "/v1/albums"): {
        201: lambda c: c.post("/albums", {"name": "more"}),
        400: lambda c: c.post("/albums", {"name": "x" * 101}),
        401: lambda c: c.post("/albums", {"name": "x"}, headers={}),
        403: lambda c: c.post("/albums", {"name": "x"}, headers=c.read_only),
    },
    ("GET", "/v1/albums/{album_id}"): {
        200: lambda c: c.call("GET", f"/albums/{c.album_id}"),
        401: lambda c: c.call("GET", f"/albums/{c.album_id}", headers={}),
        403: lambda c: c.call("GET", f"/albums/{c.other_album_id}", headers=c.album_token),
        404: lambda c: c.call("GET", "/albums/01NOSUCHALBUM"),
    },
}


@pytest.fixture(scope="module")
def documented(local_stack) -> dict[tuple[str, str], set[int]]:
    document = requests.get(f"{local_stack.api_url}/v1/openapi.json", timeout=30).json()
    return {
        (method.upper(), path): {int(code) for code in operation["responses"]}
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_the_status_table_covers_the_documented_statuses_and_no_others(documented):
    table = {route: set(statuses) for route, statuses in STATUS_TABLE.items()}
    assert set(table) == set(documented), "routes differ between the document and the status table"
    differences = {route: {"documented only": sorted(documented[route] - table[route]),
                           "returned, undocumented": sorted(table[route] - documented[route])}
                   for route in table if table[route] != documented[route]}
    assert not differences, differences


def test_each_status_in_the_table_is_what_the_route_answers(local_stack):
    ctx = Ctx(local_stack)
    wrong = []
    for (method, path), statuses in STATUS_TABLE.items():
        for status, make in statuses.items():
            answer = make(ctx)
            if answer.status_code != status:
                wrong.append(f"{method} {path}: expected {status}, got {answer.status_code} {answer.text[:200]}")
            elif status >= 400:
                error = answer.json()["errors"][0]
                if error["status"] != str(status) or not error["code"]:
                    wrong.append(f"{method} {path} {status}: error shape {error}")
    assert not wrong, "\n".join(wrong)
