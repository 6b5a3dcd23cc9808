"""PynamoDB models of the single imgdrop table and the data-access class over them.

Key layout (pk / sk). Whatever every upload of a tenant writes has a partition of its own or is
spread over 16 shards (imgdrop.store.shards): one partition takes about 1,000 write units a
second, and bench/partitions.py measures each key at 1,000 uploads a second into one tenant.
  T#{tenant}#IMG#{id}        IMG#{id}        an image
  T#{tenant}#SHA#{sha256}    SHA#{sha256}    claim: the canonical image of these exact bytes
  T#{tenant}#SLUG#{slug}     SLUG#{slug}     claim: the image that owns this slug
  T#{tenant}                 TAG#{id}        a tag (few writes: they stay on the tenant's key)
  T#{tenant}                 ALB#{id}        an album
gsi3 (gsi3pk / gsi3sk): T#{tenant}#L#S{shard} / IMG#{id}
                        the tenant's images (every image; shard from the image id)
gsi1 (gsi1pk / gsi1sk): T#{tenant}#ALB#{album}#S{shard} / IMG#{id}
                        images of an album (sparse; shard from the image id)
gsi2 (gsi2pk / gsi2sk): PENDING#{shard} / {upload_expires_at}#{tenant}#{id}
                        unsettled uploads (sparse: removed once an image settles); under
                        DELETING# and UNQUEUED#, deletions and webhook deliveries to finish
A listing of a sharded key is one query per shard, merged newest first (shards.merged_page).
Items written under the keys before (the tenant's key, unsharded indexes) are moved by
``python -m imgdrop.store.migrate backfill`` (imgdrop.store.migrate).

Every write to an image is conditional on the item existing, so no late writer (a PATCH, a
processing run) can ever recreate a deleted image. Status changes live in imgdrop.lifecycle.transitions.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any, TypedDict, TypeVar

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
from imgdrop.store.shards import Positions, ShardSet, ShardWalk, merged_page, shard_of, shard_page_size

# Each shard is one GSI partition (~1,000 writes/s); an upload writes its shard about 4 times.
PENDING_SHARDS = 32
# An upload writes its listing shard and its album shard 4 times each (8 units: made, processing,
# settled, ...) and its endpoint's delivery shard twice (12 units: the body is the image object):
# with 16 shards, 1,000 uploads/s into one tenant is 500 and 750 WCU/s a shard, under the 1,000
# of a partition (measured: bench/partitions.py).
LISTING_SHARDS = 16
ALBUM_SHARDS = 16
DELIVERY_SHARDS = 16
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


class Gsi3(GlobalSecondaryIndex["ImageRecord"]):
    """The tenant's images, sharded (LISTING_SHARDS) by image id."""

    class Meta:
        index_name = "gsi3"
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


_Pending = TypeVar("_Pending", bound=Model)


class Gsi2(GlobalSecondaryIndex[_Pending]):
    """The pending index: unsettled images (PENDING#{shard}), deleted images not yet cleaned up
    after (DELETING#{shard}), and webhook deliveries whose first message waits to be queued
    (UNQUEUED#{shard}). PynamoDB gives each model its own copy of the index."""

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
    by_gsi2 = Gsi2["ImageRecord"]()
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)
    by_gsi3 = Gsi3()
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


# A deleted image not yet cleaned up after: a copy of its record under this sk, out of the listings
# and in the pending index under DELETING#{shard} (Repository.delete_image).
DELETION_SK = "DELETION"


ALL_MODELS: tuple[type[Model], ...] = (ImageRecord, TagRecord, AlbumRecord, ClaimRecord)


@functools.cache
def transactions_connection() -> Connection:
    """The one connection (one botocore client) every transaction goes through. A Connection per
    transaction built a client and read DynamoDB's service model each time: ~8 % of the local
    stack's CPU under load, and as much of a deployed function's time per transaction."""
    return Connection()


def bind(table_name: str) -> None:
    """Point every model at the deployment's table (read from settings at cold start)."""
    for model in ALL_MODELS:
        model.Meta.table_name = table_name
        model._connection = None


