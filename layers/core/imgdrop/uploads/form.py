"""multipart/form-data bodies (the seeds' direct-upload style), parsed with the standard library."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from imgdrop.errors import ImgdropError, ValidationFailed


@dataclass
class FilePart:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Form:
    files: list[FilePart] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def parse_form(content_type: str, body: bytes) -> Form:
    if "boundary=" not in content_type:
        raise ValidationFailed(
            [ImgdropError("body_invalid", "multipart/form-data needs a boundary.", 400, "")]
        )
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ValidationFailed(
            [ImgdropError("body_invalid", "The multipart body could not be read.", 400, "")]
        )
    form = Form()
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files.append(FilePart(str(name), filename, part.get_content_type(), payload))
        else:
            form.fields[str(name)] = payload.decode("utf-8", errors="replace")
    return form


def item_fields_for(form: Form, part: FilePart) -> dict[str, Any]:
    """A file's item fields: its `<part>-data` JSON part, or the plain form fields for a single file."""
    data_part = form.fields.get(f"{part.name}-data")
    if data_part is not None:
        try:
            fields = json.loads(data_part)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                [
                    ImgdropError(
                        "body_invalid",
                        f"'{part.name}-data' must be a JSON object.",
                        400,
                        f"/{part.name}-data",
                    )
                ]
            ) from exc
        if not isinstance(fields, dict):
            raise ValidationFailed(
                [
                    ImgdropError(
                        "body_invalid",
                        f"'{part.name}-data' must be a JSON object.",
                        400,
                        f"/{part.name}-data",
                    )
                ]
            )
        return fields
    if len(form.files) == 1:
        return {k: v for k, v in form.fields.items() if not k.endswith("-data")}
    return {}
