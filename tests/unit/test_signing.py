"""Presigned URLs on the AWS path (no emulator endpoint) are SigV4.

botocore presigns S3 with SigV2 unless asked for `s3v4`, and AWS refuses SigV2 on buckets
created since mid-2020; moto accepts both, so only this unit test (no network: presigning is
local) shows which one a deployed stack hands out.
"""

from __future__ import annotations

import base64
import json

import boto3
import pytest

from imgdrop.store.storage import ObjectStore, upload_key

BUCKET = "imgdrop-dev-123456789012-us-east-1"
KEY = upload_key("acme", "01jabcdefghjkmnpqrstvwxyz0")


@pytest.fixture
def aws_store(monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    """An ObjectStore as in AWS: no endpoint override, dummy credentials, us-east-1."""
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "PUBLIC_S3_ENDPOINT_URL", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # one made earlier keeps its credentials
    return ObjectStore(BUCKET)


def test_presigned_post_on_aws_is_sigv4(aws_store: ObjectStore):
    post = aws_store.presigned_post(KEY, content_type="image/png", max_bytes=1000, expires_in=900)
    fields = {k.lower(): v for k, v in post.fields.items()}
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-credential"].startswith("AKIDEXAMPLE/")
    assert fields["x-amz-credential"].endswith("/us-east-1/s3/aws4_request")
    assert fields["x-amz-signature"]
    assert "x-amz-date" in fields
    assert "awsaccesskeyid" not in fields and "signature" not in fields
    # the policy itself names the SigV4 fields, so S3 checks them
    conditions = json.loads(base64.b64decode(post.fields["policy"]))["conditions"]
    assert {"x-amz-algorithm": "AWS4-HMAC-SHA256"} in conditions
    # regional virtual-host addressing
    assert post.url == f"https://{BUCKET}.s3.us-east-1.amazonaws.com/"


def test_presigned_posts_on_the_emulator_are_sigv4_and_path_style():
    store = ObjectStore(BUCKET, public_endpoint_url="http://127.0.0.1:4566")
    post = store.presigned_post(KEY, content_type="image/png", max_bytes=1000, expires_in=900)
    assert post.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert post.url == f"http://127.0.0.1:4566/{BUCKET}"


# ---------------------------------------------------------------- multipart requests (POST /uploads/{id}/sign)

MULTIPART = {
    # operation: (HTTP method, the query S3 reads the operation from, extra arguments)
    "create": ("POST", {"uploads": [""]}, {"content_type": "image/tiff"}),
    "part": ("PUT", {"uploadId": ["up/id+1="], "partNumber": ["7"]}, {"upload_id": "up/id+1=", "part_number": 7}),
    "list": ("GET", {"uploadId": ["up/id+1="]}, {"upload_id": "up/id+1="}),
    "complete": ("POST", {"uploadId": ["up/id+1="]}, {"upload_id": "up/id+1="}),
    "abort": ("DELETE", {"uploadId": ["up/id+1="]}, {"upload_id": "up/id+1="}),
}


@pytest.mark.parametrize("operation", sorted(MULTIPART))
def test_multipart_requests_on_aws_are_sigv4_regional_virtual_host(aws_store: ObjectStore, operation):
    from urllib.parse import parse_qs, urlsplit

    method, expected_query, kwargs = MULTIPART[operation]
    signed = aws_store.presigned_multipart_request(KEY, operation, expires_in=900, **kwargs)
    assert signed.method == method
    url = urlsplit(signed.url)
    assert (url.scheme, url.netloc, url.path) == ("https", f"{BUCKET}.s3.us-east-1.amazonaws.com", f"/{KEY}")
    query = parse_qs(url.query, keep_blank_values=True)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/s3/aws4_request")
    assert query["X-Amz-Expires"] == ["900"]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert "AWSAccessKeyId" not in query and "Signature" not in query  # no SigV2
    assert {k: v for k, v in query.items() if not k.startswith("X-Amz-")} == expected_query
    if operation == "create":  # the declared type is signed: the client must send it, S3 stores it
        assert signed.headers == {"Content-Type": "image/tiff"}
        assert query["X-Amz-SignedHeaders"] == ["content-type;host"]
    else:
        assert signed.headers == {}
        assert query["X-Amz-SignedHeaders"] == ["host"]


def test_multipart_requests_on_the_emulator_are_sigv4_and_path_style():
    store = ObjectStore(BUCKET, public_endpoint_url="http://127.0.0.1:4566")
    signed = store.presigned_multipart_request(KEY, "part", expires_in=60, upload_id="u", part_number=1)
    assert signed.url.startswith(f"http://127.0.0.1:4566/{BUCKET}/{KEY}?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in signed.url
