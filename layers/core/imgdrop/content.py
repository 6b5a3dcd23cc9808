"""Exact duplicates: the sha256 claim names the one canonical image of some bytes.

A claim whose image failed, expired or was deleted is stale: the same bytes uploaded again
must get a fresh chance, not become a duplicate of something that does not exist.
"""

from __future__ import annotations

from imgdrop.db import Repository

ABANDONED = frozenset({"failed", "expired"})
CLAIM = "SHA"


def existing_image(repo: Repository, tenant: str, sha256: str) -> str | None:
    """The live canonical image of these bytes, if the tenant has one."""
    owner = repo.claim_owner(tenant, CLAIM, sha256)
    if owner is None:
        return None
    record = repo.get_image(tenant, owner)
    return owner if record is not None and record.status not in ABANDONED else None


def claim_content(repo: Repository, tenant: str, sha256: str, image_id: str, now: str) -> str:
    """Claim the bytes for image_id; returns the canonical image (image_id when it won)."""
    owner = repo.claim(tenant, CLAIM, sha256, image_id, now)
    for _ in range(3):
        if owner == image_id:
            return owner
        record = repo.get_image(tenant, owner)
        if record is not None and record.status not in ABANDONED:
            return owner
        if repo.take_over_claim(tenant, CLAIM, sha256, owner, image_id, now):
            return image_id
        # Another upload of the same bytes took it over first: that one is canonical now.
        owner = repo.claim_owner(tenant, CLAIM, sha256) or image_id
    return owner


def point_claim_at(repo: Repository, tenant: str, sha256: str, image_id: str, now: str) -> None:
    """Re-point the claim (a near-duplicate rejected: its bytes belong to the canonical image)."""
    repo.set_claim(tenant, CLAIM, sha256, image_id, now)
