"""The imgdrop REST API: each route parses, calls one domain function, shapes the answer.

Every route declares its request body and each status it answers with its model (imgdrop.models);
`/v1/openapi.json` is generated from them (imgdrop.rest completes it in one place).
"""

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.shared.lazy_import import LazyLoader
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgdrop.catalogue import albums, images, listing, presenting, tags
from imgdrop.dedupe import NEAR_DUPLICATE_MODULES
from imgdrop.delivery.signing import SIGNING_MODULES
from imgdrop.errors import ImgdropError, ValidationFailed
from imgdrop.models import (
    Album,
    AlbumCreate,
    ErrorBody,
    Health,
    Image,
    ImageList,
    ImagePatchBody,
    ImagesCreated,
    ImagesRejected,
    Job,
    JobStarted,
    ReprocessRequest,
    SignedRequest,
    SignRequestBody,
    SimilarList,
    Status,
    TagAnswer,
    TagCreate,
    TagList,
    UploadDuplicate,
    UploadsAnswer,
    UploadsRequest,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryList,
    WebhookList,
)
from imgdrop.observability import logger, metrics, tracer
from imgdrop.rest import (
    build_resolver,
    current_principal,
    docs_page,
    documented,
    error_response,
    json_response,
)
from imgdrop.services import build_services
from imgdrop.snapshot import before_snapshot
from imgdrop.uploads import multipart, presign

# What few requests need is loaded by the first request that does (a cold start pays for the route
# it serves): direct uploads and their multipart bodies, and the admin routes.
direct = LazyLoader("imgdrop.uploads.direct", globals(), "imgdrop.uploads.direct")
form = LazyLoader("imgdrop.uploads.form", globals(), "imgdrop.uploads.form")
reprocess = LazyLoader("imgdrop.lifecycle.reprocess", globals(), "imgdrop.lifecycle.reprocess")
webhooks = LazyLoader("imgdrop.webhooks.registry", globals(), "imgdrop.webhooks.registry")

services = build_services()
app = build_resolver()
app.configure_openapi(
    title="imgdrop",
    version="1.0.0",
    description="Serverless image uploads: presigned uploads, variants, metadata, dedupe.",
    security_schemes={"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    security=[{"bearer": []}],
)

# `POST /images` reads its body itself (JSON or multipart): the document shows both media types.
IMAGE_UPLOAD_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ImageUploadJson"}},
        "multipart/form-data": {
            "schema": {"$ref": "#/components/schemas/ImageUploadForm"},
            "encoding": {"file": {"contentType": "image/*"}},
        },
    },
}


@app.get("/v1/health", responses=documented({200: ("The API is up.", Health)}, auth=False),
         openapi_extensions={"security": []})
def health() -> Response[Any]:
    return json_response({"status": "ok"})


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    return json_response(json.loads(app.get_openapi_json_schema()))


@app.get("/v1/docs", include_in_schema=False)
def docs() -> Response[Any]:
    return docs_page(app)


@app.post("/v1/uploads", responses=documented({200: ("One outcome per item, in order.", UploadsAnswer)}, 400))
@tracer.capture_method
def create_uploads(body: Annotated[UploadsRequest, Body()]) -> Response[Any]:
    outcomes = presign.create_uploads(current_principal(app), body.items, services)
    metrics.add_metric(name="UploadsRequested", unit="Count", value=len(body.items))
    return json_response({"items": outcomes})


@app.post(
    "/v1/uploads/<image_id>/sign",
    responses=documented(
        {
            200: ("A presigned S3 request of the upload's multipart upload: send it to `url` with `headers`.",
                  SignedRequest),
            409: ("upload_closed: the image is no longer pending (it arrived, settled or expired); "
                  "upload_expired: its upload window has passed.", ErrorBody),
        },
        400, 404,
    ),
)
def sign_upload_request(image_id: str, body: Annotated[SignRequestBody, Body()]) -> Response[Any]:
    return json_response(multipart.sign(current_principal(app), image_id, body, services))


