"""Everything the API says, as pydantic v2 models: request bodies and answers.

One definition per shape. `Image` is the image object of the API answers, of the EventBridge
events and of the webhook payloads (`Image.model_validate(present_image(...))`). The request
models carry the field rules pydantic can say (types, lengths, enums, ranges, patterns);
`imgdrop.validation` maps their errors onto imgdrop's stable codes and adds the few rules that
span fields. The OpenAPI document (`/v1/openapi.json`) is generated from these models.

Fields that are absent before processing (or never given) are present and null in answers.
"""

import datetime
import functools
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from imgdrop.profiles import profile_names

# --------------------------------------------------------------------------- vocabularies

ContentType = Literal[
    "image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif", "image/avif",
    "image/tiff",
]
ImageType = Literal["Image::Photo", "Image::Art", "Image::Doc", "Image::Screen"]
IMAGE_TYPES: dict[str, frozenset[str]] = {
    "Image::Photo": frozenset({"likeness", "scene", "event", "product", "other"}),
    "Image::Art": frozenset({"concept", "cover", "fan", "logo", "other"}),
    "Image::Doc": frozenset({"manual", "map", "box", "other"}),
    "Image::Screen": frozenset({"gameplay", "menu", "title", "other"}),
}
Kind = Literal[
    "likeness", "scene", "event", "product", "concept", "cover", "fan", "logo", "manual", "map", "box",
    "gameplay", "menu", "title", "other",
]
UsageType = Literal["free", "fair", "licensed"]
LicenseCode = Literal[
    "cc0_1_0", "cc_by_4_0", "cc_by_sa_4_0", "cc_by_nd_4_0", "cc_by_nc_4_0", "cc_by_nc_sa_4_0",
    "cc_by_nc_nd_4_0", "all_rights_reserved",
]
LICENSES: dict[str, str] = {
    "cc0_1_0": "Creative Commons Zero 1.0",
    "cc_by_4_0": "Creative Commons Attribution 4.0",
    "cc_by_sa_4_0": "Creative Commons Attribution-ShareAlike 4.0",
    "cc_by_nd_4_0": "Creative Commons Attribution-NoDerivatives 4.0",
    "cc_by_nc_4_0": "Creative Commons Attribution-NonCommercial 4.0",
    "cc_by_nc_sa_4_0": "Creative Commons Attribution-NonCommercial-ShareAlike 4.0",
    "cc_by_nc_nd_4_0": "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0",
    "all_rights_reserved": "All rights reserved",
}
Privacy = Literal["public", "unlisted", "private"]
Purpose = Literal["product", "account", "user", "category"]
Status = Literal["pending", "processing", "ready", "duplicate", "failed", "expired"]
WebhookEventType = Literal["image.ready", "image.failed", "image.duplicate", "image.deleted"]

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$"
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
HTTP_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+"

# --------------------------------------------------------------------------- field rules


def imgdrop_error(code: str, title: str) -> PydanticCustomError:
    """A rule of imgdrop's own inside a pydantic validator: its code is the error's type."""
    return PydanticCustomError(code, title, {"imgdrop": True})


def safe_filename(name: str, limit: int = 255) -> str:
    """The last path component, without control characters, shortened to `limit` characters
    keeping its extension: a long name is a client's habit, not an error worth refusing."""
    base = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    cleaned = cleaned.lstrip(".") or "upload"
    if len(cleaned) <= limit:
        return cleaned
    stem, dot, ext = cleaned.rpartition(".")
    if dot and 0 < len(ext) <= 10:
        return stem[: limit - len(ext) - 1] + "." + ext
    return cleaned[:limit]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _blank_as_none(value: Any) -> Any:
    return None if value == "" else value