def tenant_pk(tenant: str) -> str:
    """The tenant's own key: its tags, albums, webhooks and jobs (a few writes a second at most)."""
    return f"T#{tenant}"


def image_pk(tenant: str, image_id: str) -> str:
    return f"T#{tenant}#IMG#{image_id}"


IMAGE_SK_PREFIX = "IMG#"


def image_sk(image_id: str) -> str:
    return f"{IMAGE_SK_PREFIX}{image_id}"


def claim_key(tenant: str, kind: str, value: str) -> tuple[str, str]:
    """A claim (kind SHA or SLUG) on a partition of its own: (pk, sk)."""
    return f"T#{tenant}#{kind}#{value}", f"{kind}#{value}"


def tenant_listing(tenant: str) -> ShardSet:
    """The tenant's images in index gsi3."""
    return ShardSet(f"T#{tenant}#L", LISTING_SHARDS)


def album_listing(tenant: str, album_id: str) -> ShardSet:
    """An album's images in index gsi1."""
    return ShardSet(f"T#{tenant}#ALB#{album_id}", ALBUM_SHARDS)


def listing_gsi_pk(tenant: str, image_id: str) -> str:
    return tenant_listing(tenant).key_for(image_id)


def album_gsi_pk(tenant: str, album_id: str, image_id: str) -> str:
    return album_listing(tenant, album_id).key_for(image_id)


# What the pending index (gsi2) holds, each in PENDING_SHARDS shards: unsettled uploads, the
# copies of deleted images not yet cleaned up after, and webhook deliveries whose first message
# SQS refused (imgdrop.webhooks.unqueued).
UNSETTLED, DELETING, UNQUEUED = "PENDING", "DELETING", "UNQUEUED"


def pending_gsi_pk(image_id: str, kind: str = UNSETTLED) -> str:
    return f"{kind}#{shard_of(image_id, PENDING_SHARDS)}"


def pending_gsi_sk(look_at: str, tenant: str, image_id: str) -> str:
    """Sorted by the moment from which the sweep looks at the item (an upload's expiry, a
    deletion's start)."""
    return f"{look_at}#{tenant}#{image_id}"


class ImageKeys(TypedDict):
    pk: str
    sk: str
    gsi3pk: str
    gsi3sk: str
    gsi1pk: str | None
    gsi1sk: str | None


