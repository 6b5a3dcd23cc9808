"""Reprocessing, in-process against moto (each function as its role): a job re-renders ready images
with their profile's current definition (the profiles file changed in place), fanned out through the
reprocess queue; each image is whole throughout (its record names one complete set of files, the old
or the new), also when the worker crashes after writing the new files or after the swap; a repeat
of the same job changes nothing; a failed render leaves the image as it was and counts `failed`."""

from __future__ import annotations

import io
import json
import posixpath
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image
from thread_runs import Run

from imgdrop.errors import StorageError
from imgdrop.lifecycle import reprocess, transitions
from imgdrop.lifecycle.placement import variant_keys
from imgdrop.settings import get_settings
from imgdrop.store.storage import ObjectStore
from imgdrop_local.dispatcher import sqs_record

from lambdas import Functions, image_files

ADMIN = "images:read images:write tags:write admin"
BUILTIN = Path(__file__).resolve().parents[2] / "layers" / "core" / "imgdrop" / "profiles.json"
BEFORE = [{"name": "small", "mode": "fit", "width": 40, "height": 40},
          {"name": "thumb", "mode": "cover", "width": 24, "height": 24}]
AFTER = [{"name": "small", "mode": "fit", "width": 32, "height": 32},
         {"name": "thumb", "mode": "cover", "width": 24, "height": 24},
         {"name": "mini", "mode": "cover", "width": 12, "height": 12}]


def write_profiles(path: Path, variants: list[dict]) -> None:
    document = json.loads(BUILTIN.read_text())
    document["profiles"]["rp"] = {"formats": ["webp"], "variants": variants}
    path.write_text(json.dumps(document))


@pytest.fixture
def profiles(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "profiles.json"
    write_profiles(path, BEFORE)
    monkeypatch.setenv("IMGDROP_PROFILES_FILE", str(path))
    get_settings.cache_clear()
    return path


@pytest.fixture
def functions(aws, profiles):
    get_settings.cache_clear()
    return Functions(aws)


def png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (n * 37 % 256, n * 91 % 256, 120)).save(out, "PNG")
    return out.getvalue()


