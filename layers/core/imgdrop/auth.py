"""Bearer tokens: issuing (local, HS256) and verifying (HS256 or an OIDC issuer's RS256 JWKS).

The authorizer function verifies and hands the api function a flat context (API Gateway
only passes primitives); `Principal.from_context` rebuilds the caller on the api side.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.shared.lazy_import import LazyLoader

from imgdrop.errors import Forbidden, StorageError, Unauthorized

if TYPE_CHECKING:
    import jwt
else:
    # PyJWT (and cryptography under it) load on the first token verified: the API function,
    # which only reads the authorizer's context, never pays for them.
    jwt = LazyLoader("jwt", globals(), "jwt")

SCOPES = frozenset({"images:read", "images:write", "tags:write", "admin"})
ALBUM_RIGHTS = frozenset({"upload", "read"})
CLOCK_LEEWAY_SECONDS = 5
# Tenants name S3 keys (uploads/{tenant}/{id}) and DynamoDB keys (T#{tenant}): no `/`, no `#`.
TENANT_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Longest a token may live: exp - iat (exp - now without iat). The local dev token lives 24 h.
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
# The HS256 secret is fetched on first use and again once this old; a signature failure with a
# secret at least SECRET_REFETCH_AFTER_SECONDS old fetches it once more (a rotation) and retries.
SECRET_TTL_SECONDS = 300.0
SECRET_REFETCH_AFTER_SECONDS = 30.0
# The HS256 key of the local stack only; a deployed stack generates its own in Secrets Manager.

_log = logging.getLogger(__name__)


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
        """Album rights narrow the scopes, `admin` too, to the listed albums: under an albums
        claim, images in no album are out of reach too (album_id None)."""
        if self.albums is None:
            return
        if album_id is None:
            raise Forbidden("album_forbidden", "The token's rights are limited to its albums; name one.")
        if right not in self.albums.get(album_id, frozenset()):
            raise Forbidden("album_forbidden", f"The token has no '{right}' right on this album.")

    def require_whole_tenant(self, scope: str) -> None:
        """`scope` over every album of the tenant: what reaches all its images at once (webhooks
        carry every image's events, a reprocess job renders every image) is not for a token
        limited to some albums, whatever its scopes."""
        self.require(scope)
        if self.albums is not None:
            raise Forbidden("album_forbidden",
                            "The token's rights are limited to its albums; this reaches them all.")

    def can_read_image(self, album_id: str | None) -> bool:
        """Whether the token may read an image in `album_id`: `images:read`, and the read right on
        the album under a claim. Nothing may reveal an image for which this is false."""
        return self.has("images:read") and self.can_read_album(album_id)

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


def is_valid_tenant(value: Any) -> bool:
    return isinstance(value, str) and TENANT_PATTERN.fullmatch(value) is not None


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("token_missing", "An Authorization: Bearer token is required.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("token_invalid", "The Authorization header must be 'Bearer <token>'.")
    return token.strip()


class ConfigurationError(RuntimeError):
    """The deployment is misconfigured: the authorizer refuses to run rather than guess."""


class TokenVerifier:
    """Verifies HS256 tokens signed with the stack's secret and, when an issuer is set, its RS256
    tokens for `oidc_audience`.

    The secret is either fixed (`secret`) or read through `secret_provider` (e.g. from Secrets
    Manager): on the first HS256 token, again once SECRET_TTL_SECONDS old, and once more when a
    signature fails with a secret at least SECRET_REFETCH_AFTER_SECONDS old (it was rotated).
    A provider that fails keeps the cached secret in use (and is asked again a little later);
    with none cached yet, the request is answered 503 `storage_error`.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        secret_provider: Callable[[], str | None] | None = None,
        oidc_issuer: str = "",
        oidc_audience: str = "",
        jwks_client: jwt.PyJWKClient | None = None,
        max_lifetime_seconds: int = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
        secret_ttl_seconds: float = SECRET_TTL_SECONDS,
        secret_refetch_after_seconds: float = SECRET_REFETCH_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if secret is not None and secret_provider is not None:
            raise ValueError("pass either secret or secret_provider, not both")
        self._issuer = oidc_issuer.strip().rstrip("/")
        self._audience = oidc_audience.strip()
        if self._issuer and not self._audience:
            # Without an audience every token of the issuer would pass, e.g. a Cognito pool's
            # tokens for any of its app clients.
            raise ConfigurationError(
                f"OIDC_ISSUER is set ({self._issuer}) but OIDC_AUDIENCE is empty: set OIDC_AUDIENCE "
                "(the OidcAudience parameter) to the app client id that imgdrop's tokens are issued for."
            )
        self._jwks = jwks_client
        if self._issuer and self._jwks is None:
            self._jwks = jwt.PyJWKClient(f"{self._issuer}/.well-known/jwks.json", cache_keys=True)
        self._max_lifetime = max_lifetime_seconds
        self._provider = secret_provider
        self._secret = secret
        self._ttl = secret_ttl_seconds
        self._refetch_after = secret_refetch_after_seconds
        self._fetched_at: float | None = None  # when the cached secret was read
        self._attempted_at = 0.0  # when it was last asked for, read or not
        self._next_fetch_at = 0.0  # when to read it again
        self._lock = threading.Lock()
        self.clock = clock

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("token_invalid", "The token is not a well-formed JWT.") from exc
        claims = self._decode(token, header.get("alg"))
        self._check_lifetime(claims)
        return _principal_from_claims(claims)

    # ------------------------------------------------------------------ decoding

    def _decode(self, token: str, alg: str | None) -> dict[str, Any]:
        try:
            # The algorithm is pinned per key kind; `none` and algorithm confusion never pass.
            if alg == "HS256":
                return self._decode_hs256(token)
            if alg == "RS256" and self._jwks is not None:
                return self._decode_rs256(token, self._jwks)
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token_expired", "The token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token_invalid", "The token is not valid yet.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("token_invalid", "The token could not be verified.") from exc
        raise Unauthorized("token_invalid", "The token's signing algorithm is not accepted.")

    def _decode_hs256(self, token: str) -> dict[str, Any]:
        secret = self._current_secret()
        if not secret:
            raise Unauthorized("token_invalid", "The token's signing algorithm is not accepted.")
        try:
            return _decode_hs256(token, secret)
        except jwt.InvalidSignatureError:
            rotated = self._refetch_after_failure(secret)
            if rotated is None:
                raise
            return _decode_hs256(token, rotated)

    def _decode_rs256(self, token: str, jwks: jwt.PyJWKClient) -> dict[str, Any]:
        key = jwks.get_signing_key_from_jwt(token).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=self._issuer,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iss"], "verify_aud": False},
        )
        self._check_audience(claims)
        return claims

    def _check_audience(self, claims: dict[str, Any]) -> None:
        """`aud` names the audience (an OIDC ID token); a token without `aud` passes only as a
        Cognito access token: `token_use` "access" and `client_id` the audience."""
        if "aud" in claims:
            aud = claims["aud"]
            audiences = [aud] if isinstance(aud, str) else aud
            if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
                raise jwt.InvalidAudienceError("Invalid claim format in token")
            if self._audience not in audiences:
                raise jwt.InvalidAudienceError("Audience doesn't match")
            return
        if claims.get("token_use") == "access" and claims.get("client_id") == self._audience:
            return
        raise jwt.MissingRequiredClaimError("aud")

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """exp - iat, or exp - now without iat (then with the clock leeway), at most the maximum."""
        try:
            exp = int(claims["exp"])
            iat = int(claims["iat"]) if "iat" in claims else None
        except (TypeError, ValueError) as exc:
            raise Unauthorized("token_invalid", "The token's exp or iat is not a number.") from exc
        if iat is not None:
            lifetime, limit = exp - iat, self._max_lifetime
        else:
            lifetime, limit = exp - int(time.time()), self._max_lifetime + CLOCK_LEEWAY_SECONDS
        if lifetime > limit:
            raise Unauthorized(
                "token_invalid", f"The token lives longer than the {self._max_lifetime} s allowed."
            )

    # ------------------------------------------------------------------ the HS256 secret

    def _current_secret(self) -> str | None:
        if self._provider is None:
            return self._secret
        with self._lock:
            now = self.clock()
            if self._fetched_at is None or now >= self._next_fetch_at:
                self._fetch(now)
            return self._secret

    def _refetch_after_failure(self, failed: str) -> str | None:
        """The secret once more after a signature failure, if it may have been rotated since."""
        if self._provider is None:
            return None
        with self._lock:
            now = self.clock()
            # At most once per SECRET_REFETCH_AFTER_SECONDS: forged tokens cost no extra fetches.
            if self._secret == failed and now - self._attempted_at >= self._refetch_after:
                self._fetch(now)
            return self._secret if self._secret and self._secret != failed else None

    def _fetch(self, now: float) -> None:
        if self._provider is None:
            return
        self._attempted_at = now
        try:
            value = self._provider()
        except Exception as exc:  # noqa: BLE001 - any failure of the store: keep what we have
            if self._fetched_at is None:
                raise StorageError("The token signing key could not be read.") from exc
            _log.warning("The token signing key could not be refreshed; the cached one stays in use: %s", exc)
            self._next_fetch_at = now + self._refetch_after
            return
        self._secret = value
        self._fetched_at = now
        self._next_fetch_at = now + self._ttl


def _decode_hs256(token: str, secret: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        leeway=CLOCK_LEEWAY_SECONDS,
        options={"require": ["exp", "sub"]},
    )
    return claims


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    # `tenant` wins when present, even when invalid: `custom:tenant` may be user-writable.
    tenant = claims["tenant"] if "tenant" in claims else claims.get("custom:tenant")
    if tenant is None or tenant == "":
        raise Unauthorized("token_invalid", "The token carries no tenant.")
    if not is_valid_tenant(tenant):
        raise Unauthorized("token_invalid", "The token's tenant must be 1..64 characters of [A-Za-z0-9_-].")
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
