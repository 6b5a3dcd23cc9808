"""The near-duplicate index against DynamoDB (moto): keys, sets, full buckets, errors, migration."""

from __future__ import annotations

import json
import os
import random

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgdrop.dedupe.bands import format_hash, hamming, write_keys
from imgdrop.dedupe.index import NearDuplicateIndex
from imgdrop.dedupe.migrate import run as migrate
from imgdrop.dedupe.stores import DynamoHashIndexStore, IndexEntry
from imgdrop.errors import StorageError
from imgdrop.store.db import image_pk, image_sk

REGION = "us-east-1"


@pytest.fixture
def table_name():
    """The single table. Isolated here: a shared fixture built from template.yaml replaces it."""
    name = os.environ.get("TABLE_NAME", "imgdrop-test")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield name


@pytest.fixture
def client(table_name):
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def store(client, table_name):
    return DynamoHashIndexStore(table_name, client, max_workers=4)


def _near(value: str, distance: int, rng: random.Random) -> str:
    v = int(value, 16)
    for bit in rng.sample(range(64), distance):
        v ^= 1 << bit
    return format_hash(v)


def test_add_then_find_nearest_first_and_exclude(store):
    index = NearDuplicateIndex(store)
    rng = random.Random(1)
    base = "c3a5f00f12345678"
    index.add("acme", "img-a", base)
    index.add("acme", "img-b", _near(base, 6, rng))
    index.add("acme", "img-c", _near(base, 20, rng))

    assert index.find("acme", base, 12) == [("img-a", 0), ("img-b", 6)]
    assert index.find("acme", base, 12, exclude="img-a") == [("img-b", 6)]


def test_bucket_items_use_the_tenant_table_key_and_a_string_set(store, client, table_name):
    NearDuplicateIndex(store).add("acme", "img-a", "C3A5F00F12345678")

    key = write_keys("acme", "c3a5f00f12345678")[0]
    item = client.get_item(TableName=table_name, Key={"pk": {"S": key}, "sk": {"S": "B"}})["Item"]
    assert key.startswith("T#acme#NX00#")
    assert item["e"] == {"SS": ["c3a5f00f12345678:img-a"]}
    assert store.stats.write_requests == 42  # one UpdateItem per table
    assert store.stats.read_requests == 1  # it read its buckets first: none was full


def test_tenants_never_see_each_other(store):
    index = NearDuplicateIndex(store)
    index.add("acme", "img-a", "c3a5f00f12345678")

    assert index.find("globex", "c3a5f00f12345678", 12) == []


def test_add_is_idempotent_and_remove_deletes(store):
    index = NearDuplicateIndex(store)
    index.add("acme", "img-a", "c3a5f00f12345678")
    index.add("acme", "img-a", "c3a5f00f12345678")  # S3 redelivery
    assert index.find("acme", "c3a5f00f12345678", 4) == [("img-a", 0)]

    index.remove("acme", "img-a", "c3a5f00f12345678")
    assert index.find("acme", "c3a5f00f12345678", 15) == []


def test_full_buckets_refuse_entries_without_a_walk(client, table_name):
    store = DynamoHashIndexStore(table_name, client, entries_per_item=3, max_workers=4)
    index = NearDuplicateIndex(store)
    base = "0000ffff0000ffff"
    ids = [f"img-{i}" for i in range(8)]
    for image_id in ids:
        index.add("acme", image_id, base)  # all share every bucket: full after three

    assert store.stats.write_requests == 3 * 42  # the later inserts saw full buckets: no writes
    before = store.stats.snapshot()
    found = index.find("acme", base, 4)
    used = store.stats.since(before)
    assert found == [(i, 0) for i in ids[:3]]
    assert used.read_requests == 9 and used.items_read == 42

    # a writer that raced past the check is refused by the condition: one request, no walk
    key = write_keys("acme", base)[0]
    store.batch_add([IndexEntry(key, "img-9", base)])
    assert store.stats.dropped == 1
    item = client.get_item(TableName=table_name, Key={"pk": {"S": key}, "sk": {"S": "B"}})["Item"]
    assert len(item["e"]["SS"]) == 3
    # a redelivered entry already in a full bucket is still accepted (idempotent)
    store.batch_add([IndexEntry(key, "img-0", base)])
    assert store.stats.dropped == 1

    index.remove("acme", "img-0", base)
    index.add("acme", "img-7", base)
    assert [i for i, _ in index.find("acme", base, 4)] == ["img-1", "img-2", "img-7"]


