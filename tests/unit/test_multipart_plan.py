"""Large uploads: the advised part size and count, and what a sign request asks for."""

from __future__ import annotations

import pytest

from imgdrop.errors import ValidationFailed
from imgdrop.settings import Settings
from imgdrop.uploads.multipart import MAX_PARTS, SignOperation, parse_sign_request, part_plan, wanted

MIB = 1024 * 1024
GIB = 1024 * MIB


@pytest.mark.parametrize(("size", "plan"), [
    (1, (8 * MIB, 1)),
    (8 * MIB, (8 * MIB, 1)),
    (8 * MIB + 1, (8 * MIB, 2)),
    (150 * MIB, (8 * MIB, 19)),
    (2 * GIB, (8 * MIB, 256)),
    (80 * GIB, (9 * MIB, 9103)),  # past 78 GiB, 8 MiB parts would be more than 10,000
    (5 * 1024 * GIB, (525 * MIB, 9987)),  # S3's largest object
])
def test_part_plan(size, plan):
    part_size, part_count = part_plan(size)
    assert (part_size, part_count) == plan
    assert part_size % MIB == 0 and part_size >= 5 * MIB
    assert part_count <= MAX_PARTS and (part_count - 1) * part_size < size <= part_count * part_size


def test_multipart_is_for_items_over_the_threshold_or_asking():
    settings = Settings.from_environment({"TABLE_NAME": "t", "BUCKET_NAME": "b"})
    assert settings.multipart_threshold_bytes == 100 * MIB and settings.max_upload_bytes == 2 * GIB
    assert not wanted(100 * MIB, {}, settings)
    assert wanted(100 * MIB + 1, {}, settings)
    assert wanted(10, {"multipart": True}, settings) and wanted(10, {"multipart": "true"}, settings)
    assert not wanted(10, {"multipart": False}, settings)
    assert wanted(200 * MIB, {"multipart": False}, settings)  # a POST form has no resume: over, always


@pytest.mark.parametrize(("body", "operation"), [
    ({"method": "POST"}, SignOperation("create")),
    ({"method": "post", "key": "anything/else", "contentType": "image/png"}, SignOperation("create")),
    ({"method": "POST", "upload_id": None, "part_number": None}, SignOperation("create")),
    ({"method": "POST", "upload_id": ""}, SignOperation("create")),
    ({"method": "PUT", "upload_id": "u", "part_number": 1}, SignOperation("part", "u", 1)),
    ({"method": "PUT", "upload_id": "u", "part_number": 10000}, SignOperation("part", "u", 10000)),
    ({"method": "GET", "upload_id": "u"}, SignOperation("list", "u")),
    ({"method": "POST", "upload_id": "u"}, SignOperation("complete", "u")),
    ({"method": "DELETE", "upload_id": "u"}, SignOperation("abort", "u")),
])
def test_each_s3_request_of_a_multipart_upload(body, operation):
    assert parse_sign_request(body) == operation


@pytest.mark.parametrize(("body", "codes"), [
    (None, ["body_invalid"]),
    ({"method": ""}, ["method_blank"]),
    ({"method": "OPTIONS"}, ["method_invalid"]),
    ({"method": "PUT", "upload_id": "u"}, ["part_number_blank"]),
    ({"method": "PUT", "upload_id": "u", "part_number": 1.5}, ["part_number_invalid"]),
    ({"method": "DELETE"}, ["upload_id_blank"]),
    ({"method": "GET", "upload_id": "x" * 1025}, ["upload_id_invalid"]),
    ({"method": "GET", "upload_id": "u\n"}, ["upload_id_invalid"]),
    ({"method": "GET", "upload_id": "u", "part_number": 1}, ["part_number_invalid"]),
    ({"method": "PUT"}, ["upload_id_blank", "part_number_blank"]),
])
def test_anything_else_is_refused_with_stable_codes(body, codes):
    with pytest.raises(ValidationFailed) as refused:
        parse_sign_request(body)
    assert [e.code for e in refused.value.errors] == codes
    assert all(e.status == 400 for e in refused.value.errors)
