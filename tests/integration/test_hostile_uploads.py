"""Hostile and odd uploads through the handlers: api (presign) → S3 → process → finalize → api (GET).

Every file of tests/hostile_corpus.py is sent declared as image/jpeg (the declared type is never
trusted) and must settle as OUTCOMES says; none may crash a handler. Then the request-level
hostility that never reaches the pipeline: filenames, malformed bodies, lying sizes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from urllib.parse import unquote, urlparse

import pytest
from hostile_corpus import CORPUS, gif_frames

from lambdas import Functions, image_files, sample, upload

# name → (settled status, processing_error) once the handlers are done with it
OUTCOMES: dict[str, tuple[str, str | None]] = {
    "random_bytes": ("failed", "file_error"),
    "text": ("failed", "file_error"),
    "svg_with_script": ("failed", "unsupported_format"),
    "svg_xxe": ("failed", "unsupported_format"),
    "svgz": ("failed", "unsupported_format"),
    "html_declared_as_jpeg": ("failed", "file_error"),
    "pdf": ("failed", "unsupported_format"),
    "bmp": ("failed", "unsupported_format"),
    "mp4_ftyp": ("failed", "file_error"),
    "truncated_jpeg": ("failed", "file_error"),
    "truncated_png": ("failed", "file_error"),
    "truncated_gif": ("failed", "file_error"),
    "truncated_webp": ("failed", "file_error"),
    "jpeg_signature_then_zeros": ("failed", "file_error"),
    "png_signature_then_random": ("failed", "file_error"),
    "png_zero_width": ("failed", "file_error"),
    "tiff_header_then_garbage": ("failed", "file_error"),
    "heic_brand_then_garbage": ("failed", "file_error"),
    "png_header_50000x50000": ("failed", "image_too_large"),
    "png_real_101_megapixels": ("failed", "image_too_large"),
    "jpeg_header_65500x65500": ("failed", "image_too_large"),
    "gif_header_65535x65535": ("failed", "image_too_large"),
    "gif_2000_frames": ("failed", "image_too_large"),  # MAX_FRAMES 1000 in template.yaml
    "polyglot_jpeg_zip": ("ready", None),
    "polyglot_jpeg_html": ("ready", None),
    "jpeg_comment_with_script": ("ready", None),
    "garbage_exif_offsets": ("ready", None),
    "garbage_exif_counts": ("ready", None),
    "exif_orientation_9": ("ready", None),
    "aspect_1x10000": ("ready", None),
    "aspect_10000x1": ("ready", None),
    "one_pixel": ("ready", None),
    "png_16bit": ("ready", None),
    "cmyk_jpeg": ("ready", None),
    "palette_png_transparency": ("ready", None),
    "gray_alpha_png": ("ready", None),
    "animated_webp": ("ready", None),
    "heic": ("ready", None),
    "avif": ("ready", None),
    "tiff_multipage": ("ready", None),
    "png_bad_idat_crc": ("ready", None),
    "jpeg_garbage_icc": ("ready", None),
    "cmyk_jpeg_garbage_icc": ("ready", None),
    "png_declared_as_jpeg": ("ready", None),
    # a presigned POST cannot carry 0 bytes (size must be >= 1; the policy's range starts at 1):
    # see test_a_zero_byte_file_is_refused_before_any_byte_is_stored
    "zero_bytes": ("refused", "size_invalid"),
}
HANDLER_BUDGET_SECONDS = 20


@pytest.fixture
def functions(aws):
    return Functions(aws)


def test_the_table_covers_the_whole_corpus_and_agrees_with_the_pipeline():
    assert OUTCOMES.keys() == CORPUS.keys()
    for name, (status, code) in OUTCOMES.items():
        if status != "refused":
            assert (status, code) == (CORPUS[name].status, CORPUS[name].code), name


def _settle(functions, aws, name: str) -> list[str]:
    """Upload, process and finalize one corpus file; the mismatches with OUTCOMES (none: [])."""
    expected_status, expected_code = OUTCOMES[name]
    data = CORPUS[name].build()
    image_id, key = upload(functions, data, filename=f"{name}.jpg", content_type="image/jpeg")

    started = time.monotonic()
    processed = functions.process(key, len(data))  # a handler exception fails the test here
    settled = functions.finalize_success(processed)
    took = time.monotonic() - started
    status, image = functions.image(image_id)
    stored = [key for key in image_files(aws, image_id) if "/original." not in key]
    problems = []
    if took >= HANDLER_BUDGET_SECONDS:
        problems.append(f"took {took:.1f} s")
    got = (settled["settled"], status, image["status"], image["processing_error"])
    if got != ([expected_status], 200, expected_status, expected_code):
        problems.append(f"settled {got}, expected {expected_status} {expected_code}")
    if expected_status == "ready":
        named = {f["url"].split("/", 3)[3] for v in image["variants"].values() for f in v["formats"].values()}
        if set(image["variants"]) != {"large", "medium", "small", "thumb"} or set(stored) != named:
            problems.append(f"variants {sorted(image['variants'])}, stored {sorted(stored)}")
        for key in stored:
            content_type = aws.s3.head_object(Bucket=aws.bucket_name, Key=key)["ContentType"]
            if content_type not in {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"}:
                problems.append(f"{key} served as {content_type}")
        if image["original"]["format"] != image["format"]:
            problems.append("original format differs")
    elif image["variants"] != {} or stored:
        problems.append("a failed image has variants")
    return [f"{name}: {p}" for p in problems]


REJECTED = sorted(n for n, (status, _) in OUTCOMES.items() if status == "failed")
READY_FILES = sorted(n for n, (status, _) in OUTCOMES.items() if status == "ready")
# Cases share one stack per group (a moto stack and cold handlers per file would cost ~1 s each);
# the groups run on separate workers.
GROUPS = {"rejected": REJECTED, "ready-1": READY_FILES[::2], "ready-2": READY_FILES[1::2]}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_each_hostile_file_settles_as_documented(group, functions, aws):
    problems = [problem for name in GROUPS[group] for problem in _settle(functions, aws, name)]
    assert problems == []


def test_max_frames_comes_from_the_function_environment(functions, aws, monkeypatch):
    from imgdrop.settings import get_settings

    monkeypatch.setenv("MAX_FRAMES", "50")
    get_settings.cache_clear()  # before any handler loads: settings are read once, at cold start
    over, under = gif_frames(51), gif_frames(50)
    over_id, over_key = upload(functions, over, content_type="image/gif")
    under_id, under_key = upload(functions, under, content_type="image/gif")
    functions.process_and_finalize(over_key, len(over))
    functions.process_and_finalize(under_key, len(under))
    assert functions.image(over_id)[1]["processing_error"] == "image_too_large"
    ready = functions.image(under_id)[1]
    assert (ready["status"], ready["animated"], ready["frames"]) == ("ready", True, 50)


@pytest.mark.parametrize("sent", ["more", "fewer"])
def test_an_object_that_is_not_the_declared_size_fails_with_size_mismatch(sent, functions, aws):
    data = CORPUS["png_declared_as_jpeg"].build()
    declared = len(data) - 10 if sent == "more" else len(data) + 10
    image_id, key = upload(functions, data[:declared] if sent == "more" else data + b"\x00" * 10)
    aws.s3.put_object(Bucket=aws.bucket_name, Key=key, Body=data)  # what actually arrived
    assert functions.image(image_id)[1]["bytes"] == declared
    functions.process_and_finalize(key, len(data))
    image = functions.image(image_id)[1]
    assert (image["status"], image["processing_error"]) == ("failed", "size_mismatch")


def test_a_zero_byte_file_is_refused_before_any_byte_is_stored(functions, aws):
    item = {"filename": "empty.jpg", "content_type": "image/jpeg", "size": 0}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert status == 200
    assert body["items"][0]["error"]["code"] == "size_invalid"
    status, body = api_raw(functions, "POST", "/v1/images", json.dumps({"file": "data:image/png;base64,"}))
    assert (status, body["errors"][0]["code"]) == (400, "file_blank")
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix="uploads/")


# ------------------------------------------------------------------ filenames


FILENAMES = {  # sent → stored
    "../../etc/passwd": "passwd",
    "..\\..\\windows\\system32\\evil.jpg": "evil.jpg",
    "/absolute/path/photo.jpg": "photo.jpg",
    "a\x00b\nc\r\nd\t.jpg": "abcd.jpg",
    "\u202eexe.jpg": "exe.jpg",  # right-to-left override: a format character, dropped
    ".htaccess": "htaccess",
    "../..": "upload",
    "\u00e9" * 251 + ".jpg": "\u00e9" * 251 + ".jpg",  # 255 characters (510 UTF-8 bytes): kept
    "\u732b" * 255: "\u732b" * 255,
    "<script>alert(1)</script>.jpg": "script>.jpg",  # the '/' makes it a path: its last part stays
}


def test_filenames_are_stored_sanitized(functions):
    items = [{"filename": sent, "content_type": "image/jpeg", "size": 10} for sent in FILENAMES]
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": items})
    assert status == 200
    stored = {}
    for sent, answer in zip(FILENAMES, body["items"], strict=True):
        assert answer["status"] == "pending", (sent, answer)
        stored[sent] = functions.image(answer["id"])[1]["filename"]
    assert stored == FILENAMES
    for name in stored.values():
        assert len(name) <= 255 and not any(c in name for c in "/\\\x00\n\r")


def test_a_300_character_unicode_filename_is_stored_shortened_keeping_its_extension(functions):
    name = "\U0001f600" + "\u00e9" * 295 + ".jpg"  # 300 code points, an emoji outside the BMP first
    items = [{"filename": name, "content_type": "image/jpeg", "size": 10},
             {"filename": "fine.jpg", "content_type": "image/jpeg", "size": 10}]
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": items})
    assert status == 200
    first, second = body["items"]
    assert first["status"] == second["status"] == "pending"
    stored = functions.image(first["id"])[1]["filename"]
    assert len(stored) == 255
    assert stored.startswith("\U0001f600\u00e9") and stored.endswith("\u00e9.jpg")


# ------------------------------------------------------------------ malformed requests


def api_raw(functions, method: str, path: str, body: str | None, *, base64_body: bool = False,
            content_type: str = "application/json"):
    event = sample("api_create_uploads.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["headers"] = {**event["headers"], "content-type": content_type}
    event["body"] = body
    event["isBase64Encoded"] = base64_body
    response = functions.invoke("ApiFunction", copy.deepcopy(event))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


ITEM = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}


MALFORMED = {
    "101 items": json.dumps({"items": [ITEM] * 101}),
    "no items": json.dumps({"items": []}),
    "not json": "this is not json",
    "truncated json": '{"items": [',
    "an array": json.dumps([ITEM]),
    "items not a list": json.dumps({"items": "a.jpg"}),
    "an item not an object": json.dumps({"items": ["a.jpg", ITEM]}),
    "no items key": json.dumps({"nothing": True}),
    "empty": "",
    "NUL in json": json.dumps({"items": [ITEM]})[:-1] + "\x00}",
}


def test_a_malformed_uploads_body_answers_400_in_the_error_shape(functions):
    answers = {name: api_raw(functions, "POST", "/v1/uploads", body) for name, body in MALFORMED.items()}
    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(MALFORMED, 400)
    for name, (_, answer) in answers.items():
        assert answer["errors"] and all(e["status"] == "400" and e["code"] for e in answer["errors"]), name
    assert answers["101 items"][1]["errors"][0]["code"] == "items_count"


def test_100_items_is_the_limit_and_answers_each(functions):
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [ITEM] * 100})
    assert status == 200 and len(body["items"]) == 100


LYING_ITEMS = [  # (item, code of its error)
    ({**ITEM, "content_type": "text/html"}, "unsupported_content_type"),
    ({**ITEM, "content_type": "image/svg+xml"}, "unsupported_content_type"),
    ({**ITEM, "size": -1}, "size_invalid"),
    ({**ITEM, "size": True}, "size_invalid"),
    ({**ITEM, "size": 10**12}, "file_too_large"),
    ({**ITEM, "filename": 42}, "filename_invalid"),
]


def test_lying_or_hostile_items_are_refused_one_by_one(functions):
    items = [item for item, _ in LYING_ITEMS] + [ITEM]
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": items})
    assert status == 200
    *refused, fine = body["items"]
    assert [answer["error"]["code"] for answer in refused] == [code for _, code in LYING_ITEMS]
    assert [answer["error"]["source"]["pointer"].split("/")[2] for answer in refused] == [
        str(i) for i in range(len(LYING_ITEMS))]
    assert not any("upload" in answer for answer in refused)
    assert fine["status"] == "pending"


def test_a_direct_upload_of_html_as_a_png_data_uri_ends_failed(functions):
    html = b"<!DOCTYPE html><script>alert(1)</script>"
    body = json.dumps({"filename": "x.png", "file": "data:image/png;base64," + base64.b64encode(html).decode()})
    status, image = api_raw(functions, "POST", "/v1/images", body)
    assert (status, image["status"]) == (201, "pending")
    functions.process_and_finalize(f"uploads/acme/{image['id']}", len(html))
    settled = functions.image(image["id"])[1]
    assert (settled["status"], settled["processing_error"]) == ("failed", "file_error")  # no image at all


def test_a_multipart_upload_with_a_hostile_part_filename(functions):
    png = CORPUS["one_pixel"].build()
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image-1\"; filename=\"../../etc/passwd\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    status, answer = api_raw(functions, "POST", "/v1/images", base64.b64encode(body).decode(), base64_body=True,
                             content_type=f"multipart/form-data; boundary={boundary}")
    assert status == 201, answer
    assert answer["items"][0]["filename"] == "passwd"


def test_bytes_posted_again_to_a_settled_images_key_do_not_replace_its_verified_original(functions, aws):
    data = CORPUS["png_declared_as_jpeg"].build()
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    verified = functions.image(image_id)[1]
    assert verified["status"] == "ready"

    swapped = b"<html><script>alert(1)</script></html>"  # within the policy: size <= declared, same type
    aws.s3.put_object(Bucket=aws.bucket_name, Key=key, Body=swapped, ContentType="image/jpeg")
    event = sample("process_s3_object_created.json")
    event["Records"][0]["s3"]["bucket"]["name"] = aws.bucket_name
    event["Records"][0]["s3"]["object"].update({"key": key, "size": len(swapped), "sequencer": "0B00000000000000"})
    functions.finalize_success(functions.invoke("ProcessFunction", event))

    image = functions.image(image_id)[1]
    path = unquote(urlparse(image["original"]["url"]).path).lstrip("/")
    original_key = path.removeprefix(f"{aws.bucket_name}/")  # path-style or virtual-hosted
    served = aws.s3.get_object(Bucket=aws.bucket_name, Key=original_key)["Body"].read()
    assert hashlib.sha256(served).hexdigest() == verified["sha256"]