def ready_image(functions: Functions, n: int, tenant: str = "acme", profile: str = "rp", **fields) -> str:
    data = png(n)
    item = {"filename": f"{n}.png", "content_type": "image/png", "size": len(data), "profile": profile, **fields}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]}, tenant=tenant)
    assert status == 200 and body["items"][0]["status"] == "pending", body
    key = body["items"][0]["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data)
    functions.process_and_finalize(key, len(data))
    return body["items"][0]["id"]


def start(functions: Functions, body: dict, tenant: str = "acme") -> dict:
    status, answer = functions.api("POST", "/v1/reprocess", "/v1/reprocess", body, tenant=tenant, scope=ADMIN)
    assert status == 202, answer
    return answer


def job(functions: Functions, job_id: str, tenant: str = "acme") -> dict:
    status, answer = functions.api("GET", f"/v1/jobs/{job_id}", "/v1/jobs/{id}", path_params={"id": job_id},
                                   tenant=tenant, scope=ADMIN)
    assert status == 200, answer
    return answer


def messages(aws, limit: int = 10) -> list[dict]:
    return aws.sqs.receive_message(QueueUrl=aws.queue_urls["ReprocessQueue"], MaxNumberOfMessages=limit,
                                   AttributeNames=["All"]).get("Messages", [])


def deliver(functions: Functions, message: dict) -> bool:
    """One message to the reprocess function, as its event source hands it over (batches of one);
    answers whether it succeeded (then it is deleted)."""
    aws = functions.aws
    arn = f"arn:aws:sqs:us-east-1:123456789012:{aws.stack.queue_names['ReprocessQueue']}"
    result = functions.invoke("ReprocessFunction", {"Records": [sqs_record(message, arn)]})
    if result["batchItemFailures"]:
        # Back in the queue at once (its visibility timeout would take 18 minutes).
        aws.sqs.change_message_visibility(QueueUrl=aws.queue_urls["ReprocessQueue"],
                                          ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return False
    aws.sqs.delete_message(QueueUrl=aws.queue_urls["ReprocessQueue"], ReceiptHandle=message["ReceiptHandle"])
    return True


def run_queue(functions: Functions, rounds: int = 50) -> None:
    for _ in range(rounds):
        batch = messages(functions.aws)
        if not batch:
            return
        for message in batch:
            deliver(functions, message)


def record_of(image_id: str, tenant: str = "acme"):
    from imgdrop.store.db import Repository

    return Repository().get_image(tenant, image_id)


def assert_whole(
    functions: Functions, image_id: str, tenant: str = "acme", kept: frozenset[str] = frozenset()
) -> set[str]:
    """The image is ready, every file its record names exists, and all of them are its run's
    but `kept`: the files a job made byte for byte as before, which keep their keys (and so
    their folder). Each variant's formats share one folder, as its auto URL does: the edge
    function looks for them beside it."""
    record = record_of(image_id, tenant)
    assert record.status == "ready"
    named = set(variant_keys(record.variants))
    assert named <= image_files(functions.aws, image_id, tenant), "a named file is missing"
    assert {key for key in named if key.split("/")[3] != record.run_id} == kept, "files of another run"
    assert record.original["key"] in image_files(functions.aws, image_id, tenant)
    status, image = functions.image(image_id, tenant)
    assert status == 200 and image["status"] == "ready" and set(image["variants"]) == set(record.variants)
    for name, variant in image["variants"].items():
        folders = {posixpath.dirname(urlsplit(url).path)
                   for url in [variant["auto_url"], *(f["url"] for f in variant["formats"].values())]}
        assert len(folders) == 1, f"{name}'s formats and auto URL lie in {sorted(folders)}"
    return named


def files_of(image_id: str, variant: str) -> frozenset[str]:
    """The keys of one variant's files (each format's), as the image's record names them now."""
    return frozenset(variant_keys({variant: record_of(image_id).variants[variant]}))


def test_a_job_re_renders_images_with_the_profiles_current_definition(functions, profiles):
    ids = [ready_image(functions, n) for n in range(3)]
    other = ready_image(functions, 9, profile="avatar")
    before = {i: assert_whole(functions, i) for i in ids}
    assert all(set(record_of(i).variants) == {"small", "thumb"} for i in ids)
    thumbs = {i: files_of(i, "thumb") for i in ids}  # AFTER makes the thumb as before
    write_profiles(profiles, AFTER)  # the deployment changes the profile

    started = start(functions, {"profile": "rp"})
    assert (started["status"], started["total"]) == ("running", 3)
    run_queue(functions)
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 3, "done": 3,
                                            "failed": 0}
    for image_id in ids:
        # The thumb's files and URLs stay (they change when the bytes change, and only then);
        # the rest is the job's run. Before the mend, every URL moved to the job's run.
        assert len(thumbs[image_id]) == 2
        assert assert_whole(functions, image_id, kept=thumbs[image_id]) & before[image_id] == thumbs[image_id]
        record = record_of(image_id)
        assert record.run_id == reprocess.reprocess_run_id(started["id"], image_id)
        assert set(record.variants) == {"small", "thumb", "mini"}
        assert (record.variants["small"]["width"], record.variants["mini"]["width"]) == (32, 12)
        assert before[image_id] & image_files(functions.aws, image_id) == thumbs[image_id], "retired files stay"
    assert set(record_of(other).variants) == {"s", "m", "l"}  # another profile: untouched


def test_a_job_takes_only_the_tenants_matching_ready_images(functions):
    mine = [ready_image(functions, n) for n in range(2)]
    theirs = ready_image(functions, 5, tenant="rival")
    started = start(functions, {"ids": [*mine, theirs, "01NOSUCHIMAGE"]})
    assert started["total"] == 2  # rival's image is as unknown as a missing one
    status, body = functions.api("GET", f"/v1/jobs/{started['id']}", "/v1/jobs/{id}",
                                 path_params={"id": started["id"]}, tenant="rival", scope=ADMIN)
    assert (status, body["errors"][0]["code"]) == (404, "not_found")
    status, body = functions.api("POST", "/v1/reprocess", "/v1/reprocess", {})
    assert (status, body["errors"][0]["code"]) == (403, "insufficient_scope")
    status, body = functions.api("POST", "/v1/reprocess", "/v1/reprocess", {"profile": "nope"}, scope=ADMIN)
    assert (status, body["errors"][0]["code"]) == (400, "profile_unknown")
    run_queue(functions)
    assert job(functions, started["id"])["done"] == 2
    assert record_of(theirs, "rival").run_id != reprocess.reprocess_run_id(started["id"], theirs)


def test_a_large_library_is_listed_in_steps_through_the_queue(functions, profiles, monkeypatch):
    monkeypatch.setattr(reprocess, "API_PLAN_IMAGES", 2)
    monkeypatch.setattr(reprocess, "WORKER_PLAN_IMAGES", 2)
    ids = [ready_image(functions, n) for n in range(5)]
    write_profiles(profiles, AFTER)  # each image then moves to the job's run
    started = start(functions, {})
    assert (started["status"], started["total"]) == ("running", 2)
    run_queue(functions)
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 5, "done": 5,
                                            "failed": 0}
    for image_id in ids:
        assert record_of(image_id).run_id == reprocess.reprocess_run_id(started["id"], image_id)


