"""The local CDN serves the emulated bucket under template.yaml's distribution rules: public/
unsigned, the rest only with a valid signed URL from imgdrop.delivery, the auto-format URL
negotiated by the real edge function (infra/cdn/auto_format.js in node).

Objects are put straight into the bucket with boto3 (the stack's admin credentials); the signing
key is read from the emulated Secrets Manager, where the API's functions read it.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import boto3
import pytest
import requests

from imgdrop.delivery import Delivery, UrlSigner
from imgdrop_local.template import LOCAL_CDN_KEY_PAIR_ID, LOCAL_CDN_SECRET_ARN, load

pytestmark = pytest.mark.e2e

TIMEOUT = 10
IMMUTABLE = "public, max-age=31536000, immutable"
BYTES = {"jpg": b"\xff\xd8\xff fake jpeg", "webp": b"RIFF fake webp", "avif": b"\x00\x00\x00 ftypavif fake"}
TYPES = {"jpg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}


def client(stack, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.aws_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",  # noqa: S106
                        aws_session_token=None)


@pytest.fixture(scope="module")
def cdn(local_stack) -> dict[str, Any]:
    """The CDN's URL (from the banner), a Delivery signing with the secret's key, and objects:
    a public image's variant in three formats, a private one's, an original and an upload."""
    banner = local_stack.stdout_path.read_text()
    match = re.search(r"^\s+CDN\s+(http://127\.0\.0\.1:\d+)", banner, re.M)
    assert match, banner
    base = match.group(1)
    pem = client(local_stack, "secretsmanager").get_secret_value(SecretId=LOCAL_CDN_SECRET_ARN)["SecretString"]
    delivery = Delivery(base, UrlSigner(LOCAL_CDN_KEY_PAIR_ID, lambda: pem))

    s3 = client(local_stack, "s3")
    bucket = load().bucket_name
    tag = uuid.uuid4().hex[:8]
    public = f"public/e2e/img_{tag}/r1"
    private = f"images/e2e/img_{tag}/r1"
    for prefix, cache in ((public, IMMUTABLE), (private, "private")):
        for ext, body in BYTES.items():
            s3.put_object(Bucket=bucket, Key=f"{prefix}/medium.{ext}", Body=body, ContentType=TYPES[ext],
                          CacheControl=cache)
    s3.put_object(Bucket=bucket, Key=f"{private}/original.jpg", Body=b"original", ContentType="image/jpeg",
                  CacheControl="private")
    upload = f"uploads/e2e/img_{tag}"
    s3.put_object(Bucket=bucket, Key=upload, Body=b"raw upload", ContentType="image/jpeg")
    return {"base": base, "delivery": delivery, "public": public, "private": private, "upload": upload}


def error_code(response: requests.Response) -> str:
    return ET.fromstring(response.content).findtext("Code") or ""


def test_public_variants_are_served_unsigned_with_their_headers(cdn):
    url = f"{cdn['base']}/{cdn['public']}/medium.jpg"
    got = requests.get(url, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    assert got.content == BYTES["jpg"]
    h = got.headers
    assert h["Content-Type"] == "image/jpeg"
    assert h["Cache-Control"] == IMMUTABLE
    assert h["Content-Length"] == str(len(BYTES["jpg"]))
    assert h["Access-Control-Allow-Origin"] == "*"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["ETag"].startswith('"') and "Vary" not in h

    head = requests.head(url, timeout=TIMEOUT)
    assert (head.status_code, head.content, head.headers["Content-Length"]) == (200, b"", h["Content-Length"])
    again = requests.get(url, headers={"If-None-Match": h["ETag"]}, timeout=TIMEOUT)
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", h["ETag"])
    assert requests.get(url, headers={"If-None-Match": '"other"'}, timeout=TIMEOUT).status_code == 200


def test_missing_objects_answer_as_s3_does_to_cloudfront_without_list_rights(cdn):
    got = requests.get(f"{cdn['base']}/{cdn['public']}/nope.jpg", timeout=TIMEOUT)
    assert (got.status_code, error_code(got)) == (403, "AccessDenied")


def test_private_objects_need_a_valid_signed_url(cdn):
    delivery: Delivery = cdn["delivery"]
    key = f"{cdn['private']}/medium.jpg"
    signed = delivery.signed_url(key)
    got = requests.get(signed, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    assert (got.content, got.headers["Cache-Control"]) == (BYTES["jpg"], "private")
    original = requests.get(delivery.original_answer({"key": f"{cdn['private']}/original.jpg"})["url"],
                            timeout=TIMEOUT)
    assert (original.status_code, original.content) == (200, b"original")

    unsigned = requests.get(delivery.url(key), timeout=TIMEOUT)
    assert (unsigned.status_code, error_code(unsigned)) == (403, "MissingKey")
    other = signed.replace("/medium.jpg?", "/medium.webp?")  # another object, the same signature
    tampered = requests.get(other, timeout=TIMEOUT)
    assert (tampered.status_code, error_code(tampered)) == (403, "AccessDenied")
    assert "tampered" in tampered.text
    expired_url = delivery.signer.sign(delivery.url(key), now=time.time() - 3 * 3600)  # type: ignore[union-attr]
    expired = requests.get(expired_url, timeout=TIMEOUT)
    assert (expired.status_code, error_code(expired)) == (403, "AccessDenied")
    assert "expired" in expired.text


def test_uploads_are_never_served_even_signed(cdn):
    got = requests.get(cdn["delivery"].signed_url(cdn["upload"]), timeout=TIMEOUT)
    assert (got.status_code, error_code(got)) == (403, "AccessDenied")  # the bucket policy's refusal


@pytest.fixture
def node():
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the edge function (infra/cdn/auto_format.js) cannot run")


@pytest.mark.parametrize(("accept", "ext"), [
    ("image/avif,image/webp,image/apng,image/*,*/*;q=0.8", "avif"),  # Chrome
    ("image/webp,*/*", "webp"),
    ("image/avif;q=0,image/webp", "webp"),
    ("*/*", "jpg"),
    (None, "jpg"),
])
def test_auto_urls_answer_the_best_format_the_request_accepts(cdn, node, accept, ext):
    record = {"medium": {"width": 1024, "height": 768, "format": "jpeg", "formats": {
        fmt: {"key": f"{cdn['public']}/medium.{e}", "bytes": len(BYTES[e])}
        for fmt, e in (("jpeg", "jpg"), ("webp", "webp"), ("avif", "avif"))}}}
    answers, _ = cdn["delivery"].variant_answers(record, "public")
    auto_url = answers["medium"]["auto_url"]
    assert auto_url.endswith("/medium.auto.avif-webp-jpg")
    headers = {"Accept": accept} if accept else {}
    if accept is None:
        headers["Accept"] = ""
    got = requests.get(auto_url, headers=headers, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    assert (got.content, got.headers["Content-Type"]) == (BYTES[ext], TYPES[ext])
    assert "Accept" in got.headers["Vary"]


def test_a_private_auto_url_is_signed_and_negotiated(cdn, node):
    record = {"medium": {"width": 1024, "height": 768, "format": "jpeg", "formats": {
        "jpeg": {"key": f"{cdn['private']}/medium.jpg"}, "webp": {"key": f"{cdn['private']}/medium.webp"}}}}
    answers, _ = cdn["delivery"].variant_answers(record, "private")
    got = requests.get(answers["medium"]["auto_url"], headers={"Accept": "image/webp"}, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    assert (got.content, got.headers["Vary"]) == (BYTES["webp"], "Accept")
    unsigned = answers["medium"]["auto_url"].split("?", 1)[0]
    assert requests.get(unsigned, headers={"Accept": "image/webp"}, timeout=TIMEOUT).status_code == 403


def test_a_malformed_auto_url_is_the_edge_functions_400(cdn, node):
    got = requests.get(f"{cdn['base']}/{cdn['public']}/medium.auto.webp-bmp", timeout=TIMEOUT)
    assert got.status_code == 400
