"""The process step: verify what S3 received, render it, dedupe it, store variants.

It never settles an image's status itself: it returns an outcome that the finalize step
(reached through the function's Lambda destinations) turns into ready, duplicate or failed.
Every step is safe to repeat: S3 delivers events at least once and Lambda retries crashes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imgdrop.dedupe.exact import ALREADY_EXISTS, existing_image, point_claim_at, readable_matches, uploader_of
from imgdrop.errors import ImageRejected
from imgdrop.ids import now_iso, utc_now
from imgdrop.lifecycle import placement, transitions
from imgdrop.observability import logger
from imgdrop.profiles import deployed_profiles
from imgdrop.services import Services
from imgdrop.store.db import SETTLED, ImageRecord
from imgdrop.store.storage import PRIVATE_CACHE_CONTROL, PUBLIC_CACHE_CONTROL, parse_upload_key, run_prefix

if TYPE_CHECKING:  # auth brings PyJWT: the process function needs only the type
    from imgdrop.auth import Principal

WRITE_CONCURRENCY = 8
ORIGINAL_EXTENSIONS = {"jpeg": "jpg", "tiff": "tif"}
# A run's lease outlasts the function's timeout: a run past it has surely been stopped.
LEASE_MARGIN = timedelta(seconds=60)
# Each run streams its upload into a folder of its own in the function's ephemeral storage
# (/tmp: template.yaml sizes it for MAX_UPLOAD_BYTES) and renders it from there. A folder older
# than a run can last was left by a run that was stopped (Lambda runs one at a time in an
# environment; the local stack runs several in one process, and stops none).
WORK_PREFIX = "imgdrop-run-"
STALE_WORK = timedelta(minutes=15)


def run_id_for(etag: str | None, sequencer: str | None) -> str:
    """One S3 delivery: the same event (and Lambda's retries of it) is the same run; a re-POST
    or a redrive copy is a new one."""
    return hashlib.sha256(f"{etag or ''}:{sequencer or ''}".encode()).hexdigest()[:16]


@dataclass
class Outcome:
    """What finalize needs; small, since a destination record is limited to 256 KB."""

    outcome: str  # rendered | duplicate | rejected | skipped
    tenant: str | None = None
    image_id: str | None = None
    duplicate_of: str | None = None
    error: dict[str, str] | None = None
    similar: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_upload(key: str, services: Services, run_id: str) -> Outcome:
    parsed = parse_upload_key(key)
    if parsed is None:
        logger.warning("Ignoring an object outside uploads/{tenant}/{id}", extra={"key": key})
        return Outcome("skipped")
    tenant, image_id = parsed
    record = services.repo.get_image(tenant, image_id)
    if record is None:
        # No record: nobody asked for this upload (or it was deleted). Keep nothing unaccounted for.
        services.objects.delete([key])
        return Outcome(
            "skipped", tenant, image_id, error={"code": "orphan_upload", "title": "No image record."}
        )
    if record.status in SETTLED:
        if record.status in {"ready", "duplicate"}:
            # The verified bytes live under images/ now: anything here was sent after settling.
            services.objects.delete([key])
        return Outcome("skipped", tenant, image_id)
    lease = timedelta(seconds=services.settings.process_timeout_seconds) + LEASE_MARGIN
    if not transitions.start_processing(services.repo, record, run_id, utc_now(), lease):
        # Another delivery holds the image (its bytes win), or it settled meanwhile.
        logger.info("Another run holds the image", extra={"image_id": image_id, "run_id": run_id})
        return Outcome("skipped", tenant, image_id, run_id=run_id)
    try:
        return _render_and_store(record, run_id, services)
    except ImageRejected as exc:
        return Outcome(
            "rejected", tenant, image_id, error={"code": exc.code, "title": exc.title}, run_id=run_id
        )


def work_root() -> Path:
    return Path(tempfile.gettempdir())


def _clear_stale_work(root: Path, older_than: float) -> None:
    """Remove what runs stopped mid-way left behind (a timeout ends the process; /tmp stays with
    the execution environment). Only folders older than any live run: several runs share one
    /tmp on the local stack."""
    cutoff = time.time() - older_than
    for stale in root.glob(f"{WORK_PREFIX}*"):
        try:
            if stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            continue


def _render_and_store(record: ImageRecord, run_id: str, services: Services) -> Outcome:
    """The upload is streamed to a file (hashed on the way) and rendered from it: a source of
    gigabytes never sits in memory. The file goes when the run ends, however it ends."""
    settings = services.settings
    root = work_root()
    lease = timedelta(seconds=settings.process_timeout_seconds) + LEASE_MARGIN
    _clear_stale_work(root, older_than=max(lease, STALE_WORK).total_seconds())
    free = shutil.disk_usage(root).free
    if free < record.declared_bytes:
        # A crash, not a verdict on the image: the retry may land in a fresh environment.
        raise OSError(f"{free} bytes free in {root}; the upload has {record.declared_bytes}")
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=root) as work:
        source = Path(work) / "source"
        with open(source, "wb") as file:
            received = services.objects.read(record.upload_key, max_bytes=record.declared_bytes, into=file)
        if received.size != record.declared_bytes:
            raise ImageRejected(
                "size_mismatch",
                f"The upload has {'more' if received.size > record.declared_bytes else received.size} bytes; "
                f"{record.declared_bytes} were declared.",
            )
        return _render_file(record, run_id, source, received.sha256, services)


def _render_file(
    record: ImageRecord, run_id: str, source: Path, sha256: str, services: Services
) -> Outcome:
    size = os.path.getsize(source)
    rendition = render_source(source, record.profile, services.settings, sha256=sha256)
    tenant, image_id = record.tenant, record.id
    uploader = uploader_of(record)

    canonical = existing_image(services.repo, tenant, rendition.sha256, uploader)
    if canonical is not None and canonical != image_id:
        return _duplicate(record, run_id, rendition, canonical, services)

    policy = services.near_duplicate_policy(record.profile)
    near = (
        []
        if policy.mode == "off"
        else _readable_near_duplicates(record, rendition.phash, policy, uploader, services)
    )
    verdict = policy.decide(near)
    if verdict.duplicate_of:
        # The sha claim must name the canonical image, never this duplicate.
        point_claim_at(services.repo, tenant, rendition.sha256, verdict.duplicate_of, now_iso())
        return _duplicate(record, run_id, rendition, verdict.duplicate_of, services)

    # This run's own folder: a run that loses the image removes only what it wrote itself.
    # Variants go where the image's privacy serves them; the original is always private.
    public = placement.is_public(record)
    prefix = run_prefix(tenant, image_id, run_id, public=public)
    private_prefix = run_prefix(tenant, image_id, run_id)
    original_key = f"{private_prefix}original.{ORIGINAL_EXTENSIONS.get(rendition.format, rendition.format)}"
    variant_writes, variants = variant_files(rendition, prefix, public)
    writes: list[Write] = [(original_key, source, rendition.mime, PRIVATE_CACHE_CONTROL), *variant_writes]
    write_all(services, writes)
    similar = [{"id": other, "distance": distance} for other, distance in verdict.similar]
    stored = transitions.store_rendition(
        services.repo,
        record,
        run_id,
        result=_result_of(rendition),
        variants=variants,
        original={
            "key": original_key,
            "width": rendition.width,
            "height": rendition.height,
            "bytes": size,
            "format": rendition.format,
        },
        similar=similar,
    )
    if not stored:
        # Another run holds the image now, or it settled (failed) while we worked: leave what
        # anyone else wrote alone.
        services.objects.delete([key for key, *_ in writes])
        return Outcome("skipped", tenant, image_id, run_id=run_id)
    services.objects.delete([record.upload_key])
    services.index.add(tenant, image_id, rendition.phash)
    return Outcome("rendered", tenant, image_id, similar=similar, run_id=run_id)


def render_source(source: Path, profile: str, settings: Any, sha256: str | None = None) -> Any:
    """The pipeline on a source file, with this deployment's profiles and limits."""
    from imgdrop.pipeline import render

    return render(
        source,
        profile,
        max_pixels=settings.max_pixels,
        max_frames=settings.max_frames,
        max_animation_pixels=settings.max_animation_pixels,
        profiles=deployed_profiles(),
        sha256=sha256,
    )


def cache_control(public: bool) -> str:
    return PUBLIC_CACHE_CONTROL if public else PRIVATE_CACHE_CONTROL


# One file to store: (key, bytes or the path of a file, content type, Cache-Control).
Write = tuple[str, bytes | Path, str, str]


def variant_files(rendition: Any, prefix: str, public: bool) -> tuple[list[Write], dict[str, Any]]:
    """A rendition's variant files under `prefix`, and its variants as the record names them:
    {name: {width, height, format (the fallback's), formats: {format: {key, bytes}}}}."""
    writes: list[Write] = []
    variants: dict[str, Any] = {}
    for name, encodings in rendition.variants.items():
        formats = {}
        for encoding in encodings:
            key = f"{prefix}{name}.{encoding.ext}"
            writes.append((key, encoding.data, encoding.mime, cache_control(public)))
            formats[encoding.format] = {"key": key, "bytes": len(encoding.data)}
        fallback = encodings[0]
        variants[name] = {
            "width": fallback.width,
            "height": fallback.height,
            "format": fallback.format,
            "formats": formats,
        }
    return writes, variants


def write_all(services: Services, writes: list[Write]) -> None:
    """A dozen small PUTs per image (and the original, from its file): in parallel, so the run's
    time is one write's, not twelve."""

    def write(item: Write) -> None:
        key, data, content_type, cache = item
        services.objects.write(key, data, content_type=content_type, cache_control=cache)

    # Named after the run's thread, so its logs (and the tests' gates) follow it into the pool.
    with ThreadPoolExecutor(WRITE_CONCURRENCY, thread_name_prefix=threading.current_thread().name) as pool:
        list(pool.map(write, writes))


def _readable_near_duplicates(
    record: ImageRecord, phash: str, policy: Any, uploader: Principal, services: Services
) -> list[tuple[str, int]]:
    """Index matches that are ready images the uploader may read, nearest first."""
    matches = [
        (other, distance)
        for other, distance in services.index.find(record.tenant, phash, policy.threshold)
        if other != record.id
    ]
    if not matches:
        return []
    return [
        (other.id, distance)
        for other, distance in readable_matches(services.repo, record.tenant, matches, uploader)
    ]


def _duplicate(
    record: ImageRecord, run_id: str, rendition: Any, canonical: str, services: Services
) -> Outcome:
    if not transitions.store_result(services.repo, record, run_id, _result_of(rendition)):
        return Outcome("skipped", record.tenant, record.id, run_id=run_id)
    # The canonical image is ready: these bytes are safe to drop.
    services.objects.delete([record.upload_key])
    return Outcome(
        "duplicate",
        record.tenant,
        record.id,
        duplicate_of=canonical,
        error=ALREADY_EXISTS,
        run_id=run_id,
    )


RESULT_FIELDS = (
    "format",
    "width",
    "height",
    "sha256",
    "phash",
    "dhash",
    "exif",
    "gps",
    "taken_at",
    "camera",
    "colors",
    "grayscale",
    "has_alpha",
    "blurhash",
    "animated",
    "frames",
)


def _result_of(rendition: Any) -> dict[str, Any]:
    return {name: getattr(rendition, name, None) for name in RESULT_FIELDS}
