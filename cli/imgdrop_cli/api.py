"""The HTTP side: imgdrop's API (JSON, bearer token) and the presigned S3 POST."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from imgdrop_cli.multipart import MultipartFile

DEFAULT_API = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT = 30.0
SETTLING = frozenset({"pending", "processing"})


class ApiError(Exception):
    """A request-level failure; `errors` is the contract's error list."""

    def __init__(self, status: int, errors: list[dict[str, Any]]):
        self.status = status
        self.errors = errors or [{"status": str(status), "code": "http_error", "title": f"HTTP {status}"}]
        first = self.errors[0]
        super().__init__(f"{first.get('code', 'error')}: {first.get('title', '')}".rstrip(": "))

    @property
    def code(self) -> str:
        return str(self.errors[0].get("code", "error"))


def make_session(pool_size: int = 10) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 10))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _errors_from(response: requests.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return body["errors"]
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers
        return [{"status": str(response.status_code), "code": "http_error", "title": str(body["message"])}]
    text = (response.text or "").strip()[:200]
    return [
        {"status": str(response.status_code), "code": "http_error", "title": text or response.reason or ""}
    ]


class Api:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session if session is not None else make_session()
        self.timeout = timeout

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):  # an absolute URL the API handed out
            return path
        if not path.startswith("/v1/") and path != "/v1":
            path = "/v1" + path
        return self.base_url + path

    def request(self, method: str, path: str, *, json: Any = None) -> Any:
        response = self.session.request(
            method,
            self._url(path),
            json=json,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise ApiError(response.status_code, _errors_from(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def create_uploads(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body = self.request("POST", "/uploads", json={"items": items})
        answered = body.get("items", []) if isinstance(body, dict) else []
        if len(answered) != len(items):
            raise ApiError(
                502,
                [
                    {
                        "status": "502",
                        "code": "bad_answer",
                        "title": f"Asked for {len(items)} uploads, got {len(answered)} answers.",
                    }
                ],
            )
        return answered

    def sign(
        self,
        sign_url: str,
        method: str,
        *,
        upload_id: str | None = None,
        part_number: int | None = None,
    ) -> dict[str, Any]:
        """`POST {sign_url}`: one presigned S3 multipart request, `{"url", "key", "headers"}`."""
        body: dict[str, Any] = {"method": method}
        if upload_id is not None:
            body["upload_id"] = upload_id
        if part_number is not None:
            body["part_number"] = part_number
        answer = self.request("POST", sign_url, json=body)
        if not isinstance(answer, dict) or not answer.get("url"):
            raise ApiError(
                502, [{"status": "502", "code": "bad_answer", "title": "The sign answer has no url."}]
            )
        return answer

    def get_image(self, image_id: str) -> dict[str, Any]:
        return self.request("GET", f"/images/{image_id}")

    def wait_image(
        self,
        image_id: str,
        *,
        timeout: float = 300.0,
        interval: float = 0.25,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> dict[str, Any]:
        """GET the image until its status leaves pending/processing (backing off to 2 s)."""
        sleep = sleep or time.sleep
        clock = clock or time.monotonic
        deadline = clock() + timeout
        while True:
            image = self.get_image(image_id)
            if on_poll is not None:
                on_poll(image)
            if image.get("status") not in SETTLING or clock() >= deadline:
                return image
            sleep(interval)
            interval = min(interval * 1.5, 2.0)


def s3_error(response: requests.Response) -> dict[str, Any]:
    """S3 answers errors in XML: <Error><Code>EntityTooLarge</Code><Message>…</Message></Error>."""
    text = response.text or ""
    code = re.search(r"<Code>([^<]+)</Code>", text)
    message = re.search(r"<Message>([^<]+)</Message>", text)
    title = message.group(1) if message else (text.strip()[:200] or f"HTTP {response.status_code}")
    what = code.group(1) if code else response.status_code
    return {
        "status": str(response.status_code),
        "code": "upload_failed",
        "title": f"The storage refused the upload ({what}): {title}",
    }


def post_to_s3(
    session: requests.Session,
    upload: Mapping[str, Any],
    path: Path,
    *,
    filename: str,
    content_type: str,
    on_progress: Callable[[int], None] | None = None,
    timeout: float = 300.0,
) -> dict[str, Any] | None:
    """The presigned multipart POST: `upload.fields` then the file, last, as `file`.

    Returns None on success, else an error object in the contract's shape.
    """
    body = MultipartFile(
        upload.get("fields") or {},
        path,
        filename=filename,
        content_type=content_type,
        on_progress=on_progress,
    )
    try:
        response = session.request(
            str(upload.get("method") or "POST"),
            upload["url"],
            data=body,
            headers=body.headers,
            timeout=timeout,
        )
    except requests.RequestException as exc:
        return {"status": "0", "code": "upload_failed", "title": f"The upload did not complete: {exc}"}
    finally:
        body.close()
    if response.status_code >= 300:
        return s3_error(response)
    return None
