"""Listing a tenant's images: server-side filters, full pages, cursors imgdrop issued."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from imgdrop.auth import Principal
from imgdrop.catalogue.presenting import present_image
from imgdrop.errors import ImgdropError, ValidationFailed
from imgdrop.services import Services
from imgdrop.store.db import (
    album_gsi_pk,
    tenant_pk,
)


def list_images(
    principal: Principal,
    services: Services,
    *,
    album_id: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """A page of `limit` images (fewer only on the last page), newest first."""
    principal.require("images:read")
    if album_id:
        principal.require_album(album_id, "read")
    start = _decode_cursor(cursor, principal.tenant, album_id)
    records, last_key = services.repo.list_images(
        principal.tenant,
        album_id=album_id,
        limit=limit,
        cursor=start,
        status=status,
        tag=tag,
        readable_albums=None if album_id else _readable_albums(principal),
    )
    return {
        "items": [present_image(r, services, principal) for r in records],
        "next_cursor": _encode_cursor(last_key),
    }


def _readable_albums(principal: Principal) -> frozenset[str] | None:
    if principal.albums is None or "admin" in principal.scopes:
        return None
    return frozenset(album for album, rights in principal.albums.items() if "read" in rights)


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None, tenant: str, album_id: str | None) -> dict[str, Any] | None:
    """Only a key this API issued for this tenant and listing: anything else is cursor_invalid."""
    if not cursor:
        return None
    invalid = ValidationFailed(
        [ImgdropError("cursor_invalid", "The cursor is not one this API returned.", 400, "/cursor")]
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error) as exc:
        raise invalid from exc
    expected = {"pk": tenant_pk(tenant), "sk": None}
    if album_id:
        expected.update({"gsi1pk": album_gsi_pk(tenant, album_id), "gsi1sk": None})
    if not isinstance(key, dict) or set(key) != set(expected):
        raise invalid
    for name, value in key.items():
        text = value.get("S") if isinstance(value, dict) and set(value) == {"S"} else None
        if not isinstance(text, str) or (expected[name] is not None and text != expected[name]):
            raise invalid
        if name in ("sk", "gsi1sk") and not text.startswith("IMG#"):
            raise invalid
    return key
