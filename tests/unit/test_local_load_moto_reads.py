"""The local stack's moto serializes DynamoDB Query, Scan and GetItem with its item writes: a read
of a missing item in a table with a sort key adds an empty partition to moto's dict, which fails
a Query iterating it at that moment (`dictionary changed size during iteration`)."""

from __future__ import annotations

import threading

import boto3
from moto import mock_aws

from imgdrop_local.aws_process import _serialize_table_iterations


def test_a_get_item_waits_for_a_query_iterating_the_table():
    from moto.dynamodb.models.table import Table

    with mock_aws():
        from imgdrop_local.atomic_writes import make_conditional_writes_atomic

        make_conditional_writes_atomic()
        _serialize_table_iterations()
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])
        for n in range(3):
            db.put_item(TableName="t", Item={"pk": {"S": f"p{n}"}, "sk": {"S": "s"}})

        inside, release = threading.Event(), threading.Event()
        all_items = Table.all_items

        def held_all_items(self):
            for n, item in enumerate(all_items(self)):
                if n == 1 and not inside.is_set():
                    inside.set()
                    assert release.wait(5)
                yield item

        outcome: dict[str, object] = {}

        def query():
            try:
                outcome["query"] = len(db.scan(TableName="t")["Items"])
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["query"] = exc

        def get_missing():
            outcome["get"] = "Item" in db.get_item(TableName="t", Key={"pk": {"S": "new"}, "sk": {"S": "s"}})

        Table.all_items = held_all_items
        try:
            reader = threading.Thread(target=query)
            reader.start()
            assert inside.wait(5)  # the scan is iterating the table now
            getter = threading.Thread(target=get_missing)
            getter.start()
            getter.join(0.5)
            waited = getter.is_alive()  # without the lock it adds the partition right away
            release.set()
            reader.join(5)
            getter.join(5)
        finally:
            Table.all_items = all_items
        assert outcome == {"query": 3, "get": False}
        assert waited
