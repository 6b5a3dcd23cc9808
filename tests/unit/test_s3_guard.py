"""The local stack's S3 guard: presigned POST forms and query-signed URLs checked as S3 does.

moto accepts any presigned request; the guard (a WSGI middleware in front of moto) refuses what
S3 refuses. No network and no moto here: real boto3 presignatures (made offline) drive the guard
around a fake inner app that records what reached it.
"""

from __future__ import annotations

import base64
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3
import pytest
from botocore.config import Config
from werkzeug.test import EnvironBuilder

from imgdrop_local.s3_guard import CorsRule, PresignedRequestGuard

ENDPOINT = "http://127.0.0.1:4566"
REGION = "us-east-1"
BUCKET = "imgdrop-dev-123456789012-us-east-1"
KEY = "uploads/acme/01jabcdefghjkmnpqrstvwxyz0"
AKID = "AKIDLOCALSTACK"
SECRET = "local-stack-secret/+="  # noqa: S105 - a test's own dummy secret
MAX_BYTES = 100
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 40


def s3_client(*, signature_version: str = "s3v4", access_key: str = AKID, secret: str = SECRET,
              token: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"}),
    )


def presigned_post(*, key: str = KEY, content_type: str = "image/png", max_bytes: int = MAX_BYTES,
                   expires_in: int = 900, **client: str) -> dict[str, Any]:
    """As imgdrop.store.storage.ObjectStore.presigned_post signs it."""
    return s3_client(**client).generate_presigned_post(
        Bucket=BUCKET,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )


class Inner:
    """The fake moto: records each request that reached it and the body it could read."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        self.calls.append({"environ": environ, "body": body})
        start_response("204 No Content", [("X-Inner", "moto")])
        return [b""]


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes):
        self.status_code = int(status.split()[0])
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def error(self) -> dict[str, str]:
        root = ET.fromstring(self.body)
        assert root.tag == "Error", self.body
        return {child.tag: child.text or "" for child in root}


def call(app: Any, environ: dict[str, Any]) -> Answer:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.update(status=status, headers=headers)
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return Answer(seen["status"], seen["headers"], body)


@pytest.fixture
def inner() -> Inner:
    return Inner()


@pytest.fixture
def clock() -> dict[str, datetime]:
    """The guard's clock, starting when the test does (a test moves it on to expire a signature)."""
    return {"now": datetime.now(UTC)}


@pytest.fixture
def guard(inner: Inner, clock: dict[str, datetime]) -> PresignedRequestGuard:
    rules = {BUCKET: [CorsRule(allowed_origins=("http://localhost:8080",), allowed_methods=("POST", "GET"),
                               allowed_headers=("*",), exposed_headers=("ETag", "Location"), max_age=3000)]}
    return PresignedRequestGuard(inner, {AKID: SECRET}.get, region=REGION,
                                 cors_rules=lambda bucket: rules.get(bucket, []), now=lambda: clock["now"])


