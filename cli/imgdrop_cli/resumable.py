"""Large uploads: S3 multipart through imgdrop's sign endpoint, parts in parallel, resumable.

`POST /v1/uploads` answers an item over 100 MiB (or one that asks `"multipart": true`) with
`upload: {"method": "multipart", "key", "part_size", "part_count", "sign_url", "expires_at"}`,
and `POST {sign_url} {"method", "upload_id"?, "part_number"?}` presigns one S3 request for that
image's key: create (POST), a part (PUT), list (GET), complete (POST + upload id), abort (DELETE).
For one file the client
 1. creates the multipart upload and at once records {image id, upload id, key, sign url, part
    size} in the resume file, so that from then on an interruption (Ctrl-C, a dropped network)
    leaves a resumable upload;
 2. sends the parts S3 does not hold yet, `parallel` at a time, each retried (re-signed) 3 times
    with backoff;
 3. completes it with the parts' ETags and forgets the record.
`--resume` starts from the record instead: ListParts (a signed GET) says which parts S3 already
holds and only the others are sent, cut exactly as the first run cut them.

A presigned URL's query is signed, so a ListParts page cannot be turned (no part-number-marker):
the plan keeps to at most 1000 parts, S3's page size, by growing the part when needed.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from imgdrop_cli.api import Api, ApiError
from imgdrop_cli.files import LocalFile

try:  # POSIX: several imgdrop processes may share the resume file
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process at a time
    fcntl = None  # type: ignore[assignment]

MiB = 1024 * 1024
MULTIPART_THRESHOLD_BYTES = 100 * MiB  # the API's MULTIPART_THRESHOLD_BYTES
MIN_PART_BYTES = 5 * MiB  # S3's minimum for every part but the last
DEFAULT_PART_BYTES = 8 * MiB
MAX_LISTED_PARTS = 1000  # one ListParts page
RETRIES = 3
BACKOFF_S = 1.0
STATE_MAX_AGE = timedelta(days=30)
BLOCK = 256 * 1024

# Test hook: stop (as Ctrl-C would) once this many parts have been sent in this run.
STOP_AFTER_PARTS_ENV = "IMGDROP_STOP_AFTER_PARTS"


# ------------------------------------------------------------------ planning


@dataclass(frozen=True)
class Part:
    number: int  # 1-based, as S3 counts
    offset: int
    size: int


def choose_part_size(size: int, advised: int | None = None) -> int:
    """The advised part size (else 8 MiB), at least 5 MiB, grown so that the file fits in
    MAX_LISTED_PARTS parts."""
    part = max(MIN_PART_BYTES, int(advised or DEFAULT_PART_BYTES))
    return max(part, math.ceil(size / MAX_LISTED_PARTS))


def plan_parts(size: int, part_size: int) -> list[Part]:
    """Cut `size` bytes into parts of `part_size` (the last one shorter); an empty file is one
    empty part, which S3 accepts as the only part."""
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    if size == 0:
        return [Part(1, 0, 0)]
    return [
        Part(number, offset, min(part_size, size - offset))
        for number, offset in enumerate(range(0, size, part_size), start=1)
    ]


def wants_multipart(local: LocalFile, forced: bool, threshold: int = MULTIPART_THRESHOLD_BYTES) -> bool:
    return forced or local.size > threshold


# ------------------------------------------------------------------ the resume file


def default_state_path() -> Path:
    """`$XDG_CONFIG_HOME/imgdrop/uploads.json`, else `~/.config/imgdrop/uploads.json`."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "imgdrop" / "uploads.json"


