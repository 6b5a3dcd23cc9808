"""Direct uploads: the bytes in the request (multipart parts or a base64 data URI)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from imgdrop.auth import Principal
from imgdrop.catalogue.presenting import image_link, present_image
from imgdrop.dedupe.exact import existing_image
from imgdrop.errors import Conflict, ImgdropError, StorageError, ValidationFailed
from imgdrop.services import Services
from imgdrop.uploads.presign import check_batch_size, checked_spec, item_error, new_record


def create_direct_upload(
    principal: Principal,
    raw: dict[str, Any],
    data: bytes,
    services: Services,
    pointer: str = "",
) -> dict[str, Any]:
    """Store bytes sent through the API at the upload key; the same pipeline then runs."""
    principal.require("images:write")
    item = {**raw, "size": len(data)}
    limit = services.settings.max_direct_upload_bytes
    if not data:
        raise ValidationFailed([ImgdropError("file_blank", "File is required.", 400, f"{pointer}/file")])
    spec = checked_spec(principal, item, pointer, services, max_bytes=limit)
    # The bytes are here already: an exact repeat is answered now, and nothing is stored.
    existing = existing_image(services.repo, principal.tenant, hashlib.sha256(data).hexdigest(), principal)
    if existing:
        error = Conflict("image_already_exists", "This image was uploaded before.", f"{pointer}/file")
        return {
            "id": existing,
            "status": "duplicate",
            "error": error.as_dict(),
            "links": {"self": image_link(services, existing)},
        }
    record = new_record(principal, spec, pointer, services)
    services.objects.write(record.upload_key, data, content_type=record.content_type)
    return present_image(record, services, principal)


@dataclass
class DirectFile:
    """One file of a multipart direct upload: its item fields, its bytes, where it sat in the form."""

    fields: dict[str, Any]
    data: bytes
    pointer: str


def create_direct_uploads(
    principal: Principal, files: list[DirectFile], services: Services
) -> list[dict[str, Any]]:
    """Several files at once (the seeds' multipart batch): one outcome per file, in order."""
    principal.require("images:write")
    check_batch_size(len(files), "")
    outcomes = []
    for file in files:
        try:
            outcomes.append(create_direct_upload(principal, file.fields, file.data, services, file.pointer))
        except StorageError:
            raise  # AWS is unavailable: the request answers 503, as every route does
        except ImgdropError as exc:
            outcomes.append(item_error(exc))
    return outcomes


def decode_data_uri(value: Any, pointer: str) -> tuple[str, bytes]:
    """`data:image/png;base64,...` → (content type, bytes)."""
    if value in (None, ""):
        raise ValidationFailed([ImgdropError("file_blank", "File is required.", 400, pointer)])
    if not isinstance(value, str) or not value.startswith("data:") or ";base64," not in value:
        raise ValidationFailed(
            [
                ImgdropError(
                    "file_invalid",
                    "File must be a base64 data URI (data:image/...;base64,...).",
                    400,
                    pointer,
                )
            ]
        )
    header, _, payload = value.partition(";base64,")
    content_type = header[len("data:") :].split(";")[0].strip().lower()
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(
            [ImgdropError("file_invalid", "File is not valid base64.", 400, pointer)]
        ) from exc
    return content_type, data