def image_keys(tenant: str, image_id: str, album_id: str | None) -> ImageKeys:
    """The key attributes of an image and of its index entries, but the pending index's: as
    written when it is made, and by the migration (imgdrop.store.migrate)."""
    return {
        "pk": image_pk(tenant, image_id),
        "sk": image_sk(image_id),
        "gsi3pk": listing_gsi_pk(tenant, image_id),
        "gsi3sk": image_sk(image_id),
        "gsi1pk": album_gsi_pk(tenant, album_id, image_id) if album_id else None,
        "gsi1sk": image_sk(image_id) if album_id else None,
    }


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
            return ImageRecord.get(image_pk(tenant, image_id), image_sk(image_id), consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The image record could not be read.") from exc

    def get_images(self, tenant: str, image_ids: list[str]) -> dict[str, ImageRecord]:
        keys = [(image_pk(tenant, i), image_sk(i)) for i in dict.fromkeys(image_ids)]
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
            with TransactWrite(connection=transactions_connection()) as transaction:
                transaction.update(record, actions, condition=ImageRecord.pk.exists() & condition)
                transaction.save(claim, condition=claim_condition)
        except TransactWriteError as exc:
            failed = _conditions_failed(exc)
            if failed is None:
                raise StorageError("The image could not be settled.") from exc
            if failed[0]:
                return "image"
            if len(failed) > 1 and failed[1]:
                return "claim"
            raise StorageError("The image could not be settled; try again.") from exc
        return None

    def delete_image(self, record: ImageRecord, now: str) -> bool:
        """Delete the record and, in the same transaction, keep a copy of it under sk DELETION
        (out of the listings, in the pending index): what the image held is then removed even if
        the caller stops before it is done (imgdrop.catalogue.images.finish_deletion, the sweep).
        False when the record was already gone."""
        deletion = ImageRecord.from_raw_data(record.to_dynamodb_dict())
        deletion.sk = DELETION_SK
        deletion.gsi1pk = deletion.gsi1sk = deletion.gsi3pk = deletion.gsi3sk = None
        deletion.ttl = None
        deletion.gsi2pk = pending_gsi_pk(record.id, DELETING)
        deletion.gsi2sk = pending_gsi_sk(now, record.tenant, record.id)
        try:
            with TransactWrite(connection=transactions_connection()) as transaction:
                transaction.delete(record, condition=ImageRecord.pk.exists())
                transaction.save(deletion)
        except TransactWriteError as exc:
            failed = _conditions_failed(exc)
            if failed and failed[0]:  # the record is gone: another delete took it
                return False
            raise StorageError("The image record could not be deleted.") from exc
        return True

    def deletion_done(self, tenant: str, image_id: str) -> None:
        try:
            ImageRecord(image_pk(tenant, image_id), DELETION_SK).delete()
        except PynamoDBException as exc:
            raise StorageError("The deletion could not be recorded as done.") from exc

    def iter_deletions(self, requested_before: str) -> Iterator[ImageRecord]:
        """The deleted images (as they were) whose deletion began before that moment, not done."""
        return _pending(DELETING, requested_before, "The unfinished deletions could not be listed.")

    def list_images(
        self,
        tenant: str,
        *,
        album_id: str | None,
        limit: int,
        positions: Positions | None,
        status: str | None = None,
        tag: str | None = None,
        readable_albums: frozenset[str] | None = None,
    ) -> tuple[list[ImageRecord], Positions | None]:
        """A full page of `limit` images, newest first, that pass the filters, and the shards'
        positions to go on from (None on the last page): the tenant's listing (gsi3) or the
        album's (gsi1), each one query per shard, merged (shards.merged_page). DynamoDB applies
        `Limit` before a filter, so a shard is read on until the merge has what it needs: a
        filter never makes a page short.

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
        index: GlobalSecondaryIndex[ImageRecord]
        if album_id:
            shards, index, sort_key = album_listing(tenant, album_id), ImageRecord.by_gsi1, ImageRecord.gsi1sk
        else:
            shards, index, sort_key = tenant_listing(tenant), ImageRecord.by_gsi3, ImageRecord.gsi3sk
        # With a filter, much of what a shard reads may be dropped: read `limit` at a time.
        page_size = limit if condition is not None else shard_page_size(limit, shards.count)

        def query(partition_key: str, start: str | None) -> Iterator[ImageRecord]:
            return index.query(
                partition_key,
                sort_key.between(IMAGE_SK_PREFIX, start) if start else None,
                filter_condition=condition,
                scan_index_forward=False,
                page_size=page_size,
            )

        try:
            return merged_page(shards, query, lambda record: image_sk(record.id), limit, positions)
        except PynamoDBException as exc:
            raise StorageError("The images could not be listed.") from exc

    def iter_unsettled(self, expired_before: str) -> Iterator[ImageRecord]:
        return _pending(UNSETTLED, expired_before, "The pending uploads could not be listed.")

    # ---- claims
    def claim(self, tenant: str, kind: str, value: str, image_id: str, now: str) -> str:
        """Claim a unique value for image_id; returns the owner (image_id when we won).

        A claim released between our conditional put and our read is tried again, so a win is
        only ever reported for a claim this call wrote."""
        record = ClaimRecord(*claim_key(tenant, kind, value), image_id=image_id, created_at=now)
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
            return ClaimRecord.get(*claim_key(tenant, kind, value), consistent_read=True).image_id
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The claim could not be read.") from exc

    def take_over_claim(self, tenant: str, kind: str, value: str, from_id: str, to_id: str, now: str) -> bool:
        """Move a claim from one image to another, only if from_id still holds it."""
        record = ClaimRecord(*claim_key(tenant, kind, value), image_id=to_id, created_at=now)
        try:
            record.save(condition=ClaimRecord.image_id == from_id)
        except PutError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The claim could not be taken over.") from exc
        return True

    def set_claim(self, tenant: str, kind: str, value: str, image_id: str, now: str) -> None:
        try:
            ClaimRecord(*claim_key(tenant, kind, value), image_id=image_id, created_at=now).save()
        except PynamoDBException as exc:
            raise StorageError("The claim could not be written.") from exc

    def release_claim(self, tenant: str, kind: str, value: str, image_id: str) -> None:
        try:
            ClaimRecord(*claim_key(tenant, kind, value)).delete(
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


def _pending(kind: str, look_before: str, failure: str) -> Iterator[ImageRecord]:
    """The pending index's items of one kind that the sweep should look at by `look_before`."""
    try:
        for shard in range(PENDING_SHARDS):
            yield from ImageRecord.by_gsi2.query(f"{kind}#{shard}", ImageRecord.gsi2sk < look_before)
    except PynamoDBException as exc:
        raise StorageError(failure) from exc


def _conditions_failed(exc: TransactWriteError) -> list[bool] | None:
    """For a cancelled transaction, whether each action's condition failed (in the order the
    actions were written); None when it failed for another reason."""
    reasons = exc.cancellation_reasons
    if exc.cause_response_code != "TransactionCanceledException" or not reasons:
        return None
    return [reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons]


def _is_conditional_failure(exc: PynamoDBException) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


# --------------------------------------------------------------------------- webhooks and jobs
#
# Key layout (pk / sk), besides the image's:
#   T#{tenant}                 WH#{id}       a webhook endpoint (its signing secret too)
#   T#{tenant}#WH#{webhook}#S{shard}
#                              DLV#{id}      one delivery: one event to one endpoint (TTL: 30 days);
#                                            DELIVERY_SHARDS shards, the shard from the delivery id
#   T#{tenant}                 JOB#{id}      a reprocess job, its plan's progress and its counters
#   T#{tenant}#JOB#{job}       IMG#{image}   one image of a job: who works on it, its outcome and the
#                                            files its swap retired (TTL: with the job)


class WebhookRecord(_Base):
    tenant = UnicodeAttribute()
    id = UnicodeAttribute()
    url = UnicodeAttribute()
    events: ListAttribute[str] = ListAttribute(of=UnicodeAttribute, default=list)  # type: ignore[arg-type]
    secret = UnicodeAttribute()
    created_at = UnicodeAttribute()


class DeliveryRecord(_Base):
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_gsi2 = Gsi2["DeliveryRecord"]()  # only while its first message waits to be queued
    tenant = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    id = UnicodeAttribute()
    type = UnicodeAttribute()
    image_id = UnicodeAttribute()
    # The exact JSON body of every attempt (its signature covers these bytes).
    body = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | delivered | failed
    attempts = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    next_attempt_at = UnicodeAttribute(null=True)
    # The token of the one queue message that may make the next attempt: a repeated or late
    # message (SQS delivers at least once) carries another and changes nothing.
    next_token = UnicodeAttribute(null=True)
    last_attempts = JSONText(default=list)
    ttl = TTLAttribute(null=True)


class JobRecord(_Base):
    tenant = UnicodeAttribute()
    id = UnicodeAttribute()
    kind = UnicodeAttribute()
    profile = UnicodeAttribute(null=True)
    ids = JSONText(null=True)
    total = NumberAttribute(default=0)
    done = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    # Planning: the step that comes next, where it starts (a DynamoDB key), and whether it is over.
    plan_step = NumberAttribute(default=0)
    plan_cursor = JSONText(null=True)
    planned = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    ttl = TTLAttribute(null=True)


class JobItemRecord(_Base):
    tenant = UnicodeAttribute()
    job_id = UnicodeAttribute()
    image_id = UnicodeAttribute()
    lease_owner = UnicodeAttribute(null=True)
    lease_until = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute(null=True)  # done | failed | skipped, once counted
    retired = JSONText(null=True)  # the variant keys its swap replaced, removed after the swap
    updated_at = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)


