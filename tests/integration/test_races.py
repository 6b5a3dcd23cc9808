"""Races between deliveries, finalize, PATCH, DELETE and the sweep, each forced on purpose.

A Gate holds one run at a chosen step (a variant or original write) while the other side runs
to the end; then the held run goes on. Whatever the order, the image ends with one set of
bytes, every file its record names exists, and nobody's upload is lost.
"""

from __future__ import annotations

import copy
import hashlib

import pytest
from thread_runs import Run
from trust_helpers import Gate, image_path, s3_event

from imgdrop.lifecycle.placement import variant_keys
from imgdrop.store.db import ClaimRecord, ImageRecord, Repository
from imgdrop.store.storage import ObjectStore

from lambdas import Functions, china_jpeg, sample, sample_photo, upload


class InjectedCrash(RuntimeError):
    pass


@pytest.fixture
def functions(aws):
    return Functions(aws)


def record_of(image_id: str) -> ImageRecord:
    record = Repository().get_image("acme", image_id)
    assert record is not None
    return record


def stored_keys(aws, prefix: str) -> set[str]:
    listing = aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix=prefix)
    return {obj["Key"] for obj in listing.get("Contents", [])}


def assert_files_of_record_exist(aws, image_id: str) -> ImageRecord:
    record = record_of(image_id)
    named = set(variant_keys(record.variants))
    assert named, "a ready image names its variants"
    assert record.original is not None
    named.add(record.original["key"])
    stored = stored_keys(aws, f"images/acme/{image_id}/") | stored_keys(aws, f"public/acme/{image_id}/")
    assert named <= stored, "a file the record names is gone"
    return record


def sha_claims_of(image_id: str) -> list[str]:
    """Every content claim of the tenant naming the image (each claim is a partition of its own)."""
    claims = ClaimRecord.scan(ClaimRecord.pk.startswith("T#acme#SHA#") & (ClaimRecord.image_id == image_id))
    return [c.sk for c in claims]


def finalize_failure_of(functions: Functions, event: dict) -> dict:
    destination = sample("finalize_retries_exhausted.json")
    destination["requestPayload"] = copy.deepcopy(event)
    return functions.invoke("FinalizeFunction", destination)


def gate_writes(monkeypatch, thread_name: str, file_prefix: str) -> Gate:
    gate = Gate(thread_name, lambda self, key, *a, **kw: key.startswith(("images/", "public/"))
                and key.rsplit("/", 1)[-1].startswith(file_prefix))
    monkeypatch.setattr(ObjectStore, "write", gate.wrap(ObjectStore.write))
    return gate


def same_length(data: bytes, length: int) -> bytes:
    """A JPEG padded after its end marker: other bytes, the same declared size."""
    assert len(data) <= length
    return data + b"\0" * (length - len(data))


# --------------------------------------------------------------------------- two deliveries


def test_a_late_delivery_of_the_same_upload_never_deletes_the_ready_images_files(aws, functions, monkeypatch):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    late = Functions(aws)  # another execution environment
    gate = gate_writes(monkeypatch, "late-delivery", "original")

    # Given a second delivery (a client re-POST, the sweep's redrive) is held just before its end
    late_event = s3_event(aws.bucket_name, key, len(data), sequencer="00000000000000B2")
    held = Run("late-delivery", lambda: late.invoke("ProcessFunction", late_event))
    held.start()
    assert gate.reached.wait(60)
    # When the first delivery runs to the end and finalize settles the image
    first = functions.invoke("ProcessFunction", s3_event(aws.bucket_name, key, len(data), "00000000000000B1"))
    functions.finalize_success(first)
    # ... and only then the held delivery goes on and its outcome is finalized too
    gate.release()
    held.join(60)
    assert held.error is None, held.error
    functions.finalize_success(held.result)

    # Then the image is ready and every file its record names is still there
    assert functions.image(image_id)[1]["status"] == "ready"
    record = assert_files_of_record_exist(aws, image_id)
    assert record.result["sha256"] == hashlib.sha256(data).hexdigest()


