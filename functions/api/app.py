"""The imgdrop REST API: each route parses, calls one domain function, shapes the answer."""

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from imgdrop.catalogue import albums, images, listing, presenting, tags
from imgdrop.errors import ImgdropError, ValidationFailed
from imgdrop.observability import logger, metrics, tracer
from imgdrop.rest import ERROR_SCHEMA, build_resolver, current_principal, error_response, json_response
from imgdrop.services import build_services
from imgdrop.uploads import direct, presign
from imgdrop.uploads.form import item_fields_for, parse_form

services = build_services()
app = build_resolver()
app.enable_swagger(
    path="/v1/docs",
    title="imgdrop",
    version="1.0.0",
    description="Serverless image uploads: presigned uploads, variants, metadata, dedupe.",
)

ERRORS = {"description": "Error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
AUTH_ERRORS = {401: ERRORS, 403: ERRORS}


class UploadsRequest(BaseModel):
    """1..100 items; each is validated on its own and answered in order."""

    items: list[dict[str, Any]] = Field(
        description="Items: filename, content_type, size, sha256, profile, purpose, album_id, tags, title, "
        "description, metadata, type, kind, date, year, rating, privacy, usage_type, usage_license_code, "
        "attributed_name, attributed_url, source_url, parent_id, slug."
    )


class NamedBody(BaseModel):
    name: str | None = None


class TagBody(BaseModel):
    label: str | None = None
    category: str | None = None


@app.get("/v1/health", responses={200: {"description": "The API is up."}})
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document() -> Any:
    return json_response(json.loads(app.get_openapi_json_schema(title="imgdrop", version="1.0.0")))


@app.post(
    "/v1/uploads", responses={200: {"description": "One outcome per item."}, 400: ERRORS, **AUTH_ERRORS}
)
@tracer.capture_method
def create_uploads(body: Annotated[UploadsRequest, Body()]) -> Any:
    outcomes = presign.create_uploads(current_principal(app), body.items, services)
    metrics.add_metric(name="UploadsRequested", unit="Count", value=len(body.items))
    return json_response({"items": outcomes})


@app.post(
    "/v1/images",
    responses={
        201: {"description": "Created: the image object (JSON) or {items} (multipart)."},
        200: {"description": "An exact repeat: the existing image's id with image_already_exists."},
        400: ERRORS,
        404: {**ERRORS, "description": "album_not_found or parent_not_found."},
        413: ERRORS,
        **AUTH_ERRORS,
    },
)
@tracer.capture_method
def create_images() -> Any:
    principal = current_principal(app)
    event = app.current_event
    content_type = (event.headers.get("content-type") or "").strip()
    body = event.body or ""
    raw = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    if len(raw) > services.settings.max_direct_upload_bytes * 4 // 3 + 4096:
        return error_response([ImgdropError("file_too_large", "Direct uploads are limited to 4 MB.", 413)])
    if content_type.lower().startswith("multipart/form-data"):
        form = parse_form(content_type, raw)
        if not form.files:
            raise ValidationFailed([ImgdropError("file_blank", "File is required.", 400, "/file")])
        files = [
            direct.DirectFile(
                {"filename": part.filename, "content_type": part.content_type, **item_fields_for(form, part)},
                part.data,
                f"/{part.name}",
            )
            for part in form.files
        ]
        created = direct.create_direct_uploads(principal, files, services)
        if any("id" in item for item in created):
            return json_response({"items": created}, 201)
        # No file accepted: a 400 with every item's errors, and the items beside them.
        errors = [error for item in created for error in item["errors"]]
        return json_response({"errors": errors, "items": created}, 400)
    try:
        document = json.loads(raw or b"null")
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise ValidationFailed([ImgdropError("body_invalid", "The body must be a JSON object.", 400, "")])
    fields = dict(document)
    content, data = direct.decode_data_uri(fields.pop("file", None), "/file")
    fields.setdefault("content_type", content)
    image = direct.create_direct_upload(principal, fields, data, services)
    created = image["status"] != "duplicate"
    return json_response(image, 201 if created else 200, headers={"Location": image["links"]["self"]})


@app.get("/v1/images", responses={200: {"description": "A page of images."}, 400: ERRORS, **AUTH_ERRORS})
def list_images(
    album_id: Annotated[str | None, Query()] = None,
    tag: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Any:
    principal = current_principal(app)
    page = listing.list_images(
        principal, services, album_id=album_id, tag=tag, status=status, cursor=cursor, limit=limit
    )
    return json_response(page)


@app.get("/v1/images/<image_id>", responses={200: {"description": "The image."}, 404: ERRORS, **AUTH_ERRORS})
def get_image(image_id: str) -> Any:
    principal = current_principal(app)
    record = images.get_image(principal, image_id, services)
    return json_response(presenting.present_image(record, services, principal))


@app.patch(
    "/v1/images/<image_id>",
    responses={200: {"description": "Changed."}, 400: ERRORS, 404: ERRORS, **AUTH_ERRORS},
)
def patch_image(image_id: str, body: Annotated[dict[str, Any], Body()]) -> Any:
    principal = current_principal(app)
    record = images.patch_image(principal, image_id, body, services)
    return json_response(presenting.present_image(record, services, principal))


@app.delete("/v1/images/<image_id>", responses={204: {"description": "Deleted."}, 404: ERRORS, **AUTH_ERRORS})
def delete_image(image_id: str) -> Any:
    images.delete_image(current_principal(app), image_id, services)
    return json_response(None, 204)


@app.get(
    "/v1/images/<image_id>/similar",
    responses={200: {"description": "Near duplicates, nearest first."}, 404: ERRORS, **AUTH_ERRORS},
)
def similar_images(image_id: str) -> Any:
    return json_response(images.similar_images(current_principal(app), image_id, services))


@app.post("/v1/tags", responses={201: {"description": "Created."}, 400: ERRORS, **AUTH_ERRORS})
def create_tag(body: Annotated[TagBody, Body()]) -> Any:
    tag = tags.create_tag(current_principal(app), body.model_dump(exclude_none=True), services)
    return json_response(tags.present_tag(tag), 201)


@app.get("/v1/tags", responses={200: {"description": "The tenant's tags."}, **AUTH_ERRORS})
def list_tags() -> Any:
    return json_response(
        {"items": [tags.present_tag(t) for t in tags.list_tags(current_principal(app), services)]}
    )


@app.get("/v1/tags/<tag_id>", responses={200: {"description": "The tag."}, 404: ERRORS, **AUTH_ERRORS})
def get_tag(tag_id: str) -> Any:
    return json_response(tags.present_tag(tags.get_tag(current_principal(app), tag_id, services)))


@app.post("/v1/albums", responses={201: {"description": "Created."}, 400: ERRORS, **AUTH_ERRORS})
def create_album(body: Annotated[NamedBody, Body()]) -> Any:
    album = albums.create_album(current_principal(app), body.model_dump(exclude_none=True), services)
    return json_response(albums.present_album(album), 201)


@app.get("/v1/albums/<album_id>", responses={200: {"description": "The album."}, 404: ERRORS, **AUTH_ERRORS})
def get_album(album_id: str) -> Any:
    return json_response(albums.present_album(albums.get_album(current_principal(app), album_id, services)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
