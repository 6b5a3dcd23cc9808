"""PynamoDB models of the single imgdrop table and the data-access class over them.

Key layout (pk / sk):
  T#{tenant}            IMG#{id}        an image
  T#{tenant}            TAG#{id}        a tag
  T#{tenant}            ALB#{id}        an album
  T#{tenant}            SHA#{sha256}    claim: the canonical image of these exact bytes
  T#{tenant}            SLUG#{slug}     claim: the image that owns this slug
gsi1 (gsi1pk / gsi1sk): T#{tenant}#ALB#{album} / IMG#{id}   images of an album (sparse)
gsi2 (gsi2pk / gsi2sk): PENDING#{shard} / {upload_expires_at}#{tenant}#{id}
                        unsettled uploads (sparse: removed once an image settles)

Every write to an image is conditional on the item existing, so no late writer (a PATCH, a
processing run) can ever recreate a deleted image. Status changes live in imgdrop.lifecycle.transitions.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

from pynamodb.attributes import (
    Attribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.constants import STRING
from pynamodb.exceptions import (
    DeleteError,
    DoesNotExist,
    PutError,
    PynamoDBException,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from imgdrop.errors import StorageError

# Each shard is one GSI partition (~1,000 writes/s); an upload writes its shard about 4 times.
PENDING_SHARDS = 32
IN_FLIGHT = ("pending", "processing")
SETTLED = frozenset({"ready", "duplicate", "failed", "expired"})


class JSONText(Attribute[Any]):
    """Free-form JSON stored as a string: never queried, so no need for a Map's type rules."""

    attr_type = STRING

    def serialize(self, value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), default=str)

    def deserialize(self, value: str) -> Any:
        return json.loads(value)