def _whole_number(value: Any) -> Any:
    """JSON integers, and digits in a string (form fields are text); not booleans or fractions."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("a whole number is required")


def _today(info: ValidationInfo) -> datetime.date:
    today = (info.context or {}).get("today")
    return today if isinstance(today, datetime.date) else datetime.date.today()


def _not_after_this_year(year: int, info: ValidationInfo) -> int:
    if year > _today(info).year:
        raise ValueError("in the future")
    return year


def _iso_date(value: Any) -> Any:
    if value is None or isinstance(value, datetime.date):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("YYYY-MM-DD is required")
    return datetime.date.fromisoformat(value)


def _not_after_today(when: datetime.date, info: ValidationInfo) -> datetime.date:
    if not datetime.date(1800, 1, 1) <= when <= _today(info):
        raise ValueError("out of range")
    return when


def _within_upload_limit(size: int, info: ValidationInfo) -> int:
    limit = (info.context or {}).get("max_bytes")
    if isinstance(limit, int) and size > limit:
        raise imgdrop_error("file_too_large", f"Files cannot be larger than {limit} bytes.")
    return size


def _boolean(value: Any) -> Any:
    """JSON booleans (and "true"/"false" from a form); nothing else."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise imgdrop_error("multipart_invalid", "multipart must be true or false.")


def _known_profile(name: str) -> str:
    # Profiles are a deployment's configuration (IMGDROP_PROFILES_FILE): not an enum of the document.
    try:
        known = profile_names()
    except ValueError as exc:  # pydantic would take a broken configuration for a field error
        raise RuntimeError("the profiles could not be read") from exc
    if name not in known:
        raise imgdrop_error("profile_unknown", "Profile must be one of " + ", ".join(sorted(known)) + ".")
    return name


def _tag_labels(value: str) -> list[str]:
    labels = list(dict.fromkeys(label.strip() for label in value.split(",") if label.strip()))
    if any(len(label) > 64 for label in labels):
        raise imgdrop_error("tag_label_too_long", "Tag labels cannot be more than 64 characters.")
    return labels


def _tags_shape(value: Any) -> str:
    return "labels" if isinstance(value, str) else "ids"


class Model(BaseModel):
    """The base of every model here: schemas build on first use, not at import (cold starts)."""

    model_config = ConfigDict(defer_build=True)


Id = Annotated[str, Field(pattern=ID_PATTERN, description="An imgdrop id.")]
HttpUrl = Annotated[str, Field(max_length=250, pattern=HTTP_URL_PATTERN, json_schema_extra={"format": "uri"})]


class TagIdRef(Model):
    """A tag given as an object: only its id counts."""

    id: Id


TagsInput = Annotated[
    Annotated[list[str], BeforeValidator(_tag_labels, json_schema_input_type=str), Tag("labels")]
    | Annotated[list[Id | TagIdRef], Field(max_length=50), Tag("ids")],
    Discriminator(_tags_shape),
    Field(description="At most 50 tag ids (or {id} objects), or a comma-separated string of tag labels, "
          "found or created by label."),
]
Year = Annotated[
    Annotated[int, Field(ge=1800), AfterValidator(_not_after_this_year)] | None,
    BeforeValidator(_whole_number),
    BeforeValidator(_blank_as_none),
]
DateInput = Annotated[
    Annotated[datetime.date, AfterValidator(_not_after_today)] | None,
    BeforeValidator(_iso_date),
    BeforeValidator(_blank_as_none),
]
Rating = Annotated[Annotated[int, Field(ge=0, le=5)] | None, BeforeValidator(_whole_number)]
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=1024)]],
    Field(max_length=50, description="At most 50 keys (1..64 characters) mapped to strings "
          "(≤ 1024 characters)."),
]

# --------------------------------------------------------------------------- request bodies


