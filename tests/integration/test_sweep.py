"""The scheduled sweep through functions/sweep/app.py and events/sweep_schedule.json.

Time moves with a monkeypatched clock in imgdrop.lifecycle.sweep; moto applies no DynamoDB TTL, so
everything shown here happens without it — as the sweep must not count on TTL timing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

import imgdrop.catalogue.images
import imgdrop.lifecycle.sweep
from imgdrop.dedupe.exact import CLAIM
from imgdrop.delivery.invalidation import Invalidator
from imgdrop.ids import new_id, utc_now
from imgdrop.settings import get_settings
from imgdrop.store.db import DELETION_SK, Repository, image_pk, image_sk

from lambdas import Functions, china_jpeg, sample, upload


@pytest.fixture
def functions(aws):
    return Functions(aws)


@pytest.fixture
def clock(monkeypatch):
    """Move the sweep's clock: clock(seconds) → the sweep runs that many seconds from now."""

    def move(seconds: float) -> None:
        moment = utc_now() + timedelta(seconds=seconds)
        monkeypatch.setattr(imgdrop.lifecycle.sweep, "utc_now", lambda: moment)

    return move


def sweep(functions) -> dict[str, list[str]]:
    return functions.invoke("SweepFunction", sample("sweep_schedule.json"))


def window() -> int:
    return get_settings().upload_expiry_seconds


GRACE = imgdrop.lifecycle.sweep.PROCESSING_GRACE.total_seconds()


def patience() -> float:
    """How long an image that arrived may wait for its outcome (its event may be queued)."""
    return imgdrop.lifecycle.sweep.patience(get_settings()).total_seconds()


def presign(functions) -> str:
    item = {"filename": "never.jpg", "content_type": "image/jpeg", "size": 1234}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert status == 200
    return body["items"][0]["id"]


def raw_item(aws, image_id: str) -> dict:
    return aws.dynamodb.get_item(TableName=aws.table_name,
                                 Key={"pk": {"S": image_pk("acme", image_id)}, "sk": {"S": image_sk(image_id)}})["Item"]


def keys(aws, prefix: str) -> set[str]:
    listing = aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix=prefix)
    return {obj["Key"] for obj in listing.get("Contents", [])}


def test_an_upload_that_never_arrived_expires_after_the_presign_window(functions, aws, clock):
    image_id = presign(functions)
    # a pending record carries no TTL: DynamoDB cannot remove it before the sweep settles it
    assert "ttl" not in raw_item(aws, image_id)

    clock(window() - 60)
    assert sweep(functions)["expired"] == []
    assert functions.image(image_id)[1]["status"] == "pending"

    clock(window() + 60)
    assert sweep(functions)["expired"] == [image_id]
    status, image = functions.image(image_id)
    assert (status, image["status"], image["errors"][0]["code"]) == (200, "expired", "upload_expired")
    item = raw_item(aws, image_id)
    assert "gsi2pk" not in item  # out of the pending index: the next sweep does not see it again
    assert int(item["ttl"]["N"]) > (utc_now() + timedelta(days=6)).timestamp()  # removed later, by TTL or not

    assert sweep(functions)["expired"] == []
    assert functions.image(image_id)[1]["status"] == "expired"


def test_a_late_arrival_after_expiry_is_not_processed(functions, aws, clock):
    image_id = presign(functions)
    clock(window() + 60)
    sweep(functions)
    key = f"uploads/acme/{image_id}"
    aws.s3.put_object(Bucket=aws.bucket_name, Key=key, Body=b"late bytes")  # S3 itself refuses this (policy expiry)
    processed = functions.process(key, 10)
    assert processed["outcomes"][0]["outcome"] == "skipped"
    assert functions.image(image_id)[1]["status"] == "expired"


def test_an_upload_object_without_a_record_is_removed_only_once_older_than_the_window(functions, aws, clock):
    orphan = f"uploads/acme/{new_id()}"
    malformed = "uploads/acme/not/an/upload"
    aws.s3.put_object(Bucket=aws.bucket_name, Key=orphan, Body=b"who sent this")
    aws.s3.put_object(Bucket=aws.bucket_name, Key=malformed, Body=b"x")
    data = china_jpeg()
    kept_id, kept_key = upload(functions, data)  # has a record: never an orphan
    functions.process_and_finalize(kept_key, len(data))
    variant = next(iter(keys(aws, f"images/acme/{kept_id}/")))

    assert sweep(functions)["orphans_removed"] == []  # fresh: maybe a presigned POST racing its record
    clock(window() + GRACE - 60)
    assert sweep(functions)["orphans_removed"] == []
    assert {orphan, malformed} <= keys(aws, "uploads/")

    clock(window() + GRACE + 60)
    report = sweep(functions)
    assert sorted(report["orphans_removed"]) == sorted([orphan, malformed])
    assert keys(aws, "uploads/") == set()  # the kept image's verified bytes moved under images/
    assert variant in keys(aws, "images/")  # the sweep only ever looks under uploads/
    assert functions.image(kept_id)[1]["status"] == "ready"


