"""HTTP API Lambda authorizer (payload 2.0, simple responses).

It verifies the bearer token and passes the caller on as context. A refusal is passed on too
(`auth_error`), and the api function answers it with 401/403 (or 503) in imgdrop's error shape:
API Gateway's own refusal of an HTTP API request can only say {"message": "Forbidden"}.

Nothing is fetched at import: the verifier is built on the first request and reads the HS256
secret then, and again as imgdrop.auth.TokenVerifier decides (TTL, rotation).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.auth import TokenVerifier, bearer_token
from imgdrop.errors import ImgdropError
from imgdrop.observability import logger
from imgdrop.settings import get_settings
from imgdrop.snapshot import before_snapshot

verifier: TokenVerifier | None = None  # built on first use

# The JWT library and the secrets reader are loaded on the first request, or into a SnapStart
# snapshot; the secret itself is read on a request, never into a snapshot.
before_snapshot("jwt", "aws_lambda_powertools.utilities.parameters")


def _secret() -> str | None:
    """The HS256 secret as it is now: the verifier keeps it for its TTL, so read it fresh."""
    settings = get_settings()
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.jwt_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(settings.jwt_secret_arn, force_fetch=True)
        return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _verifier() -> TokenVerifier:
    global verifier
    if verifier is None:
        settings = get_settings()
        verifier = TokenVerifier(
            secret_provider=_secret,
            oidc_issuer=settings.oidc_issuer,
            oidc_audience=settings.oidc_audience,
            max_lifetime_seconds=settings.max_token_lifetime_seconds,
        )
    return verifier


@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    try:
        principal = _verifier().verify(bearer_token(event.headers.get("authorization")))
    except ImgdropError as exc:
        logger.info("Token refused", extra={"code": exc.code})
        return {
            "isAuthorized": True,
            "context": {"auth_error": exc.code, "auth_title": exc.title, "auth_status": str(exc.status)},
        }
    return {"isAuthorized": True, "context": principal.to_context()}
