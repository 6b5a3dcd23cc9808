"""The local stack's S3 guard on the query-signed requests of a multipart upload (POST
/uploads/{id}/sign): each passes as signed, and is refused as S3 refuses it when tampered with,
used for another key or method, sent with another Content-Type than the one signed, or expired;
a browser's CORS preflight of such a URL reaches moto, which answers it from the bucket's rules.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from test_s3_guard import (
    AKID,
    BUCKET,
    KEY,
    REGION,
    SECRET,
    Inner,
    assert_refused,
    call,
    s3_client,
    url_environ,
    with_query,
)
from werkzeug.test import EnvironBuilder

from imgdrop.store.storage import ObjectStore
from imgdrop_local.s3_guard import PresignedRequestGuard

UPLOAD_ID = "2~Abc.def_GHI-jkl+/="
REQUESTS = {
    "create": ("POST", {"content_type": "image/png"}, {"Content-Type": "image/png"}),
    "part": ("PUT", {"upload_id": UPLOAD_ID, "part_number": 3}, {}),
    "list": ("GET", {"upload_id": UPLOAD_ID}, {}),
    "complete": ("POST", {"upload_id": UPLOAD_ID}, {"Content-Type": "application/xml"}),
    "abort": ("DELETE", {"upload_id": UPLOAD_ID}, {}),
}


@pytest.fixture
def inner() -> Inner:
    return Inner()


@pytest.fixture
def clock() -> dict[str, datetime]:
    return {"now": datetime.now(UTC)}


@pytest.fixture
def guard(inner: Inner, clock: dict[str, datetime]) -> PresignedRequestGuard:
    return PresignedRequestGuard(inner, {AKID: SECRET}.get, region=REGION, now=lambda: clock["now"])


@pytest.fixture
def store(monkeypatch) -> ObjectStore:
    """ObjectStore signing as the local stack does (path-style on the emulator), with the test's keys."""
    store = ObjectStore(BUCKET, public_endpoint_url="http://127.0.0.1:4566")
    monkeypatch.setitem(store.__dict__, "_signing_client", s3_client())
    return store


def environ(url: str, method: str, headers: dict[str, str], body: bytes = b"") -> dict:
    parts = urlsplit(url)
    return EnvironBuilder(path=parts.path, query_string=parts.query, base_url=f"{parts.scheme}://{parts.netloc}",
                          method=method, headers=headers, input_stream=io.BytesIO(body),
                          content_length=len(body)).get_environ()


@pytest.mark.parametrize("operation", sorted(REQUESTS))
def test_each_signed_request_passes_with_its_body(guard, inner, store, operation):
    method, kwargs, headers = REQUESTS[operation]
    signed = store.presigned_multipart_request(KEY, operation, expires_in=900, **kwargs)
    assert signed.method == method
    body = b"part bytes" if operation == "part" else b"<CompleteMultipartUpload/>" if operation == "complete" else b""
    answer = call(guard, environ(signed.url, method, {**headers, **signed.headers}, body))
    assert answer.status_code == 204, answer.body
    (seen,) = inner.calls
    assert seen["body"] == body  # moto reads the body intact


@pytest.mark.parametrize("operation", sorted(REQUESTS))
def test_another_method_or_key_is_403(guard, inner, store, operation):
    method, kwargs, headers = REQUESTS[operation]
    signed = store.presigned_multipart_request(KEY, operation, expires_in=900, **kwargs)
    other_method = "GET" if method != "GET" else "DELETE"
    assert_refused(call(guard, environ(signed.url, other_method, signed.headers)), inner, 403, "SignatureDoesNotMatch")
    elsewhere = signed.url.replace(KEY, KEY[:-1] + "Z")
    assert_refused(call(guard, environ(elsewhere, method, signed.headers)), inner, 403, "SignatureDoesNotMatch")


def test_a_part_of_another_number_or_upload_is_403(guard, inner, store):
    signed = store.presigned_multipart_request(KEY, "part", expires_in=900, upload_id=UPLOAD_ID, part_number=3)
    for change in ({"partNumber": "4"}, {"uploadId": "another"}):
        assert_refused(call(guard, environ(with_query(signed.url, **change), "PUT", {}, b"x")), inner, 403,
                       "SignatureDoesNotMatch")


def test_creating_with_another_or_no_content_type_is_403(guard, inner, store):
    signed = store.presigned_multipart_request(KEY, "create", expires_in=900, content_type="image/png")
    for headers in ({"Content-Type": "text/html"}, {}):
        assert_refused(call(guard, environ(signed.url, "POST", headers)), inner, 403, "SignatureDoesNotMatch")


def test_an_expired_part_url_is_403_request_has_expired(guard, inner, store, clock):
    signed = store.presigned_multipart_request(KEY, "part", expires_in=900, upload_id=UPLOAD_ID, part_number=1)
    clock["now"] += timedelta(seconds=901)
    error = assert_refused(call(guard, environ(signed.url, "PUT", {}, b"x")), inner, 403, "AccessDenied")
    assert error["Message"] == "Request has expired"


def test_a_cors_preflight_of_a_signed_url_reaches_moto_unchecked(guard, inner, store):
    signed = store.presigned_multipart_request(KEY, "part", expires_in=900, upload_id=UPLOAD_ID, part_number=1)
    preflight = url_environ(signed.url, method="OPTIONS", headers={
        "Origin": "http://localhost:8080", "Access-Control-Request-Method": "PUT"})
    assert call(guard, preflight).status_code == 204
    assert len(inner.calls) == 1
