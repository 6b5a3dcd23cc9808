"""The HTTP resolver: one place that maps domain errors to the contract's error shape.

Routes live in functions/api/app.py; they call one domain function each.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from imgdrop.auth import Principal
from imgdrop.errors import ImgdropError, Unauthorized, ValidationFailed
from imgdrop.observability import logger

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "code": {"type": "string"},
                    "title": {"type": "string"},
                    "source": {"type": "object", "properties": {"pointer": {"type": "string"}}},
                },
                "required": ["status", "code", "title"],
            },
        }
    },
    "required": ["errors"],
}


def error_response(errors: list[ImgdropError], status: int | None = None) -> Response:
    return Response(
        status_code=status or errors[0].status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"errors": [e.as_dict() for e in errors]}),
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, default=str),
        headers=headers,
    )


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.exception_handler(ValidationFailed)
    def _validation_failed(exc: ValidationFailed) -> Response:
        return error_response(exc.errors, 400)

    @app.exception_handler(ImgdropError)
    def _domain_error(exc: ImgdropError) -> Response:
        return error_response([exc])

    @app.exception_handler(RequestValidationError)
    def _request_invalid(exc: RequestValidationError) -> Response:
        return error_response([_sanitized(error) for error in exc.errors()], 400)

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response:
        return error_response([ImgdropError("not_found", "No such route.", 404)])

    return app


def _sanitized(error: dict[str, Any]) -> ImgdropError:
    """Pydantic's errors without echoing input: a code, a plain title and a JSON pointer."""
    location = [str(part) for part in error.get("loc", ())]
    where = location[0] if location else "body"
    path = location[1:]
    pointer = "/" + "/".join(path) if path else ""
    if where == "body" and error.get("type") in {"json_invalid", "model_attributes_type", "dict_type"}:
        return ImgdropError("body_invalid", "The body must be a JSON object.", 400, pointer or "")
    kind = "missing" if error.get("type") == "missing" else "invalid"
    name = path[-1] if path else where
    if where == "query":
        return ImgdropError(f"parameter_{kind}", f"Query parameter '{name}' is {kind}.", 400, None,
                            {"source": {"parameter": name}})
    return ImgdropError(f"field_{kind}", f"Field '{name}' is {kind}: {error.get('msg', '')}".strip(), 400, pointer)


def current_principal(app: APIGatewayHttpResolver) -> Principal:
    """The caller as the authorizer verified it; an authorizer's refusal becomes the 401/403 here,
    because an HTTP API can't shape the body of a refusal made at the gateway."""
    context = app.current_event.request_context.authorizer.get_lambda or {}
    if context.get("auth_error"):
        status = int(context.get("auth_status") or 401)
        error = ImgdropError(str(context["auth_error"]), str(context.get("auth_title") or "Unauthorized."), status)
        raise error
    if not context.get("tenant"):
        logger.warning("A request reached the API without an authorizer context")
        raise Unauthorized("token_missing", "An Authorization: Bearer token is required.")
    return Principal.from_context(context)
