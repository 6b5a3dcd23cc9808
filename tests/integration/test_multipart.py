"""Large and resumable uploads through the api and process functions, against moto in-process.

`POST /uploads` answers a large item with an S3 multipart upload; `POST /uploads/{id}/sign`
presigns each S3 request of it. The tests then speak S3's multipart protocol with those URLs
(`requests`, which moto intercepts), as Uppy 6, the web page and the CLI do, and the process
function renders the completed object. IAM is enforced: each presigned request carries the
api function's role, as deployed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import requests
import yaml
from aws_env import aws_environment
from PIL import Image
from test_iam import template_without

import imgdrop.lifecycle.sweep
import imgdrop.pipeline
from imgdrop.ids import utc_now
from imgdrop.settings import get_settings
from imgdrop_local.dispatcher import notify_multipart_uploads_as_s3
from imgdrop_local.template import load

from lambdas import Functions, china_jpeg, sample, sample_photo, upload

MIB = 1024 * 1024
SIGN_ROUTE = "/v1/uploads/{id}/sign"


@pytest.fixture
def functions(aws):
    return Functions(aws)


@pytest.fixture(scope="module")
def noise_png() -> bytes:
    """A 1800x1200 PNG of noise: ~6.5 MB, so it takes two parts (S3's parts are 5 MiB but the last)."""
    pixels = np.random.default_rng(13).integers(0, 256, (1200, 1800, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=1)
    assert out.tell() > 5 * MIB
    return out.getvalue()


def presign(functions: Functions, size: int, tenant: str = "acme", **fields) -> dict:
    item = {"filename": "big.png", "content_type": "image/png", "size": size, **fields}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]}, tenant=tenant)
    assert status == 200, body
    return body["items"][0]


def sign(functions: Functions, image_id: str, body: object, **kwargs) -> tuple[int, dict]:
    return functions.api("POST", f"/v1/uploads/{image_id}/sign", SIGN_ROUTE, body,
                         path_params={"id": image_id}, **kwargs)


def signed(functions: Functions, image_id: str, **body) -> dict:
    status, answer = sign(functions, image_id, body)
    assert status == 200, answer
    return answer


def s3(method: str, answer: dict, data: bytes | None = None) -> requests.Response:
    """The client's own S3 request: the signed method, URL and headers (and a body)."""
    return requests.request(method, answer["url"], headers=answer["headers"], data=data, timeout=30)


def create(functions: Functions, image_id: str) -> str:
    response = s3("POST", signed(functions, image_id, method="POST"))
    assert response.status_code == 200, response.text
    return re.search(r"<UploadId>([^<]+)</UploadId>", response.text).group(1)


def put_part(functions: Functions, image_id: str, upload_id: str, number: int, data: bytes) -> str:
    response = s3("PUT", signed(functions, image_id, method="PUT", upload_id=upload_id, part_number=number), data)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def list_parts(functions: Functions, image_id: str, upload_id: str) -> dict[int, str]:
    response = s3("GET", signed(functions, image_id, method="GET", upload_id=upload_id))
    assert response.status_code == 200, response.text
    parts = re.findall(r"<Part>.*?<PartNumber>(\d+)</PartNumber>.*?<ETag>([^<]+)</ETag>.*?</Part>",
                       response.text, re.S)
    return {int(n): etag.replace("&quot;", '"') for n, etag in parts}


def complete(functions: Functions, image_id: str, upload_id: str, etags: dict[int, str]) -> requests.Response:
    body = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in sorted(etags.items())
    ) + "</CompleteMultipartUpload>"
    return s3("POST", signed(functions, image_id, method="POST", upload_id=upload_id), body.encode())


def in_progress(aws, key: str) -> list[str]:
    uploads = aws.s3.list_multipart_uploads(Bucket=aws.bucket_name, Prefix=key).get("Uploads", [])
    return [u["UploadId"] for u in uploads if u["Key"] == key]


# ---------------------------------------------------------------- the answer of POST /uploads


