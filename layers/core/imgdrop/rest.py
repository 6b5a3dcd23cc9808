"""The HTTP resolver: one place that maps domain errors to the contract's error shape.

Routes live in functions/api/app.py; they call one domain function each.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from imgdrop.auth import Principal
from imgdrop.errors import ImgdropError, Unauthorized, ValidationFailed
from imgdrop.models import ErrorBody, component_schemas
from imgdrop.observability import logger
from imgdrop.validation import field_errors

# What each error status means on any route; its body is always the ErrorBody model.
ERROR_STATUSES = {
    400: "The request is malformed, or a field is invalid: a stable code and a JSON pointer per error.",
    401: "token_missing, token_invalid or token_expired.",
    403: "insufficient_scope or album_forbidden.",
    404: "not_found (also another tenant's, or an unreadable album's), or what the code names.",
    413: "file_too_large: direct uploads are limited to 4 MB.",
    503: "storage_error: AWS is unavailable; try again.",
}


def documented(
    answers: dict[int, tuple[str, Any]], *errors: int, auth: bool = True
) -> dict[int, dict[str, Any]]:
    """A route's `responses`: its answers ({status: (description, model or None)}), the error
    statuses it can answer (401 and 403 with `auth`; 503 `storage_error` always), each with its schema."""
    responses: dict[int, dict[str, Any]] = {}
    for status, (description, model) in answers.items():
        responses[status] = {"description": description}
        if model is not None:
            responses[status]["content"] = {content_types.APPLICATION_JSON: {"model": model}}
    for status in sorted({*errors, *((401, 403) if auth else ()), 503}):
        responses.setdefault(status, {
            "description": ERROR_STATUSES[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        })
    return responses


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
    a valid token learns nothing (not even which fields a body needs) from a 400 or a 404.

    It keeps the request it answers per thread, in context variables. powertools keeps it on a
    class attribute (`BaseRouter.current_event`), one per process: right in Lambda, where a
    process answers one request at a time, wrong where copies of the function share a process
    (the local stack), as two requests at once would read each other's body. powertools' own
    `HttpResolver` keeps its request the same way for ASGI.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._request_event: ContextVar[BaseProxyEvent | None] = ContextVar("imgdrop_event", default=None)
        self._request_context: ContextVar[Any] = ContextVar("imgdrop_lambda_context", default=None)
        super().__init__(*args, **kwargs)

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        refusal = authorizer_refusal(_authorizer_context(event))
        if refusal is not None:
            return {
                "statusCode": refusal.status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": error_body([refusal]),
                "isBase64Encoded": False,
            }
        self._request_context.set(context)
        return super().resolve(event, context)

    def _to_proxy_event(self, event: dict[str, Any]) -> BaseProxyEvent:
        proxy = super()._to_proxy_event(event)
        self._request_event.set(proxy)  # resolve() puts it on BaseRouter too; reads come here
        return proxy

    @property  # type: ignore[override]  # its two bases declare the attribute with two types
    def current_event(self) -> APIGatewayProxyEventV2:
        return cast(APIGatewayProxyEventV2, self._request_event.get() or BaseRouter.current_event)

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEventV2) -> None:
        self._request_event.set(value)

    @property
    def lambda_context(self) -> Any:
        return self._request_context.get() or BaseRouter.lambda_context

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._request_context.set(value)

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        """The generated document, completed in this one place:
        - every model of imgdrop.models is a component, also those no route uses yet (webhooks, jobs)
          and those a route names in its own `requestBody` (both media types of `POST /images`);
        - no 422 (powertools documents one on every route; imgdrop answers field errors with 400,
          see `_request_invalid`), and no content on a 204."""
        from aws_lambda_powertools.event_handler.openapi.models import Components, Schema

        schema = super().get_openapi_schema(*args, **kwargs)
        for path_item in (schema.paths or {}).values():
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                operation = getattr(path_item, method, None)
                if operation is None or not operation.responses:
                    continue
                operation.responses.pop(422, None)
                operation.responses.pop("422", None)
                for status in (204, "204"):
                    if status in operation.responses:
                        operation.responses[status].content = None
        schema.components = schema.components or Components()
        schemas = schema.components.schemas = schema.components.schemas or {}
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            schemas.pop(name, None)
        for name, definition in component_schemas().items():
            if name not in schemas:
                schemas[name] = Schema.model_validate(definition)
        return schema


def docs_page(app: APIGatewayHttpResolver) -> Response[str]:
    """The Swagger UI page over the API's document, with powertools' own copy of Swagger UI inlined.

    A route of its own rather than `enable_swagger`, which imports powertools' OpenAPI models
    (~0.1 s) at every cold start for a page few requests ask for."""
    from pathlib import Path

    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    spec = app.get_openapi_json_schema().replace("</", "<\\/")  # never closes the page's <script>
    if (app.current_event.query_string_parameters or {}).get("format") == "json":
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=spec)
    assets = Path(swagger_ui.__file__).parent
    page = generate_swagger_html(
        spec,
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=page)


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
        return error_response(_sanitized(list(exc.errors())), 400)

    @app.exception_handler(RequestUnsupportedContentType)
    def _body_not_json(exc: RequestUnsupportedContentType) -> Response:
        # a body of another media type is no JSON object: 400, as the document says (not powertools' 415)
        error = ImgdropError("body_invalid", "The body must be a JSON object (application/json).", 400, "")
        return error_response([error])

    @app.exception_handler(UnicodeDecodeError)
    def _body_not_text(exc: UnicodeDecodeError) -> Response:
        # powertools decodes a JSON body as UTF-8 before validating it: other bytes would be a 500
        error = ImgdropError("body_invalid", "The body must be a JSON object in UTF-8.", 400, "")
        return error_response([error])

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response:
        return error_response([ImgdropError("not_found", "No such route.", 404)])

    return app


def _sanitized(errors: list[dict[str, Any]]) -> list[ImgdropError]:
    """Pydantic's errors of a request without echoing input: body fields get imgdrop's codes and
    JSON pointers (imgdrop.validation), query parameters `parameter_missing|invalid`."""
    out: list[ImgdropError] = []
    for error in errors:
        location = list(error.get("loc", ()))
        where = str(location[0]) if location else "body"
        kind = "missing" if error.get("type") == "missing" else "invalid"
        if where in ("query", "path"):
            name = str(location[-1])
            out.append(ImgdropError(f"parameter_{kind}", f"Parameter '{name}' is {kind}.", 400, None,
                                    {"source": {"parameter": name}}))
        elif where != "body" or len(location) < 2 or not isinstance(location[1], str):
            # the body as a whole: not JSON, not an object
            out.append(ImgdropError("body_invalid", "The body must be a JSON object.", 400, ""))
        else:
            out.extend(field_errors([{**error, "loc": tuple(location[1:])}]))
    return out


def current_principal(app: APIGatewayHttpResolver) -> Principal:
    """The caller as the authorizer verified it (its refusals were answered in `resolve`)."""
    context = app.current_event.request_context.authorizer.get_lambda or {}
    if not context.get("tenant"):
        logger.warning("A request reached the API without an authorizer context")
        raise Unauthorized("token_missing", "An Authorization: Bearer token is required.")
    return Principal.from_context(context)
