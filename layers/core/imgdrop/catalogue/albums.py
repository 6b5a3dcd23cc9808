"""Albums ({id, name, created_at}); per-album rights come from the token (imgdrop.auth)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imgdrop.auth import Principal
from imgdrop.errors import NotFound
from imgdrop.ids import new_id, now_iso
from imgdrop.models import AlbumCreate
from imgdrop.store.db import AlbumRecord, tenant_pk

if TYPE_CHECKING:
    from imgdrop.services import Services


def present_album(album: AlbumRecord) -> dict[str, Any]:
    return {"id": album.id, "name": album.name, "created_at": album.created_at}


def create_album(principal: Principal, body: AlbumCreate, services: Services) -> AlbumRecord:
    """A new album; the body's fields were checked against the model (name 1..100, not blank)."""
    principal.require("images:write")
    name = body.name
    album_id = new_id()
    album = AlbumRecord(
        tenant_pk(principal.tenant),
        f"ALB#{album_id}",
        tenant=principal.tenant,
        id=album_id,
        name=name.strip(),
        created_at=now_iso(),
    )
    services.repo.put_album(album)
    return album


def get_album(principal: Principal, album_id: str, services: Services) -> AlbumRecord:
    """The album, or 404: another tenant's album, and one the token may not read, answer exactly
    like a missing one."""
    principal.require("images:read")
    if not principal.can_read_album(album_id):
        raise NotFound("Album")
    album = services.repo.get_album(principal.tenant, album_id)
    if album is None:
        raise NotFound("Album")
    return album