def multipart(parts: list[tuple[str, str | bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body in exactly this order; the part named `file` carries a filename."""
    boundary = "imgdrop-test-boundary"
    body = bytearray()
    for name, value in parts:
        body += f"--{boundary}\r\n".encode()
        if name == "file":
            body += b'Content-Disposition: form-data; name="file"; filename="image.png"\r\n'
            body += b"Content-Type: image/png\r\n\r\n"
        else:
            body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += (value if isinstance(value, bytes) else value.encode()) + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def form_environ(url: str, fields: dict[str, str], file: bytes | None = PNG, *, file_first: bool = False,
                 after_file: dict[str, str] | None = None, headers: dict[str, str] | None = None,
                 **overrides: str) -> dict[str, Any]:
    """A browser's multipart POST of `fields` (with `overrides`) and then the file, last."""
    parts: list[tuple[str, str | bytes]] = list({**fields, **overrides}.items())
    if file is not None:
        parts.insert(0 if file_first else len(parts), ("file", file))
    parts += list((after_file or {}).items())
    body, content_type = multipart(parts)
    url_parts = urlsplit(url)
    return EnvironBuilder(path=url_parts.path, base_url=f"{url_parts.scheme}://{url_parts.netloc}", method="POST",
                          input_stream=io.BytesIO(body), content_length=len(body), content_type=content_type,
                          headers=headers or {}).get_environ()


def url_environ(url: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> dict[str, Any]:
    parts = urlsplit(url)
    return EnvironBuilder(path=parts.path, query_string=parts.query, base_url=f"{parts.scheme}://{parts.netloc}",
                          method=method, headers=headers or {}).get_environ()


def assert_refused(answer: Answer, inner: Inner, status: int, code: str) -> dict[str, str]:
    assert answer.status_code == status, answer.body
    assert answer.headers["content-type"] == "application/xml"
    error = answer.error
    assert error["Code"] == code, error
    assert inner.calls == [], "moto must not see a refused request"
    return error


# ---------------------------------------------------------------- presigned POST forms


def test_a_valid_form_reaches_moto_with_its_body_intact(guard, inner):
    post = presigned_post()
    environ = form_environ(post["url"], post["fields"])
    sent = environ["wsgi.input"].getvalue()
    length = environ["CONTENT_LENGTH"]

    answer = call(guard, environ)

    assert answer.status_code == 204 and answer.headers["x-inner"] == "moto"
    (seen,) = inner.calls
    assert seen["body"] == sent
    assert seen["environ"]["CONTENT_LENGTH"] == length


def test_a_form_exactly_at_either_end_of_the_size_range_passes(guard, inner):
    post = presigned_post()
    assert call(guard, form_environ(post["url"], post["fields"], b"x" * MAX_BYTES)).status_code == 204
    assert call(guard, form_environ(post["url"], post["fields"], b"x")).status_code == 204
    assert len(inner.calls) == 2


def test_an_expired_form_is_403_access_denied(guard, inner, clock):
    post = presigned_post(expires_in=60)
    clock["now"] += timedelta(seconds=120)
    error = assert_refused(call(guard, form_environ(post["url"], post["fields"])), inner, 403, "AccessDenied")
    assert error["Message"] == "Invalid according to Policy: Policy expired."


def test_a_form_for_another_key_is_403_access_denied(guard, inner):
    post = presigned_post()
    other = "uploads/acme/someone-elses-image"
    error = assert_refused(call(guard, form_environ(post["url"], post["fields"], key=other)), inner, 403,
                           "AccessDenied")
    assert error["Message"] == f'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "{KEY}"]'


def test_a_form_posted_to_another_bucket_is_403_access_denied(guard, inner):
    post = presigned_post()
    answer = call(guard, form_environ(f"{ENDPOINT}/another-bucket", post["fields"]))
    error = assert_refused(answer, inner, 403, "AccessDenied")
    assert '"$bucket"' in error["Message"]


def test_one_byte_over_the_content_length_range_is_400_entity_too_large(guard, inner):
    post = presigned_post()
    answer = call(guard, form_environ(post["url"], post["fields"], b"x" * (MAX_BYTES + 1)))
    error = assert_refused(answer, inner, 400, "EntityTooLarge")
    assert error["Message"] == "Your proposed upload exceeds the maximum allowed size"
    assert (error["ProposedSize"], error["MaxSizeAllowed"]) == (str(MAX_BYTES + 1), str(MAX_BYTES))


def test_an_empty_file_is_400_entity_too_small(guard, inner):
    post = presigned_post()
    error = assert_refused(call(guard, form_environ(post["url"], post["fields"], b"")), inner, 400,
                           "EntityTooSmall")
    assert (error["ProposedSize"], error["MinSizeAllowed"]) == ("0", "1")


def test_a_tampered_form_signature_is_403_signature_does_not_match(guard, inner):
    post = presigned_post()
    signature = post["fields"]["x-amz-signature"]
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    answer = call(guard, form_environ(post["url"], post["fields"], **{"x-amz-signature": tampered}))
    error = assert_refused(answer, inner, 403, "SignatureDoesNotMatch")
    assert error["SignatureProvided"] == tampered
    assert error["StringToSign"] == post["fields"]["policy"]


def test_a_rewritten_policy_with_the_old_signature_is_403(guard, inner):
    post = presigned_post()
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    policy["conditions"] = [["content-length-range", 1, 10**9] if isinstance(c, list) else c
                            for c in policy["conditions"]]
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    answer = call(guard, form_environ(post["url"], post["fields"], b"x" * (MAX_BYTES + 1), policy=forged))
    assert_refused(answer, inner, 403, "SignatureDoesNotMatch")


def test_a_form_signed_with_another_secret_is_403(guard, inner):
    post = presigned_post(secret="not-the-stack-secret")
    assert_refused(call(guard, form_environ(post["url"], post["fields"])), inner, 403, "SignatureDoesNotMatch")


def test_role_session_credentials_with_a_token_pass(guard, inner):
    """A function's role session (what Lambda hands it) signs with a session token too."""
    post = presigned_post(token="session-token/+=")
    assert post["fields"]["x-amz-security-token"] == "session-token/+="
    assert call(guard, form_environ(post["url"], post["fields"])).status_code == 204
    url = presigned_url(token="session-token/+=")
    assert "X-Amz-Security-Token=" in url
    assert call(guard, url_environ(url)).status_code == 204
    assert len(inner.calls) == 2


def test_a_form_of_an_unknown_access_key_is_403_invalid_access_key_id(guard, inner):
    post = presigned_post(access_key="AKIDUNKNOWN")
    error = assert_refused(call(guard, form_environ(post["url"], post["fields"])), inner, 403,
                           "InvalidAccessKeyId")
    assert error["AWSAccessKeyId"] == "AKIDUNKNOWN"


def test_a_wrong_content_type_is_403_access_denied(guard, inner):
    post = presigned_post(content_type="image/png")
    answer = call(guard, form_environ(post["url"], post["fields"], **{"Content-Type": "text/html"}))
    error = assert_refused(answer, inner, 403, "AccessDenied")
    assert error["Message"] == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/png"]'
    )


def test_a_field_the_policy_does_not_name_is_403_extra_input_fields(guard, inner):
    post = presigned_post()
    answer = call(guard, form_environ(post["url"], post["fields"], acl="public-read"))
    error = assert_refused(answer, inner, 403, "AccessDenied")
    assert error["Message"] == "Invalid according to Policy: Extra input fields: acl"


def test_x_ignore_fields_and_fields_after_the_file_are_not_checked(guard, inner):
    post = presigned_post()
    environ = form_environ(post["url"], {**post["fields"], "x-ignore-note": "hi"})
    assert call(guard, environ).status_code == 204
    # S3 ignores every field after the file: neither another key nor an unnamed field counts there
    environ = form_environ(post["url"], post["fields"], after_file={"key": "uploads/elsewhere", "submit": "Upload"})
    assert call(guard, environ).status_code == 204
    assert len(inner.calls) == 2


def test_a_form_without_key_or_file_is_400_invalid_argument(guard, inner):
    post = presigned_post()
    fields = {k: v for k, v in post["fields"].items() if k != "key"}
    error = assert_refused(call(guard, form_environ(post["url"], fields)), inner, 400, "InvalidArgument")
    assert error["ArgumentName"] == "key"

    environ = form_environ(post["url"], post["fields"], None)
    error = assert_refused(call(guard, environ), inner, 400, "InvalidArgument")
    assert error["ArgumentName"] == "file"


def test_a_form_with_the_file_before_the_key_is_400_invalid_argument(guard, inner):
    post = presigned_post()
    answer = call(guard, form_environ(post["url"], post["fields"], file_first=True))
    error = assert_refused(answer, inner, 400, "InvalidArgument")
    assert error["ArgumentName"] == "key"


def test_an_unsigned_form_is_403_access_denied(guard, inner):
    # the bucket blocks public access: a form without a policy and signature is anonymous
    answer = call(guard, form_environ(f"{ENDPOINT}/{BUCKET}", {"key": KEY, "Content-Type": "image/png"}))
    assert_refused(answer, inner, 403, "AccessDenied")


def test_a_form_missing_one_signature_field_is_400_invalid_argument(guard, inner):
    post = presigned_post()
    fields = {k: v for k, v in post["fields"].items() if k != "x-amz-date"}
    error = assert_refused(call(guard, form_environ(post["url"], fields)), inner, 400, "InvalidArgument")
    assert error["ArgumentName"] == "X-Amz-Date"


def test_a_sigv2_form_is_400_invalid_request(guard, inner):
    post = s3_client(signature_version="s3").generate_presigned_post(Bucket=BUCKET, Key=KEY)
    assert "AWSAccessKeyId" in post["fields"]
    error = assert_refused(call(guard, form_environ(post["url"], post["fields"])), inner, 400, "InvalidRequest")
    assert "AWS4-HMAC-SHA256" in error["Message"]


def test_refusals_carry_the_buckets_cors_headers_for_an_allowed_origin(guard, inner):
    post = presigned_post()
    answer = call(guard, form_environ(post["url"], post["fields"], b"x" * (MAX_BYTES + 1),
                                      headers={"Origin": "http://localhost:8080"}))
    assert answer.status_code == 400
    assert answer.headers["access-control-allow-origin"] == "http://localhost:8080"
    assert answer.headers["access-control-expose-headers"] == "ETag, Location"
    assert "POST" in answer.headers["access-control-allow-methods"]

    other = call(guard, form_environ(post["url"], post["fields"], b"x" * (MAX_BYTES + 1),
                                     headers={"Origin": "https://evil.example"}))
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_a_form_without_content_length_is_411(guard, inner):
    post = presigned_post()
    environ = form_environ(post["url"], post["fields"])
    del environ["CONTENT_LENGTH"]
    assert_refused(call(guard, environ), inner, 411, "MissingContentLength")


# ---------------------------------------------------------------- query-signed URLs


def presigned_url(method: str = "get_object", *, key: str = KEY, expires_in: int = 900, **params: Any) -> str:
    client = s3_client(**{k: params.pop(k) for k in ("signature_version", "access_key", "secret", "token")
                          if k in params})
    return client.generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": key, **params},
                                         ExpiresIn=expires_in)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    query.update(changes)
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


def test_a_valid_query_signed_get_passes_untouched(guard, inner):
    url = presigned_url()
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    answer = call(guard, url_environ(url))
    assert answer.status_code == 204
    (seen,) = inner.calls
    assert seen["environ"]["QUERY_STRING"] == urlsplit(url).query


@pytest.mark.parametrize("key", [
    "images/acme/01j/thumb.webp",
    "images/acme/a key with spaces (1)+[x]~!.jpg",
    "images/acme/ünïcødé/日本.png",
    "images/acme/a%2Fb=c&d;e.png",
])
def test_query_signed_urls_of_awkward_keys_pass(guard, inner, key):
    answer = call(guard, url_environ(presigned_url(key=key)))
    assert answer.status_code == 204, answer.body


def test_a_query_signed_get_with_extra_operation_params_passes(guard, inner):
    url = presigned_url(ResponseContentDisposition='attachment; filename="a b.png"', ResponseCacheControl="no-cache")
    assert call(guard, url_environ(url)).status_code == 204


def test_an_expired_query_url_is_403_request_has_expired(guard, inner, clock):
    url = presigned_url(expires_in=60)
    clock["now"] += timedelta(seconds=120)
    error = assert_refused(call(guard, url_environ(url)), inner, 403, "AccessDenied")
    assert error["Message"] == "Request has expired"
    assert error["X-Amz-Expires"] == "60"


def test_a_tampered_query_signature_is_403_signature_does_not_match(guard, inner):
    url = presigned_url()
    signature = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["X-Amz-Signature"]
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    error = assert_refused(call(guard, url_environ(with_query(url, **{"X-Amz-Signature": tampered}))), inner, 403,
                           "SignatureDoesNotMatch")
    assert error["SignatureProvided"] == tampered
    assert error["CanonicalRequest"].startswith("GET\n/" + BUCKET + "/")


def test_a_query_url_whose_expiry_was_stretched_is_403(guard, inner):
    url = presigned_url(expires_in=60)
    assert_refused(call(guard, url_environ(with_query(url, **{"X-Amz-Expires": "604800"}))), inner, 403,
                   "SignatureDoesNotMatch")


def test_a_query_url_used_for_another_key_or_method_is_403(guard, inner):
    url = presigned_url()
    other = url.replace(KEY, KEY + "x")
    assert_refused(call(guard, url_environ(other)), inner, 403, "SignatureDoesNotMatch")
    assert_refused(call(guard, url_environ(url, method="DELETE")), inner, 403, "SignatureDoesNotMatch")


def test_a_signed_header_missing_or_different_is_403(guard, inner):
    url = presigned_url("put_object", ContentType="image/png")
    signed = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["X-Amz-SignedHeaders"]
    assert "content-type" in signed
    assert call(guard, url_environ(url, method="PUT", headers={"Content-Type": "image/png"})).status_code == 204
    inner.calls.clear()
    assert_refused(call(guard, url_environ(url, method="PUT")), inner, 403, "SignatureDoesNotMatch")
    assert_refused(call(guard, url_environ(url, method="PUT", headers={"Content-Type": "text/html"})), inner, 403,
                   "SignatureDoesNotMatch")


def test_an_unsigned_x_amz_header_is_403_headers_not_signed(guard, inner):
    url = presigned_url("put_object")
    answer = call(guard, url_environ(url, method="PUT", headers={"x-amz-acl": "public-read"}))
    error = assert_refused(answer, inner, 403, "AccessDenied")
    assert error["HeadersNotSigned"] == "x-amz-acl"


def test_a_query_url_of_an_unknown_access_key_is_403_invalid_access_key_id(guard, inner):
    assert_refused(call(guard, url_environ(presigned_url(access_key="AKIDUNKNOWN"))), inner, 403,
                   "InvalidAccessKeyId")


def test_a_query_url_with_missing_auth_params_is_400(guard, inner):
    url = presigned_url()
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if not p.startswith("X-Amz-Date="))
    answer = call(guard, url_environ(parts._replace(query=query).geturl()))
    assert_refused(answer, inner, 400, "AuthorizationQueryParametersError")


def test_a_query_url_for_another_region_is_400(guard, inner):
    client = boto3.client("s3", endpoint_url=ENDPOINT, region_name="eu-west-1", aws_access_key_id=AKID,
                          aws_secret_access_key=SECRET, aws_session_token=None,
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY})
    error = assert_refused(call(guard, url_environ(url)), inner, 400, "AuthorizationQueryParametersError")
    assert "eu-west-1" in error["Message"]