ALL_MODELS = (*ALL_MODELS, WebhookRecord, DeliveryRecord, JobRecord, JobItemRecord)


def webhook_sk(webhook_id: str) -> str:
    return f"WH#{webhook_id}"


DELIVERY_SK_PREFIX = "DLV#"


def endpoint_deliveries(tenant: str, webhook_id: str) -> ShardSet:
    return ShardSet(f"T#{tenant}#WH#{webhook_id}", DELIVERY_SHARDS)


def delivery_key(tenant: str, webhook_id: str, delivery_id: str) -> tuple[str, str]:
    """(pk, sk) of one delivery: on its endpoint's shard for the delivery id."""
    return endpoint_deliveries(tenant, webhook_id).key_for(delivery_id), f"{DELIVERY_SK_PREFIX}{delivery_id}"


def job_sk(job_id: str) -> str:
    return f"JOB#{job_id}"


def job_items_pk(tenant: str, job_id: str) -> str:
    return f"T#{tenant}#JOB#{job_id}"


class WebhookStore:
    """Webhook endpoints and their deliveries; SDK errors become StorageError."""

    def put(self, record: WebhookRecord) -> None:
        try:
            record.save(condition=WebhookRecord.pk.does_not_exist())
        except PynamoDBException as exc:
            raise StorageError("The webhook could not be saved.") from exc

    def get(self, tenant: str, webhook_id: str, *, consistent: bool = True) -> WebhookRecord | None:
        try:
            return WebhookRecord.get(tenant_pk(tenant), webhook_sk(webhook_id), consistent_read=consistent)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The webhook could not be read.") from exc

    def for_tenant(self, tenant: str) -> list[WebhookRecord]:
        """Every endpoint of the tenant, oldest first (read consistently: one made a moment ago
        gets the next event)."""
        try:
            return list(WebhookRecord.query(tenant_pk(tenant), WebhookRecord.sk.startswith("WH#"),
                                            consistent_read=True))
        except PynamoDBException as exc:
            raise StorageError("The webhooks could not be listed.") from exc

    def delete(self, record: WebhookRecord) -> bool:
        try:
            record.delete(condition=WebhookRecord.pk.exists())
        except DeleteError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The webhook could not be deleted.") from exc
        return True

    def put_delivery(self, record: DeliveryRecord) -> bool:
        """Record a new delivery; False when one of that id is there already (the event was told
        before: its id is the event's)."""
        try:
            record.save(condition=DeliveryRecord.pk.does_not_exist())
        except PutError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The delivery could not be recorded.") from exc
        except PynamoDBException as exc:
            raise StorageError("The delivery could not be recorded.") from exc
        return True

    def get_delivery(self, tenant: str, webhook_id: str, delivery_id: str) -> DeliveryRecord | None:
        try:
            return DeliveryRecord.get(*delivery_key(tenant, webhook_id, delivery_id), consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The delivery could not be read.") from exc

    def record_attempt(self, record: DeliveryRecord, token: str, actions: list[Any]) -> bool:
        """Write an attempt's result, only while the delivery is pending and `token` is still the
        one its next attempt was given: of two copies of a message, one records."""
        condition = (DeliveryRecord.status == "pending") & (DeliveryRecord.next_token == token)
        try:
            record.update(actions=actions, condition=DeliveryRecord.pk.exists() & condition)
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The delivery could not be updated.") from exc
        return True

    def mark_unqueued(self, record: DeliveryRecord, now: str) -> None:
        """Put a delivery whose first message could not be queued in the pending index, unless it
        is no longer pending (it was queued after all, and went)."""
        try:
            record.update(
                actions=[DeliveryRecord.gsi2pk.set(pending_gsi_pk(record.id, UNQUEUED)),
                         DeliveryRecord.gsi2sk.set(pending_gsi_sk(now, record.tenant, record.id))],
                condition=DeliveryRecord.pk.exists() & (DeliveryRecord.status == "pending"),
            )
        except UpdateError as exc:
            if not _is_conditional_failure(exc):
                raise StorageError("The unqueued delivery could not be recorded.") from exc

    def unqueued(self, look_before: str) -> Iterator[DeliveryRecord]:
        """The deliveries marked before `look_before`, shard after shard (the index is sparse:
        each query reads only what is marked)."""
        try:
            for shard in range(PENDING_SHARDS):
                yield from DeliveryRecord.by_gsi2.query(f"{UNQUEUED}#{shard}",
                                                        DeliveryRecord.gsi2sk < look_before)
        except PynamoDBException as exc:
            raise StorageError("The unqueued deliveries could not be listed.") from exc

    def unmark_unqueued(self, record: DeliveryRecord) -> None:
        try:
            record.update(actions=[DeliveryRecord.gsi2pk.remove(), DeliveryRecord.gsi2sk.remove()],
                          condition=DeliveryRecord.pk.exists())
        except UpdateError as exc:
            if not _is_conditional_failure(exc):  # gone (its TTL): nothing left to take out
                raise StorageError("The unqueued delivery could not be taken out of the index.") from exc

    def list_deliveries(
        self, tenant: str, webhook_id: str, limit: int, positions: Positions | None = None
    ) -> tuple[list[DeliveryRecord], Positions | None]:
        """A page of the endpoint's deliveries, newest first, merged from its shards, and the
        positions to go on from (None on the last page)."""
        shards = endpoint_deliveries(tenant, webhook_id)
        page_size = shard_page_size(limit, shards.count)

        def query(partition_key: str, start: str | None) -> Iterator[DeliveryRecord]:
            return DeliveryRecord.query(
                partition_key,
                DeliveryRecord.sk.between(DELIVERY_SK_PREFIX, start) if start
                else DeliveryRecord.sk.startswith(DELIVERY_SK_PREFIX),
                scan_index_forward=False,
                page_size=page_size,
            )

        try:
            return merged_page(shards, query, lambda record: record.sk, limit, positions)
        except PynamoDBException as exc:
            raise StorageError("The deliveries could not be listed.") from exc


class JobStore:
    """Reprocess jobs, their images' bookkeeping, and the matching images' listing."""

    def create(self, record: JobRecord) -> None:
        try:
            record.save(condition=JobRecord.pk.does_not_exist())
        except PynamoDBException as exc:
            raise StorageError("The job could not be created.") from exc

    def get(self, tenant: str, job_id: str) -> JobRecord | None:
        try:
            return JobRecord.get(tenant_pk(tenant), job_sk(job_id), consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The job could not be read.") from exc

    def record_plan_step(
        self, job: JobRecord, step: int, count: int, cursor: dict[str, Any] | None, now: str
    ) -> bool:
        """Count one planning step's images and name the next step's start, once per step
        whatever repeats; False when this step was recorded already."""
        actions: list[Any] = [
            JobRecord.total.add(count),
            JobRecord.plan_step.set(step + 1),
            JobRecord.updated_at.set(now),
            JobRecord.plan_cursor.set(cursor) if cursor else JobRecord.plan_cursor.remove(),
        ]
        if cursor is None:
            actions.append(JobRecord.planned.set(1))
        try:
            job.update(actions=actions, condition=JobRecord.pk.exists() & (JobRecord.plan_step == step))
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                return False
            raise StorageError("The job could not be updated.") from exc
        return True

    def ready_images(
        self, tenant: str, profile: str | None, position: dict[str, Any] | None, page_size: int = 100
    ) -> ShardWalk:
        """The tenant's ready images (of `profile`), shard after shard of its listing (gsi3), a
        resumable iterator: its `position` is where to go on from after any item."""
        condition: Condition = ImageRecord.status == "ready"
        if profile:
            condition = condition & (ImageRecord.profile == profile)

        def query(partition_key: str, start: dict[str, Any] | None) -> Any:
            return ImageRecord.by_gsi3.query(
                partition_key, filter_condition=condition, page_size=page_size, last_evaluated_key=start
            )

        try:
            return ShardWalk(tenant_listing(tenant), query, position)
        except PynamoDBException as exc:
            raise StorageError("The images could not be listed.") from exc

    def get_item(self, tenant: str, job_id: str, image_id: str) -> JobItemRecord | None:
        try:
            return JobItemRecord.get(job_items_pk(tenant, job_id), image_sk(image_id), consistent_read=True)
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StorageError("The job's image could not be read.") from exc

    def take_item(
        self, tenant: str, job_id: str, image_id: str, owner: str, now: str, until: str, ttl: Any
    ) -> str:
        """Hold one image of a job for `owner` until `until`: "taken"; "busy" while another
        worker holds it; "settled" once its outcome is counted."""
        item = JobItemRecord(job_items_pk(tenant, job_id), image_sk(image_id))
        free = JobItemRecord.lease_until.does_not_exist() | (JobItemRecord.lease_until < now)
        try:
            item.update(
                actions=[
                    JobItemRecord.tenant.set(tenant), JobItemRecord.job_id.set(job_id),
                    JobItemRecord.image_id.set(image_id), JobItemRecord.lease_owner.set(owner),
                    JobItemRecord.lease_until.set(until), JobItemRecord.updated_at.set(now),
                    JobItemRecord.ttl.set(ttl),
                ],
                condition=JobItemRecord.outcome.does_not_exist() & free,
            )
        except UpdateError as exc:
            if not _is_conditional_failure(exc):
                raise StorageError("The job's image could not be taken.") from exc
            current = self.get_item(tenant, job_id, image_id)
            return "settled" if current is not None and current.outcome else "busy"
        return "taken"

    def release_item(self, tenant: str, job_id: str, image_id: str, owner: str) -> None:
        item = JobItemRecord(job_items_pk(tenant, job_id), image_sk(image_id))
        try:
            item.update(
                actions=[JobItemRecord.lease_until.remove()],
                condition=(JobItemRecord.lease_owner == owner) & JobItemRecord.outcome.does_not_exist(),
            )
        except UpdateError as exc:
            if not _is_conditional_failure(exc):
                raise StorageError("The job's image could not be released.") from exc

    def settle_item(
        self,
        tenant: str,
        job_id: str,
        image_id: str,
        owner: str,
        outcome: str,
        now: str,
        *,
        retired: list[str] | None = None,
        image_update: tuple[ImageRecord, list[Any], Condition] | None = None,
    ) -> str | None:
        """In one transaction: the image's outcome (only while `owner` holds it and none was
        counted), the job's `done` or `failed` counter and, when given, the image's own update
        with its condition. None when written; else which condition failed: "image" or "item"."""
        item = JobItemRecord(job_items_pk(tenant, job_id), image_sk(image_id))
        job = JobRecord(tenant_pk(tenant), job_sk(job_id))
        counter = JobRecord.failed if outcome == "failed" else JobRecord.done
        try:
            with TransactWrite(connection=transactions_connection()) as transaction:
                if image_update is not None:
                    record, actions, condition = image_update
                    transaction.update(record, actions, condition=ImageRecord.pk.exists() & condition)
                item_actions: list[Any] = [
                    JobItemRecord.outcome.set(outcome), JobItemRecord.lease_until.remove(),
                    JobItemRecord.updated_at.set(now),
                ]
                if retired:
                    item_actions.append(JobItemRecord.retired.set(retired))
                transaction.update(
                    item, item_actions,
                    condition=(JobItemRecord.lease_owner == owner) & JobItemRecord.outcome.does_not_exist(),
                )
                transaction.update(job, [counter.add(1), JobRecord.updated_at.set(now)],
                                   condition=JobRecord.pk.exists())
        except TransactWriteError as exc:
            failed = _conditions_failed(exc)
            if failed is None:
                raise StorageError("The job's image could not be settled.") from exc
            parts = (["image"] if image_update is not None else []) + ["item", "job"]
            for part, condition_failed in zip(parts, failed, strict=False):
                if condition_failed:
                    return "item" if part == "job" else part
            raise StorageError("The job's image could not be settled; try again.") from exc
        return None
