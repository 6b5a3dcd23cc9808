"""Exact duplicates: the sha256 claim names the one canonical image of some bytes.

A claim is written only in the transaction that makes its image ready (imgdrop.lifecycle.transitions), so
it never names an image that is still processing: a repeat is never answered with an image
that may yet fail. A claim whose image was deleted is stale and is taken over. Dedupe weighs
only images the uploader may read: a repeat of bytes in an album they cannot read is
processed as an image of its own, and nothing tells them the other exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgdrop.lifecycle.transitions import SHA_CLAIM
from imgdrop.store.db import ImageRecord, Repository

if TYPE_CHECKING:
    from imgdrop.auth import Principal

CLAIM = SHA_CLAIM
# The outcome error of an upload whose bytes a readable ready image already holds.
ALREADY_EXISTS = {"code": "image_already_exists", "title": "This image was uploaded before."}


def canonical_image(repo: Repository, tenant: str, sha256: str) -> tuple[str | None, ImageRecord | None]:
    """Who holds these bytes' claim, and that image when it is ready (None for a stale claim)."""
    owner = repo.claim_owner(tenant, CLAIM, sha256)
    if owner is None:
        return None, None
    record = repo.get_image(tenant, owner)
    return owner, record if record is not None and record.status == "ready" else None


def existing_image(repo: Repository, tenant: str, sha256: str, reader: Principal) -> str | None:
    """The id of the canonical image of these bytes, if the reader may know it exists."""
    _, record = canonical_image(repo, tenant, sha256)
    if record is None or not reader.can_read_image(record.album_id):
        return None
    return record.id


def readable_matches(
    repo: Repository, tenant: str, matches: list[tuple[str, int]], reader: Principal
) -> list[tuple[ImageRecord, int]]:
    """Near-duplicate index matches that are ready images the reader may read, in order."""
    records = repo.get_images(tenant, [image_id for image_id, _ in matches])
    return [
        (records[image_id], distance)
        for image_id, distance in matches
        if image_id in records
        and records[image_id].status == "ready"
        and reader.can_read_image(records[image_id].album_id)
    ]


def point_claim_at(repo: Repository, tenant: str, sha256: str, image_id: str, now: str) -> None:
    """Re-point the claim at a ready image (a near-duplicate rejected: its bytes belong to it)."""
    repo.set_claim(tenant, CLAIM, sha256, image_id, now)


def readable_albums(uploader: Principal) -> dict[str, list[str]] | None:
    """What an upload stores as its uploader's album rights (ImageRecord.uploader_albums), so that
    processing and finalize weigh what the uploader may read (uploader_of): None when the token's
    reads reach every album (as they reach images in no album), else its albums' rights, and none
    at all for a token without `images:read`, which may read no image."""
    if not uploader.has("images:read"):
        return {}
    if uploader.albums is None:
        return None
    return {album: sorted(rights) for album, rights in uploader.albums.items()}


def uploader_of(record: ImageRecord) -> Principal:
    """Who uploaded the image, with the album rights their upload stored (readable_albums): what
    dedupe may show them."""
    from imgdrop.auth import Principal

    albums = record.uploader_albums
    return Principal(
        tenant=record.tenant,
        sub=record.owner or "",
        scopes=frozenset({"images:read"}),
        albums=None if albums is None else {k: frozenset(v) for k, v in albums.items()},
    )