def test_a_sigv2_query_url_is_400_invalid_request(guard, inner):
    url = presigned_url(signature_version="s3")
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    error = assert_refused(call(guard, url_environ(url)), inner, 400, "InvalidRequest")
    assert error["Message"] == (
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
    )


# ---------------------------------------------------------------- everything else passes


def test_sdk_calls_signed_in_the_authorization_header_pass(guard, inner):
    environ = url_environ(f"{ENDPOINT}/{BUCKET}/{KEY}", headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/20250101/{REGION}/s3/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=deadbeef",
        "X-Amz-Date": "20250101T000000Z"})
    assert call(guard, environ).status_code == 204
    assert len(inner.calls) == 1


def test_dynamodb_and_sqs_requests_pass_untouched(guard, inner):
    auth = f"AWS4-HMAC-SHA256 Credential={AKID}/20250101/{REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
    dynamodb = EnvironBuilder(path="/", base_url=ENDPOINT, method="POST", data=b'{"TableName": "t"}',
                              content_type="application/x-amz-json-1.0",
                              headers={"X-Amz-Target": "DynamoDB_20120810.GetItem", "Authorization": auth}).get_environ()
    body = urlencode({"Action": "SendMessage", "QueueUrl": "http://127.0.0.1:4566/q", "MessageBody": "m"})
    sqs = EnvironBuilder(path="/", base_url=ENDPOINT, method="POST", data=body,
                         content_type="application/x-www-form-urlencoded").get_environ()
    for environ in (dynamodb, sqs):
        sent = environ["wsgi.input"].getvalue()
        assert call(guard, environ).status_code == 204
        assert inner.calls[-1]["body"] == sent
    assert len(inner.calls) == 2


def test_unsigned_requests_and_moto_api_pass(guard, inner):
    for environ in (url_environ(f"{ENDPOINT}/{BUCKET}?cors", method="OPTIONS",
                                headers={"Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST"}),
                    url_environ(f"{ENDPOINT}/moto-api/reset", method="POST"),
                    url_environ(f"{ENDPOINT}/{BUCKET}/{KEY}")):
        assert call(guard, environ).status_code == 204
    assert len(inner.calls) == 3