def test_a_crash_after_writing_the_new_files_before_the_swap_leaves_the_image_whole(
    functions, profiles, monkeypatch
):
    image_id = ready_image(functions, 1)
    old, thumb = assert_whole(functions, image_id), files_of(image_id, "thumb")
    write_profiles(profiles, AFTER)
    started = start(functions, {"ids": [image_id]})
    swap = transitions.swap_rendition

    def crash(*args, **kwargs):
        raise StorageError("the worker died before the swap")

    monkeypatch.setattr(transitions, "swap_rendition", crash)
    [message] = messages(functions.aws)
    assert not deliver(functions, message)
    run = reprocess.reprocess_run_id(started["id"], image_id)
    assert assert_whole(functions, image_id) == old  # still the old set, all of it
    assert any(f"/{run}/" in key for key in image_files(functions.aws, image_id)), "new files were written"
    assert job(functions, started["id"])["status"] == "running"

    monkeypatch.setattr(transitions, "swap_rendition", swap)
    run_queue(functions)  # the queue hands the message over again
    new = assert_whole(functions, image_id, kept=thumb)
    assert record_of(image_id).run_id == run and "mini" in record_of(image_id).variants
    assert image_files(functions.aws, image_id) == new | {record_of(image_id).original["key"]}
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 1, "done": 1,
                                            "failed": 0}


def test_a_crash_after_the_swap_before_removing_the_old_files_leaves_the_image_whole(
    functions, profiles, monkeypatch
):
    image_id = ready_image(functions, 2)
    old, thumb = assert_whole(functions, image_id), files_of(image_id, "thumb")
    write_profiles(profiles, AFTER)
    started = start(functions, {"ids": [image_id]})
    delete = ObjectStore.delete

    def crash_on_the_old_files(self, keys):
        if keys and set(keys) <= old:
            raise StorageError("the worker died before removing the old files")
        return delete(self, keys)

    monkeypatch.setattr(ObjectStore, "delete", crash_on_the_old_files)
    [message] = messages(functions.aws)
    assert not deliver(functions, message)
    new = assert_whole(functions, image_id, kept=thumb)  # on the new set already, all of it
    assert old <= image_files(functions.aws, image_id)  # the retired files too, until the repeat
    # Counted once, in the same transaction as the swap.
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 1, "done": 1,
                                            "failed": 0}

    monkeypatch.setattr(ObjectStore, "delete", delete)
    run_queue(functions)  # the repeat finds the image counted and removes what its swap retired
    assert assert_whole(functions, image_id, kept=thumb) == new
    assert image_files(functions.aws, image_id) == new | {record_of(image_id).original["key"]}
    assert job(functions, started["id"])["done"] == 1


def test_running_the_same_job_twice_is_harmless(functions):
    image_id = ready_image(functions, 3)
    started = start(functions, {"ids": [image_id]})
    [message] = messages(functions.aws)
    assert deliver(functions, message)
    once = record_of(image_id)
    files = image_files(functions.aws, image_id)
    functions.aws.sqs.send_message(QueueUrl=functions.aws.queue_urls["ReprocessQueue"],
                                   MessageBody=message["Body"])  # SQS delivers it again
    run_queue(functions)
    again = record_of(image_id)
    assert (again.run_id, again.variants, again.updated_at) == (once.run_id, once.variants, once.updated_at)
    assert image_files(functions.aws, image_id) == files
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 1, "done": 1,
                                            "failed": 0}