def test_a_large_item_or_one_that_asks_gets_a_multipart_upload(functions, aws):
    large = presign(functions, 150 * MIB)
    upload = large["upload"]
    assert upload["method"] == "multipart" and "fields" not in upload and "url" not in upload
    assert upload["key"] == f"uploads/acme/{large['id']}"
    assert (upload["part_size"], upload["part_count"]) == (8 * MIB, 19)
    assert upload["sign_url"].endswith(f"/v1/uploads/{large['id']}/sign")
    # completed by a day after: the window a multipart upload has (a POST form: 15 minutes)
    window = get_settings().multipart_upload_window_seconds
    assert upload["expires_at"] > (utc_now() + timedelta(seconds=window - 60)).isoformat()

    asked = presign(functions, 1234, multipart=True)["upload"]
    assert (asked["method"], asked["part_size"], asked["part_count"]) == ("multipart", 8 * MIB, 1)
    assert presign(functions, 100 * MIB)["upload"]["method"] == "POST"  # at the threshold: a form
    assert presign(functions, 1234, multipart=False)["upload"]["method"] == "POST"

    largest = presign(functions, 2 * 1024 * MIB)["upload"]  # MAX_UPLOAD_BYTES: 2 GiB
    assert (largest["part_size"], largest["part_count"]) == (8 * MIB, 256)
    too_large = presign(functions, 2 * 1024 * MIB + 1)
    assert too_large["error"]["code"] == "file_too_large"
    invalid = presign(functions, 1234, multipart="yes")
    assert (invalid["error"]["code"], invalid["error"]["source"]["pointer"]) == (
        "multipart_invalid", "/items/0/multipart")


# ---------------------------------------------------------------- signing


def test_each_s3_request_is_signed_for_the_images_own_key(functions, aws):
    image_id = presign(functions, 150 * MIB)["id"]
    key = f"uploads/acme/{image_id}"
    cases = {
        "create": ({"method": "POST", "key": "uploads/acme/someone-else"}, {"uploads": [""]}),
        "part": ({"method": "PUT", "upload_id": "abc.DEF-1", "part_number": 10000},
                 {"uploadId": ["abc.DEF-1"], "partNumber": ["10000"]}),
        "list": ({"method": "GET", "upload_id": "abc"}, {"uploadId": ["abc"]}),
        "complete": ({"method": "POST", "upload_id": "abc"}, {"uploadId": ["abc"]}),
        "abort": ({"method": "DELETE", "upload_id": "abc"}, {"uploadId": ["abc"]}),
    }
    for name, (body, expected) in cases.items():
        answer = signed(functions, image_id, **body)
        assert answer["key"] == key, name  # Uppy's own `key` is ignored: the image's key only
        url = urlsplit(answer["url"])
        assert url.path == f"/{key}" and url.netloc == f"{aws.bucket_name}.s3.us-east-1.amazonaws.com", name
        query = parse_qs(url.query, keep_blank_values=True)
        assert {k: v for k, v in query.items() if not k.startswith("X-Amz-")} == expected, name
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"], name
        assert int(query["X-Amz-Expires"][0]) <= get_settings().upload_expiry_seconds
        assert "X-Amz-Security-Token" in query  # the api function's role session
        if name == "create":  # the declared type is bound: S3 refuses another
            assert answer["headers"] == {"Content-Type": "image/png"}
            assert query["X-Amz-SignedHeaders"] == ["content-type;host"]
        else:
            assert answer["headers"] == {}


@pytest.mark.parametrize(("body", "errors"), [
    ({}, [("method_blank", "/method")]),
    ({"method": "PATCH"}, [("method_invalid", "/method")]),
    ({"method": "HEAD", "upload_id": "abc"}, [("method_invalid", "/method")]),
    ({"method": "PUT", "upload_id": "abc"}, [("part_number_blank", "/part_number")]),
    ({"method": "PUT", "part_number": 1}, [("upload_id_blank", "/upload_id")]),
    ({"method": "PUT", "upload_id": "abc", "part_number": 0}, [("part_number_invalid", "/part_number")]),
    ({"method": "PUT", "upload_id": "abc", "part_number": 10001}, [("part_number_invalid", "/part_number")]),
    ({"method": "PUT", "upload_id": "abc", "part_number": "3"}, [("part_number_invalid", "/part_number")]),
    ({"method": "PUT", "upload_id": "abc", "part_number": True}, [("part_number_invalid", "/part_number")]),
    ({"method": "GET"}, [("upload_id_blank", "/upload_id")]),
    ({"method": "DELETE", "upload_id": "a b&c=d"}, [("upload_id_invalid", "/upload_id")]),
    ({"method": "POST", "part_number": 2}, [("part_number_invalid", "/part_number")]),
    ({"method": 7, "upload_id": ["x"], "part_number": -1},
     [("method_invalid", "/method"), ("upload_id_invalid", "/upload_id"), ("part_number_invalid", "/part_number")]),
    ([], [("body_invalid", "")]),
])
def test_a_request_for_no_s3_request_answers_400_with_stable_codes(functions, body, errors):
    image_id = presign(functions, 150 * MIB)["id"]
    status, answer = sign(functions, image_id, body)
    assert status == 400, answer
    assert [(e["code"], e["source"]["pointer"]) for e in answer["errors"]] == errors