class ImageFields(Model):
    """The descriptive fields every image carries (the seeds' fields). Null means absent."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(max_length=100)] | None = None
    description: Annotated[str, Field(max_length=250)] | None = None
    type: ImageType | None = None
    kind: Annotated[Kind | None, Field(description="Needs `type`; one of that type's kinds.")] = None
    date: Annotated[DateInput, Field(description="Between 1800-01-01 and today.")] = None
    year: Annotated[Year, Field(description="Between 1800 and this year; from `date` if absent.")] = None
    rating: Rating = None
    privacy: Annotated[Privacy | None, Field(description="`public` when absent.")] = None
    usage_type: Annotated[
        UsageType | None,
        Field(description="`licensed` needs usage_license_code, attributed_name and source_url."),
    ] = None
    usage_license_code: Annotated[LicenseCode | None, BeforeValidator(_blank_as_none)] = None
    attributed_name: Annotated[str, Field(max_length=100)] | None = None
    attributed_url: HttpUrl | None = None
    source_url: HttpUrl | None = None
    metadata: Metadata | None = None


class ImagePatch(ImageFields):
    """`PATCH /images/{id}`: only the fields named change; null removes a field."""

    tags: TagsInput | None = None
    album_id: Annotated[Id | None, Field(description="Null moves the image out of every album.")] = None
    slug: Annotated[
        Annotated[str, Field(pattern=SLUG_PATTERN)] | None,
        Field(description="1 to 30 characters of a-z, 0-9 and hyphens, not starting or ending with one; "
              "unique in the tenant. Generated from the title when absent."),
    ] = None


class _UploadFields(ImagePatch):
    filename: Annotated[str, AfterValidator(safe_filename)] | None = None
    sha256: Annotated[
        Annotated[str, Field(pattern=SHA256_PATTERN), AfterValidator(str.lower)] | None,
        Field(description="An exact repeat of an image the caller may read answers image_already_exists."),
    ] = None
    profile: Annotated[
        Annotated[str, AfterValidator(_known_profile)] | None,
        Field(description="A profile name (built in: default, flickr, album, product, avatar)."),
    ] = None
    purpose: Annotated[
        Purpose | None,
        Field(description="Picks the profile when `profile` is absent: product → product, account and "
              "user → avatar, category → default."),
    ] = None
    parent_id: Annotated[Id | None, Field(description="The image this one is a modified version of.")] = None


class UploadItem(_UploadFields):
    """One item of `POST /uploads`; each is validated and answered on its own."""

    content_type: Annotated[ContentType, BeforeValidator(_lower)]
    size: Annotated[
        int, Strict(), Field(ge=1, description="Bytes; at most MAX_UPLOAD_BYTES (2 GiB unless configured)."),
        AfterValidator(_within_upload_limit),
    ]
    multipart: Annotated[
        Annotated[bool, BeforeValidator(_boolean)] | None,
        Field(description="Ask for an S3 multipart upload whatever the size (items over "
              "MULTIPART_THRESHOLD_BYTES, 100 MiB unless configured, always get one)."),
    ] = None


def _unchanged(value: Any) -> Any:
    return value


class UploadsRequest(Model):
    """`POST /uploads`: 1..100 items. Each item is checked on its own (its errors answer in its
    place, with status 200); the body as a whole only has to be an object with a list of objects."""

    items: Annotated[
        list[dict[str, Any]],
        BeforeValidator(_unchanged, json_schema_input_type=Annotated[
            list[UploadItem], Field(min_length=1, max_length=100)
        ]),
    ]


# The body of a PATCH, documented as ImagePatch and checked in the domain (imgdrop.validation): the
# caller's rights are checked first, and every field error is answered at once with imgdrop's codes.
ImagePatchBody = Annotated[dict[str, Any], BeforeValidator(_unchanged, json_schema_input_type=ImagePatch)]


class ImageUploadJson(_UploadFields):
    """`POST /images` as application/json: the item fields and the file as a base64 data URI."""

    file: Annotated[str, Field(pattern=r"^data:", description="data:image/png;base64,...")]
    content_type: Annotated[
        ContentType | None, Field(description="The data URI's media type when absent.")
    ] = None


class ImageUploadForm(_UploadFields):
    """`POST /images` as multipart/form-data: 1..100 file parts of any name. With one file, the form
    fields are its item fields; with several, a JSON part named `<file part>-data` carries each
    file's item fields (`image-1` and `image-1-data`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "patternProperties": {"-data$": {"type": "string", "contentMediaType": "application/json"}},
            "additionalProperties": {"type": "string", "format": "binary", "contentMediaType": "image/*"},
        },
    )

    file: Annotated[
        Any, WithJsonSchema({"type": "string", "format": "binary", "contentMediaType": "image/*"})
    ] = None
    content_type: Annotated[
        ContentType | None, Field(description="The file part's Content-Type when absent.")
    ] = None


