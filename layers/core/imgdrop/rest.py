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


def error_body(errors: list[ImgdropError]) -> str:
    """The contract's error shape: {"errors": [{status, code, title, source?}]}."""
    return json.dumps({"errors": [e.as_dict() for e in errors]})


def error_response(errors: list[ImgdropError], status: int | None = None) -> Response:
    return Response(
        status_code=status or errors[0].status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(errors),
    )


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body="" if status == 204 else json.dumps(body, default=str),  # a 204 carries no body
        headers=headers,
    )


class ImgdropResolver(APIGatewayHttpResolver):
    """Answers the authorizer's refusal before routing or body validation run, so a caller without
    a valid token learns nothing (not even which fields a body needs) from a 400 or a 404."""

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        refusal = authorizer_refusal(_authorizer_context(event))
        if refusal is not None:
            return {
                "statusCode": refusal.status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": error_body([refusal]),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """Powertools documents a 422 on every route; imgdrop answers validation errors with 400
        (see `_request_invalid`), so the 422 would be a status no route returns."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for path_item in (schema.paths or {}).values():
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                operation = getattr(path_item, method, None)
                if operation is not None and operation.responses:
                    operation.responses.pop(422, None)
                    operation.responses.pop("422", None)
        if schema.components and schema.components.schemas:
            schema.components.schemas.pop("HTTPValidationError", None)
            schema.components.schemas.pop("ValidationError", None)
        return schema


def _authorizer_context(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {}
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return authorizer.get("lambda") or {}


def authorizer_refusal(context: dict[str, Any]) -> ImgdropError | None:
    """The 401/403 the authorizer decided (it passes refusals on as context, see functions/authorizer)."""
    if not context.get("auth_error"):
        return None
    status = int(context.get("auth_status") or 401)
    return ImgdropError(str(context["auth_error"]), str(context.get("auth_title") or "Unauthorized."), status)


def build_resolver() -> APIGatewayHttpResolver:
    app = ImgdropResolver(enable_validation=True)

    @app.exception_handler(ValidationFailed)
    def _validation_failed(exc: ValidationFailed) -> Response:
        return error_response(exc.errors, 400)

    @app.exception_handler(ImgdropError)
    def _domain_error(exc: ImgdropError) -> Response:
        return error_response([exc])

    @app.exception_handler(RequestValidationError)
    def _request_invalid(exc: RequestValidationError) -> Response:
        return error_response([_sanitized(error) for error in exc.errors()], 400)

    @app.exception_handler(UnicodeDecodeError)
    def _body_not_text(exc: UnicodeDecodeError) -> Response:
        # powertools decodes a JSON body as UTF-8 before validating it: other bytes would be a 500
        error = ImgdropError("body_invalid", "The body must be a JSON object in UTF-8.", 400, "")
        return error_response([error])

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
        return ImgdropError(
            f"parameter_{kind}",
            f"Query parameter '{name}' is {kind}.",
            400,
            None,
            {"source": {"parameter": name}},
        )
    return ImgdropError(
        f"field_{kind}", f"Field '{name}' is {kind}: {error.get('msg', '')}".strip(), 400, pointer
    )


def current_principal(app: APIGatewayHttpResolver) -> Principal:
    """The caller as the authorizer verified it (its refusals were answered in `resolve`)."""
    context = app.current_event.request_context.authorizer.get_lambda or {}
    if not context.get("tenant"):
        logger.warning("A request reached the API without an authorizer context")
        raise Unauthorized("token_missing", "An Authorization: Bearer token is required.")
    return Principal.from_context(context)