def test_an_upload_whose_s3_event_was_lost_is_redriven_once_and_then_processed(functions, aws, clock):
    data = china_jpeg()
    image_id, key = upload(functions, data)  # the bytes arrived; the S3 event was lost

    clock(patience() - 60)
    assert sweep(functions)["redriven"] == []  # its event may still be queued
    clock(patience() + 60)
    report = sweep(functions)
    assert report["redriven"] == [image_id]
    assert report["expired"] == [] and report["failed"] == []  # arrived: not expired
    # copied onto itself: S3 announces the object again (ObjectCreated:Copy), with the same bytes
    head = aws.s3.head_object(Bucket=aws.bucket_name, Key=key)
    assert head["Metadata"] == {"imgdrop-redrive": "1"} and head["ContentLength"] == len(data)
    assert sweep(functions)["redriven"] == []  # once only
    assert functions.image(image_id)[1]["status"] == "pending"

    functions.process_and_finalize(key, len(data))  # the new event arrives
    assert functions.image(image_id)[1]["status"] == "ready"


def test_an_image_that_arrived_but_never_settled_is_failed_after_the_grace_period(functions, aws, clock):
    data = china_jpeg()
    image_id, key = upload(functions, data)  # the bytes arrived; the S3 event was lost

    clock(patience() + 60)
    assert sweep(functions)["redriven"] == [image_id]  # ... and the redriven event is lost too
    assert functions.image(image_id)[1]["status"] == "pending"

    clock(2 * patience())
    assert sweep(functions)["failed"] == []  # the redriven event may still be queued
    clock(2 * patience() + 120)
    assert sweep(functions)["failed"] == [image_id]
    status, image = functions.image(image_id)
    assert (image["status"], image["processing_error"]) == ("failed", "processing_error")
    assert "no outcome" in image["errors"][0]["title"]
    assert sweep(functions)["failed"] == []


def test_a_stuck_processing_image_with_partial_variants_is_failed_and_cleaned(functions, aws, clock):
    """A process run died mid-variants and its retries and OnFailure record were lost too."""
    data = china_jpeg()
    image_id, key = upload(functions, data)
    from imgdrop.store.db import ImageRecord, Repository

    record = Repository().get_image("acme", image_id)
    Repository().update_image(record, [ImageRecord.status.set("processing")])
    aws.s3.put_object(Bucket=aws.bucket_name, Key=f"images/acme/{image_id}/large.jpg", Body=b"half")

    clock(patience() + 60)
    assert sweep(functions)["failed"] == [image_id]
    assert functions.image(image_id)[1]["status"] == "failed"
    assert keys(aws, f"images/acme/{image_id}/") == set()


def test_settled_images_are_never_touched_by_the_sweep(functions, aws, clock):
    data = china_jpeg()
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    before = functions.image(image_id)[1]
    clock(30 * 24 * 3600)
    assert sweep(functions) == {"expired": [], "failed": [], "recovered": [], "redriven": [], "orphans_removed": [],
                               "deletions_finished": [], "deletions_left": []}
    assert functions.image(image_id)[1]["updated_at"] == before["updated_at"]


def test_the_sweep_leaves_an_upload_whose_event_is_merely_queued(functions, aws, clock):
    data = china_jpeg()
    image_id, key = upload(functions, data)  # arrived; its event waits in Lambda's queue

    # Twenty minutes past the upload window, well inside the event's maximum age (an hour)
    clock(window() + 20 * 60)
    for _ in range(2):
        report = sweep(functions)
        assert report["failed"] == [] and report["redriven"] == [], report
    assert functions.image(image_id)[1]["status"] == "pending"

    # When the event is finally delivered, the image settles ready
    functions.process_and_finalize(key, len(data))
    assert functions.image(image_id)[1]["status"] == "ready"


# --------------------------------------------------------------------------- stopped deletions

DELETION_GRACE = imgdrop.lifecycle.sweep.DELETION_GRACE.total_seconds()


@pytest.fixture
def invalidations(monkeypatch) -> list[list[str]]:
    """The paths the CDN was asked to forget (the tests' stack has no distribution)."""
    asked: list[list[str]] = []

    def record(self, paths, token):
        asked.append(sorted(paths))
        return []

    monkeypatch.setattr(Invalidator, "invalidate", record)
    return asked


def deletion_record(aws, image_id: str) -> dict | None:
    key = {"pk": {"S": image_pk("acme", image_id)}, "sk": {"S": DELETION_SK}}
    return aws.dynamodb.get_item(TableName=aws.table_name, Key=key).get("Item")


def files_of(aws, image_id: str) -> set[str]:
    return keys(aws, f"uploads/acme/{image_id}") | keys(aws, f"images/acme/{image_id}/") | keys(
        aws, f"public/acme/{image_id}/"
    )