class TagCreate(Model):
    label: Annotated[str, Field(min_length=1, max_length=64, pattern=r"\S")]
    category: Annotated[str, Field(max_length=64)] | None = None


class AlbumCreate(Model):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]


def _unique_events(events: list[str]) -> list[str]:
    return list(dict.fromkeys(events))


class WebhookCreate(Model):
    # Every rule of the URL answers webhook_url_invalid (imgdrop.webhooks.urls), none a field code.
    url: Annotated[str, Field(
        json_schema_extra={"format": "uri", "maxLength": 2048},
        description="https, resolving to no private, loopback, link-local, multicast or metadata address "
                    "(checked again at each delivery); no redirects are followed.",
    )]
    events: Annotated[
        list[WebhookEventType], Field(min_length=1, max_length=4), AfterValidator(_unique_events)
    ]


class ReprocessRequest(Model):
    """`POST /reprocess`: the tenant's ready images of `profile` (every profile when absent), only
    `ids` when given; each is re-rendered with its profile's current definition."""

    profile: Annotated[
        Annotated[str, AfterValidator(_known_profile)] | None,
        Field(description="Only images of this profile."),
    ] = None
    ids: Annotated[
        list[Id], Field(min_length=1, max_length=1000, description="Only these images.")
    ] | None = None


UPLOAD_ID_PATTERN = r"^[A-Za-z0-9._~+/=-]{1,1024}$"


class SignRequest(Model):
    """`POST /uploads/{id}/sign`: the S3 request to presign for the upload's own key, as Uppy 6's
    `signRequest` receives it (other fields, such as Uppy's `key`, are ignored):
    create `POST` (no upload_id; send the `headers` answered, they bind the declared Content-Type),
    upload a part `PUT` + upload_id + part_number, list the parts `GET` + upload_id,
    complete `POST` + upload_id, abort `DELETE` + upload_id."""

    method: Literal["POST", "PUT", "GET", "DELETE"]
    upload_id: Annotated[
        str | None,
        Field(pattern=UPLOAD_ID_PATTERN, description="S3's UploadId, from the create request's answer; "
              "absent (or null) only to create."),
    ] = None
    part_number: Annotated[
        int | None, Field(ge=1, le=10000, description="With PUT only: any part number S3 takes.")
    ] = None


# The body of a sign request, documented as SignRequest and checked in the domain
# (imgdrop.uploads.multipart), which answers each mistake with its own stable code.
SignRequestBody = Annotated[dict[str, Any], BeforeValidator(_unchanged, json_schema_input_type=SignRequest)]


# --------------------------------------------------------------------------- the image object

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class TagAnswer(Model):
    id: str
    category: str | None
    label: str


class TagError(Model):
    """A tag id that named no tag of the tenant when the image settled: it never blocks the image."""

    id: str
    error: Literal["tag_error"]


class TagPending(Model):
    """A tag before the image settles (resolved when it does)."""

    id: str


class VariantFormat(Model):
    url: str
    bytes: int | None


class Variant(Model):
    """`url` and `format` are the fallback's (jpeg, or png with alpha, gif when animated)."""

    url: str
    width: int
    height: int
    bytes: int | None
    format: str
    formats: dict[str, VariantFormat] = Field(description="Every format's URL and bytes.")
    auto_url: str = Field(description="Answers the best format the request's Accept allows (Vary: Accept).")


class Original(Model):
    """The uploaded file, oriented as stored: always a signed URL (it keeps EXIF and GPS)."""

    url: str
    width: int | None
    height: int | None
    bytes: int | None
    format: str | None


class Gps(Model):
    lat: float
    lon: float
    alt: float | None = None


class Camera(Model):
    make: str | None = None
    model: str | None = None


class Color(Model):
    hex: str
    percent: float


class SimilarRef(Model):
    id: str
    distance: int


class ImageErrorEntry(Model):
    code: str
    title: str


