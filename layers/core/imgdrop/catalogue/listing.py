"""Listing a tenant's images: server-side filters, full pages, cursors imgdrop issued."""

from __future__ import annotations

from typing import Any

from imgdrop.auth import Principal
from imgdrop.catalogue.presenting import present_image
from imgdrop.services import Services
from imgdrop.store.db import IMAGE_SK_PREFIX, album_listing, tenant_listing
from imgdrop.store.shards import decode_cursor, encode_cursor


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
    """A page of `limit` images (fewer only on the last page), newest first. The cursor holds
    where each shard of the listing goes on from, and is only taken back for the very listing
    (tenant, album) it was issued for: anything else is 400 cursor_invalid."""
    principal.require("images:read")
    if album_id:
        principal.require_album(album_id, "read")
    shards = album_listing(principal.tenant, album_id) if album_id else tenant_listing(principal.tenant)
    records, positions = services.repo.list_images(
        principal.tenant,
        album_id=album_id,
        limit=limit,
        positions=decode_cursor(cursor, shards, IMAGE_SK_PREFIX),
        status=status,
        tag=tag,
        readable_albums=None if album_id else _readable_albums(principal),
    )
    return {
        "items": [present_image(r, services, principal) for r in records],
        "next_cursor": encode_cursor(shards, positions),
    }


def _readable_albums(principal: Principal) -> frozenset[str] | None:
    if principal.albums is None:
        return None
    return frozenset(album for album, rights in principal.albums.items() if "read" in rights)
