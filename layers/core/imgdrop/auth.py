"""Bearer tokens: issuing (local, HS256) and verifying (HS256 or an OIDC issuer's RS256 JWKS).

The authorizer function verifies and hands the api function a flat context (API Gateway
only passes primitives); `Principal.from_context` rebuilds the caller on the api side.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from imgdrop.errors import Forbidden, Unauthorized

SCOPES = frozenset({"images:read", "images:write", "tags:write", "admin"})
ALBUM_RIGHTS = frozenset({"upload", "read"})
CLOCK_LEEWAY_SECONDS = 5
# The HS256 key of the local stack only; a deployed stack generates its own in Secrets Manager.
LOCAL_DEV_SECRET = "imgdrop-local-dev-secret-not-for-deployments"  # noqa: S105 - public, local-only; deployed stacks use Secrets Manager  # nosec B105


@dataclass(frozen=True)
class Principal:
    tenant: str
    sub: str
    scopes: frozenset[str]
    # None: the scopes apply to every album of the tenant; a dict lists the only albums allowed.
    albums: dict[str, frozenset[str]] | None = field(default=None)

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise Forbidden("insufficient_scope", f"This request needs the '{scope}' scope.")

    def require_album(self, album_id: str | None, right: str) -> None:
        """Album rights narrow the scopes; an image outside any album needs no album right."""
        if album_id is None or self.albums is None or "admin" in self.scopes:
            return
        if right not in self.albums.get(album_id, frozenset()):
            raise Forbidden("album_forbidden", f"The token has no '{right}' right on this album.")

    def can_read_album(self, album_id: str | None) -> bool:
        try:
            self.require_album(album_id, "read")
        except Forbidden:
            return False
        return True

    def to_context(self) -> dict[str, str]:
        albums = None if self.albums is None else {k: sorted(v) for k, v in self.albums.items()}
        return {
            "tenant": self.tenant,
            "sub": self.sub,
            "scope": " ".join(sorted(self.scopes)),
            "albums": "" if albums is None else json.dumps(albums, separators=(",", ":")),
        }

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> Principal:
        albums_raw = context.get("albums") or ""
        albums = None
        if albums_raw:
            albums = {k: frozenset(v) for k, v in json.loads(albums_raw).items()}
        return cls(
            tenant=str(context["tenant"]),
            sub=str(context.get("sub") or ""),
            scopes=frozenset(str(context.get("scope") or "").split()),
            albums=albums,
        )


def issue_token(
    secret: str,
    *,
    tenant: str | None,
    scope: str,
    sub: str = "dev",
    albums: dict[str, list[str]] | None = None,
    ttl: int = 3600,
    claims: dict[str, Any] | None = None,
) -> str:
    """An HS256 token as the local stack (and a deployed stack's own secret) accepts it."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": sub, "scope": scope, "iat": now, "exp": now + ttl}
    if tenant is not None:
        payload["tenant"] = tenant
    if albums is not None:
        payload["albums"] = albums
    payload.update(claims or {})
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("token_missing", "An Authorization: Bearer token is required.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("token_invalid", "The Authorization header must be 'Bearer <token>'.")
    return token.strip()


class TokenVerifier:
    """Verifies HS256 tokens signed with `secret` and, when an issuer is set, its RS256 tokens."""

    def __init__(
        self,
        secret: str | None,
        *,
        oidc_issuer: str = "",
        oidc_audience: str = "",
        jwks_client: jwt.PyJWKClient | None = None,
    ):
        self._secret = secret
        self._issuer = oidc_issuer.rstrip("/")
        self._audience = oidc_audience
        self._jwks = jwks_client
        if self._issuer and self._jwks is None:
            self._jwks = jwt.PyJWKClient(f"{self._issuer}/.well-known/jwks.json", cache_keys=True)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("token_invalid", "The token is not a well-formed JWT.") from exc
        claims = self._decode(token, header.get("alg"))
        return _principal_from_claims(claims)

    def _decode(self, token: str, alg: str | None) -> dict[str, Any]:
        options: jwt.types.Options = {"require": ["exp", "sub"]}
        try:
            # The algorithm is pinned per key kind; `none` and algorithm confusion never pass.
            if alg == "HS256" and self._secret:
                return jwt.decode(
                    token, self._secret, algorithms=["HS256"], leeway=CLOCK_LEEWAY_SECONDS, options=options
                )
            if alg == "RS256" and self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                return jwt.decode(
                    token,
                    key,
                    algorithms=["RS256"],
                    issuer=self._issuer,
                    audience=self._audience or None,
                    leeway=CLOCK_LEEWAY_SECONDS,
                    options={**options, "verify_aud": bool(self._audience)},  # type: ignore[typeddict-item]
                )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token_expired", "The token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token_invalid", "The token is not valid yet.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("token_invalid", "The token could not be verified.") from exc
        raise Unauthorized("token_invalid", "The token's signing algorithm is not accepted.")


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    tenant = claims.get("tenant") or claims.get("custom:tenant")
    if not isinstance(tenant, str) or not tenant:
        raise Unauthorized("token_invalid", "The token carries no tenant.")
    scope = claims.get("scope", "")
    scopes = frozenset(scope.split() if isinstance(scope, str) else _strings(scope))
    albums_claim = claims.get("albums")
    albums = None
    if albums_claim is not None:
        if not isinstance(albums_claim, dict):
            raise Unauthorized("token_invalid", "The albums claim must map album ids to rights.")
        albums = {str(k): frozenset(_strings(v)) & ALBUM_RIGHTS for k, v in albums_claim.items()}
    return Principal(tenant=tenant, sub=str(claims.get("sub", "")), scopes=scopes & SCOPES, albums=albums)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return []