class ResumeStore:
    """Interrupted multipart uploads, keyed by file path + size + mtime + sha256: a file that
    changed since is not resumed. Writes are atomic (a temporary file renamed over the old one)
    and, on POSIX, serialised across processes with a lock file."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else default_state_path()
        self._lock = threading.Lock()

    @staticmethod
    def key_for(local: LocalFile) -> str:
        path = local.path.resolve()
        mtime_ns = local.mtime_ns or path.stat().st_mtime_ns
        return f"{path}|{local.size}|{mtime_ns}|{local.sha256}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if fcntl is None:
                yield
                return
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        uploads = data.get("uploads") if isinstance(data, dict) else None
        return {k: v for k, v in (uploads or {}).items() if isinstance(v, dict)}

    def _write(self, uploads: dict[str, dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".uploads-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump({"version": 1, "uploads": uploads}, fh, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def entries(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():  # reading creates nothing
            return {}
        with self._locked():
            return self._read()

    def get(self, local: LocalFile) -> dict[str, Any] | None:
        return self.entries().get(self.key_for(local))

    def put(self, local: LocalFile, entry: dict[str, Any]) -> None:
        key = self.key_for(local)
        with self._locked():
            uploads = self._read()
            uploads = {k: v for k, v in uploads.items() if not _stale(v)}
            uploads[key] = {**entry, "created_at": entry.get("created_at") or _now()}
            self._write(uploads)

    def drop(self, local: LocalFile) -> None:
        key = self.key_for(local)
        if not self.path.exists():
            return
        with self._locked():
            uploads = self._read()
            if uploads.pop(key, None) is not None:
                self._write(uploads)


def _stale(entry: dict[str, Any]) -> bool:
    """Past its upload window (the API's `expires_at`), or older than 30 days."""
    now = datetime.now(UTC)
    if entry.get("expires_at") and _parse_time(entry["expires_at"]) < now:
        return True
    return _parse_time(entry.get("created_at")) < now - STATE_MAX_AGE


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ------------------------------------------------------------------ outcomes


class Interrupted(Exception):
    """Ctrl-C (or the test hook): the upload stops; its resume record is kept."""


class UploadFailed(Exception):
    """The upload could not finish; `error` is in the contract's error shape."""

    def __init__(self, error: dict[str, Any]):
        self.error = error
        super().__init__(f"{error.get('code')}: {error.get('title')}")


class UploadGone(UploadFailed):
    """The multipart upload or its image is no more (404, NoSuchUpload): start a new one."""


class UploadSettled(UploadFailed):
    """The image has settled already (409 from the sign endpoint): nothing left to send."""


class RunControl:
    """What every worker of one run shares: the stop flag (Ctrl-C) and the part counter behind
    the `IMGDROP_STOP_AFTER_PARTS` test hook."""

    def __init__(self, stop_after_parts: int | None = None):
        self.stop = threading.Event()
        self.stop_after_parts = stop_after_parts
        self.parts_sent = 0
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> RunControl:
        raw = os.environ.get(STOP_AFTER_PARTS_ENV, "").strip()
        return cls(int(raw) if raw.isdigit() else None)

    def check(self) -> None:
        if self.stop.is_set():
            raise Interrupted("interrupted")

    def part_sent(self) -> None:
        with self._lock:
            self.parts_sent += 1
            if self.stop_after_parts is not None and self.parts_sent >= self.stop_after_parts:
                self.stop.set()


# ------------------------------------------------------------------ S3 responses


def _xml_text(tag: str, text: str) -> str | None:
    found = re.search(rf"<{tag}>([^<]*)</{tag}>", text)
    return html.unescape(found.group(1)) if found else None


def parse_list_parts(text: str) -> dict[int, tuple[str, int]]:
    """ListPartsResult → {part number: (ETag, size)}."""
    parts: dict[int, tuple[str, int]] = {}
    for block in re.findall(r"<Part>(.*?)</Part>", text, re.S):
        number, etag, size = (_xml_text(t, block) for t in ("PartNumber", "ETag", "Size"))
        if number and number.isdigit() and etag:
            parts[int(number)] = (etag, int(size) if size and size.isdigit() else -1)
    return parts


def complete_body(etags: dict[int, str]) -> bytes:
    rows = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{html.escape(etags[n], quote=False)}</ETag></Part>"
        for n in sorted(etags)
    )
    return f"<CompleteMultipartUpload>{rows}</CompleteMultipartUpload>".encode()