def test_another_tenants_or_an_unknown_or_an_unwritable_upload_answers_404(functions, aws):
    image_id = presign(functions, 150 * MIB)["id"]
    for tenant, path_id in (("globex", image_id), ("acme", "01unknownimage0000000000000")):
        status, answer = sign(functions, path_id, {"method": "POST"}, tenant=tenant)
        assert (status, answer["errors"][0]["code"]) == (404, "not_found")
    # in an album the token may not upload to (even one it may read): as a read, 404
    _, album = functions.api("POST", "/v1/albums", "/v1/albums", {"name": "Scans"})
    in_album = presign(functions, 150 * MIB, album_id=album["id"])["id"]
    for rights in ([], ["read"]):
        status, answer = sign(functions, in_album, {"method": "POST"}, albums={album["id"]: rights})
        assert (status, answer["errors"][0]["code"]) == (404, "not_found"), rights
    assert sign(functions, in_album, {"method": "POST"}, albums={album["id"]: ["upload"]})[0] == 200
    # and signing takes images:write
    status, answer = sign(functions, image_id, {"method": "POST"}, scope="images:read")
    assert (status, answer["errors"][0]["code"]) == (403, "insufficient_scope")


def test_an_image_no_longer_pending_answers_409(functions, aws):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    status, answer = sign(functions, image_id, {"method": "PUT", "upload_id": "abc", "part_number": 1})
    assert (status, answer["errors"][0]["code"]) == (409, "upload_closed")


def test_the_document_describes_the_route(functions):
    status, document = functions.api("GET", "/v1/openapi.json", "/v1/openapi.json")
    assert status == 200
    operation = document["paths"]["/v1/uploads/{image_id}/sign"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/SignRequest")
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "409", "503"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SignedRequest")
    item = document["components"]["schemas"]["UploadItem"]["properties"]
    assert "multipart" in item


# ---------------------------------------------------------------- uploading with the signed requests


def test_a_multipart_upload_completes_once_announced_and_is_processed_to_ready(functions, aws, noise_png):
    notify_multipart_uploads_as_s3()
    queue = aws.sqs.create_queue(QueueName="multipart-events")["QueueUrl"]
    aws.s3.put_bucket_notification_configuration(Bucket=aws.bucket_name, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:123456789012:multipart-events",
                                 "Events": ["s3:ObjectCreated:*"]}]})
    answer = presign(functions, len(noise_png))  # under the threshold, so ask for it
    assert answer["upload"]["method"] == "POST"
    answer = presign(functions, len(noise_png), multipart=True)
    image_id, key = answer["id"], answer["upload"]["key"]

    upload_id = create(functions, image_id)
    first = put_part(functions, image_id, upload_id, 1, noise_png[: 5 * MIB])
    # interrupted here: the client lists what S3 has, and sends only what is missing
    assert list_parts(functions, image_id, upload_id) == {1: first}
    second = put_part(functions, image_id, upload_id, 2, noise_png[5 * MIB:])
    response = complete(functions, image_id, upload_id, list_parts(functions, image_id, upload_id))
    assert response.status_code == 200, response.text
    assert first and second

    head = aws.s3.head_object(Bucket=aws.bucket_name, Key=key)
    assert (head["ContentLength"], head["ContentType"]) == (len(noise_png), "image/png")
    assert head["ETag"].endswith('-2"')
    messages = aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    events = [r["eventName"] for m in messages for r in json.loads(m["Body"]).get("Records", [])]
    assert events == ["ObjectCreated:CompleteMultipartUpload"]  # once, as S3 announces it

    functions.process_and_finalize(key, len(noise_png))
    status, image = functions.image(image_id)
    assert image["status"] == "ready", image
    assert (image["width"], image["height"], image["format"], image["bytes"]) == (1800, 1200, "png", len(noise_png))
    assert image["original"]["bytes"] == len(noise_png)
    assert in_progress(aws, key) == []
    # the image arrived: no more requests are signed for it
    status, answer = sign(functions, image_id, {"method": "POST"})
    assert (status, answer["errors"][0]["code"]) == (409, "upload_closed")


