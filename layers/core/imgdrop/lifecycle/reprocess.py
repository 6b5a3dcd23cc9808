"""Reprocessing: re-render a tenant's ready images with their profile's current definition.

`POST /reprocess` makes a job and plans it: the matching images (the tenant's ready ones, of one
profile when named, only the ids given when given) are listed page by page and one message per
image goes to the reprocess queue, where the reprocess function takes them at a bounded rate (its
event source's maximum concurrency), apart from the process function that live uploads use.
A large library is listed in steps: the API lists what it can in a few seconds, then a `plan`
message hands the rest to the queue, step by step; `total` grows until the listing is over.

One image, one job (`reprocess_image`):
1. the worker holds the image's job item (a lease: copies of a message never work at once);
2. it renders the stored original (private folder) with the profile as it is now. A variant the
   image serves already, every format byte for byte (in the folder its privacy asks for), is
   kept under its keys: a variant's URLs change when its bytes change, and only then. Its
   formats stay in one folder, where its auto URL finds them: when one format changes, the
   others move with it (new URLs for the same bytes: the price of an auto URL that works).
   When the profile makes the very files the image serves, the image is left as it is and
   counted `done`. Otherwise it writes the other variants' files under a new run folder:
   `run_id` is derived from the job and the image, so a repeat of the job's message is the same
   run, and no other writer ever uses that folder (finalize's cleanup of lost processing runs
   leaves reprocess runs alone);
3. one transaction switches the image to its new set (transitions.swap_rendition: only while it
   is ready, on the run and the variants read), records the keys it retired on the job item, and
   counts the image `done`: so the image is always on its old set or its new one, never a mix,
   and is counted once;
4. the retired variants are removed. A crash before 3 leaves the image as it was (the next try writes
   the same folder again); a crash after 3 leaves only old files behind, which the next try (the
   queue delivers the message again) removes, seeing the item counted.
A render that fails (the original is refused, or every try failed) leaves the image as it was
and counts it `failed`; an image deleted or no longer ready meanwhile counts `done`.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import PynamoDBException

from imgdrop.errors import ImageRejected, NotFound, StorageError
from imgdrop.ids import iso, new_id, now_iso, utc_now
from imgdrop.lifecycle import placement, transitions
from imgdrop.lifecycle.processing import WRITE_CONCURRENCY, render_source, variant_files, write_all
from imgdrop.observability import logger, metrics
from imgdrop.services import Services
from imgdrop.store.db import ImageRecord, JobRecord, job_sk, tenant_pk
from imgdrop.store.storage import REPROCESS_RUN_PREFIX, run_prefix

if TYPE_CHECKING:  # auth brings PyJWT and models pydantic's schemas: the worker needs neither
    from imgdrop.auth import Principal
    from imgdrop.models import ReprocessRequest

JOB_RETENTION = timedelta(days=30)
# The API lists for this long before handing the rest of a large library to the queue; a plan
# message of the reprocess function, for this long per step.
API_PLAN_SECONDS = 3.0
WORKER_PLAN_SECONDS = 60.0
# ... and queues at most this many images per step (ten to a SendMessageBatch).
API_PLAN_IMAGES = 500
WORKER_PLAN_IMAGES = 5000
PAGE_SIZE = 100
BATCH_GET = 100
# The lease on one image of a job outlasts the reprocess function's timeout.
ITEM_LEASE = timedelta(seconds=300)
SWAP_ATTEMPTS = 4


def reprocess_run_id(job_id: str, image_id: str) -> str:
    """The run of one image in one job: the same for every repeat of the job's message."""
    return REPROCESS_RUN_PREFIX + hashlib.sha256(f"reprocess:{job_id}:{image_id}".encode()).hexdigest()[:14]


# --------------------------------------------------------------------------- the API


def present_job(job: JobRecord) -> dict[str, Any]:
    total, done, failed = int(job.total or 0), int(job.done or 0), int(job.failed or 0)
    finished = bool(job.planned) and done + failed >= total
    return {"id": job.id, "status": "done" if finished else "running", "total": total, "done": done,
            "failed": failed}


def start_job(principal: Principal, body: ReprocessRequest, services: Services) -> dict[str, Any]:
    """202 {id, status, total}: the job is made and planned (the rest of a large library in steps)."""
    principal.require_whole_tenant("admin")
    job_id = new_id()
    now = now_iso()
    job = JobRecord(
        tenant_pk(principal.tenant), job_sk(job_id), tenant=principal.tenant, id=job_id, kind="reprocess",
        profile=body.profile, ids=list(dict.fromkeys(body.ids)) if body.ids is not None else None,
        created_at=now, updated_at=now, ttl=utc_now() + JOB_RETENTION,
    )
    services.jobs.create(job)
    plan(services, principal.tenant, job_id, 0, deadline=time.monotonic() + API_PLAN_SECONDS,
         limit=API_PLAN_IMAGES)
    current = services.jobs.get(principal.tenant, job_id) or job
    answer = present_job(current)
    return {key: answer[key] for key in ("id", "status", "total")}


