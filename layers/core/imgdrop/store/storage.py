"""S3 access: presigned uploads and downloads, object reads and writes.

Keys:
- uploads/{tenant}/{image_id}: what the client sent (never served; deleted once processed).
- public/{tenant}/{image_id}/{run}/{variant}.{ext}: the variants of public and unlisted
  images, served by the CDN unsigned (and cached for a year: the run is in the path).
- images/{tenant}/{image_id}/{run}/{variant}.{ext} and .../original.{ext}: private images'
  variants and every original, served only through signed URLs.
The CDN path of an object is its key (see imgdrop.delivery).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from imgdrop.errors import StorageError
from imgdrop.ids import iso, utc_now

# Retries with exponential backoff for throttling and 5xx, beyond the SDK's legacy default.
_RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)
# Presigning: SigV4 everywhere. In AWS, https://{bucket}.s3.{region}.amazonaws.com (also in
# us-east-1, whose legacy global endpoint would otherwise be used); on an emulator, path-style.
_SIGV4_AWS = Config(
    signature_version="s3v4", s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"}
)
_SIGV4_EMULATOR = Config(signature_version="s3v4", s3={"addressing_style": "path"})


def upload_key(tenant: str, image_id: str) -> str:
    return f"uploads/{tenant}/{image_id}"


PUBLIC_ROOT = "public"
PRIVATE_ROOT = "images"
# What the CDN and browsers may do with an object: public variants never change under their
# key; signed ones are cached only by the browser that holds the URL.
PUBLIC_CACHE_CONTROL = "public, max-age=31536000, immutable"
PRIVATE_CACHE_CONTROL = "private, max-age=3600"


def image_prefixes(tenant: str, image_id: str) -> tuple[str, str]:
    """Every folder that can hold an image's files: its private one, then its public one."""
    return f"{PRIVATE_ROOT}/{tenant}/{image_id}/", f"{PUBLIC_ROOT}/{tenant}/{image_id}/"


def run_prefix(tenant: str, image_id: str, run_id: str | None, *, public: bool = False) -> str:
    """The files one processing run wrote, in the public or the private folder (every file of
    that folder when no run is known)."""
    root = PUBLIC_ROOT if public else PRIVATE_ROOT
    return f"{root}/{tenant}/{image_id}/" + (f"{run_id}/" if run_id else "")


def is_public_key(key: str) -> bool:
    return key.startswith(f"{PUBLIC_ROOT}/")


def placed_key(key: str, *, public: bool) -> str:
    """The same file in the public or the private folder."""
    _, rest = key.split("/", 1)
    return f"{PUBLIC_ROOT if public else PRIVATE_ROOT}/{rest}"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "uploads" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@dataclass(frozen=True)
class PresignedPost:
    url: str
    fields: dict[str, str]
    expires_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"method": "POST", "url": self.url, "fields": self.fields, "expires_at": self.expires_at}


class ObjectStore:
    def __init__(self, bucket: str, *, public_endpoint_url: str = ""):
        self.bucket = bucket
        self._public_endpoint_url = public_endpoint_url

    @cached_property
    def _client(self) -> Any:
        return boto3.client("s3", config=_RETRIES)

    @cached_property
    def _signing_client(self) -> Any:
        """Signs the URLs handed to clients, always with SigV4 (botocore's default presigns S3
        with SigV2, which AWS refuses on buckets created since mid-2020): regional virtual-host
        URLs in AWS, path-style on an emulator's loopback endpoint."""
        if not self._public_endpoint_url:
            return boto3.client("s3", config=_RETRIES.merge(_SIGV4_AWS))
        return boto3.client(
            "s3", endpoint_url=self._public_endpoint_url, config=_RETRIES.merge(_SIGV4_EMULATOR)
        )

    def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> PresignedPost:
        """A POST policy bound to this exact key, type and size range: the client can't pick others."""
        try:
            post = self._signing_client.generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 1, max_bytes],
                ],
                ExpiresIn=expires_in,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The upload could not be signed.") from exc
        expires_at = iso(utc_now() + timedelta(seconds=expires_in))
        return PresignedPost(url=post["url"], fields=post["fields"], expires_at=expires_at)

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise StorageError("The object could not be inspected.") from exc
        except BotoCoreError as exc:
            raise StorageError("The object could not be inspected.") from exc

    def read(self, key: str, *, max_bytes: int) -> bytes:
        """Read at most max_bytes + 1 bytes, so an oversized object is detected without loading it."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
            return response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The object could not be read.") from exc

    def write(self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None) -> None:
        extra = {"CacheControl": cache_control} if cache_control else {}
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The object could not be written.") from exc

    def touch(self, key: str) -> None:
        """Copy an object onto itself, so S3 announces it again (ObjectCreated:Copy)."""
        try:
            self._client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"imgdrop-redrive": "1"},
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The object could not be announced again.") from exc

    def copy(self, source: str, target: str, *, cache_control: str) -> bool:
        """Copy an object within the bucket with new caching rules (its type kept); False when
        the source is gone."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=source)
            self._client.copy_object(
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": source},
                MetadataDirective="REPLACE",
                ContentType=head.get("ContentType") or "application/octet-stream",
                CacheControl=cache_control,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise StorageError("The object could not be copied.") from exc
        except BotoCoreError as exc:
            raise StorageError("The object could not be copied.") from exc
        return True

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            try:
                response = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
                )
            except (BotoCoreError, ClientError) as exc:
                raise StorageError("Objects could not be deleted.") from exc
            # DeleteObjects answers 200 and lists per-key failures (e.g. access denied) separately.
            if response.get("Errors"):
                raise StorageError(f"{len(response['Errors'])} objects could not be deleted.")

    def delete_prefix(self, prefix: str) -> None:
        keys = [key for key, _ in self.list_keys(prefix)]
        if keys:
            self.delete(keys)

    def list_keys(self, prefix: str) -> list[tuple[str, Any]]:
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return [(obj["Key"], obj["LastModified"]) for page in pages for obj in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("Objects could not be listed.") from exc