def _storage_error(response: requests.Response, what: str) -> dict[str, Any]:
    text = response.text or ""
    code = _xml_text("Code", text) or str(response.status_code)
    message = _xml_text("Message", text) or text.strip()[:200] or f"HTTP {response.status_code}"
    return {
        "status": str(response.status_code),
        "code": "upload_failed",
        "title": f"The storage refused {what} ({code}): {message}",
        "s3_code": code,
    }


_RETRYABLE_CODES = frozenset({"RequestTimeout", "InternalError", "SlowDown", "ServiceUnavailable"})


def _retryable(status: int, s3_code: str | None = None) -> bool:
    # 403: an expired presigned URL (re-signed on the next try); 400 RequestTimeout: a slow body;
    # a 200 whose body is an <Error> (CompleteMultipartUpload may answer so): by its code.
    return status >= 500 or status in (403, 408, 429) or s3_code in _RETRYABLE_CODES


class _PartBody:
    """Bytes [offset, offset + size) of a file as a streamed request body; reports progress and
    stops mid-part when the run is interrupted."""

    def __init__(self, path: Path, part: Part, on_progress: Callable[[int], None], control: RunControl):
        self.path, self.part, self.on_progress, self.control = path, part, on_progress, control
        self.left = part.size
        self.sent = 0
        self._fh = path.open("rb")
        self._fh.seek(part.offset)

    def __len__(self) -> int:
        return self.part.size

    def read(self, size: int = -1) -> bytes:
        self.control.check()
        want = self.left if size is None or size < 0 else min(size, self.left, BLOCK)
        data = self._fh.read(want) if want > 0 else b""
        self.left -= len(data)
        self.sent += len(data)
        if data:
            self.on_progress(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(BLOCK):
            yield data

    def close(self) -> None:
        self._fh.close()


# ------------------------------------------------------------------ one file


@dataclass
class Target:
    """One image's multipart upload: what the API answered, and S3's upload id once created."""

    image_id: str
    sign_url: str
    key: str
    part_size: int
    upload_id: str | None = None
    api: str = ""
    expires_at: str | None = None

    @classmethod
    def from_answer(cls, answer: dict[str, Any], size: int, part_size: int | None, api: str) -> Target:
        upload = answer["upload"]
        return cls(
            image_id=str(answer["id"]),
            sign_url=str(upload["sign_url"]),
            key=str(upload.get("key") or ""),
            part_size=choose_part_size(size, part_size or upload.get("part_size")),
            api=api,
            expires_at=upload.get("expires_at"),
        )

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> Target:
        return cls(
            image_id=str(entry["image_id"]),
            sign_url=str(entry["sign_url"]),
            key=str(entry.get("key") or ""),
            part_size=int(entry["part_size"]),
            upload_id=str(entry["upload_id"]),
            api=str(entry.get("api") or ""),
            expires_at=entry.get("expires_at"),
        )

    def entry(self, local: LocalFile) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "upload_id": self.upload_id,
            "key": self.key,
            "sign_url": self.sign_url,
            "part_size": self.part_size,
            "api": self.api,
            "expires_at": self.expires_at,
            "filename": local.filename,
            "size": local.size,
            "sha256": local.sha256,
        }