def get_job(principal: Principal, job_id: str, services: Services) -> dict[str, Any]:
    principal.require_whole_tenant("admin")
    job = services.jobs.get(principal.tenant, job_id)
    if job is None:
        raise NotFound("Job")
    return present_job(job)


# --------------------------------------------------------------------------- planning


def plan(services: Services, tenant: str, job_id: str, step: int, *, deadline: float,
         limit: int = WORKER_PLAN_IMAGES) -> str:
    """One planning step: queue a message per matching image until the deadline, count them
    (once per step, however often this step runs) and hand the rest to step `step + 1`.
    Answers: planned | continued | stale."""
    jobs = services.jobs
    job = jobs.get(tenant, job_id)
    if job is None:
        return "stale"
    if int(job.plan_step or 0) != step:
        if int(job.plan_step or 0) == step + 1 and not job.planned:
            # This step was counted and its hand-over may have been lost: hand over again.
            services.reprocess_queue.send(_plan_message(tenant, job_id, step + 1))
        return "stale"
    if job.ids is not None:
        ids, cursor = _ready_among(services, job, list(job.ids)), None
    else:
        ids, cursor = _list_ready(services, job, job.plan_cursor, deadline, limit)
    services.reprocess_queue.send_many(
        [{"kind": "image", "tenant": tenant, "job_id": job_id, "image_id": image_id} for image_id in ids]
    )
    if not jobs.record_plan_step(job, step, len(ids), cursor, now_iso()):
        return "stale"  # another copy of this step counted it
    if cursor is None:
        return "planned"
    services.reprocess_queue.send(_plan_message(tenant, job_id, step + 1))
    return "continued"


def _plan_message(tenant: str, job_id: str, step: int) -> dict[str, Any]:
    return {"kind": "plan", "tenant": tenant, "job_id": job_id, "step": step}


def _ready_among(services: Services, job: JobRecord, ids: list[str]) -> list[str]:
    found: dict[str, ImageRecord] = {}
    for start in range(0, len(ids), BATCH_GET):
        found.update(services.repo.get_images(job.tenant, ids[start : start + BATCH_GET]))
    return [i for i in ids if i in found and found[i].status == "ready"
            and (not job.profile or found[i].profile == job.profile)]


def _list_ready(
    services: Services, job: JobRecord, cursor: dict[str, Any] | None, deadline: float, limit: int
) -> tuple[list[str], dict[str, Any] | None]:
    """The ready images from `cursor` on, until the deadline or `limit` images, and where the
    next step starts (None: the listing is over)."""
    result = services.jobs.ready_images(job.tenant, job.profile, cursor, PAGE_SIZE)
    ids: list[str] = []
    try:
        for record in result:
            ids.append(record.id)
            if len(ids) >= limit or time.monotonic() >= deadline:
                return ids, result.position
    except PynamoDBException as exc:  # raised while paging
        raise StorageError("The images could not be listed.") from exc
    return ids, None


# --------------------------------------------------------------------------- one image


def handle_message(message: dict[str, Any], services: Services, *, receive_count: int = 1) -> str:
    """One message of the reprocess queue: a planning step or one image."""
    tenant, job_id = str(message["tenant"]), str(message["job_id"])
    if message.get("kind") == "plan":
        return plan(services, tenant, job_id, int(message["step"]),
                    deadline=time.monotonic() + WORKER_PLAN_SECONDS)
    last_try = receive_count >= services.settings.reprocess_max_receives
    return reprocess_image(services, tenant, job_id, str(message["image_id"]), last_try=last_try)


def reprocess_image(
    services: Services, tenant: str, job_id: str, image_id: str, *, last_try: bool = False
) -> str:
    """Re-render one image for one job. Answers done | failed | skipped | counted (already) |
    busy (a copy of the message is at work: it counts the image); raises to be tried again (on
    the last try, the image counts `failed` instead)."""
    jobs = services.jobs
    owner = uuid.uuid4().hex
    now = utc_now()
    taken = jobs.take_item(tenant, job_id, image_id, owner, iso(now), iso(now + ITEM_LEASE),
                           now + JOB_RETENTION)
    if taken == "busy":
        return "busy"
    if taken == "settled":
        _remove_retired(services, tenant, job_id, image_id)
        return "counted"
    written: list[str] = []
    try:
        outcome = _rerender(services, tenant, job_id, image_id, owner, written)
    except ImageRejected as exc:
        logger.info("Re-render refused", extra={"image_id": image_id, "job_id": job_id, "code": exc.code})
        outcome = _settle(services, tenant, job_id, image_id, owner, "failed")
    except Exception:
        if not last_try:
            jobs.release_item(tenant, job_id, image_id, owner)
            raise
        logger.exception("Re-render failed on its last try", extra={"image_id": image_id, "job_id": job_id})
        if written:
            placement.drop_unnamed(services, tenant, image_id, written)
        outcome = _settle(services, tenant, job_id, image_id, owner, "failed")
    metrics.add_metric(name=f"Reprocess_{outcome}", unit="Count", value=1)
    return outcome


