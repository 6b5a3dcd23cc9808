"""`imgdrop upload`: hash first, ask for presigned POSTs in batches, send the bytes, wait.

Per file the outcome is a dict: the image object when there is one (or the API's answer
item for a duplicate found by sha256 before any byte was sent), plus `path` (the local
file), or `{"path", "error"}` when the item was refused or the upload failed.
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
    concurrency: int = 4


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


def upload_files(
    api: Api,
    files: Sequence[LocalFile],
    options: UploadOptions,
    *,
    bars: Bars,
    on_outcome: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Upload `files`; the outcomes come back in the order of `files`.

    Raises ApiError when the API refuses a whole batch (a bad token, a malformed body).
    """
    outcomes: list[dict[str, Any] | None] = [None] * len(files)
    # Many files: a file's bar shows only while it is being sent; the total bar always shows.
    many = len(files) > MAX_BARS
    tasks = [bars.add(f.filename, f.size, "hashed", visible=not many) for f in files]
    bars.total = bars.add("[b]total", sum(f.size for f in files) or 1, "")

    def finish(index: int, outcome: dict[str, Any]) -> None:
        outcome.setdefault("path", str(files[index].path))
        outcomes[index] = outcome
        bars.update(tasks[index], state=_state_text(outcome), **({"visible": False} if many else {}))
        if on_outcome is not None:
            on_outcome(outcome)

    def send(index: int, answer: dict[str, Any]) -> None:
        try:
            _send(index, answer)
        except Exception as exc:  # a worker never takes the whole run down: the item fails
            finish(
                index,
                {
                    "id": answer.get("id"),
                    "status": answer.get("status"),
                    "error": {"code": "client_error", "title": f"{type(exc).__name__}: {exc}"},
                },
            )

    def _send(index: int, answer: dict[str, Any]) -> None:
        local = files[index]
        task = tasks[index]
        bars.update(task, state="[cyan]uploading", visible=True)
        error = post_to_s3(
            api.session,
            answer["upload"],
            local.path,
            filename=local.filename,
            content_type=local.content_type,
            on_progress=lambda n: bars.advance(task, n),
        )
        if error is not None:
            finish(index, {"id": answer.get("id"), "status": answer.get("status"), "error": error})
            return
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

    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        sent_by_batch: list[list[Future[None]]] = []
        for start, batch in zip(range(0, len(files), BATCH_SIZE), batches(files), strict=True):
            # Presigned POSTs expire (15 min at most): ask for batch k only once batch k-2 is
            # sent, so that at most two batches of them wait at any time.
            if len(sent_by_batch) >= 2:
                for future in sent_by_batch[-2]:
                    future.result()
            futures: list[Future[None]] = []
            sent_by_batch.append(futures)
            answers = api.create_uploads([item_for(f, options) for f in batch])
            for offset, answer in enumerate(answers):
                index = start + offset
                if answer.get("upload") and answer.get("id"):
                    futures.append(pool.submit(send, index, answer))
                    continue
                if answer.get("status") == "duplicate":
                    # Answered by sha256: nothing is sent; the existing image is named.
                    outcome = {**answer, "duplicate_of": answer.get("duplicate_of") or answer.get("id")}
                    bars.advance(tasks[index], files[index].size)
                else:
                    outcome = dict(answer)
                    outcome.setdefault("error", {"code": "bad_answer", "title": "No upload was offered."})
                finish(index, outcome)
        for future in (f for batch_futures in sent_by_batch for f in batch_futures):
            future.result()
    return [o if o is not None else {"error": {"code": "internal"}} for o in outcomes]