def test_a_failed_render_leaves_the_image_as_it_was_and_counts_failed(functions, profiles, monkeypatch):
    broken, flaky = ready_image(functions, 4), ready_image(functions, 6)
    kept = {i: (record_of(i).variants, assert_whole(functions, i)) for i in (broken, flaky)}
    write_profiles(profiles, AFTER)  # so that the flaky image has new files to swap to
    original = record_of(broken).original["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=original, Body=b"no longer an image")
    swap = transitions.swap_rendition

    def always_down(*args, **kwargs):
        raise StorageError("DynamoDB is down")

    started = start(functions, {"ids": [broken, flaky]})
    monkeypatch.setattr(transitions, "swap_rendition", lambda *a, **k: always_down() if a[1].id == flaky
                        else swap(*a, **k))
    for _ in range(get_settings().reprocess_max_receives + 1):  # the last try counts it failed
        run_queue(functions, rounds=1)
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 2, "done": 0,
                                            "failed": 2}
    for image_id, (variants, files) in kept.items():
        assert record_of(image_id).variants == variants
        assert assert_whole(functions, image_id) == files
        run = reprocess.reprocess_run_id(started["id"], image_id)
        assert not any(f"/{run}/" in key for key in image_files(functions.aws, image_id)), "nothing left behind"


def test_a_job_over_an_unchanged_profile_keeps_every_url_and_writes_nothing(functions):
    image_id = ready_image(functions, 7)
    before, files = record_of(image_id), image_files(functions.aws, image_id)
    urls = functions.image(image_id)[1]["variants"]
    started = start(functions, {"ids": [image_id]})
    run_queue(functions)
    assert job(functions, started["id"]) == {"id": started["id"], "status": "done", "total": 1, "done": 1,
                                            "failed": 0}
    after = record_of(image_id)
    # Before the mend, the image moved to a new run's folder: every URL changed, the bytes did not.
    assert (after.run_id, after.variants, after.updated_at) == (before.run_id, before.variants, before.updated_at)
    assert functions.image(image_id)[1]["variants"] == urls
    assert image_files(functions.aws, image_id) == files


def test_a_file_that_differs_from_what_the_profile_makes_now_is_replaced(functions):
    image_id = ready_image(functions, 8)
    before = record_of(image_id)
    small = before.variants["small"]["formats"]["webp"]
    # The same size, other bytes: what a change of encoder could leave behind.
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=small["key"], Body=b"x" * small["bytes"])
    start(functions, {"ids": [image_id]})
    run_queue(functions)
    after = record_of(image_id)
    assert after.run_id != before.run_id
    served = functions.aws.s3.get_object(Bucket=functions.aws.bucket_name,
                                         Key=after.variants["small"]["formats"]["webp"]["key"])["Body"].read()
    assert served.startswith(b"RIFF") and len(served) == small["bytes"]
    # only that variant is written again (its fallback with it, for its auto URL): the others keep their keys
    rewritten = frozenset(variant_keys({"small": before.variants["small"]}))
    assert small["key"] in rewritten and len(rewritten) == 2
    assert_whole(functions, image_id, kept=frozenset(variant_keys(before.variants)) - rewritten)


def test_finalize_cleaning_up_late_never_removes_a_reprocess_runs_files(functions, profiles, monkeypatch):
    """Made on purpose: between the upload's settle and finalize's cleanup of lost processing
    runs (a stalled finalize), a job switches the image to a reprocess run. The cleanup, holding
    the record as it settled it, removed that run's files: the ready image named missing files."""
    from imgdrop.lifecycle import finalize
    from imgdrop_local.iam import acting_as

    data = png(11)
    item = {"filename": "late.png", "content_type": "image/png", "size": len(data), "profile": "rp"}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert status == 200, body
    image_id, key = body["items"][0]["id"], body["items"][0]["upload"]["fields"]["key"]
    functions.aws.s3.put_object(Bucket=functions.aws.bucket_name, Key=key, Body=data)
    cleanup = finalize._remove_other_runs
    jobs: list[str] = []
    thumbs: list[frozenset[str]] = []

    def job_meanwhile() -> None:
        with acting_as(None):  # the test's own calls, as the administrator
            jobs.append(start(functions, {"ids": [image_id]})["id"])
            run_queue(functions)

    def reprocess_first(record, services):
        assert record_of(image_id).status == "ready"
        thumbs.append(files_of(image_id, "thumb"))
        write_profiles(profiles, AFTER)
        other_lambda = Run("other-lambda", job_meanwhile)
        other_lambda.start()
        other_lambda.join(60)
        assert other_lambda.error is None and not other_lambda.is_alive()
        cleanup(record, services)

    monkeypatch.setattr(finalize, "_remove_other_runs", reprocess_first)
    functions.process_and_finalize(key, len(data))

    run = reprocess.reprocess_run_id(jobs[0], image_id)
    assert record_of(image_id).run_id == run and "mini" in record_of(image_id).variants
    assert job(functions, jobs[0])["done"] == 1
    assert_whole(functions, image_id, kept=thumbs[0])  # before the mend: "a named file is missing"