class Links(Model):
    self: str


class Image(Model):
    """The image object: answers, EventBridge events (detail) and webhook payloads (data)."""

    id: str
    status: Status
    filename: str | None
    content_type: str
    bytes: int | None = Field(description="The declared size (the bytes received for direct uploads).")
    sha256: str | None
    format: str | None
    width: int | None = Field(description="As displayed (after EXIF orientation).")
    height: int | None
    profile: str
    purpose: Purpose | None
    album_id: str | None
    parent_id: str | None
    slug: str | None
    title: str | None
    description: str | None
    type: ImageType | None
    kind: Kind | None
    date: Annotated[str | None, Field(json_schema_extra={"format": "date"})]
    year: int | None
    rating: int | None
    privacy: Privacy | None
    usage_type: UsageType | None
    usage_license_code: LicenseCode | None
    attributed_name: str | None
    attributed_url: str | None
    source_url: str | None
    metadata: dict[str, str] | None
    usage_license_name: str | None
    tags: list[TagAnswer | TagError | TagPending]
    variants: dict[str, Variant] = Field(description="Empty until the image is ready.")
    srcset: dict[str, str] = Field(
        description="Per format, the profile's fit variants: `<url> <w>w, ...` (empty until ready)."
    )
    original: Original | None
    phash: str | None
    dhash: str | None
    exif: dict[str, Any] | None
    gps: Gps | None
    taken_at: str | None
    camera: Camera | None
    colors: list[Color] | None
    grayscale: bool | None
    has_alpha: bool | None
    blurhash: str | None
    animated: bool | None
    frames: int | None
    duplicate_of: str | None = Field(description="The canonical image, when the caller may read it.")
    similar: list[SimilarRef]
    errors: list[ImageErrorEntry]
    processed: bool
    processing_error: str | None = Field(description="The first error's code when failed.")
    created_at: DateTime
    updated_at: DateTime
    processed_at: DateTime | None
    links: Links


# --------------------------------------------------------------------------- errors


class ErrorSource(Model):
    pointer: str | None = Field(default=None, description="A JSON pointer into the request body.")
    parameter: str | None = Field(default=None, description="A query parameter.")


class ErrorObject(Model):
    status: Annotated[str, Field(pattern=r"^[1-5][0-9][0-9]$")]
    code: Annotated[str, Field(description="snake_case and stable.")]
    title: str
    source: ErrorSource | None = None


class ErrorBody(Model):
    errors: Annotated[list[ErrorObject], Field(min_length=1)]


# --------------------------------------------------------------------------- upload answers


class PresignedPost(Model):
    """A browser POST form straight to S3: the fields first, then the file as `file`."""

    method: Literal["POST"]
    url: str
    fields: dict[str, str]
    expires_at: DateTime


class MultipartUpload(Model):
    """An S3 multipart upload of `key`, each S3 request signed at `sign_url` (`POST`, see
    SignRequest): create it, send the parts, complete it. `part_size` and `part_count` are advice
    (S3 takes 5 MiB to 5 GiB a part but the last, at most 10,000 parts). Create it within
    UPLOAD_EXPIRY_SECONDS and complete it by `expires_at`, else the image ends `expired`."""

    method: Literal["multipart"]
    key: str
    part_size: int
    part_count: int
    sign_url: str
    expires_at: DateTime


class UploadPending(Model):
    id: str
    status: Literal["pending"]
    upload: Annotated[PresignedPost | MultipartUpload, Field(discriminator="method")]
    links: Links


class UploadDuplicate(Model):
    """An exact repeat: the existing image's id, and `image_already_exists`."""

    id: str
    status: Literal["duplicate"]
    error: ErrorObject
    links: Links | None = None


class UploadFailed(Model):
    """An item refused on its own: `error` is the first of `errors`."""

    error: ErrorObject
    errors: list[ErrorObject]


class UploadsAnswer(Model):
    items: list[UploadPending | UploadDuplicate | UploadFailed]


DirectItem = Image | UploadDuplicate | UploadFailed


