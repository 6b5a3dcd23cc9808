"""`imgdrop upload`: hash first, ask for uploads in batches, send the bytes, wait.

A file up to 100 MiB goes as one presigned POST; a larger one (or any, with `--multipart`)
as an S3 multipart upload, its parts in parallel (see `resumable`). With `--resume`, a file
whose multipart upload was interrupted continues where it stopped, without a new
`POST /v1/uploads`.

Per file the outcome is a dict: the image object when there is one (or the API's answer
item for a duplicate found by sha256 before any byte was sent), plus `path` (the local
file), or `{"path", "error"}` when the item was refused or the upload failed; an upload
cut short by Ctrl-C has the error code `interrupted`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from imgdrop_cli.api import Api, ApiError, post_to_s3
from imgdrop_cli.files import LocalFile
from imgdrop_cli.resumable import (
    MULTIPART_THRESHOLD_BYTES,
    Interrupted,
    MultipartSender,
    ResumeStore,
    RunControl,
    Target,
    UploadFailed,
    UploadGone,
    UploadSettled,
    wants_multipart,
)

BATCH_SIZE = 100
MAX_BARS = 20
FAILED_STATUSES = frozenset({"failed", "expired"})


@dataclass
class UploadOptions:
    album_id: str | None = None
    tags: list[str] = field(default_factory=list)
    profile: str | None = None
    purpose: str | None = None
    wait: bool = False
    wait_timeout: float = 300.0
    concurrency: int = 4  # files at a time
    parallel: int = 4  # parts of one multipart file at a time
    multipart: bool = False  # multipart whatever the size
    multipart_threshold: int = MULTIPART_THRESHOLD_BYTES
    part_size: int | None = None  # bytes; None: the API's advice
    resume: bool = False
    store: ResumeStore | None = None
    control: RunControl | None = None


def item_for(local: LocalFile, options: UploadOptions) -> dict[str, Any]:
    item: dict[str, Any] = {
        "filename": local.filename,
        "content_type": local.content_type,
        "size": local.size,
        "sha256": local.sha256,
    }
    if options.album_id:
        item["album_id"] = options.album_id
    if options.tags:
        item["tags"] = list(options.tags)
    if options.profile:
        item["profile"] = options.profile
    if options.purpose:
        item["purpose"] = options.purpose
    if wants_multipart(local, options.multipart, options.multipart_threshold):
        item["multipart"] = True
    return item


def batches(seq: Sequence[Any], size: int = BATCH_SIZE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def is_failure(outcome: dict[str, Any]) -> bool:
    """An item refused, an upload that did not go through, or an image that ended failed.

    A duplicate is an answer, not a failure.
    """
    if outcome.get("status") == "duplicate":
        return False
    if outcome.get("status") in FAILED_STATUSES:
        return True
    return "error" in outcome


class Bars:
    """Rich progress bars on stderr: one per file and one overall; a no-op when disabled."""

    def __init__(self, enabled: bool, console: Console | None = None):
        self.enabled = enabled
        self._lock = threading.Lock()
        self.progress: Progress | None = None
        if enabled:
            self.progress = Progress(
                TextColumn("[bold]{task.description}", justify="left"),
                BarColumn(bar_width=None),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[state]}"),
                console=console or Console(stderr=True),
                transient=False,
            )
        self.total: TaskID | None = None

    def __enter__(self) -> Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def add(self, description: str, total: int, state: str = "", visible: bool = True) -> TaskID | None:
        if self.progress is None:
            return None
        return self.progress.add_task(description, total=total, state=state, visible=visible)

    def advance(self, task: TaskID | None, amount: int) -> None:
        if self.progress is None or task is None:
            return
        with self._lock:
            self.progress.advance(task, amount)
            if self.total is not None:
                self.progress.advance(self.total, amount)

    def update(self, task: TaskID | None, **kwargs: Any) -> None:
        if self.progress is None or task is None:
            return
        with self._lock:
            self.progress.update(task, **kwargs)


def _state_text(outcome: dict[str, Any]) -> str:
    status = outcome.get("status")
    if status == "ready":
        return "[green]ready"
    if status == "duplicate":
        return f"[yellow]duplicate of {outcome.get('duplicate_of') or outcome.get('id')}"
    err = outcome.get("error") or (outcome.get("errors") or [{}])[0]
    code = err.get("code") if isinstance(err, dict) else None
    if status in FAILED_STATUSES or "error" in outcome:
        return f"[red]{status or 'error'}{': ' + code if code else ''}"
    return f"[cyan]{status or ''}"




INTERRUPTED = "interrupted"


def is_interrupted(outcome: dict[str, Any]) -> bool:
    error = outcome.get("error")
    return isinstance(error, dict) and error.get("code") == INTERRUPTED


def upload_files(
    api: Api,
    files: Sequence[LocalFile],
    options: UploadOptions,
    *,
    bars: Bars,
    on_outcome: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Upload `files`; the outcomes come back in the order of `files`.

    Ctrl-C stops every transfer at once: multipart uploads keep their resume records, and their
    outcomes (like those of files not sent yet) carry the error code `interrupted`.
    Raises ApiError when the API refuses a whole batch (a bad token, a malformed body).
    """
    store = options.store if options.store is not None else ResumeStore()
    control = options.control if options.control is not None else RunControl()
    outcomes: list[dict[str, Any] | None] = [None] * len(files)
    # Many files: a file's bar shows only while it is being sent; the total bar always shows.
    many = len(files) > MAX_BARS
    tasks = [bars.add(f.filename, f.size, "hashed", visible=not many) for f in files]
    bars.total = bars.add("[b]total", sum(f.size for f in files) or 1, "")
    advanced = [0] * len(files)
    advanced_lock = threading.Lock()

    def advance(index: int, amount: int) -> None:
        with advanced_lock:
            advanced[index] += amount
        bars.advance(tasks[index], amount)

    def rewind(index: int) -> None:
        with advanced_lock:
            amount, advanced[index] = advanced[index], 0
        bars.advance(tasks[index], -amount)

    transfers: dict[int, dict[str, Any]] = {}  # a multipart upload's parts: sent now, or reused

    def finish(index: int, outcome: dict[str, Any]) -> None:
        outcome.setdefault("path", str(files[index].path))
        if index in transfers:
            outcome.setdefault("transfer", transfers[index])
        outcomes[index] = outcome
        bars.update(tasks[index], state=_state_text(outcome), **({"visible": False} if many else {}))
        if on_outcome is not None:
            on_outcome(outcome)

    def interrupted(index: int, answer: dict[str, Any], resumable: bool) -> None:
        title = (
            "Interrupted: `imgdrop upload --resume` continues this upload."
            if resumable
            else "Interrupted before the file was sent."
        )
        finish(
            index,
            {"id": answer.get("id"), "status": answer.get("status"),
             "error": {"code": INTERRUPTED, "title": title}},
        )

    def guarded(index: int, answer: dict[str, Any], job: Callable[[], None]) -> None:
        try:
            job()
        except Interrupted:
            interrupted(index, answer, resumable=store.get(files[index]) is not None)
        except Exception as exc:  # a worker never takes the whole run down: the item fails
            finish(
                index,
                {
                    "id": answer.get("id"),
                    "status": answer.get("status"),
                    "error": {"code": "client_error", "title": f"{type(exc).__name__}: {exc}"},
                },
            )

    def multipart(index: int, target: Target) -> None:
        task = tasks[index]
        sender = MultipartSender(
            api,
            files[index],
            target,
            store=store,
            control=control,
            parallel=options.parallel,
            on_progress=lambda n: advance(index, n),
            on_state=lambda text: bars.update(task, state=f"[cyan]{text}"),
        )
        try:
            sender.run()
        finally:
            transfers[index] = sender.summary()

    def transfer(index: int, answer: dict[str, Any]) -> dict[str, Any] | None:
        """Send the bytes as the answer says; the error, or None."""
        local = files[index]
        upload = answer["upload"]
        if upload.get("method") == "multipart":
            try:
                multipart(index, Target.from_answer(answer, local.size, options.part_size, api.base_url))
            except UploadSettled:
                return None
            except UploadFailed as exc:
                return _with_resume_hint(exc.error, store.get(local) is not None)
            return None

        def progress(n: int) -> None:
            control.check()
            advance(index, n)

        return post_to_s3(
            api.session,
            upload,
            local.path,
            filename=local.filename,
            content_type=local.content_type,
            on_progress=progress,
        )

    def settle(index: int, answer: dict[str, Any]) -> None:
        task = tasks[index]
        bars.update(task, state="[cyan]processing")
        try:
            if options.wait:
                image = api.wait_image(
                    answer["id"],
                    timeout=options.wait_timeout,
                    on_poll=lambda img: bars.update(task, state=f"[cyan]{img.get('status')}"),
                )
                if image.get("status") in ("pending", "processing"):
                    image = {
                        **image,
                        "error": {"code": "wait_timeout", "title": "The image was still being processed."},
                    }
            else:
                image = api.get_image(answer["id"])
        except ApiError as exc:
            image = {"id": answer.get("id"), "status": answer.get("status"), "error": exc.errors[0]}
        finish(index, image)

    def send(index: int, answer: dict[str, Any]) -> None:
        def job() -> None:
            control.check()
            bars.update(tasks[index], state="[cyan]uploading", visible=True)
            error = transfer(index, answer)
            if error is not None:
                finish(index, {"id": answer.get("id"), "status": answer.get("status"), "error": error})
                return
            settle(index, answer)

        guarded(index, answer, job)

    def dispatch(index: int, answer: dict[str, Any], submit: Callable[[int, dict[str, Any]], Any]) -> None:
        if answer.get("upload") and answer.get("id"):
            submit(index, answer)
            return
        if answer.get("status") == "duplicate":
            # Answered by sha256: nothing is sent; the existing image is named.
            outcome = {**answer, "duplicate_of": answer.get("duplicate_of") or answer.get("id")}
            advance(index, files[index].size)
        else:
            outcome = dict(answer)
            outcome.setdefault("error", {"code": "bad_answer", "title": "No upload was offered."})
        finish(index, outcome)

    def resume(index: int, entry: dict[str, Any]) -> None:
        local = files[index]
        answer = {"id": entry.get("image_id"), "status": "pending"}

        def job() -> None:
            control.check()
            bars.update(tasks[index], state="[cyan]resuming", visible=True)
            def start_over() -> None:
                store.drop(local)
                rewind(index)
                transfers.pop(index, None)
                (fresh,) = api.create_uploads([item_for(local, options)])
                dispatch(index, fresh, send)

            try:
                multipart(index, Target.from_entry(entry))
            except UploadSettled:
                # Closed meanwhile: it arrived (a run that completed but stopped before it could
                # forget the record), or it expired, which a new upload replaces.
                store.drop(local)
                if api.get_image(str(answer["id"])).get("status") == "expired":
                    start_over()
                    return
            except UploadGone:
                start_over()  # aborted, past its window, or not this caller's: a new upload
                return
            except UploadFailed as exc:
                finish(index, {**answer, "error": _with_resume_hint(exc.error, True)})
                return
            settle(index, answer)

        guarded(index, answer, job)

    pending: dict[int, dict[str, Any]] = {}
    if options.resume:
        for index, local in enumerate(files):
            entry = store.get(local)
            if entry and entry.get("upload_id") and entry.get("api", api.base_url) == api.base_url:
                pending[index] = entry
    fresh_indexes = [i for i in range(len(files)) if i not in pending]

    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency))
    all_futures: list[Future[None]] = []
    try:
        for index, entry in pending.items():
            all_futures.append(pool.submit(resume, index, entry))
        sent_by_batch: list[list[Future[None]]] = []
        for batch in batches(fresh_indexes):
            # Presigned POSTs expire (15 min at most): ask for batch k only once batch k-2 is
            # sent, so that at most two batches of them wait at any time.
            if len(sent_by_batch) >= 2:
                for future in sent_by_batch[-2]:
                    future.result()
            if control.stop.is_set():
                break
            futures: list[Future[None]] = []
            sent_by_batch.append(futures)
            answers = api.create_uploads([item_for(files[i], options) for i in batch])

            def submit(index: int, answer: dict[str, Any], futures: list[Future[None]] = futures) -> None:
                future = pool.submit(send, index, answer)
                futures.append(future)
                all_futures.append(future)

            for index, answer in zip(batch, answers, strict=True):
                dispatch(index, answer, submit)
        for future in all_futures:
            future.result()
    except KeyboardInterrupt:
        control.stop.set()  # every transfer stops at its next block
    finally:
        control_was_stopped = control.stop.is_set()
        pool.shutdown(wait=True)
    for index, outcome in enumerate(outcomes):
        if outcome is None:
            if control_was_stopped:
                interrupted(index, {}, resumable=store.get(files[index]) is not None)
            else:
                outcomes[index] = {"path": str(files[index].path), "error": {"code": "internal"}}
    return [o if o is not None else {"error": {"code": "internal"}} for o in outcomes]


def _with_resume_hint(error: dict[str, Any], resumable: bool) -> dict[str, Any]:
    error = {k: v for k, v in error.items() if k != "s3_code"}
    if resumable:
        error["title"] = f"{error.get('title', '')} (`imgdrop upload --resume` continues it)".strip()
    return error
