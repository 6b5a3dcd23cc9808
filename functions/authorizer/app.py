"""HTTP API Lambda authorizer (payload 2.0, simple responses).

It verifies the bearer token and passes the caller on as context. A refusal is passed on too
(`auth_error`), and the api function answers it with 401/403 in imgdrop's error shape:
API Gateway's own refusal of an HTTP API request can only say {"message": "Forbidden"}.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.auth import TokenVerifier, bearer_token
from imgdrop.errors import ImgdropError
from imgdrop.observability import logger


def _secret() -> str | None:
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    arn = os.environ.get("JWT_SECRET_ARN")
    return parameters.get_secret(arn, max_age=300) if arn else None


verifier = TokenVerifier(
    _secret(),
    oidc_issuer=os.environ.get("OIDC_ISSUER", ""),
    oidc_audience=os.environ.get("OIDC_AUDIENCE", ""),
)


@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    try:
        principal = verifier.verify(bearer_token(event.headers.get("authorization")))
    except ImgdropError as exc:
        logger.info("Token refused", extra={"code": exc.code})
        return {
            "isAuthorized": True,
            "context": {"auth_error": exc.code, "auth_title": exc.title, "auth_status": str(exc.status)},
        }
    return {"isAuthorized": True, "context": principal.to_context()}