class Gsi1(GlobalSecondaryIndex["ImageRecord"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["ImageRecord"]):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class _Base(Model):
    class Meta:
        table_name = "imgdrop"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class ImageRecord(_Base):
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    by_gsi1 = Gsi1()
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_gsi2 = Gsi2()
    ttl = TTLAttribute(null=True)

    tenant = UnicodeAttribute()
    id = UnicodeAttribute()
    owner = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    filename = UnicodeAttribute(null=True)
    content_type = UnicodeAttribute()
    declared_bytes: int = NumberAttribute()  # type: ignore[assignment]
    profile = UnicodeAttribute()
    purpose = UnicodeAttribute(null=True)
    album_id = UnicodeAttribute(null=True)
    parent_id = UnicodeAttribute(null=True)
    slug = UnicodeAttribute(null=True)
    tag_ids: ListAttribute[str] = ListAttribute(of=UnicodeAttribute, default=list)  # type: ignore[arg-type]
    # descriptive fields from the seeds (title, description, rating, privacy, license, ...)
    fields = JSONText(default=dict)
    # what processing found: format, width, height, sha256, phash, exif, gps, colors, ...
    result = JSONText(default=dict)
    variants = JSONText(default=dict)
    original = JSONText(null=True)
    tags = JSONText(default=list)
    similar = JSONText(default=list)
    errors = JSONText(default=list)
    duplicate_of = UnicodeAttribute(null=True)
    upload_key = UnicodeAttribute()
    upload_expires_at = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    processed_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    redrives = NumberAttribute(null=True)
    # The processing run that holds the image (one S3 delivery) and until when; see lifecycle.
    run_id = UnicodeAttribute(null=True)
    lease_until = UnicodeAttribute(null=True)
    # The uploader's album rights (None: every album): dedupe weighs only what they may read.
    uploader_albums = JSONText(null=True)


class TagRecord(_Base):
    tenant = UnicodeAttribute()
    id = UnicodeAttribute()
    category = UnicodeAttribute(null=True)
    label = UnicodeAttribute()
    created_at = UnicodeAttribute()


class AlbumRecord(_Base):
    tenant = UnicodeAttribute()
    id = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UnicodeAttribute()


class ClaimRecord(_Base):
    """A uniqueness claim (sha256, slug): the first conditional put wins."""

    image_id = UnicodeAttribute()
    created_at = UnicodeAttribute()


ALL_MODELS: tuple[type[Model], ...] = (ImageRecord, TagRecord, AlbumRecord, ClaimRecord)


def bind(table_name: str) -> None:
    """Point every model at the deployment's table (read from settings at cold start)."""
    for model in ALL_MODELS:
        model.Meta.table_name = table_name
        model._connection = None


def tenant_pk(tenant: str) -> str:
    return f"T#{tenant}"


def image_sk(image_id: str) -> str:
    return f"IMG#{image_id}"


def album_gsi_pk(tenant: str, album_id: str) -> str:
    return f"T#{tenant}#ALB#{album_id}"


def pending_gsi_pk(image_id: str) -> str:
    return f"PENDING#{zlib.crc32(image_id.encode()) % PENDING_SHARDS}"


def pending_gsi_sk(expires_at: str, tenant: str, image_id: str) -> str:
    return f"{expires_at}#{tenant}#{image_id}"


class Repository:
    """The data access the domain functions get injected; SDK errors become StorageError."""

    # ---- images
    def put_new_image(self, record: ImageRecord) -> None:
        try:
            record.save(condition=ImageRecord.pk.does_not_exist())
        except PutError as exc:
            raise StorageError("The image record could not be created.") from exc

    def get_image(self, tenant: str, image_id: str) -> ImageRecord | None:
        try:
            return ImageRecord.get(tenant_pk(tenant), image_sk(image_id), consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The image record could not be read.") from exc

    def get_images(self, tenant: str, image_ids: list[str]) -> dict[str, ImageRecord]:
        keys = [(tenant_pk(tenant), image_sk(i)) for i in dict.fromkeys(image_ids)]
        if not keys:
            return {}
        try:
            return {record.id: record for record in ImageRecord.batch_get(keys)}
        except PynamoDBException as exc:
            raise StorageError("The image records could not be read.") from exc

    def update_image(
        self, record: ImageRecord, actions: list[Any], condition: Condition | None = None
    ) -> bool:
        """Apply update actions to an existing image; False when it is gone or the condition
        did not hold. The record's attributes are refreshed from the written item."""
        exists = ImageRecord.pk.exists()
        try:
            record.update(actions=actions, condition=exists if condition is None else exists & condition)
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The image record could not be updated.") from exc
        return True

    def update_image_and_claim(
        self,
        record: ImageRecord,
        actions: list[Any],
        condition: Condition,
        claim: ClaimRecord,
        claim_condition: Condition,
    ) -> str | None:
        """Update the image and write a claim in one transaction. Answers None when both were
        written, else which condition failed: "image" or "claim"."""
        try:
            with TransactWrite(connection=Connection()) as transaction:
                transaction.update(record, actions, condition=ImageRecord.pk.exists() & condition)
                transaction.save(claim, condition=claim_condition)
        except TransactWriteError as exc:
            reasons = exc.cancellation_reasons
            if exc.cause_response_code != "TransactionCanceledException" or not reasons:
                raise StorageError("The image could not be settled.") from exc
            if reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                return "image"
            if len(reasons) > 1 and reasons[1] is not None and reasons[1].code == "ConditionalCheckFailed":
                return "claim"
            raise StorageError("The image could not be settled; try again.") from exc
        return None

    def delete_image(self, record: ImageRecord) -> bool:
        """False when it was already gone."""
        try:
            record.delete(condition=ImageRecord.pk.exists())
        except DeleteError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The image record could not be deleted.") from exc
        return True

    def list_images(
        self,
        tenant: str,
        *,
        album_id: str | None,
        limit: int,
        cursor: dict[str, Any] | None,
        status: str | None = None,
        tag: str | None = None,
        readable_albums: frozenset[str] | None = None,
    ) -> tuple[list[ImageRecord], dict[str, Any] | None]:
        """A full page of `limit` images, newest first, that pass the filters, and the key to
        go on from (None on the last page). DynamoDB applies `Limit` before a filter, so pages
        are read until the page is full: a filter never makes a page short.

        `readable_albums`: None reads every album and no album; a set reads only those albums."""
        condition: Condition | None = None
        for part in (
            ImageRecord.status == status if status else None,
            ImageRecord.tag_ids.contains(tag) if tag else None,
            ImageRecord.album_id.is_in(*readable_albums) if readable_albums else None,
        ):
            if part is not None:
                condition = part if condition is None else condition & part
        if readable_albums is not None and not readable_albums:
            return [], None
        page_size = limit + 1 if condition is None else 100
        try:
            if album_id:
                result = ImageRecord.by_gsi1.query(
                    album_gsi_pk(tenant, album_id),
                    filter_condition=condition,
                    scan_index_forward=False,
                    page_size=page_size,
                    last_evaluated_key=cursor,
                )
            else:
                result = ImageRecord.query(
                    tenant_pk(tenant),
                    ImageRecord.sk.startswith("IMG#"),
                    filter_condition=condition,
                    scan_index_forward=False,
                    page_size=page_size,
                    last_evaluated_key=cursor,
                )
            items: list[ImageRecord] = []
            for record in result:
                items.append(record)
                if len(items) > limit:  # one more than the page: there is a next page
                    break
        except PynamoDBException as exc:
            raise StorageError("The images could not be listed.") from exc
        if len(items) <= limit:
            return items, None
        last = items[limit - 1]
        key = {"pk": {"S": last.pk}, "sk": {"S": last.sk}}
        if album_id:
            key.update({"gsi1pk": {"S": last.gsi1pk}, "gsi1sk": {"S": last.gsi1sk}})
        return items[:limit], key

    def iter_unsettled(self, expired_before: str) -> Iterator[ImageRecord]:
        try:
            for shard in range(PENDING_SHARDS):
                yield from ImageRecord.by_gsi2.query(f"PENDING#{shard}", ImageRecord.gsi2sk < expired_before)
        except PynamoDBException as exc:
            raise StorageError("The pending uploads could not be listed.") from exc

    # ---- claims
    def claim(self, tenant: str, kind: str, value: str, image_id: str, now: str) -> str:
        """Claim a unique value for image_id; returns the owner (image_id when we won).

        A claim released between our conditional put and our read is tried again, so a win is
        only ever reported for a claim this call wrote."""
        record = ClaimRecord(tenant_pk(tenant), f"{kind}#{value}", image_id=image_id, created_at=now)
        for _ in range(3):
            try:
                record.save(condition=ClaimRecord.pk.does_not_exist())
                return image_id
            except PutError as exc:
                if not _is_conditional_failure(exc):
                    raise StorageError("The claim could not be written.") from exc
            owner = self.claim_owner(tenant, kind, value)
            if owner is not None:
                return owner
        raise StorageError("The claim kept changing hands; try again.")

    def claim_owner(self, tenant: str, kind: str, value: str) -> str | None:
        try:
            return ClaimRecord.get(tenant_pk(tenant), f"{kind}#{value}", consistent_read=True).image_id
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The claim could not be read.") from exc

    def take_over_claim(self, tenant: str, kind: str, value: str, from_id: str, to_id: str, now: str) -> bool:
        """Move a claim from one image to another, only if from_id still holds it."""
        record = ClaimRecord(tenant_pk(tenant), f"{kind}#{value}", image_id=to_id, created_at=now)
        try:
            record.save(condition=ClaimRecord.image_id == from_id)
        except PutError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The claim could not be taken over.") from exc
        return True

    def set_claim(self, tenant: str, kind: str, value: str, image_id: str, now: str) -> None:
        try:
            ClaimRecord(tenant_pk(tenant), f"{kind}#{value}", image_id=image_id, created_at=now).save()
        except PynamoDBException as exc:
            raise StorageError("The claim could not be written.") from exc

    def release_claim(self, tenant: str, kind: str, value: str, image_id: str) -> None:
        try:
            ClaimRecord(tenant_pk(tenant), f"{kind}#{value}").delete(
                condition=ClaimRecord.image_id == image_id
            )
        except PynamoDBException as exc:
            if not _is_conditional_failure(exc):
                raise StorageError("The claim could not be released.") from exc

    # ---- tags and albums
    def put_tag(self, record: TagRecord) -> None:
        try:
            record.save(condition=TagRecord.pk.does_not_exist())
        except PynamoDBException as exc:
            raise StorageError("The tag could not be saved.") from exc

    def get_tags(self, tenant: str, tag_ids: list[str]) -> dict[str, TagRecord]:
        keys = [(tenant_pk(tenant), f"TAG#{tag_id}") for tag_id in dict.fromkeys(tag_ids)]
        if not keys:
            return {}
        try:
            return {tag.id: tag for tag in TagRecord.batch_get(keys)}
        except PynamoDBException as exc:
            raise StorageError("The tags could not be read.") from exc

    def list_tags(self, tenant: str) -> list[TagRecord]:
        try:
            return list(TagRecord.query(tenant_pk(tenant), TagRecord.sk.startswith("TAG#")))
        except PynamoDBException as exc:
            raise StorageError("The tags could not be listed.") from exc

    def put_album(self, record: AlbumRecord) -> None:
        try:
            record.save(condition=AlbumRecord.pk.does_not_exist())
        except PynamoDBException as exc:
            raise StorageError("The album could not be saved.") from exc

    def get_album(self, tenant: str, album_id: str) -> AlbumRecord | None:
        try:
            return AlbumRecord.get(tenant_pk(tenant), f"ALB#{album_id}")
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The album could not be read.") from exc


def _is_conditional_failure(exc: PynamoDBException) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"
