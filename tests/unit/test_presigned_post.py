"""The presigned POST policy: moto enforces none of it, so this is where it is proven."""

import base64
import json
from datetime import UTC, datetime

from imgdrop.store.storage import ObjectStore, upload_key


def decode_policy(fields):
    return json.loads(base64.b64decode(fields["policy"]))


def test_policy_binds_exact_key_size_range_content_type_and_short_expiry():
    store = ObjectStore("imgdrop-test-bucket", public_endpoint_url="http://127.0.0.1:4566")
    key = upload_key("acme", "01jabcdefghjkmnpqrstvwxyz0")
    post = store.presigned_post(key, content_type="image/jpeg", max_bytes=12345, expires_in=900)

    policy = decode_policy(post.fields)
    conditions = policy["conditions"]
    assert {"key": key} in conditions
    assert {"bucket": "imgdrop-test-bucket"} in conditions
    assert ["content-length-range", 1, 12345] in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    # no starts-with wildcard lets the client choose another key or type
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]

    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    remaining = (expiration - datetime.now(UTC)).total_seconds()
    assert 0 < remaining <= 900
    assert post.fields["key"] == key
    assert post.fields["Content-Type"] == "image/jpeg"
    # path-style on the emulator's loopback endpoint, so a browser can reach it
    assert post.url == "http://127.0.0.1:4566/imgdrop-test-bucket"
    assert post.as_dict()["method"] == "POST"