def test_a_wrong_etag_at_completion_is_refused_by_s3(functions, aws, noise_png):
    image_id = presign(functions, len(noise_png), multipart=True)["id"]
    upload_id = create(functions, image_id)
    etag = put_part(functions, image_id, upload_id, 1, noise_png)
    response = complete(functions, image_id, upload_id, {1: '"0123456789abcdef0123456789abcdef"'})
    assert response.status_code == 400 and "InvalidPart" in response.text
    assert complete(functions, image_id, upload_id, {1: etag}).status_code == 200


def test_a_bigger_object_than_declared_ends_size_mismatch(functions, aws, noise_png):
    declared = len(noise_png) - 1000
    answer = presign(functions, declared, multipart=True)
    image_id = answer["id"]
    upload_id = create(functions, image_id)
    etag = put_part(functions, image_id, upload_id, 1, noise_png)
    assert complete(functions, image_id, upload_id, {1: etag}).status_code == 200
    functions.process_and_finalize(answer["upload"]["key"], declared)
    image = functions.image(image_id)[1]
    assert (image["status"], image["errors"][0]["code"]) == ("failed", "size_mismatch")


# ---------------------------------------------------------------- abort and expiry


def sweep_at(functions, monkeypatch, seconds: float) -> dict:
    moment = utc_now() + timedelta(seconds=seconds)
    monkeypatch.setattr(imgdrop.lifecycle.sweep, "utc_now", lambda: moment)
    return functions.invoke("SweepFunction", sample("sweep_schedule.json"))


def test_an_aborted_upload_expires_and_keeps_no_parts(functions, aws, noise_png, monkeypatch):
    answer = presign(functions, len(noise_png), multipart=True)
    image_id, key = answer["id"], answer["upload"]["key"]
    upload_id = create(functions, image_id)
    put_part(functions, image_id, upload_id, 1, noise_png[: 5 * MIB])
    response = s3("DELETE", signed(functions, image_id, method="DELETE", upload_id=upload_id))
    assert response.status_code == 204, response.text
    assert in_progress(aws, key) == []

    short_window = get_settings().upload_expiry_seconds
    assert sweep_at(functions, monkeypatch, short_window - 60)["expired"] == []  # not looked at yet
    assert sweep_at(functions, monkeypatch, short_window + 60)["expired"] == [image_id]
    image = functions.image(image_id)[1]
    assert (image["status"], image["errors"][0]["code"]) == ("expired", "upload_expired")


def test_an_upload_in_progress_waits_until_its_deadline_then_is_aborted_and_expires(
        functions, aws, noise_png, monkeypatch):
    answer = presign(functions, len(noise_png), multipart=True)
    image_id, key = answer["id"], answer["upload"]["key"]
    upload_id = create(functions, image_id)
    put_part(functions, image_id, upload_id, 1, noise_png[: 5 * MIB])

    window = get_settings().multipart_upload_window_seconds
    for seconds in (get_settings().upload_expiry_seconds + 60, window - 120):  # still uploading
        assert sweep_at(functions, monkeypatch, seconds)["expired"] == []
        assert functions.image(image_id)[1]["status"] == "pending"
        assert in_progress(aws, key) == [upload_id]
    assert sweep_at(functions, monkeypatch, window + 60)["expired"] == [image_id]
    assert in_progress(aws, key) == []  # aborted: its parts are gone
    assert functions.image(image_id)[1]["status"] == "expired"
    status, answer = sign(functions, image_id, {"method": "PUT", "upload_id": upload_id, "part_number": 2})
    assert (status, answer["errors"][0]["code"]) == (409, "upload_closed")