@app.post(
    "/v1/images",
    responses=documented(
        {
            201: ("Created: the image object (JSON body), or one outcome per file part (multipart).",
                  Image | ImagesCreated),
            200: ("An exact repeat of an image the caller may read: its id, with image_already_exists.",
                  UploadDuplicate),
            400: ("A field error; for a multipart body whose files were all refused, every file's errors "
                  "with the items beside them.", ImagesRejected),
        },
        404, 413,
    ),
    openapi_extensions={"requestBody": IMAGE_UPLOAD_BODY},
)
@tracer.capture_method
def create_images() -> Response[Any]:
    principal = current_principal(app)
    event = app.current_event
    content_type = (event.headers.get("content-type") or "").strip()
    body = event.body or ""
    raw = base64.b64decode(body) if event.is_base64_encoded else body.encode()
    if len(raw) > services.settings.max_direct_upload_bytes * 4 // 3 + 4096:
        return error_response([ImgdropError("file_too_large", "Direct uploads are limited to 4 MB.", 413)])
    if content_type.lower().startswith("multipart/form-data"):
        parsed = form.parse_form(content_type, raw)
        if not parsed.files:
            raise ValidationFailed([ImgdropError("file_blank", "File is required.", 400, "/file")])
        files = [
            direct.DirectFile(
                {"filename": part.filename, "content_type": part.content_type,
                 **form.item_fields_for(parsed, part)},
                part.data,
                f"/{part.name}",
            )
            for part in parsed.files
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


@app.get("/v1/images", responses=documented({200: ("A page of images, newest first.", ImageList)}, 400))
def list_images(
    album_id: Annotated[str | None, Query()] = None,
    tag: Annotated[str | None, Query(description="A tag id.")] = None,
    status: Annotated[Status | None, Query()] = None,
    cursor: Annotated[str | None, Query(description="A page's next_cursor.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Response[Any]:
    principal = current_principal(app)
    page = listing.list_images(
        principal, services, album_id=album_id, tag=tag, status=status, cursor=cursor, limit=limit
    )
    return json_response(page)


@app.get("/v1/images/<image_id>", responses=documented({200: ("The image object.", Image)}, 404))
def get_image(image_id: str) -> Response[Any]:
    principal = current_principal(app)
    record = images.get_image(principal, image_id, services)
    return json_response(presenting.present_image(record, services, principal))


@app.patch(
    "/v1/images/<image_id>",
    responses=documented({200: ("Changed: the image object.", Image)}, 400, 404),
)
def patch_image(
    image_id: str,
    body: Annotated[ImagePatchBody, Body()],
) -> Response[Any]:
    principal = current_principal(app)
    record = images.patch_image(principal, image_id, body, services)
    return json_response(presenting.present_image(record, services, principal))


@app.delete("/v1/images/<image_id>", responses=documented({204: ("Deleted.", None)}, 404))
def delete_image(image_id: str) -> Response[Any]:
    images.delete_image(current_principal(app), image_id, services)
    return json_response(None, 204)


@app.get(
    "/v1/images/<image_id>/similar",
    responses=documented({200: ("Near duplicates the caller may read, nearest first.", SimilarList)}, 404),
)
def similar_images(image_id: str) -> Response[Any]:
    return json_response(images.similar_images(current_principal(app), image_id, services))


@app.post("/v1/tags", responses=documented({201: ("Created.", TagAnswer)}, 400))
def create_tag(body: Annotated[TagCreate, Body()]) -> Response[Any]:
    tag = tags.create_tag(current_principal(app), body, services)
    return json_response(tags.present_tag(tag), 201)


@app.get("/v1/tags", responses=documented({200: ("The tenant's tags.", TagList)}))
def list_tags() -> Response[Any]:
    return json_response(
        {"items": [tags.present_tag(t) for t in tags.list_tags(current_principal(app), services)]}
    )


@app.get("/v1/tags/<tag_id>", responses=documented({200: ("The tag.", TagAnswer)}, 404))
def get_tag(tag_id: str) -> Response[Any]:
    return json_response(tags.present_tag(tags.get_tag(current_principal(app), tag_id, services)))


@app.post("/v1/albums", responses=documented({201: ("Created.", Album)}, 400))
def create_album(body: Annotated[AlbumCreate, Body()]) -> Response[Any]:
    album = albums.create_album(current_principal(app), body, services)
    return json_response(albums.present_album(album), 201)


@app.get("/v1/albums/<album_id>", responses=documented({200: ("The album.", Album)}, 404))
def get_album(album_id: str) -> Response[Any]:
    return json_response(albums.present_album(albums.get_album(current_principal(app), album_id, services)))


# --------------------------------------------------------------------------- webhooks, reprocessing (admin)


@app.post(
    "/v1/webhooks",
    responses=documented(
        {201: ("Created: `secret` (whsec_...) is shown only in this answer.", WebhookCreated)}, 400
    ),
)
def create_webhook(body: Annotated[WebhookCreate, Body()]) -> Response[Any]:
    return json_response(webhooks.create_webhook(current_principal(app), body, services), 201)


@app.get("/v1/webhooks", responses=documented({200: ("The tenant's webhooks (no secrets).", WebhookList)}))
def list_webhooks() -> Response[Any]:
    return json_response(webhooks.list_webhooks(current_principal(app), services))


@app.delete(
    "/v1/webhooks/<webhook_id>",
    responses=documented({204: ("Deleted: its pending retries are dropped.", None)}, 404),
)
def delete_webhook(webhook_id: str) -> Response[Any]:
    webhooks.delete_webhook(current_principal(app), webhook_id, services)
    return json_response(None, 204)


@app.get(
    "/v1/webhooks/<webhook_id>/deliveries",
    responses=documented({200: ("The endpoint's latest deliveries and their attempts.", WebhookDeliveryList)},
                         400, 404),
)
def list_webhook_deliveries(
    webhook_id: str,
    cursor: Annotated[str | None, Query(description="A page's next_cursor.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response[Any]:
    principal = current_principal(app)
    return json_response(webhooks.list_deliveries(principal, webhook_id, services, limit, cursor))


@app.post(
    "/v1/reprocess",
    responses=documented({202: ("Started: the job re-renders the matching images.", JobStarted)}, 400),
)
def create_reprocess_job(body: Annotated[ReprocessRequest, Body()]) -> Response[Any]:
    job = reprocess.start_job(current_principal(app), body, services)
    location = f"{services.settings.api_base_path}/jobs/{job['id']}"
    return json_response(job, 202, headers={"Location": location})


@app.get("/v1/jobs/<job_id>", responses=documented({200: ("The job and its counts.", Job)}, 404))
def get_job(job_id: str) -> Response[Any]:
    return json_response(reprocess.get_job(current_principal(app), job_id, services))


# A SnapStart snapshot holds what the lazy loaders above defer, URL signing, and every route's
# validation models (built by generating the document): no restored environment builds them.
before_snapshot(
    "imgdrop.uploads.direct", "imgdrop.uploads.form", "imgdrop.lifecycle.reprocess",
    "imgdrop.webhooks.registry", "imgdrop.webhooks", *NEAR_DUPLICATE_MODULES, *SIGNING_MODULES,
    warm=app.get_openapi_json_schema,
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
