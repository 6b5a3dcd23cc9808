"""Where a ready image's variants live: the public folder (served unsigned) while it is public
or unlisted, the private one (signed URLs only) while it is private.

Processing writes the variants where the image's privacy says at that moment; a change of
privacy afterwards (a PATCH, or one that landed while the image was processing) moves them:
copy to the other folder, name the new keys in one conditional write, then remove the old
files (whoever turned the image private has the CDN forget its public paths).

Whatever runs twice or at once: the write is conditional on the variants, the fields and the
run it was computed from, so one move wins; a loser removes only copies that the record does
not name, and a copy whose source is gone (another move won) starts over from the record as
it is now.
"""

from __future__ import annotations

from typing import Any

from imgdrop.errors import StorageError
from imgdrop.lifecycle import transitions
from imgdrop.services import Services
from imgdrop.store.db import ImageRecord
from imgdrop.store.storage import (
    PRIVATE_CACHE_CONTROL,
    PUBLIC_CACHE_CONTROL,
    image_prefixes,
    is_public_key,
    placed_key,
)

ATTEMPTS = 4


def is_public(record: ImageRecord) -> bool:
    return (record.fields or {}).get("privacy", "public") != "private"


def variant_keys(variants: dict[str, Any] | None) -> list[str]:
    return [
        encoding["key"]
        for variant in (variants or {}).values()
        for encoding in variant.get("formats", {}).values()
    ]


def _moved(variants: dict[str, Any], *, public: bool) -> dict[str, Any]:
    return {
        name: {
            **variant,
            "formats": {
                fmt: {**encoding, "key": placed_key(encoding["key"], public=public)}
                for fmt, encoding in variant.get("formats", {}).items()
            },
        }
        for name, variant in variants.items()
    }


def public_paths(record: ImageRecord) -> list[str]:
    """The CDN paths that may still serve this image unsigned."""
    return ["/" + image_prefixes(record.tenant, record.id)[1] + "*"]


class Move:
    """The variants copied to the folder `public` asks for, ready to be named in a conditional
    write: `commit()` once it held (the old files go), `abandon()` when it did not (the copies
    the record does not name go)."""

    def __init__(self, record: ImageRecord, public: bool, services: Services):
        self.services = services
        self.public = public
        self.moves = {
            key: placed_key(key, public=public)
            for key in variant_keys(record.variants)
            if is_public_key(key) != public
        }
        self.variants = _moved(record.variants or {}, public=public)
        cache_control = PUBLIC_CACHE_CONTROL if public else PRIVATE_CACHE_CONTROL
        self.copied = [
            target
            for source, target in self.moves.items()
            if services.objects.copy(source, target, cache_control=cache_control)
        ]

    @property
    def complete(self) -> bool:
        """Every source was there: a move that won meanwhile has removed some."""
        return len(self.copied) == len(self.moves)

    def commit(self) -> None:
        self.services.objects.delete(list(self.moves))

    def abandon(self, tenant: str, image_id: str) -> ImageRecord | None:
        return drop_unnamed(self.services, tenant, image_id, self.copied)


def drop_unnamed(services: Services, tenant: str, image_id: str, keys: list[str]) -> ImageRecord | None:
    """Delete those of `keys` the image's record, read now, does not name: files a losing writer
    made (or a swap retired) go, and never a file a settled image serves. Answers the record."""
    current = services.repo.get_image(tenant, image_id)
    named = set(variant_keys(current.variants)) if current else set()
    stray = [key for key in keys if key not in named]
    if stray:
        services.objects.delete(stray)
    return current


def move_for(record: ImageRecord, public: bool, services: Services) -> Move | None:
    """A move of a ready image's variants to the public or the private folder; None when they
    are there already (or it has none to serve)."""
    if record.status != "ready" or not record.variants:
        return None
    if all(is_public_key(key) == public for key in variant_keys(record.variants)):
        return None
    return Move(record, public, services)


def place(record: ImageRecord, services: Services) -> ImageRecord:
    """Move a ready image's variants to the folder its privacy asks for; answers the record as
    it stands afterwards (unchanged when nothing had to move or it is not ready)."""
    for _ in range(ATTEMPTS):
        move = move_for(record, is_public(record), services)
        if move is None:
            return record
        if move.complete and transitions.place_variants(services.repo, record, move.variants):
            move.commit()
            return record
        current = move.abandon(record.tenant, record.id)
        if current is None:
            return record
        record = current
    raise StorageError("The image's files kept moving; try again.")
