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
