"""The api, process and finalize handlers against moto, driven by the events in events/.

Given the resources of template.yaml (the `aws` fixture), each handler gets the sample event
of its folder, with only the ids and keys of this run filled in.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from imgdrop.pipeline import EXT

from lambdas import Functions, china_jpeg, image_files, sample, upload


@pytest.fixture
def functions(aws):
    return Functions(aws)


def test_presign_process_finalize_makes_the_image_ready_with_default_variants(functions, aws):
    data = china_jpeg()
    image_id, key = upload(functions, data, title="Great wall", tags=["no-such-tag"])
    assert key == f"uploads/acme/{image_id}"

    status, pending = functions.api(
        "GET", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id}
    )
    assert (status, pending["status"]) == (200, "pending")

    processed = functions.process(key, len(data))
    assert processed["outcomes"][0]["outcome"] == "rendered"
    settled = functions.finalize_success(processed)
    assert settled["settled"] == ["ready"]

    status, image = functions.api(
        "GET", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id}
    )
    assert status == 200
    assert image["status"] == "ready"
    assert (image["width"], image["height"], image["format"]) == (640, 427, "jpeg")
    assert len(image["sha256"]) == 64 and len(image["phash"]) == 16 and len(image["dhash"]) == 16
    assert image["tags"] == [{"id": "no-such-tag", "error": "tag_error"}]
    sizes = {name: (v["width"], v["height"]) for name, v in image["variants"].items()}
    # never upscaled: a 640×427 source keeps its size in large/medium, shrinks in small, thumb is cropped
    assert sizes == {"large": (640, 427), "medium": (640, 427), "small": (512, 342), "thumb": (256, 256)}
    cdn = aws.stack.environment()["CDN_BASE_URL"]
    for name, variant in image["variants"].items():
        # a public image's files: unsigned CDN URLs of public/{tenant}/{id}/{run}/{name}.{ext}
        assert variant["format"] == "jpeg" and variant["url"] == variant["formats"]["jpeg"]["url"]
        assert set(variant["formats"]) >= {"jpeg", "webp"}
        for fmt, encoding in variant["formats"].items():
            assert encoding["url"].startswith(cdn + "/") and "Signature=" not in encoding["url"]
            stored_key = encoding["url"][len(cdn) + 1 :]
            assert stored_key.startswith(f"public/acme/{image_id}/") and stored_key.endswith(f"/{name}.{EXT[fmt]}")
            stored = aws.s3.get_object(Bucket=aws.bucket_name, Key=stored_key)["Body"].read()
            assert len(stored) == encoding["bytes"]
            decoded = Image.open(io.BytesIO(stored))
            assert (decoded.format.lower(), decoded.size) == (fmt, (variant["width"], variant["height"]))
    # the original keeps EXIF and GPS: a signed URL, always
    assert "Signature=" in image["original"]["url"] and "/images/acme/" in image["original"]["url"]


def test_a_text_file_sent_as_jpeg_ends_failed_with_file_error(functions):
    data = b"this is not an image at all, just text"
    image_id, key = upload(functions, data)
    processed = functions.process(key, len(data))
    assert processed["outcomes"][0]["outcome"] == "rejected"
    assert functions.finalize_success(processed)["settled"] == ["failed"]
    _, image = functions.api("GET", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id})
    assert image["status"] == "failed"
    assert image["errors"][0]["code"] in {"file_error", "unsupported_format"}
    assert image["processing_error"] == image["errors"][0]["code"]


def test_an_object_larger_than_declared_ends_failed_with_size_mismatch(functions, aws):
    data = china_jpeg()
    image_id, key = upload(functions, data[:1000])  # declares 1000 bytes
    aws.s3.put_object(Bucket=aws.bucket_name, Key=key, Body=data)  # sends the whole photo
    processed = functions.process(key, len(data))
    assert processed["outcomes"][0]["error"]["code"] == "size_mismatch"
    functions.finalize_success(processed)
    _, image = functions.api("GET", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id})
    assert (image["status"], image["processing_error"]) == ("failed", "size_mismatch")


def test_retries_exhausted_fails_the_image_with_processing_error(functions):
    image_id, key = upload(functions, china_jpeg())
    assert functions.finalize_failure(key)["settled"] == ["failed"]
    _, image = functions.api("GET", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id})
    assert image["status"] == "failed"
    assert image["errors"][0]["code"] == "processing_error"
    assert "timed out" in image["errors"][0]["title"]


def test_the_same_s3_event_delivered_three_times_is_processed_once(functions, aws):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    first = functions.process(key, len(data))
    variant_objects = image_files(aws, image_id)
    assert functions.process(key, len(data)) == first
    assert functions.process(key, len(data)) == first
    assert functions.finalize_success(first)["settled"] == ["ready"]
    assert functions.finalize_success(first)["settled"] == [None]  # already settled: nothing changes
    assert image_files(aws, image_id) == variant_objects


def test_an_exact_repeat_becomes_duplicate_of_the_first_and_keeps_no_upload(functions, aws):
    data = china_jpeg()
    first_id, first_key = upload(functions, data)
    functions.finalize_success(functions.process(first_key, len(data)))
    second_id, second_key = upload(functions, data)
    processed = functions.process(second_key, len(data))
    assert processed["outcomes"][0] == {
        **processed["outcomes"][0],
        "outcome": "duplicate",
        "duplicate_of": first_id,
    }
    functions.finalize_success(processed)
    _, image = functions.api(
        "GET", f"/v1/images/{second_id}", "/v1/images/{id}", path_params={"id": second_id}
    )
    assert (image["status"], image["duplicate_of"]) == ("duplicate", first_id)
    assert image["variants"] == {}
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix=second_key)


def test_sample_events_drive_the_handlers(functions):
    """events/ serves `sam local invoke` too: the samples themselves must be accepted."""
    response = functions.invoke("ApiFunction", sample("api_health.json"))
    assert response["statusCode"] == 200
    created = functions.invoke("ApiFunction", sample("api_create_uploads.json"))
    items = json.loads(created["body"])["items"]
    assert items[0]["status"] == "pending"
    assert items[1]["error"]["code"] == "unsupported_content_type"
    refusal = functions.invoke("AuthorizerFunction", sample("authorizer_no_token.json"))
    assert refusal["context"]["auth_error"] == "token_missing"


def test_idempotency_records_spread_over_partitions(functions, aws):
    """powertools keeps every record of a function under one partition key when the table has a
    sort key (~500 runs/s for the whole service); imgdrop keys each record by its own hash."""
    for n in range(2):
        data = china_jpeg() + b"\0" * (n + 1)
        _, key = upload(functions, data)
        functions.process(key, len(data))
    items = aws.dynamodb.scan(TableName=aws.table_name, FilterExpression="sk = :s",
                              ExpressionAttributeValues={":s": {"S": "IDEMPOTENCY"}})["Items"]
    partitions = {item["pk"]["S"] for item in items}
    assert len(partitions) == 2
    assert not any(pk.startswith("idempotency#") for pk in partitions)
