"""Tags ({id, category, label}) and the tag rules of images: unknown ids become tag_error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imgdrop.auth import Principal
from imgdrop.errors import NotFound
from imgdrop.ids import new_id, now_iso
from imgdrop.models import TagCreate
from imgdrop.store.db import TagRecord, tenant_pk

if TYPE_CHECKING:
    from imgdrop.services import Services


def present_tag(tag: TagRecord) -> dict[str, Any]:
    return {"id": tag.id, "category": tag.category, "label": tag.label}


def create_tag(principal: Principal, body: TagCreate, services: Services) -> TagRecord:
    """A new tag; the body's fields were checked against the model (label 1..64, not blank)."""
    principal.require("tags:write")
    return _new_tag(principal.tenant, body.label.strip(), body.category, services)


def _new_tag(tenant: str, label: str, category: str | None, services: Services) -> TagRecord:
    tag_id = new_id()
    tag = TagRecord(
        tenant_pk(tenant),
        f"TAG#{tag_id}",
        tenant=tenant,
        id=tag_id,
        label=label,
        category=category,
        created_at=now_iso(),
    )
    services.repo.put_tag(tag)
    return tag


def get_tag(principal: Principal, tag_id: str, services: Services) -> TagRecord:
    principal.require("images:read")
    tag = services.repo.get_tags(principal.tenant, [tag_id]).get(tag_id)
    if tag is None:
        raise NotFound("Tag")
    return tag


def list_tags(principal: Principal, services: Services) -> list[TagRecord]:
    principal.require("images:read")
    return services.repo.list_tags(principal.tenant)


def resolve_tags(tenant: str, tag_ids: list[str], services: Services) -> list[dict[str, Any]]:
    """Known ids become full tags; unknown ones stay, marked tag_error, and never block the image."""
    known = services.repo.get_tags(tenant, tag_ids)
    return [present_tag(known[t]) if t in known else {"id": t, "error": "tag_error"} for t in tag_ids]


def resolve_labels(principal: Principal, labels: list[str], services: Services) -> list[str]:
    """Comma-separated tag names: the tag with that label, created when the caller may write tags.

    A label that can't be found or created is kept as given, and so ends as a tag_error.
    """
    if not labels:
        return []
    now = now_iso()
    ids = []
    for label in labels:
        key = label.casefold()
        owner = services.repo.claim_owner(principal.tenant, "TAGLABEL", key)
        if owner is None and principal.has("tags:write"):
            tag = _new_tag(principal.tenant, label, None, services)
            owner = services.repo.claim(principal.tenant, "TAGLABEL", key, tag.id, now)
        ids.append(owner or label)
    return ids
