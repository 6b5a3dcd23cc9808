"""S3 access: presigned uploads (POST forms, and each request of a multipart upload) and
downloads, object reads and writes (streamed to and from files for large objects).

Keys:
- uploads/{tenant}/{image_id}: what the client sent (never served; deleted once processed).
- public/{tenant}/{image_id}/{run}/{variant}.{ext}: the variants of public and unlisted
  images, served by the CDN unsigned (and cached for a year: the run is in the path).
- images/{tenant}/{image_id}/{run}/{variant}.{ext} and .../original.{ext}: private images'
  variants and every original, served only through signed URLs.
The CDN path of an object is its key (see imgdrop.delivery).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import IO, Any, Literal, overload

import boto3
from boto3.exceptions import S3UploadFailedError
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
# Streaming a large object to or from a file: 1 MiB reads; uploads in 16 MiB parts, 4 at a time,
# so memory holds ~64 MiB of it whatever the file's size (small files: one PutObject).
READ_CHUNK = 1024 * 1024
_TRANSFER = {"multipart_threshold": 64 * 1024 * 1024, "multipart_chunksize": 16 * 1024 * 1024,
             "max_concurrency": 4}

# The S3 requests of a multipart upload that a client may have signed: (botocore method, HTTP method).
MultipartOperation = Literal["create", "part", "list", "complete", "abort"]
_MULTIPART_OPERATIONS: dict[str, tuple[str, str]] = {
    "create": ("create_multipart_upload", "POST"),
    "part": ("upload_part", "PUT"),
    "list": ("list_parts", "GET"),
    "complete": ("complete_multipart_upload", "POST"),
    "abort": ("abort_multipart_upload", "DELETE"),
}


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


# A reprocess run's folder starts so (lifecycle.reprocess.reprocess_run_id); a processing run's
# is 16 hex digits (lifecycle.processing.run_id_for).
REPROCESS_RUN_PREFIX = "rp"


def is_reprocess_file(key: str) -> bool:
    """Whether `key` is in a reprocess run's folder: {root}/{tenant}/{image id}/{run}/{file}."""
    parts = key.split("/")
    return len(parts) > 4 and parts[3].startswith(REPROCESS_RUN_PREFIX)


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


@dataclass(frozen=True)
class PresignedRequest:
    """One S3 request signed in its query string (SigV4): the client sends `method` to `url` with
    exactly these `headers` (those the signature covers)."""

    method: str
    url: str
    headers: dict[str, str]
    expires_at: str


@dataclass(frozen=True)
class Received:
    """An object streamed into a file: how many bytes, their sha256 (hex) and the object's ETag."""

    size: int
    sha256: str
    etag: str | None


def _missing(exc: ClientError, *codes: str) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound", *codes}


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

    def presigned_multipart_request(
        self,
        key: str,
        operation: MultipartOperation,
        *,
        expires_in: int,
        upload_id: str | None = None,
        part_number: int | None = None,
        content_type: str | None = None,
    ) -> PresignedRequest:
        """One request of an S3 multipart upload of `key`, SigV4-signed in its query string: the
        client can use it for that key, that upload and that part only. Creating it signs the
        Content-Type header, so the object gets the declared type (S3 refuses any other)."""
        client_method, http_method = _MULTIPART_OPERATIONS[operation]
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        headers: dict[str, str] = {}
        if operation == "create":
            if content_type:
                params["ContentType"] = headers["Content-Type"] = content_type
        else:
            params["UploadId"] = upload_id
        if operation == "part":
            params["PartNumber"] = part_number
        try:
            url = self._signing_client.generate_presigned_url(
                client_method, Params=params, ExpiresIn=expires_in, HttpMethod=http_method
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The upload request could not be signed.") from exc
        expires_at = iso(utc_now() + timedelta(seconds=expires_in))
        return PresignedRequest(method=http_method, url=url, headers=headers, expires_at=expires_at)

    def multipart_uploads(self, key: str) -> list[str]:
        """The ids of the multipart uploads of exactly `key` still in progress (neither completed
        nor aborted)."""
        try:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=key
            )
            return [upload["UploadId"] for page in pages for upload in page.get("Uploads", [])
                    if upload.get("Key") == key]
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The multipart uploads could not be listed.") from exc

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort an upload and drop its parts; False when it is no longer in progress."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _missing(exc, "NoSuchUpload"):
                return False
            raise StorageError("The multipart upload could not be aborted.") from exc
        except BotoCoreError as exc:
            raise StorageError("The multipart upload could not be aborted.") from exc
        return True

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError("The object could not be inspected.") from exc
        except BotoCoreError as exc:
            raise StorageError("The object could not be inspected.") from exc

    @overload
    def read(self, key: str, *, max_bytes: int) -> bytes: ...

    @overload
    def read(self, key: str, *, max_bytes: int, into: IO[bytes]) -> Received: ...

    def read(self, key: str, *, max_bytes: int, into: IO[bytes] | None = None) -> bytes | Received:
        """Read at most max_bytes + 1 bytes, so an oversized object is detected without loading it:
        answered as bytes, or streamed into the file `into` (hashed on the way, never held in
        memory whole) and answered as what was Received."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes}")
            if into is None:
                return bytes(response["Body"].read())
            digest, size = hashlib.sha256(), 0
            for chunk in response["Body"].iter_chunks(READ_CHUNK):
                into.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            into.flush()
            return Received(size=size, sha256=digest.hexdigest(), etag=response.get("ETag"))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError("The object could not be read.") from exc

    def write(
        self,
        key: str,
        data: bytes | os.PathLike[str],
        *,
        content_type: str,
        cache_control: str | None = None,
    ) -> None:
        """Store bytes, or the file at a path (streamed: in parts when it is large)."""
        extra = {"CacheControl": cache_control} if cache_control else {}
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
                )
                return
            from boto3.s3.transfer import TransferConfig

            self._client.upload_file(
                os.fspath(data), self.bucket, key, ExtraArgs={"ContentType": content_type, **extra},
                Config=TransferConfig(**_TRANSFER),
            )
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
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
