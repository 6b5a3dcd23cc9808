"""Typed settings, read once from the environment at cold start."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(alias="TABLE_NAME")
    bucket_name: str = Field(alias="BUCKET_NAME")
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME")
    # Public base URL of the API, for `links.self`; empty answers relative links.
    api_base_url: str = Field(default="", alias="API_BASE_URL")
    api_base_path: str = Field(default="/v1", alias="API_BASE_PATH")
    upload_expiry_seconds: int = Field(default=900, alias="UPLOAD_EXPIRY_SECONDS", ge=60, le=900)
    # SigV4 presigned URLs live at most 7 days (604800 s).
    download_expiry_seconds: int = Field(default=3600, alias="DOWNLOAD_EXPIRY_SECONDS", ge=60, le=604800)
    # The largest declared size of a presigned upload (POST form or S3 multipart).
    max_upload_bytes: int = Field(default=2 * 1024**3, alias="MAX_UPLOAD_BYTES", ge=1)
    # Items over this size (or asking `"multipart": true`) get an S3 multipart upload, signed
    # request by request at POST /uploads/{id}/sign; Uppy 6 switches to multipart at 100 MiB too.
    multipart_threshold_bytes: int = Field(default=100 * 1024**2, alias="MULTIPART_THRESHOLD_BYTES", ge=1)
    # How long a multipart upload may take to complete, from the answer of POST /uploads (its
    # `expires_at`); it must be created within UPLOAD_EXPIRY_SECONDS. At most a day: the bucket's
    # lifecycle rule aborts multipart uploads a day after they were started.
    multipart_upload_window_seconds: int = Field(
        default=24 * 3600, alias="MULTIPART_UPLOAD_WINDOW_SECONDS", ge=900, le=24 * 3600
    )
    max_direct_upload_bytes: int = Field(default=4 * 1024 * 1024, alias="MAX_DIRECT_UPLOAD_BYTES")
    max_pixels: int = Field(default=100_000_000, alias="MAX_PIXELS", ge=1)
    max_frames: int = Field(default=1000, alias="MAX_FRAMES", ge=1)
    # An animation's frames x canvas pixels (its canvas at most an eighth of it).
    max_animation_pixels: int = Field(default=100_000_000, alias="MAX_ANIMATION_PIXELS", ge=1)
    # The process function's timeout and how long its events may wait (template.yaml's
    # Mappings: Processing): a run's lease and the sweep's patience derive from them.
    process_timeout_seconds: int = Field(default=300, alias="PROCESS_TIMEOUT_SECONDS", ge=1)
    process_event_max_age_seconds: int = Field(default=3600, alias="PROCESS_EVENT_MAX_AGE_SECONDS", ge=60)
    # Delivery (the CDN): its base URL, the key pair that signs private URLs (the public key's
    # id and the Secrets Manager secret holding the private key PEM), the distribution to
    # invalidate, and the window within which a signed URL stays the same (valid 1-2 windows).
    cdn_base_url: str = Field(default="", alias="CDN_BASE_URL")
    cdn_key_pair_id: str = Field(default="", alias="CDN_KEY_PAIR_ID")
    cdn_private_key_secret_arn: str = Field(default="", alias="CDN_PRIVATE_KEY_SECRET_ARN")
    cdn_distribution_id: str = Field(default="", alias="CDN_DISTRIBUTION_ID")
    signed_url_window_seconds: int = Field(default=3600, alias="SIGNED_URL_WINDOW_SECONDS", ge=3600, le=86400)
    # Profiles: a deployment's JSON file replacing the built-in profiles.json; and the
    # near-duplicate policy's deployment-wide overrides (a profile's own policy still wins).
    profiles_file: str = Field(default="", alias="IMGDROP_PROFILES_FILE")
    near_duplicate_threshold: int | None = Field(default=None, alias="IMGDROP_NEAR_DUPLICATE_THRESHOLD")
    near_duplicate_mode: Literal["reject", "flag", "off"] | None = Field(
        default=None, alias="IMGDROP_NEAR_DUPLICATE_MODE"
    )
    # AWS endpoint of an emulator (moto) for local runs; empty in AWS.
    aws_endpoint_url: str = Field(default="", alias="AWS_ENDPOINT_URL")
    # Endpoint used in URLs handed to clients (presigned POST/GET); defaults to aws_endpoint_url.
    public_s3_endpoint_url: str = Field(default="", alias="PUBLIC_S3_ENDPOINT_URL")
    # Auth (the authorizer). The HS256 key itself locally only; deployed, its Secrets Manager ARN.
    jwt_secret: str = Field(default="", alias="JWT_SECRET", repr=False)
    jwt_secret_arn: str = Field(default="", alias="JWT_SECRET_ARN")
    # An OIDC issuer's RS256 tokens are accepted when set; then oidc_audience is required.
    oidc_issuer: str = Field(default="", alias="OIDC_ISSUER")
    oidc_audience: str = Field(default="", alias="OIDC_AUDIENCE")
    max_token_lifetime_seconds: int = Field(default=24 * 3600, alias="MAX_TOKEN_LIFETIME_SECONDS", ge=60)
    # Webhooks (imgdrop.webhooks): the delivery queue (its URL; a bare name on the local stack),
    # the retry schedule (exponential from the base, capped, with jitter, until the window after
    # the first attempt has passed: 24 h deployed) and the local stack's one exception to the
    # SSRF rules: http(s)://127.0.0.1 endpoints (never set deployed).
    webhook_queue_url: str = Field(default="", alias="WEBHOOK_QUEUE_URL")
    webhook_timeout_seconds: float = Field(default=10.0, alias="WEBHOOK_TIMEOUT_SECONDS", gt=0, le=10)
    webhook_retry_base_seconds: float = Field(default=5.0, alias="WEBHOOK_RETRY_BASE_SECONDS", gt=0)
    webhook_retry_cap_seconds: float = Field(default=7200.0, alias="WEBHOOK_RETRY_CAP_SECONDS", gt=0)
    webhook_retry_window_seconds: float = Field(default=86400.0, alias="WEBHOOK_RETRY_WINDOW_SECONDS", gt=0)
    webhook_allow_local_http: bool = Field(default=False, alias="IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP")
    # Reprocessing (imgdrop.lifecycle.reprocess): the queue its jobs fan out through, and how often
    # the queue hands a message over before its dead-letter queue takes it (its RedrivePolicy's
    # maxReceiveCount): the last try of an image counts it failed rather than losing it.
    reprocess_queue_url: str = Field(default="", alias="REPROCESS_QUEUE_URL")
    reprocess_max_receives: int = Field(default=3, alias="REPROCESS_MAX_RECEIVES", ge=1)

    model_config = {"populate_by_name": True, "extra": "ignore"}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    import os

    return Settings.model_validate(dict(os.environ))