class ImagesCreated(Model):
    """A multipart `POST /images`: one outcome per file part, in order."""

    items: list[DirectItem]


class ImagesRejected(ErrorBody):
    """A 400 of `POST /images`; a multipart body whose files were all refused also carries its items."""

    items: list[DirectItem] | None = None


# --------------------------------------------------------------------------- lists, tags, albums


class ImageList(Model):
    items: list[Image]
    next_cursor: str | None = Field(description="Absent (null) on the last page.")


class SimilarItem(Model):
    id: str
    distance: int
    image: Image


class SimilarList(Model):
    """Ready near-duplicates the caller may read, nearest first."""

    items: list[SimilarItem]


class TagList(Model):
    items: list[TagAnswer]


class Album(Model):
    id: str
    name: str
    created_at: DateTime


class Health(Model):
    status: Literal["ok"]


# --------------------------------------------------------------------------- webhooks, jobs, signing


class Webhook(Model):
    id: str
    url: str
    events: list[WebhookEventType]
    created_at: DateTime


class WebhookCreated(Webhook):
    secret: Annotated[str, Field(description="`whsec_...`: shown only in this answer.")]


class WebhookList(Model):
    items: list[Webhook]


class WebhookEvent(Model):
    """A webhook delivery's body."""

    type: WebhookEventType
    timestamp: DateTime
    data: Image


class WebhookAttempt(Model):
    """One POST to the endpoint: its HTTP status (null when none came: refused, timed out, unreachable)."""

    at: DateTime
    status_code: int | None
    error: str | None = Field(description="Why it did not count as delivered; null when a 2xx came.")
    duration_ms: int


class WebhookDelivery(Model):
    """One event sent to one endpoint, under one `webhook-id` for all its attempts."""

    id: str = Field(description="The `webhook-id` header of every attempt.")
    type: WebhookEventType
    image_id: str
    status: Literal["pending", "delivered", "failed"] = Field(
        description="`failed` once every retry (for at least 24 hours) got no 2xx.")
    attempts: int
    created_at: DateTime
    updated_at: DateTime
    next_attempt_at: DateTime | None = Field(description="While pending: when the next retry is due.")
    last_attempts: list[WebhookAttempt] = Field(description="The last attempts, newest first.")


class WebhookDeliveryList(Model):
    items: list[WebhookDelivery] = Field(description="The latest deliveries, newest first.")
    next_cursor: str | None = Field(default=None, description="Absent (null) on the last page.")


class JobStarted(Model):
    id: str
    status: Literal["running", "done"]
    total: int = Field(description="Images the job matched; it grows while a large library is being "
                                   "listed (then `status` stays running).")


class Job(JobStarted):
    done: int = Field(description="Images re-rendered (or no longer there to re-render).")
    failed: int = Field(description="Images whose re-render failed: each keeps its variants as they were.")


class SignedRequest(Model):
    """A presigned S3 request (SigV4 in the query string): send it to `url` with the signed
    method and these `headers` (the body: a part's bytes, or CompleteMultipartUpload's XML)."""

    url: str
    key: str
    headers: dict[str, str]


# Every model the document shows, also those no route uses yet (webhooks, jobs, signing).
DOCUMENTED: tuple[type[BaseModel], ...] = (
    Image, ImageList, SimilarList, ImagePatch, UploadItem, UploadsRequest, UploadsAnswer, ImageUploadJson,
    ImageUploadForm, ImagesCreated, ImagesRejected, ErrorBody, TagCreate, TagAnswer, TagList, AlbumCreate,
    Album, Health, WebhookCreate, Webhook, WebhookCreated, WebhookList, WebhookEvent, ReprocessRequest,
    JobStarted, Job, SignRequest, SignedRequest, WebhookAttempt, WebhookDelivery, WebhookDeliveryList,
)


@functools.cache
def component_schemas() -> dict[str, Any]:
    """The JSON schemas of DOCUMENTED and of every model they use, named as the document's components."""
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema([(model, "validation") for model in DOCUMENTED],
                                ref_template="#/components/schemas/{model}")
    return dict(top.get("$defs", {}))
