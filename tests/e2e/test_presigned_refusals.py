"""The local stack's S3 refuses presigned requests as S3 does (moto alone accepts them all).

Forms come from `POST /v1/uploads` (or, for an expired one, are minted with boto3 against the
local endpoint and the stack's credentials) and are POSTed with `requests`, as a browser would.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from api_client import Api, jpeg

pytestmark = pytest.mark.e2e

TIMEOUT = 30

# The stack's own credentials (server.run sets them for every function).
STACK_KEY_ID = "testing"
STACK_SECRET = "testing"  # noqa: S105 - moto's dummy credentials


def s3_error(response: requests.Response) -> dict[str, str]:
    root = ET.fromstring(response.content)
    assert root.tag == "Error", response.text
    return {child.tag: child.text or "" for child in root}


def s3_client(stack) -> Any:
    return boto3.client(
        "s3", endpoint_url=stack.aws_url, region_name="us-east-1", aws_access_key_id=STACK_KEY_ID,
        aws_secret_access_key=STACK_SECRET, aws_session_token=None,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@pytest.fixture
def api(local_stack) -> Api:
    return Api(local_stack.api_url, local_stack.token(tenant="refuse-" + uuid.uuid4().hex[:8]))


def offered_upload(api: Api, data: bytes) -> tuple[str, dict[str, Any]]:
    """(image id, presigned upload) for `data`, as the API offers it."""
    (item,) = api.presign([{"filename": "refusal.jpg", "content_type": "image/jpeg", "size": len(data)}])
    assert item["status"] == "pending", item
    return item["id"], item["upload"]


def post_form(upload: dict[str, Any], data: bytes, **changed: str) -> requests.Response:
    return requests.post(upload["url"], data={**upload["fields"], **changed}, timeout=TIMEOUT,
                         files={"file": ("refusal.jpg", data, "image/jpeg")})


def bucket_of(upload: dict[str, Any]) -> str:
    return urlsplit(upload["url"]).path.strip("/")


def exists(stack, bucket: str, key: str) -> bool:
    listed = s3_client(stack).list_objects_v2(Bucket=bucket, Prefix=key)
    return any(obj["Key"] == key for obj in listed.get("Contents", []))


def test_the_offered_form_still_uploads_to_ready(local_stack, api):
    data = jpeg(64, 48)
    image_id, upload = offered_upload(api, data)
    posted = post_form(upload, data)
    assert posted.status_code in (200, 201, 204), posted.text
    image = api.wait(image_id)
    assert image["status"] == "ready", (image.get("errors"), local_stack.logs()[-3000:])


def test_an_expired_form_is_403_access_denied(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    key = upload["fields"]["key"]
    minted = s3_client(local_stack).generate_presigned_post(
        Bucket=bucket_of(upload), Key=key, Fields={"Content-Type": "image/jpeg"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, len(data)]], ExpiresIn=1)
    time.sleep(2.1)
    posted = requests.post(minted["url"], data=minted["fields"], timeout=TIMEOUT,
                           files={"file": ("refusal.jpg", data, "image/jpeg")})
    assert posted.status_code == 403, posted.text
    error = s3_error(posted)
    assert (error["Code"], error["Message"]) == ("AccessDenied", "Invalid according to Policy: Policy expired.")
    assert not exists(local_stack, bucket_of(upload), key)


def test_a_form_for_another_key_is_403_access_denied(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    other = upload["fields"]["key"] + "-other"
    posted = post_form(upload, data, key=other)
    assert posted.status_code == 403, posted.text
    error = s3_error(posted)
    assert error["Code"] == "AccessDenied"
    assert error["Message"].startswith("Invalid according to Policy: Policy Condition failed:")
    assert not exists(local_stack, bucket_of(upload), other)


def test_one_byte_over_the_declared_size_is_400_entity_too_large(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    posted = post_form(upload, data + b"\0")
    assert posted.status_code == 400, posted.text
    assert s3_error(posted)["Code"] == "EntityTooLarge"
    assert not exists(local_stack, bucket_of(upload), upload["fields"]["key"])


def test_a_tampered_form_signature_is_403(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    signature = upload["fields"]["x-amz-signature"]
    posted = post_form(upload, data, **{"x-amz-signature": signature[::-1]})
    assert posted.status_code == 403, posted.text
    assert s3_error(posted)["Code"] == "SignatureDoesNotMatch"
    assert not exists(local_stack, bucket_of(upload), upload["fields"]["key"])


def test_a_wrong_content_type_is_403(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    posted = post_form(upload, data, **{"Content-Type": "text/html"})
    assert posted.status_code == 403, posted.text
    assert s3_error(posted)["Code"] == "AccessDenied"


def test_a_refusal_is_readable_by_a_browser_origin(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    posted = requests.post(upload["url"], data=upload["fields"], timeout=TIMEOUT,
                           headers={"Origin": "http://localhost:8080"},
                           files={"file": ("refusal.jpg", data + b"\0", "image/jpeg")})
    assert posted.status_code == 400
    assert posted.headers.get("Access-Control-Allow-Origin") in ("*", "http://localhost:8080")


def test_query_signed_urls_are_checked(local_stack, api):
    data = jpeg(64, 48)
    _, upload = offered_upload(api, data)
    assert post_form(upload, data).status_code in (200, 201, 204)
    s3 = s3_client(local_stack)
    params = {"Bucket": bucket_of(upload), "Key": upload["fields"]["key"]}

    url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
    fetched = requests.get(url, timeout=TIMEOUT)
    assert (fetched.status_code, fetched.content) == (200, data)

    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    refused = requests.get(tampered, timeout=TIMEOUT)
    assert (refused.status_code, s3_error(refused)["Code"]) == (403, "SignatureDoesNotMatch")

    short = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=1)
    time.sleep(2.1)
    expired = requests.get(short, timeout=TIMEOUT)
    assert expired.status_code == 403
    assert (s3_error(expired)["Code"], s3_error(expired)["Message"]) == ("AccessDenied", "Request has expired")

    sigv2 = boto3.client("s3", endpoint_url=local_stack.aws_url, region_name="us-east-1",
                         aws_access_key_id=STACK_KEY_ID, aws_secret_access_key=STACK_SECRET, aws_session_token=None,
                         config=Config(signature_version="s3", s3={"addressing_style": "path"}))
    v2 = requests.get(sigv2.generate_presigned_url("get_object", Params=params, ExpiresIn=60), timeout=TIMEOUT)
    assert (v2.status_code, s3_error(v2)["Code"]) == (400, "InvalidRequest")
