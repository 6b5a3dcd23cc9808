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
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, alias="MAX_UPLOAD_BYTES", ge=1)
    max_direct_upload_bytes: int = Field(default=4 * 1024 * 1024, alias="MAX_DIRECT_UPLOAD_BYTES")
    max_pixels: int = Field(default=100_000_000, alias="MAX_PIXELS", ge=1)
    max_frames: int = Field(default=1000, alias="MAX_FRAMES", ge=1)
    # An animation's frames x canvas pixels (its canvas at most an eighth of it).
    max_animation_pixels: int = Field(default=100_000_000, alias="MAX_ANIMATION_PIXELS", ge=1)
    # The process function's timeout and how long its events may wait (template.yaml's
    # Mappings: Processing): a run's lease and the sweep's patience derive from them.
    process_timeout_seconds: int = Field(default=120, alias="PROCESS_TIMEOUT_SECONDS", ge=1)
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

    model_config = {"populate_by_name": True, "extra": "ignore"}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    import os

    return Settings.model_validate(dict(os.environ))