def ready(functions) -> tuple[str, str]:
    """A ready image's id and the sha256 its bytes are claimed by."""
    data = china_jpeg()
    image_id, key = upload(functions, data)
    functions.process_and_finalize(key, len(data))
    return image_id, hashlib.sha256(data).hexdigest()


def delete(functions, image_id: str) -> int:
    return functions.api("DELETE", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id})[0]


def test_a_delete_stopped_once_its_record_went_is_finished_by_the_sweep(functions, aws, clock, monkeypatch,
                                                                        invalidations):
    image_id, sha = ready(functions)
    assert files_of(aws, image_id)

    def stopped(record, services):
        raise RuntimeError("the function stopped here")

    monkeypatch.setattr(imgdrop.catalogue.images, "finish_deletion", stopped)
    assert delete(functions, image_id) == 204  # gone for the caller: a retry would answer 404
    monkeypatch.undo()
    monkeypatch.setattr(Invalidator, "invalidate", lambda self, paths, token: invalidations.append(sorted(paths)))
    assert functions.image(image_id)[0] == 404
    # Before the mend, this is where the image's files, its CDN copies and its claim stayed for good.
    assert files_of(aws, image_id) and invalidations == []
    assert Repository().claim_owner("acme", CLAIM, sha) == image_id
    assert deletion_record(aws, image_id) is not None

    clock(DELETION_GRACE - 60)
    assert sweep(functions)["deletions_finished"] == []  # the DELETE may still be at it
    assert files_of(aws, image_id)

    clock(DELETION_GRACE + 60)
    assert sweep(functions)["deletions_finished"] == [image_id]
    assert files_of(aws, image_id) == set()
    assert invalidations == [[f"/public/acme/{image_id}/*"]]
    assert Repository().claim_owner("acme", CLAIM, sha) is None
    assert deletion_record(aws, image_id) is None
    assert sweep(functions)["deletions_finished"] == []  # done once


def test_a_delete_whose_cdn_invalidation_is_throttled_is_invalidated_by_the_sweep(functions, aws, clock,
                                                                                  monkeypatch):
    image_id, sha = ready(functions)
    asked: list[list[str]] = []

    def throttled_twice(self, paths, token):
        asked.append(sorted(paths))
        if len(asked) <= 2:  # CloudFront holds at most 15 wildcard invalidations in progress
            raise ClientError({"Error": {"Code": "TooManyInvalidationsInProgress"}}, "CreateInvalidation")
        return ["I3"]

    monkeypatch.setattr(Invalidator, "invalidate", throttled_twice)
    assert delete(functions, image_id) == 204
    assert files_of(aws, image_id) == set()  # the files went before the CDN refused
    assert Repository().claim_owner("acme", CLAIM, sha) == image_id
    assert deletion_record(aws, image_id) is not None

    clock(DELETION_GRACE + 60)
    report = sweep(functions)  # still throttled: left for the next run, the rest of the sweep done
    assert (report["deletions_finished"], report["deletions_left"]) == ([], [image_id])
    assert deletion_record(aws, image_id) is not None
    report = sweep(functions)
    assert (report["deletions_finished"], report["deletions_left"]) == ([image_id], [])
    assert asked == [[f"/public/acme/{image_id}/*"]] * 3  # asked again, for the same paths
    assert Repository().claim_owner("acme", CLAIM, sha) is None
    assert deletion_record(aws, image_id) is None


def test_a_delete_that_finishes_leaves_no_deletion_for_the_sweep(functions, aws, clock, invalidations):
    image_id, _ = ready(functions)
    assert delete(functions, image_id) == 204
    assert deletion_record(aws, image_id) is None
    clock(DELETION_GRACE + 60)
    assert sweep(functions)["deletions_finished"] == []
    assert invalidations == [[f"/public/acme/{image_id}/*"]]


def test_two_deletes_at_once_delete_once_and_leave_no_deletion_behind(functions, aws, clock, monkeypatch,
                                                                      invalidations):
    """The first DELETE has read the record when a second one deletes the image whole: the
    first's transaction finds the record gone, answers 404 and writes no copy of it (which the
    sweep would otherwise take for a deletion left half-way, and announce again)."""
    import threading

    image_id, _ = ready(functions)
    read_the_record = imgdrop.catalogue.images.get_image
    rival: list[int] = []
    first = threading.Lock()

    def then_a_rival_deletes(principal, wanted, services):
        record = read_the_record(principal, wanted, services)
        if first.acquire(blocking=False):  # only the first DELETE waits for a rival
            thread = threading.Thread(target=lambda: rival.append(delete(functions, image_id)))
            thread.start()
            thread.join(30)
        return record

    monkeypatch.setattr(imgdrop.catalogue.images, "get_image", then_a_rival_deletes)
    assert delete(functions, image_id) == 404
    assert rival == [204]
    assert deletion_record(aws, image_id) is None
    assert files_of(aws, image_id) == set()
    assert invalidations == [[f"/public/acme/{image_id}/*"]]  # by the rival, once
    clock(DELETION_GRACE + 60)
    assert sweep(functions)["deletions_finished"] == []
