"""Tokens for local use: the local stack's public HS256 secret and a minting helper (the CLI's
`imgdrop token`, the tests). Deployed stacks verify with their own secret or an OIDC issuer;
none of this ships in a Lambda layer."""

from __future__ import annotations

import time
from typing import Any

import jwt

from imgdrop.auth import DEFAULT_MAX_TOKEN_LIFETIME_SECONDS, is_valid_tenant

LOCAL_DEV_SECRET = "imgdrop-local-dev-secret-not-for-deployments"  # noqa: S105 - public, local-only  # nosec B105


def issue_token(
    secret: str,
    *,
    tenant: str | None,
    scope: str,
    sub: str = "dev",
    albums: dict[str, list[str]] | None = None,
    ttl: int = 3600,
    claims: dict[str, Any] | None = None,
    max_lifetime_seconds: int = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
) -> str:
    """An HS256 token as the local stack (and a deployed stack's own secret) accepts it.

    Raises ValueError for a token the verifier would refuse for its tenant or its lifetime
    (`tenant=None` omits the claim, and a negative ttl mints an expired token: both for tests).
    """
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "scope": scope, "iat": now, "exp": now + ttl}
    if tenant is not None:
        payload["tenant"] = tenant
    if albums is not None:
        payload["albums"] = albums
    payload.update(claims or {})
    for name in ("tenant", "custom:tenant"):
        if name in payload and not is_valid_tenant(payload[name]):
            raise ValueError(f"{name} {payload[name]!r} is not 1..64 characters of [A-Za-z0-9_-]")
    exp, iat = payload.get("exp"), payload.get("iat", now)
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp - iat > max_lifetime_seconds:
        raise ValueError(
            f"a token lifetime of {int(exp - iat)} s exceeds the maximum of {max_lifetime_seconds} s"
        )
    return jwt.encode(payload, secret, algorithm="HS256")