def test_two_deliveries_of_different_bytes_leave_one_set_whole(aws, functions, monkeypatch):
    first_bytes = china_jpeg()
    second_bytes = same_length(sample_photo("flower.jpg"), len(first_bytes))
    image_id, key = upload(functions, first_bytes)
    other = Functions(aws)
    gate = gate_writes(monkeypatch, "first-delivery", "original")

    # Given the delivery of the first bytes is held after its variants, before its original
    first_event = s3_event(aws.bucket_name, key, len(first_bytes), "00000000000000C1")
    held = Run("first-delivery", lambda: other.invoke("ProcessFunction", first_event))
    held.start()
    assert gate.reached.wait(60)
    # When the client re-POSTs other bytes of the same size within the form's lifetime
    aws.s3.put_object(Bucket=aws.bucket_name, Key=key, Body=second_bytes, ContentType="image/jpeg")
    second = functions.invoke("ProcessFunction", s3_event(aws.bucket_name, key, len(first_bytes), "00000000000000C2"))
    functions.finalize_success(second)
    gate.release()
    held.join(60)
    assert held.error is None, held.error
    functions.finalize_success(held.result)

    # Then the record, its variants and its original all come from one set of bytes
    assert functions.image(image_id)[1]["status"] == "ready"
    record = assert_files_of_record_exist(aws, image_id)
    original = aws.s3.get_object(Bucket=aws.bucket_name, Key=record.original["key"])["Body"].read()
    assert hashlib.sha256(original).hexdigest() == record.result["sha256"]
    # ... and the image holds exactly one content claim, for those bytes
    assert sha_claims_of(image_id) == [f"SHA#{record.result['sha256']}"]
    # ... and no stray variant set sits beside the one the record names
    named = set(variant_keys(record.variants)) | {record.original["key"]}
    assert stored_keys(aws, f"images/acme/{image_id}/") | stored_keys(aws, f"public/acme/{image_id}/") == named


# --------------------------------------------------------------------------- duplicates


def test_an_upload_is_not_lost_as_the_duplicate_of_an_image_that_then_fails(aws, functions, monkeypatch):
    data = china_jpeg()
    owner_id, owner_key = upload(functions, data)
    repeat_id, repeat_key = upload(functions, data)
    owner_functions = Functions(aws)
    gate = gate_writes(monkeypatch, "owner", "large")

    # Given the first upload of some bytes is still processing (held at its first variant)
    owner_event = s3_event(aws.bucket_name, owner_key, len(data), "00000000000000D1")
    held = Run("owner", lambda: owner_functions.invoke("ProcessFunction", owner_event))
    held.start()
    assert gate.reached.wait(60)
    # When a second upload of the same bytes is processed and settled meanwhile
    repeat = functions.invoke("ProcessFunction", s3_event(aws.bucket_name, repeat_key, len(data), "00000000000000D2"))
    functions.finalize_success(repeat)
    # ... and the first one then crashes on every retry and is failed
    gate.release(fail_with=InjectedCrash("the owner's run died"))
    held.join(60)
    assert isinstance(held.error, InjectedCrash)
    finalize_failure_of(functions, owner_event)
    assert functions.image(owner_id)[1]["status"] == "failed"

    # Then the second upload was not lost: it is ready, with its files
    status, image = functions.image(repeat_id)
    assert (status, image["status"]) == (200, "ready"), image
    assert_files_of_record_exist(aws, repeat_id)


# --------------------------------------------------------------------------- PATCH and DELETE


def stale_reads(monkeypatch, snapshot: ImageRecord) -> None:
    """The PATCH's first read sees the record as it was before the other writers wrote to it
    (any later read, as in a retry, sees what is there now)."""
    real_get = Repository.get_image
    reads = []

    def get_image(self, tenant, image_id):
        reads.append(image_id)
        return copy.deepcopy(snapshot) if len(reads) == 1 else real_get(self, tenant, image_id)

    monkeypatch.setattr(Repository, "get_image", get_image)


def test_a_patch_that_read_before_processing_never_undoes_what_processing_wrote(aws, functions, monkeypatch):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    read_while_pending = record_of(image_id)
    functions.process_and_finalize(key, len(data))

    stale_reads(monkeypatch, read_while_pending)
    path, route, params = image_path(image_id)
    status, _ = functions.api("PATCH", path, route, {"title": "Great Wall"}, path_params=params)
    monkeypatch.undo()

    assert status == 200
    status, image = functions.image(image_id)
    assert (image["status"], image["title"]) == ("ready", "Great Wall")
    assert image["variants"] and image["width"] == 640
    record = record_of(image_id)
    assert record.gsi2pk is None  # out of the pending index: the sweep will never expire it
    assert_files_of_record_exist(aws, image_id)


def test_a_patch_racing_a_delete_never_recreates_the_record(aws, functions, monkeypatch):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    read_before_delete = record_of(image_id)
    path, route, params = image_path(image_id)
    assert functions.api("DELETE", path, route, path_params=params)[0] == 204

    stale_reads(monkeypatch, read_before_delete)
    status, body = functions.api("PATCH", path, route, {"title": "Too late"}, path_params=params)
    monkeypatch.undo()

    assert status == 404, body
    assert Repository().get_image("acme", image_id) is None


def test_a_patch_names_only_its_fields(aws, functions):
    data = china_jpeg()
    image_id, key = upload(functions, data, title="Before", rating=3)
    functions.process_and_finalize(key, len(data))
    path, route, params = image_path(image_id)
    status, image = functions.api("PATCH", path, route, {"rating": 5}, path_params=params)
    assert status == 200
    assert (image["title"], image["rating"], image["status"]) == ("Before", 5, "ready")