class MultipartSender:
    """Sends one file as an S3 multipart upload (see the module's docstring)."""

    def __init__(
        self,
        api: Api,
        local: LocalFile,
        target: Target,
        *,
        store: ResumeStore,
        control: RunControl,
        parallel: int = 4,
        on_progress: Callable[[int], None] | None = None,
        on_state: Callable[[str], None] | None = None,
        retries: int = RETRIES,
        backoff: float = BACKOFF_S,
        sleep: Callable[[float], None] | None = None,
        timeout: float = 300.0,
    ):
        self.api, self.local, self.target = api, local, target
        self.store, self.control = store, control
        self.parallel = max(1, parallel)
        self.on_progress = on_progress or (lambda n: None)
        self.on_state = on_state or (lambda s: None)
        self.retries, self.backoff = retries, backoff
        self.sleep = sleep or time.sleep
        self.timeout = timeout
        self.plan = plan_parts(local.size, target.part_size)
        self.etags: dict[int, str] = {}
        self.sent_parts: list[int] = []  # the part numbers this run sent, in completion order
        self.reused_parts: list[int] = []  # the parts S3 held already (a resumed upload)
        self._lock = threading.Lock()
        self._failed = threading.Event()

    # -- signing and one S3 call, with retries

    def _sign(self, method: str, *, upload_id: str | None = None, part_number: int | None = None) -> dict:
        try:
            return self.api.sign(self.target.sign_url, method, upload_id=upload_id, part_number=part_number)
        except ApiError as exc:
            error = {**exc.errors[0], "status": str(exc.status)}
            # 404: not (or no longer) this caller's image; 409 upload_expired: its window passed
            if exc.status == 404 or (exc.status == 409 and exc.code == "upload_expired"):
                raise UploadGone(error) from exc
            if exc.status == 409:  # upload_closed: it arrived, settled or expired meanwhile
                raise UploadSettled(error) from exc
            raise UploadFailed(error) from exc

    def _call(
        self,
        what: str,
        method: str,
        *,
        upload_id: str | None = None,
        part_number: int | None = None,
        body: Callable[[], Any] | None = None,
        extra_headers: dict[str, str] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> requests.Response:
        """Sign, send, and retry (re-signing) on network errors and retryable statuses."""
        attempt = 0
        while True:
            self.control.check()
            signed = self._retrying_sign(method, upload_id=upload_id, part_number=part_number)
            data = body() if body is not None else None
            headers = {**(extra_headers or {}), **(signed.get("headers") or {})}  # signed ones win
            if isinstance(data, _PartBody):
                headers["Content-Length"] = str(len(data))
            error: dict[str, Any]
            try:
                response = self.api.session.request(
                    method, signed["url"], data=data, headers=headers, timeout=self.timeout
                )
            except Interrupted:
                raise
            except requests.RequestException as exc:
                error = {"status": "0", "code": "upload_failed", "title": f"{what} did not complete: {exc}"}
            else:
                if response.status_code < 300 and "<Error>" not in (response.text or "")[:512]:
                    return response
                error = _storage_error(response, what)
                if response.status_code == 404 or error.get("s3_code") == "NoSuchUpload":
                    raise UploadGone(error)
                if not _retryable(response.status_code, error.get("s3_code")):
                    raise UploadFailed(error)
            finally:
                if isinstance(data, _PartBody):
                    data.close()
            if on_retry is not None:
                on_retry()
            self.control.check()
            attempt += 1
            if attempt > self.retries or self._failed.is_set():
                raise UploadFailed(error)
            self.sleep(self.backoff * 2 ** (attempt - 1))

    def _retrying_sign(self, method: str, **kw: Any) -> dict:
        attempt = 0
        while True:
            try:
                return self._sign(method, **kw)
            except (UploadGone, UploadSettled):
                raise
            except UploadFailed as exc:
                status = int(exc.error.get("status") or 0)
                if not (status >= 500 or status in (0, 429)) or attempt >= self.retries:
                    raise
            attempt += 1
            self.sleep(self.backoff * 2 ** (attempt - 1))

    # -- the steps

    def create(self) -> str:
        response = self._call("creating the multipart upload", "POST")
        upload_id = _xml_text("UploadId", response.text or "")
        if not upload_id:
            raise UploadFailed(
                {"code": "upload_failed", "title": "The storage answered no UploadId to the create request."}
            )
        self.target.upload_id = upload_id
        self.store.put(self.local, self.target.entry(self.local))
        return upload_id

    def list_parts(self) -> dict[int, tuple[str, int]]:
        response = self._call("listing the parts", "GET", upload_id=self.target.upload_id)
        return parse_list_parts(response.text or "")

    def send_part(self, part: Part) -> None:
        sent = [0]

        def progress(n: int) -> None:
            sent[0] += n
            self.on_progress(n)

        def body() -> _PartBody:
            return _PartBody(self.local.path, part, progress, self.control)

        def undo() -> None:  # a failed attempt's bytes leave the bar again
            self.on_progress(-sent[0])
            sent[0] = 0

        try:
            response = self._call(
                f"part {part.number}",
                "PUT",
                upload_id=self.target.upload_id,
                part_number=part.number,
                body=body,
                on_retry=undo,
            )
        except BaseException:
            undo()
            raise
        etag = response.headers.get("ETag") or response.headers.get("etag")
        if not etag:
            raise UploadFailed(
                {"code": "upload_failed", "title": f"The storage answered part {part.number} with no ETag "
                 "(does the bucket's CORS expose it?)."}
            )
        with self._lock:
            self.etags[part.number] = etag
            self.sent_parts.append(part.number)
            done = len(self.etags)
        self.on_state(f"part {done}/{len(self.plan)}")
        self.control.part_sent()

    def complete(self) -> None:
        body = complete_body(self.etags)
        self._call(
            "completing the upload",
            "POST",
            upload_id=self.target.upload_id,
            body=lambda: body,
            extra_headers={"Content-Type": "application/xml"},
        )

    def summary(self) -> dict[str, Any]:
        """What this run did: the outcome's `transfer`."""
        return {
            "method": "multipart",
            "upload_id": self.target.upload_id,
            "part_size": self.target.part_size,
            "parts": len(self.plan),
            "sent": sorted(self.sent_parts),
            "reused": list(self.reused_parts),
        }

    def run(self) -> None:
        """Create (or, with an upload id, list), send the missing parts, complete.

        Raises Interrupted (the record stays), UploadGone / UploadSettled (see them) or
        UploadFailed (the record stays too: `--resume` may finish it later)."""
        missing = self.plan
        if self.target.upload_id:
            self.on_state("listing parts")
            listed = self.list_parts()
            have = {
                n: etag
                for n, (etag, size) in listed.items()
                if n <= len(self.plan) and size in (-1, self.plan[n - 1].size)
            }
            self.etags.update(have)
            self.reused_parts = sorted(have)
            missing = [p for p in self.plan if p.number not in have]
            already = sum(self.plan[n - 1].size for n in have)
            if already:
                self.on_progress(already)
            self.on_state(f"resuming: {len(have)}/{len(self.plan)} parts stored")
        else:
            self.on_state("creating")
            self.create()
        if missing:
            self._send_parts(missing)
        self.control.check()
        self.on_state("completing")
        self.complete()
        self.store.drop(self.local)

    def _send_parts(self, parts: list[Part]) -> None:
        queue = list(parts)
        queue_lock = threading.Lock()

        def worker() -> None:
            while not self._failed.is_set():
                self.control.check()
                with queue_lock:
                    if not queue:
                        return
                    part = queue.pop(0)
                try:
                    self.send_part(part)
                except BaseException:
                    self._failed.set()  # the other workers take no new part and stop retrying
                    raise

        with ThreadPoolExecutor(max_workers=min(self.parallel, len(parts))) as pool:
            futures = [pool.submit(worker) for _ in range(min(self.parallel, len(parts)))]
        errors = [f.exception() for f in futures if f.exception() is not None]
        # A real failure wins over the interruptions it caused in the other workers.
        for exc in errors:
            if not isinstance(exc, Interrupted):
                raise exc
        if errors:
            raise errors[0]
