"""Dedupe through the handlers: before a byte is sent, after it arrives, and near-duplicates."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageEnhance

from lambdas import Functions, china_jpeg, sample_photo, upload


@pytest.fixture
def functions(aws):
    return Functions(aws)


def transformed(data: bytes, how: str) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if how == "resized":
        image = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
    elif how == "brighter":
        image = ImageEnhance.Brightness(image).enhance(1.2)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=40 if how == "recompressed" else 85)
    return out.getvalue()


def test_a_known_sha256_is_answered_before_any_byte_is_sent(functions):
    data = china_jpeg()
    first_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))

    item = {
        "filename": "again.jpg",
        "content_type": "image/jpeg",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert status == 200
    answer = body["items"][0]
    assert answer["id"] == first_id
    assert answer["status"] == "duplicate"
    assert answer["error"]["code"] == "image_already_exists"
    assert "upload" not in answer


def test_ten_identical_uploads_at_once_leave_exactly_one_canonical_image(functions):
    data = china_jpeg()
    uploads = [upload(functions, data) for _ in range(10)]
    functions.invoke("ProcessFunction", {"Records": []})  # load the handler once, as a warm container would
    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(lambda u: functions.process(u[1], len(data)), uploads))
    for processed in outcomes:
        functions.finalize_success(processed)
    images = [functions.image(image_id)[1] for image_id, _ in uploads]
    ready = [i for i in images if i["status"] == "ready"]
    duplicates = [i for i in images if i["status"] == "duplicate"]
    assert len(ready) == 1
    assert len(duplicates) == 9
    assert {d["duplicate_of"] for d in duplicates} == {ready[0]["id"]}
    assert all(d["variants"] == {} for d in duplicates)


def test_duplicate_event_delivered_twice_settles_once_and_leaves_the_original_tags(functions, aws):
    data = china_jpeg()
    _, tag = functions.api("POST", "/v1/tags", "/v1/tags", {"label": "wall", "category": "places"})
    first_id, first_key = upload(functions, data, tags=[tag["id"]])
    functions.process_and_finalize(first_key, len(data))
    _, other_tag = functions.api("POST", "/v1/tags", "/v1/tags", {"label": "other"})
    second_id, second_key = upload(functions, data, tags=[other_tag["id"]])
    processed = functions.process(second_key, len(data))
    assert functions.finalize_success(processed)["settled"] == ["duplicate"]
    assert functions.finalize_success(processed)["settled"] == [None]

    _, original = functions.image(first_id)
    assert original["tags"] == [{"id": tag["id"], "category": "places", "label": "wall"}]
    _, duplicate = functions.image(second_id)
    assert (duplicate["status"], duplicate["duplicate_of"]) == ("duplicate", first_id)
    assert duplicate["errors"][0]["code"] == "image_already_exists"


@pytest.mark.parametrize("how", ["resized", "recompressed", "brighter"])
def test_transformed_copies_are_flagged_similar_and_a_different_photo_is_not(functions, how):
    data = china_jpeg()
    original_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))

    copy = transformed(data, how)
    copy_id, copy_key = upload(functions, copy)
    functions.process_and_finalize(copy_key, len(copy))
    flower = sample_photo("flower.jpg")
    flower_id, flower_key = upload(functions, flower)
    functions.process_and_finalize(flower_key, len(flower))

    _, copy_image = functions.image(copy_id)
    assert copy_image["status"] == "ready"  # the default policy flags, it does not reject
    assert [s["id"] for s in copy_image["similar"]] == [original_id]

    status, similar = functions.api(
        "GET", f"/v1/images/{original_id}/similar", "/v1/images/{id}/similar", path_params={"id": original_id}
    )
    assert status == 200
    assert [item["id"] for item in similar["items"]] == [copy_id]
    assert similar["items"][0]["distance"] <= 12
    assert similar["items"][0]["image"]["id"] == copy_id
    assert flower_id not in [item["id"] for item in similar["items"]]


def test_reject_policy_makes_a_near_copy_a_duplicate_of_the_canonical_image(functions, monkeypatch):
    monkeypatch.setenv("IMGDROP_NEAR_DUPLICATE_MODE", "reject")
    data = china_jpeg()
    original_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    copy = transformed(data, "resized")
    copy_id, copy_key = upload(functions, copy)
    processed = functions.process_and_finalize(copy_key, len(copy))
    assert processed["outcomes"][0]["duplicate_of"] == original_id
    _, image = functions.image(copy_id)
    assert (image["status"], image["duplicate_of"]) == ("duplicate", original_id)
    # an exact repeat of the rejected copy names the canonical image too, never the duplicate
    again_id, again_key = upload(functions, copy)
    functions.process_and_finalize(again_key, len(copy))
    assert functions.image(again_id)[1]["duplicate_of"] == original_id