def test_past_its_window_nothing_more_is_signed(functions, aws, monkeypatch):
    image_id = presign(functions, 150 * MIB)["id"]
    later = utc_now() + timedelta(seconds=get_settings().multipart_upload_window_seconds + 1)
    import imgdrop.uploads.multipart

    monkeypatch.setattr(imgdrop.uploads.multipart, "utc_now", lambda: later)
    status, answer = sign(functions, image_id, {"method": "POST"})
    assert (status, answer["errors"][0]["code"]) == (409, "upload_expired")


# ---------------------------------------------------------------- IAM: what is signed is allowed, and only that


@pytest.mark.parametrize(("function", "action"), [
    ("ApiFunction", "s3:ListMultipartUploadParts"),
    ("ApiFunction", "s3:AbortMultipartUpload"),
])
def test_the_api_role_may_list_and_abort_only_with_their_permissions(function, action, aws_without, noise_png):
    aws = aws_without(function, action)
    functions = Functions(aws)
    image_id = presign(functions, len(noise_png), multipart=True)["id"]
    upload_id = create(functions, image_id)  # s3:PutObject
    method = "GET" if action == "s3:ListMultipartUploadParts" else "DELETE"
    response = s3(method, signed(functions, image_id, method=method, upload_id=upload_id))
    assert response.status_code == 403 and "AccessDenied" in response.text


@pytest.mark.parametrize("action", ["s3:ListBucketMultipartUploads", "s3:AbortMultipartUpload"])
def test_the_sweep_lists_and_aborts_uploads_only_with_its_permissions(action, aws_without, noise_png, monkeypatch):
    aws = aws_without("SweepFunction", action)
    functions = Functions(aws)
    image_id = presign(functions, len(noise_png), multipart=True)["id"]
    create(functions, image_id)
    with pytest.raises(Exception, match="multipart uploads? could not be (listed|aborted)"):
        sweep_at(functions, monkeypatch, get_settings().multipart_upload_window_seconds + 60)
    assert functions.image(image_id)[1]["status"] == "pending"  # the next run tries again


@pytest.fixture
def aws_without(tmp_path, monkeypatch):
    """aws_without(function, action): the `aws` environment from a copy of template.yaml in which
    the function's role lacks that action (a statement left with no action goes: IAM refuses it)."""

    def without(function: str, action: str):
        template_without(tmp_path, function, action)
        path = tmp_path / "template.yaml"
        template = yaml.safe_load(path.read_text())
        for policy in template["Resources"][function]["Properties"]["Policies"]:
            if isinstance(policy, dict) and "Statement" in policy:
                policy["Statement"] = [st for st in policy["Statement"] if st["Action"]]
        path.write_text(yaml.safe_dump(template, sort_keys=False))
        return load(path)

    with ExitStack() as stack:
        yield lambda function, action: stack.enter_context(aws_environment(without(function, action), monkeypatch))


# ---------------------------------------------------------------- processing from the function's /tmp


def test_the_upload_is_rendered_from_a_temporary_file_removed_after_the_run(functions, aws, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale, fresh = tmp_path / "imgdrop-run-stale", tmp_path / "imgdrop-run-another-live-run"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "source").write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    rendered = []
    real_render = imgdrop.pipeline.render

    def spy(source, *args, **kwargs):
        rendered.append((Path(source), Path(source).stat().st_size, kwargs.get("sha256")))
        return real_render(source, *args, **kwargs)

    monkeypatch.setattr(imgdrop.pipeline, "render", spy)
    data = china_jpeg()
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    assert functions.image(image_id)[1]["status"] == "ready"
    ((source, size, sha256),) = rendered
    assert source.parent.parent == tmp_path and source.parent.name.startswith("imgdrop-run-")
    assert size == len(data) and sha256 == hashlib.sha256(data).hexdigest()  # hashed on the way
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name]  # its own gone, a stale one too

    def crash(*args, **kwargs):
        raise RuntimeError("a crash mid-render")

    monkeypatch.setattr(imgdrop.pipeline, "render", crash)
    flower = sample_photo("flower.jpg")
    _, other_key = upload(functions, flower)
    with pytest.raises(Exception, match="a crash mid-render"):
        functions.process(other_key, len(flower))
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name]  # removed on the crash too