def _settle(services: Services, tenant: str, job_id: str, image_id: str, owner: str, outcome: str) -> str:
    refused = services.jobs.settle_item(tenant, job_id, image_id, owner, outcome, now_iso())
    return outcome if refused is None else "counted"


def _rerender(
    services: Services, tenant: str, job_id: str, image_id: str, owner: str, written: list[str]
) -> str:

    settings = services.settings
    record = services.repo.get_image(tenant, image_id)
    if record is None or record.status != "ready" or not (record.original or {}).get("key"):
        return _settle(services, tenant, job_id, image_id, owner, "skipped")
    original = record.original or {}
    size = int(original.get("bytes") or settings.max_upload_bytes)
    # As the process step does: the original is streamed to a file and rendered from it.
    with tempfile.TemporaryDirectory(prefix="imgdrop-reprocess-") as work:
        source = Path(work) / "source"
        with open(source, "wb") as file:
            services.objects.read(original["key"], max_bytes=size, into=file)
        rendition = render_source(source, record.profile, settings)
    run = reprocess_run_id(job_id, image_id)
    for _ in range(SWAP_ATTEMPTS):
        public = placement.is_public(record)
        writes, variants = variant_files(rendition, run_prefix(tenant, image_id, run, public=public), public)
        for (name, fmt), key in _served_already(services, record, rendition, public).items():
            variants[name]["formats"][fmt]["key"] = key
        named = set(placement.variant_keys(variants))
        writes = [write for write in writes if write[0] in named]
        retired = [key for key in placement.variant_keys(record.variants) if key not in named]
        # A retry after a change of privacy writes to the other folder: what this run wrote before goes.
        superseded = [key for key in written if key not in named]
        if superseded:
            placement.drop_unnamed(services, tenant, image_id, superseded)
        if not writes and not retired:
            # The profile makes the very files the image serves: nothing is written or retired.
            return _settle(services, tenant, job_id, image_id, owner, "done")
        written[:] = [w[0] for w in writes]
        write_all(services, writes)
        refused: list[str | None] = []

        def write(
            image: ImageRecord, actions: list[Any], condition: Any,
            retired: list[str] = retired, refused: list[str | None] = refused,
        ) -> bool:
            verdict = services.jobs.settle_item(
                tenant, job_id, image_id, owner, "done", now_iso(), retired=retired,
                image_update=(image, actions, condition),
            )
            refused.append(verdict)
            return verdict is None

        if transitions.swap_rendition(services.repo, record, record.run_id, run, variants, write=write):
            services.objects.delete(retired)
            return "done"
        if refused and refused[-1] == "item":
            return "counted"  # our lease ran out and another worker finished it
        current = services.repo.get_image(tenant, image_id)
        if current is None or current.status != "ready":
            placement.drop_unnamed(services, tenant, image_id, written)
            return _settle(services, tenant, job_id, image_id, owner, "skipped")
        record = current  # changed meanwhile (a privacy move, another job): again from what it is now
    raise StorageError("The image kept changing while it was re-rendered; try again.")


def _served_already(
    services: Services, record: ImageRecord, rendition: Any, public: bool
) -> dict[tuple[str, str], str]:
    """The variants of `rendition` that the image serves already, every format byte for byte, in
    the folder `public` asks for: {(variant, format): the stored key}. A variant is kept whole or
    not at all: its auto URL is its fallback's folder, where the edge function finds the other
    formats, so they must stay together (a variant whose WebP changes moves with its JPEG).
    Sizes are compared first (from the record), so a changed file is not read; a file that
    cannot be read (moved by a privacy change meanwhile) counts as changed."""
    current = record.variants or {}
    candidates: dict[str, dict[str, tuple[str, bytes]]] = {}
    for name, encodings in rendition.variants.items():
        formats = (current.get(name) or {}).get("formats") or {}
        sized = {
            encoding.format: (formats[encoding.format]["key"], encoding.data)
            for encoding in encodings
            if encoding.format in formats
            and int(formats[encoding.format].get("bytes", -1)) == len(encoding.data)
            and placement.is_public_key(formats[encoding.format]["key"]) == public
        }
        if len(sized) == len(encodings):
            candidates[name] = sized

    def same(item: tuple[str, bytes]) -> bool:
        key, data = item
        try:
            return services.objects.read(key, max_bytes=len(data)) == data
        except StorageError:
            return False

    files = [(name, fmt, stored) for name, sized in candidates.items() for fmt, stored in sized.items()]
    with ThreadPoolExecutor(WRITE_CONCURRENCY) as pool:
        verdicts = list(pool.map(same, [stored for _, _, stored in files]))
    changed = {name for (name, _, _), kept in zip(files, verdicts, strict=True) if not kept}
    return {(name, fmt): stored[0] for name, fmt, stored in files if name not in changed}


def _remove_retired(services: Services, tenant: str, job_id: str, image_id: str) -> None:
    """After a crash between the swap and the removal: the retired files go now (nothing names
    them, and no writer uses their run's folder again)."""
    item = services.jobs.get_item(tenant, job_id, image_id)
    retired = list((item.retired if item is not None else None) or [])
    if retired:
        placement.drop_unnamed(services, tenant, image_id, retired)
