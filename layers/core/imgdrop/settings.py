"""Typed settings, read once from the environment at cold start.

A frozen dataclass read by `from_environment`, not a pydantic model: every function reads its
settings at cold start, and pydantic's import and the model's schema cost about 90 ms of CPU
there (measured in `bench/bench_coldstart.py`'s process import), in functions that load pydantic
for nothing else. Each field names its variable, its default and its bounds; a value of the
wrong type or out of bounds fails the cold start with every problem named, as pydantic did.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

_REQUIRED = dataclasses.MISSING


def setting(env: str, default: Any = _REQUIRED, *, ge: float | None = None, le: float | None = None,
            gt: float | None = None, choices: tuple[str, ...] | None = None, repr: bool = True) -> Any:  # noqa: A002
    """A field read from the environment variable `env`: required without a default."""
    bounds = {"ge": ge, "le": le, "gt": gt, "choices": choices}
    return dataclasses.field(default=default, repr=repr, metadata={"env": env, **bounds})


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(text)
    return text in _TRUE


def _number(kind: type) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(value)
        number = kind(value if isinstance(value, int | float) else str(value).strip())
        if not math.isfinite(number):  # NaN compares false with every bound, and would pass them
            raise ValueError(value)
        return number

    return parse


# How a field reads its variable, by its annotation (a string here: `from __future__` above),
# an optional field's as its type's; and what a value that fails is not.
_READERS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "str": (str, "a string"),
    "int": (_number(int), "an integer"),
    "float": (_number(float), "a number"),
    "bool": (_boolean, "a boolean"),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    table_name: str = setting("TABLE_NAME")
    bucket_name: str = setting("BUCKET_NAME")
    event_bus_name: str = setting("EVENT_BUS_NAME", "default")
    # Public base URL of the API, for `links.self`; empty answers relative links.
    api_base_url: str = setting("API_BASE_URL", "")
    api_base_path: str = setting("API_BASE_PATH", "/v1")
    upload_expiry_seconds: int = setting("UPLOAD_EXPIRY_SECONDS", 900, ge=60, le=900)
    # SigV4 presigned URLs live at most 7 days (604800 s).
    download_expiry_seconds: int = setting("DOWNLOAD_EXPIRY_SECONDS", 3600, ge=60, le=604800)
    # The largest declared size of a presigned upload (POST form or S3 multipart).
    max_upload_bytes: int = setting("MAX_UPLOAD_BYTES", 2 * 1024**3, ge=1)
    # Items over this size (or asking `"multipart": true`) get an S3 multipart upload, signed
    # request by request at POST /uploads/{id}/sign; Uppy 6 switches to multipart at 100 MiB too.
    multipart_threshold_bytes: int = setting("MULTIPART_THRESHOLD_BYTES", 100 * 1024**2, ge=1)
    # How long a multipart upload may take to complete, from the answer of POST /uploads (its
    # `expires_at`); it must be created within UPLOAD_EXPIRY_SECONDS. At most a day: the bucket's
    # lifecycle rule aborts multipart uploads a day after they were started.
    multipart_upload_window_seconds: int = setting(
        "MULTIPART_UPLOAD_WINDOW_SECONDS", 24 * 3600, ge=900, le=24 * 3600
    )
    max_direct_upload_bytes: int = setting("MAX_DIRECT_UPLOAD_BYTES", 4 * 1024 * 1024)
    max_pixels: int = setting("MAX_PIXELS", 100_000_000, ge=1)
    max_frames: int = setting("MAX_FRAMES", 1000, ge=1)
    # An animation's frames x canvas pixels (its canvas at most an eighth of it).
    max_animation_pixels: int = setting("MAX_ANIMATION_PIXELS", 100_000_000, ge=1)
    # The process function's timeout and how long its events may wait (template.yaml's
    # Mappings: Processing): a run's lease and the sweep's patience derive from them.
    process_timeout_seconds: int = setting("PROCESS_TIMEOUT_SECONDS", 300, ge=1)
    process_event_max_age_seconds: int = setting("PROCESS_EVENT_MAX_AGE_SECONDS", 3600, ge=60)
    # Delivery (the CDN): its base URL, the key pair that signs private URLs (the public key's
    # id and the Secrets Manager secret holding the private key PEM), the distribution to
    # invalidate, and the window within which a signed URL stays the same (valid 1-2 windows).
    cdn_base_url: str = setting("CDN_BASE_URL", "")
    cdn_key_pair_id: str = setting("CDN_KEY_PAIR_ID", "")
    cdn_private_key_secret_arn: str = setting("CDN_PRIVATE_KEY_SECRET_ARN", "")
    cdn_distribution_id: str = setting("CDN_DISTRIBUTION_ID", "")
    signed_url_window_seconds: int = setting("SIGNED_URL_WINDOW_SECONDS", 3600, ge=3600, le=86400)
    # Profiles: a deployment's JSON file replacing the built-in profiles.json; and the
    # near-duplicate policy's deployment-wide overrides (a profile's own policy still wins).
    profiles_file: str = setting("IMGDROP_PROFILES_FILE", "")
    near_duplicate_threshold: int | None = setting("IMGDROP_NEAR_DUPLICATE_THRESHOLD", None)
    near_duplicate_mode: Literal["reject", "flag", "off"] | None = setting(
        "IMGDROP_NEAR_DUPLICATE_MODE", None, choices=("reject", "flag", "off")
    )
    # AWS endpoint of an emulator (moto) for local runs; empty in AWS.
    aws_endpoint_url: str = setting("AWS_ENDPOINT_URL", "")
    # Endpoint used in URLs handed to clients (presigned POST/GET); defaults to aws_endpoint_url.
    public_s3_endpoint_url: str = setting("PUBLIC_S3_ENDPOINT_URL", "")
    # Auth (the authorizer). The HS256 key itself locally only; deployed, its Secrets Manager ARN.
    jwt_secret: str = setting("JWT_SECRET", "", repr=False)
    jwt_secret_arn: str = setting("JWT_SECRET_ARN", "")
    # An OIDC issuer's RS256 tokens are accepted when set; then oidc_audience is required.
    oidc_issuer: str = setting("OIDC_ISSUER", "")
    oidc_audience: str = setting("OIDC_AUDIENCE", "")
    max_token_lifetime_seconds: int = setting("MAX_TOKEN_LIFETIME_SECONDS", 24 * 3600, ge=60)
    # Webhooks (imgdrop.webhooks): the delivery queue (its URL; a bare name on the local stack),
    # the retry schedule (exponential from the base, capped, with jitter, until the window after
    # the first attempt has passed: 24 h deployed) and the local stack's one exception to the
    # SSRF rules: http(s)://127.0.0.1 endpoints (never set deployed).
    webhook_queue_url: str = setting("WEBHOOK_QUEUE_URL", "")
    webhook_timeout_seconds: float = setting("WEBHOOK_TIMEOUT_SECONDS", 10.0, gt=0, le=10)
    webhook_retry_base_seconds: float = setting("WEBHOOK_RETRY_BASE_SECONDS", 5.0, gt=0)
    webhook_retry_cap_seconds: float = setting("WEBHOOK_RETRY_CAP_SECONDS", 7200.0, gt=0)
    webhook_retry_window_seconds: float = setting("WEBHOOK_RETRY_WINDOW_SECONDS", 86400.0, gt=0)
    webhook_allow_local_http: bool = setting("IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP", False)
    # Reprocessing (imgdrop.lifecycle.reprocess): the queue its jobs fan out through, and how often
    # the queue hands a message over before its dead-letter queue takes it (its RedrivePolicy's
    # maxReceiveCount): the last try of an image counts it failed rather than losing it.
    reprocess_queue_url: str = setting("REPROCESS_QUEUE_URL", "")
    reprocess_max_receives: int = setting("REPROCESS_MAX_RECEIVES", 3, ge=1)

    @classmethod
    def from_environment(cls, environ: Mapping[str, Any]) -> Settings:
        """The settings in `environ` (variables it lacks take their defaults); ValueError names
        every missing, malformed or out-of-bounds one."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for field in dataclasses.fields(cls):
            meta = field.metadata
            raw = environ.get(meta["env"])
            if raw is None:
                if field.default is _REQUIRED:
                    problems.append(f"{meta['env']}: required")
                continue
            read, kind = _READERS["str" if meta["choices"] else str(field.type).removesuffix(" | None")]
            try:
                value = read(raw)
            except ValueError:
                problems.append(f"{meta['env']}: {raw!r} is not {kind}")
                continue
            problem = _out_of_bounds(value, meta)
            if problem:
                problems.append(f"{meta['env']}: {raw!r} {problem}")
                continue
            values[field.name] = value
        if problems:
            raise ValueError("Invalid settings: " + "; ".join(problems))
        return cls(**values)


def _out_of_bounds(value: Any, meta: Mapping[str, Any]) -> str | None:
    if meta["choices"] is not None and value not in meta["choices"]:
        return f"is not one of {', '.join(meta['choices'])}"
    if meta["ge"] is not None and value < meta["ge"]:
        return f"is under {meta['ge']}"
    if meta["le"] is not None and value > meta["le"]:
        return f"is over {meta['le']}"
    if meta["gt"] is not None and value <= meta["gt"]:
        return f"must be over {meta['gt']}"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    import os

    return Settings.from_environment(os.environ)
