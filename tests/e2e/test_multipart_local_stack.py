"""Large and resumable uploads through the local stack over HTTP, as Uppy 6, the web page and the
CLI send them: `POST /v1/uploads` answers an S3 multipart upload, `POST /v1/uploads/{id}/sign`
presigns each S3 request, the client sends them to the emulated S3 (whose guard checks their
SigV4 signatures and expiry as S3 does), and completion runs the pipeline through the stack's
S3 notification, as deployed.
"""

from __future__ import annotations

import io
import re
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import numpy as np
import pytest
import requests
from botocore.config import Config
from PIL import Image

from api_client import Api

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
TIMEOUT = 60
ORIGIN = "https://uploader.example"


@pytest.fixture
def api(local_stack) -> Api:
    return Api(local_stack.api_url, local_stack.token(tenant="mp-" + uuid.uuid4().hex[:8]))


@pytest.fixture(scope="module")
def noise_png() -> bytes:
    """2400x1600 of noise as PNG: ~11.5 MB, three parts of 5 MiB (the last shorter)."""
    pixels = np.random.default_rng(5).integers(0, 256, (1600, 2400, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


class Multipart:
    """A client of one multipart upload: signs each S3 request at the API, then sends it to S3."""

    def __init__(self, api: Api, item: dict[str, Any]):
        self.api = api
        self.id = item["id"]
        self.upload = item["upload"]
        self.upload_id = ""
        self.bucket = ""

    def sign(self, **body: Any) -> dict[str, Any]:
        response = self.api.session.post(self.upload["sign_url"], json=body, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def send(self, method: str, body: bytes | None = None, **sign: Any) -> requests.Response:
        signed = self.sign(method=method, **sign)
        self.bucket = urlsplit(signed["url"]).path.split("/")[1]  # path-style on the local stack
        return requests.request(method, signed["url"], headers={**signed["headers"], "Origin": ORIGIN},
                                data=body, timeout=TIMEOUT)

    def create(self) -> str:
        response = self.send("POST", key="what/uppy/sends", contentType="image/png")
        assert response.status_code == 200, response.text
        self.upload_id = ET.fromstring(response.content).findtext("{*}UploadId") or ""
        return self.upload_id

    def put(self, number: int, data: bytes) -> str:
        response = self.send("PUT", data, upload_id=self.upload_id, part_number=number)
        assert response.status_code == 200, response.text
        assert "ETag" in response.headers["Access-Control-Expose-Headers"]  # the browser may read it
        return response.headers["ETag"]

    def parts(self) -> dict[int, str]:
        response = self.send("GET", upload_id=self.upload_id)
        assert response.status_code == 200, response.text
        root = ET.fromstring(response.content)
        return {int(part.findtext("{*}PartNumber") or 0): part.findtext("{*}ETag") or ""
                for part in root.findall("{*}Part")}

    def complete(self, etags: dict[int, str]) -> requests.Response:
        xml = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in sorted(etags.items())
        ) + "</CompleteMultipartUpload>"
        return self.send("POST", xml.encode(), upload_id=self.upload_id)


def start(api: Api, data: bytes, content_type: str = "image/png", **fields: Any) -> Multipart:
    (item,) = api.presign([{"filename": "big", "content_type": content_type, "size": len(data), **fields}])
    assert item["status"] == "pending" and item["upload"]["method"] == "multipart", item
    return Multipart(api, item)


def chunks(data: bytes, size: int) -> dict[int, bytes]:
    return {i + 1: data[offset: offset + size] for i, offset in enumerate(range(0, len(data), size))}


def s3_error(response: requests.Response) -> dict[str, str]:
    root = ET.fromstring(response.content)
    assert root.tag == "Error", response.text
    return {child.tag: child.text or "" for child in root}


def admin_s3(stack) -> Any:
    return boto3.client("s3", endpoint_url=stack.aws_url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing", aws_session_token=None,  # noqa: S106
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


# ---------------------------------------------------------------- resumable


def test_an_interrupted_upload_lists_its_parts_resumes_and_ends_ready(local_stack, api, noise_png):
    parts = chunks(noise_png, 5 * MIB)
    assert len(parts) == 3
    first = start(api, noise_png, multipart=True)
    upload_id = first.create()
    first.put(1, parts[1])
    # the connection drops; later (another process, a reload) the client knows only the upload id
    resumed = Multipart(api, {"id": first.id, "upload": first.upload})
    resumed.upload_id = upload_id
    have = resumed.parts()
    assert list(have) == [1]
    for number in sorted(set(parts) - set(have)):
        have[number] = resumed.put(number, parts[number])
    completed = resumed.complete(resumed.parts())
    assert completed.status_code == 200, completed.text
    image = api.wait(first.id, timeout=90)
    assert image["status"] == "ready", (image.get("errors"), local_stack.logs()[-3000:])
    assert (image["width"], image["height"], image["format"], image["bytes"]) == (2400, 1600, "png", len(noise_png))
    assert image["original"]["bytes"] == len(noise_png)
    # processed once: completion is announced once (moto alone would announce a Put as well)
    assert local_stack.logs().count(f"ObjectCreated:CompleteMultipartUpload {first.upload['key']}") == 1
    assert f"ObjectCreated:Put {first.upload['key']}" not in local_stack.logs()
    refused = api.session.post(first.upload["sign_url"], json={"method": "POST"}, timeout=TIMEOUT)
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (409, "upload_closed")


def test_an_aborted_upload_keeps_no_parts(local_stack, api, noise_png):
    upload = start(api, noise_png, multipart=True)
    upload.create()
    upload.put(1, noise_png[: 5 * MIB])
    aborted = upload.send("DELETE", upload_id=upload.upload_id)
    assert aborted.status_code == 204, aborted.text
    listed = upload.send("GET", upload_id=upload.upload_id)
    assert (listed.status_code, s3_error(listed)["Code"]) == (404, "NoSuchUpload")
    uploads = admin_s3(local_stack).list_multipart_uploads(Bucket=upload.bucket, Prefix=upload.upload["key"])
    assert uploads.get("Uploads", []) == []
    assert api.image(upload.id)["status"] == "pending"  # until the sweep expires it (tests/integration)


def test_a_wrong_etag_at_completion_is_refused(local_stack, api, noise_png):
    upload = start(api, noise_png[: 6 * MIB], multipart=True)  # not an image: it is never completed
    upload.create()
    upload.put(1, noise_png[: 6 * MIB])
    refused = upload.complete({1: '"0123456789abcdef0123456789abcdef"'})
    assert (refused.status_code, s3_error(refused)["Code"]) == (400, "InvalidPart")
    assert api.image(upload.id)["status"] == "pending"
    upload.send("DELETE", upload_id=upload.upload_id)


def test_another_tenants_sign_request_is_404(local_stack, api, noise_png):
    upload = start(api, noise_png, multipart=True)
    other = Api(local_stack.api_url, local_stack.token(tenant="mp-other-" + uuid.uuid4().hex[:8]))
    response = other.session.post(upload.upload["sign_url"], json={"method": "POST"}, timeout=TIMEOUT)
    assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "not_found")
    bad = api.session.post(upload.upload["sign_url"], json={"method": "PUT", "upload_id": "x"}, timeout=TIMEOUT)
    assert (bad.status_code, bad.json()["errors"][0]["source"]["pointer"]) == (400, "/part_number")


# ---------------------------------------------------------------- S3's refusals, and CORS


def test_tampered_wrongly_typed_and_expired_requests_are_refused_as_s3_does(local_stack, api, noise_png):
    upload = start(api, noise_png, multipart=True)
    create = upload.sign(method="POST")
    # another Content-Type than the declared one: the signature covers it
    wrong_type = requests.post(create["url"], headers={"Content-Type": "text/html"}, timeout=TIMEOUT)
    assert (wrong_type.status_code, s3_error(wrong_type)["Code"]) == (403, "SignatureDoesNotMatch")
    upload.create()
    part = upload.sign(method="PUT", upload_id=upload.upload_id, part_number=1)
    url = urlsplit(part["url"])
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    for changed in ({"partNumber": "2"}, {"uploadId": "another"}):
        tampered = urlunsplit(url._replace(query=urlencode({**query, **changed})))
        response = requests.put(tampered, data=b"x" * 100, timeout=TIMEOUT)
        assert (response.status_code, s3_error(response)["Code"]) == (403, "SignatureDoesNotMatch"), changed
    other_key = urlunsplit(url._replace(path=url.path.rsplit("/", 1)[0] + "/someone-else"))
    response = requests.put(other_key, data=b"x" * 100, timeout=TIMEOUT)
    assert (response.status_code, s3_error(response)["Code"]) == (403, "SignatureDoesNotMatch")
    # an expired one (minted here with the stack's credentials, valid one second)
    expired = admin_s3(local_stack).generate_presigned_url(
        "upload_part", Params={"Bucket": upload.bucket, "Key": upload.upload["key"],
                               "UploadId": upload.upload_id, "PartNumber": 1}, ExpiresIn=1, HttpMethod="PUT")
    time.sleep(2.1)
    response = requests.put(expired, data=b"x" * 100, timeout=TIMEOUT)
    assert response.status_code == 403 and s3_error(response)["Message"] == "Request has expired"
    assert upload.parts() == {}  # none of them stored a part
    upload.send("DELETE", upload_id=upload.upload_id)


def test_the_buckets_cors_allows_the_multipart_calls_and_exposes_etag(local_stack, api, noise_png):
    upload = start(api, noise_png, multipart=True)
    signed = upload.sign(method="POST")
    for method in ("POST", "PUT", "GET", "DELETE"):
        preflight = requests.options(signed["url"], timeout=TIMEOUT, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200, (method, preflight.text)
        assert preflight.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
        assert method in preflight.headers["Access-Control-Allow-Methods"]
    upload.create()
    part = upload.send("PUT", b"x" * 1000, upload_id=upload.upload_id, part_number=1)
    assert part.headers["Access-Control-Allow-Origin"] in (ORIGIN, "*")
    assert "ETag" in [h.strip() for h in part.headers["Access-Control-Expose-Headers"].split(",")]
    upload.send("DELETE", upload_id=upload.upload_id)


# ---------------------------------------------------------------- a real large image


@pytest.fixture(scope="module")
def large_tiff(tmp_path_factory) -> Path:
    """A real photo (scikit-learn's china.jpg) upscaled to 6400x6100 and stored as an
    uncompressed TIFF: 117 MB (> 110 MiB), over the multipart threshold."""
    import sklearn.datasets

    photo = Image.open(Path(sklearn.datasets.__file__).parent / "images" / "china.jpg")
    path = tmp_path_factory.mktemp("large") / "china.tif"
    photo.resize((6400, 6100), Image.Resampling.BILINEAR).save(path, "TIFF")
    assert path.stat().st_size >= 110 * MIB
    return path


@pytest.mark.large
def test_a_large_tiff_goes_through_multipart_to_ready(local_stack, api, large_tiff):
    size = large_tiff.stat().st_size
    (item,) = api.presign([{"filename": "china.tif", "content_type": "image/tiff", "size": size}])
    upload = item["upload"]
    assert upload["method"] == "multipart" and upload["part_count"] == -(-size // upload["part_size"])
    client = Multipart(api, item)
    client.create()
    etags = {}
    with open(large_tiff, "rb") as file:
        for number in range(1, upload["part_count"] + 1):
            etags[number] = client.put(number, file.read(upload["part_size"]))
    completed = client.complete(etags)
    assert completed.status_code == 200, completed.text
    image = api.wait(item["id"], timeout=240)
    assert image["status"] == "ready", (image.get("errors"), local_stack.logs()[-3000:])
    assert (image["width"], image["height"], image["format"], image["bytes"]) == (6400, 6100, "tiff", size)
    assert image["variants"]["large"]["width"] == 2048
    original = admin_s3(local_stack).head_object(Bucket=client.bucket, Key=_key_of(image["original"]["url"]))
    assert original["ContentLength"] == size


def _key_of(url: str) -> str:
    """A delivery URL's path is the object's key (imgdrop.delivery)."""
    return urlsplit(url).path.lstrip("/")


def test_the_key_is_the_images_own(api, noise_png):
    upload = start(api, noise_png, multipart=True)
    assert re.fullmatch(r"uploads/mp-[0-9a-f]{8}/" + upload.id, upload.upload["key"])