def test_matches_brute_force_with_many_keys_per_lookup(store):
    # threshold 12 reads 840 keys: nine BatchGetItem requests, whatever the collection size
    rng = random.Random(7)
    index = NearDuplicateIndex(store)
    query = format_hash(rng.getrandbits(64))
    stored = {f"near-{d}": _near(query, d, rng) for d in range(0, 6)}
    stored |= {f"rand-{i}": format_hash(rng.getrandbits(64)) for i in range(6)}
    for image_id, phash in stored.items():
        index.add("acme", image_id, phash)

    before = store.stats.snapshot()
    found = index.find("acme", query, 12)
    used = store.stats.since(before)

    expected = sorted(
        ((i, hamming(h, query)) for i, h in stored.items() if hamming(h, query) <= 12),
        key=lambda m: (m[1], m[0]),
    )
    assert found == expected  # exact within 5 bits
    assert used.read_requests == 9


def test_client_errors_become_storage_errors(client):
    store = DynamoHashIndexStore("no-such-table", client)

    with pytest.raises(StorageError) as info:
        NearDuplicateIndex(store).find("acme", "c3a5f00f12345678", 12)
    assert info.value.code == "storage_error"
    assert isinstance(info.value.__cause__, ClientError)

    with pytest.raises(StorageError):
        NearDuplicateIndex(store).add("acme", "img-a", "c3a5f00f12345678")


def test_the_store_builds_its_own_client_when_given_none(table_name):
    index = NearDuplicateIndex(DynamoHashIndexStore(table_name))
    index.add("acme", "img-a", "c3a5f00f12345678")
    assert index.find("acme", "c3a5f00f12345678", 8) == [("img-a", 0)]


def test_a_request_the_client_no_longer_checks_is_still_refused_as_a_storage_error(table_name):
    """The store's own client skips botocore's client-side check (which raises ParamValidationError,
    not a ClientError): DynamoDB's own refusal ends as StorageError."""
    store = DynamoHashIndexStore(table_name)
    store.table_name = ""  # an invalid table name, which botocore would have refused before sending
    with pytest.raises(StorageError):
        store.batch_get(["T#acme#NDUP#x"])


def test_migration_backfills_ready_images_and_purges_the_old_layout(client, table_name):
    def image(image_id, status, phash, variants=True):
        client.put_item(
            TableName=table_name,
            Item={
                "pk": {"S": image_pk("acme", image_id)},
                "sk": {"S": image_sk(image_id)},
                "tenant": {"S": "acme"},
                "id": {"S": image_id},
                "status": {"S": status},
                "result": {"S": json.dumps({"phash": phash})},
                "variants": {"S": json.dumps({"thumb": {}} if variants else {})},
            },
        )

    image("img-ready", "ready", "c3a5f00f12345678")
    image("img-dup", "duplicate", "c3a5f00f12345678")
    image("img-failed", "ready", "c3a5f00f12345679", variants=False)
    legacy = {"pk": {"S": "T#acme#PH0#c3a5"}, "sk": {"S": "S#0"}}
    client.put_item(TableName=table_name, Item={**legacy, "e": {"SS": ["c3a5f00f12345678:img-ready"]}})

    assert migrate("backfill", table_name, client, segments=2, dry_run=True).indexed == 1
    counts = migrate("backfill", table_name, client, segments=2)
    assert counts.indexed == 1
    index = NearDuplicateIndex(DynamoHashIndexStore(table_name, client))
    assert index.find("acme", "c3a5f00f12345678", 12) == [("img-ready", 0)]
    migrate("backfill", table_name, client)  # again: idempotent
    assert index.find("acme", "c3a5f00f12345678", 12) == [("img-ready", 0)]

    assert migrate("purge", table_name, client, segments=2).deleted == 1
    assert "Item" not in client.get_item(TableName=table_name, Key=legacy)
    assert index.find("acme", "c3a5f00f12345678", 12) == [("img-ready", 0)]
    ready_key = {"pk": {"S": image_pk("acme", "img-ready")}, "sk": {"S": image_sk("img-ready")}}
    assert client.get_item(TableName=table_name, Key=ready_key)["Item"]
