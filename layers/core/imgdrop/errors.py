"""Domain errors. Each carries the HTTP status, the stable snake_case code and a title.

Handlers map them to the error shape of the contract in one place (imgdrop.rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImgdropError(Exception):
    code: str
    title: str
    status: int = 400
    pointer: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.title}")

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": str(self.status), "code": self.code, "title": self.title}
        if self.pointer is not None:
            body["source"] = {"pointer": self.pointer}
        body.update(self.meta)
        return body


class ValidationFailed(ImgdropError):
    """One or more field errors of a single request; `errors` holds each."""

    def __init__(self, errors: list[ImgdropError]):
        first = errors[0]
        super().__init__(first.code, first.title, 400, first.pointer)
        self.errors = errors


class ImageRejected(ImgdropError):
    """The bytes are not an image imgdrop accepts (file_error, unsupported_format, ...)."""

    def __init__(self, code: str, title: str):
        super().__init__(code, title, 422)


class NotFound(ImgdropError):
    def __init__(self, what: str = "Resource"):
        super().__init__("not_found", f"{what} not found.", 404)


class Unauthorized(ImgdropError):
    def __init__(self, code: str, title: str):
        super().__init__(code, title, 401)


class Forbidden(ImgdropError):
    def __init__(self, code: str, title: str):
        super().__init__(code, title, 403)


class Conflict(ImgdropError):
    def __init__(self, code: str, title: str, pointer: str | None = None):
        super().__init__(code, title, 409, pointer)


class StorageError(ImgdropError):
    """A data-access failure, re-raised from the SDK's exception."""

    def __init__(self, title: str):
        super().__init__("storage_error", title, 503)
