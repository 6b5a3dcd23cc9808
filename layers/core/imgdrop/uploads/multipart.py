"""Large and resumable uploads: S3 multipart, every S3 request signed at one endpoint.

`POST /uploads` answers an item over MULTIPART_THRESHOLD_BYTES (or asking `"multipart": true`)
with `upload_answer`: the key, advice on part size and count, the sign URL and the deadline.
The client then speaks S3's multipart protocol itself (Uppy 6's `signRequest`, the web page, the
CLI), asking `POST /uploads/{id}/sign` (`sign`) for each request: create, upload a part, list the
parts (to resume), complete, abort. Each answer is a SigV4 query-signed URL for that image's own
upload key only; creating it binds the declared Content-Type. Completion raises the same
ObjectCreated event as a POST form, and processing re-checks the size (`size_mismatch`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imgdrop.auth import Principal
from imgdrop.errors import Conflict, ImgdropError, NotFound, ValidationFailed
from imgdrop.ids import iso, utc_now
from imgdrop.models import UPLOAD_ID_PATTERN
from imgdrop.services import Services
from imgdrop.settings import Settings
from imgdrop.store.db import ImageRecord
from imgdrop.store.storage import MultipartOperation

MIB = 1024 * 1024
# S3: parts of 5 MiB to 5 GiB (but the last), numbered 1..10,000.
MAX_PARTS = 10_000
# The advised part: big enough for few requests, small enough to resend cheaply after a drop.
MIN_ADVISED_PART = 8 * MIB
METHODS = ("POST", "PUT", "GET", "DELETE")
_UPLOAD_ID = re.compile(UPLOAD_ID_PATTERN)


def part_plan(size: int) -> tuple[int, int]:
    """(part_size, part_count) advised for `size` bytes: at least 8 MiB a part, whole MiB, and
    never more than S3's 10,000 parts."""
    part = max(MIN_ADVISED_PART, math.ceil(size / MAX_PARTS / MIB) * MIB)
    return part, max(1, math.ceil(size / part))


def wanted(size: int | None, raw: Any, settings: Settings) -> bool:
    """Whether a valid item gets a multipart upload: over the threshold, or asked for."""
    asked = raw.get("multipart") if isinstance(raw, dict) else None
    if isinstance(asked, str):
        asked = asked.lower() == "true"
    return asked is True or (size or 0) > settings.multipart_threshold_bytes


def sign_url(services: Services, image_id: str) -> str:
    settings = services.settings
    return f"{settings.api_base_url.rstrip('/')}{settings.api_base_path}/uploads/{image_id}/sign"


def upload_answer(record: ImageRecord, services: Services) -> dict[str, Any]:
    """The `upload` of a pending multipart item (the MultipartUpload model)."""
    part_size, part_count = part_plan(record.declared_bytes)
    return {
        "method": "multipart",
        "key": record.upload_key,
        "part_size": part_size,
        "part_count": part_count,
        "sign_url": sign_url(services, record.id),
        "expires_at": record.upload_expires_at,
    }


# --------------------------------------------------------------------------- the sign request


@dataclass(frozen=True)
class SignOperation:
    operation: MultipartOperation
    upload_id: str | None = None
    part_number: int | None = None


def _error(code: str, title: str, field: str) -> ImgdropError:
    return ImgdropError(code, title, 400, f"/{field}")


def parse_sign_request(raw: Any) -> SignOperation:
    """The S3 request a sign body asks for, or ValidationFailed with every mistake at once (a
    stable code and a pointer each). Fields other than method, upload_id and part_number are
    ignored (Uppy also sends key, contentType, ...); a null is an absent field."""
    if not isinstance(raw, dict):
        raise ValidationFailed([ImgdropError("body_invalid", "The body must be a JSON object.", 400, "")])
    errors: list[ImgdropError] = []
    method = raw.get("method")
    if method in (None, ""):
        errors.append(_error("method_blank", "Method is required: POST, PUT, GET or DELETE.", "method"))
        method = None
    elif not isinstance(method, str) or method.upper() not in METHODS:
        errors.append(_error("method_invalid", "Method must be POST, PUT, GET or DELETE.", "method"))
        method = None
    else:
        method = method.upper()
    upload_id = raw.get("upload_id")
    if upload_id == "":
        upload_id = None
    if upload_id is not None and not (isinstance(upload_id, str) and _UPLOAD_ID.fullmatch(upload_id)):
        errors.append(_error("upload_id_invalid", "upload_id must be the UploadId that S3 answered.",
                             "upload_id"))
        upload_id = None
        invalid_id = True
    else:
        invalid_id = False
    part_number = raw.get("part_number")
    part_ok = part_number is None or (
        isinstance(part_number, int) and not isinstance(part_number, bool) and 1 <= part_number <= MAX_PARTS
    )
    if not part_ok:
        errors.append(_error("part_number_invalid",
                             f"part_number must be a whole number from 1 to {MAX_PARTS}.", "part_number"))
    if method is not None:
        if method != "POST" and upload_id is None and not invalid_id:
            errors.append(_error("upload_id_blank", f"upload_id is required with {method}.", "upload_id"))
        if method == "PUT" and part_number is None:
            errors.append(_error("part_number_blank", "part_number is required with PUT (a part).",
                                 "part_number"))
        if method != "PUT" and part_number is not None and part_ok:
            errors.append(_error("part_number_invalid", "part_number goes with PUT (a part) only.",
                                 "part_number"))
    if errors:
        raise ValidationFailed(errors)
    assert method is not None  # noqa: S101 - no error means a method  # nosec B101
    if method == "POST":
        return SignOperation("create") if upload_id is None else SignOperation("complete", upload_id)
    if method == "PUT":
        return SignOperation("part", upload_id, part_number)
    return SignOperation("list" if method == "GET" else "abort", upload_id)


def _may_upload(principal: Principal, record: ImageRecord) -> bool:
    try:
        principal.require_album(record.album_id, "upload")
    except ImgdropError:
        return False
    return True


def sign(principal: Principal, image_id: str, raw: Any, services: Services) -> dict[str, Any]:
    """`POST /uploads/{id}/sign`: a presigned S3 request of the image's own multipart upload
    (the SignedRequest model). 400 for a body that asks for no such request; 404 for another
    tenant's image, a missing one, or one in an album the caller may not upload to (as reads);
    409 `upload_closed` once the image is no longer pending (it arrived, settled or expired) and
    `upload_expired` past its upload window."""
    principal.require("images:write")
    operation = parse_sign_request(raw)
    record = services.repo.get_image(principal.tenant, image_id)
    if record is None or not _may_upload(principal, record):
        raise NotFound("Image")
    if record.status != "pending":
        raise Conflict("upload_closed", f"This upload is closed: the image is {record.status}.")
    now = utc_now()
    remaining = (datetime.fromisoformat(record.upload_expires_at) - now).total_seconds()
    if remaining < 1:
        raise Conflict("upload_expired", "The upload window of this image has passed.")
    if operation.operation == "complete":
        # S3 dates a multipart object from the upload's start: the sweep counts the wait for
        # the object's event from this moment instead (an upload may take hours).
        services.repo.update_image(
            record, [ImageRecord.updated_at.set(iso(now))], condition=ImageRecord.status == "pending"
        )
    request = services.objects.presigned_multipart_request(
        record.upload_key,
        operation.operation,
        expires_in=int(min(services.settings.upload_expiry_seconds, remaining)),
        upload_id=operation.upload_id,
        part_number=operation.part_number,
        content_type=record.content_type,
    )
    return {"url": request.url, "key": record.upload_key, "headers": request.headers}
