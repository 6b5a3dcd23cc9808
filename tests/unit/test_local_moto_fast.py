"""The local stack's moto answers the same with its per-request costs cut (imgdrop_local/moto_fast):
DynamoDB answers dumped as JSON equal moto's own serialization, over every operation and
attribute type imgdrop uses, and a remembered route is moto's own."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from imgdrop_local import moto_fast

ITEM = {
    "pk": {"S": "T#a#IMG#1"},
    "sk": {"S": "IMG"},
    "gpk": {"S": "T#a"},
    "n": {"N": "12.5"},
    "big": {"N": "123456789012345678901234567890"},
    "bin": {"B": b"\x00\xffpng"},
    "yes": {"BOOL": True},
    "nothing": {"NULL": True},
    "map": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BS": [b"a", b"\x01"]}}}]}}},
    "strings": {"SS": ["a#1", "b#2"]},
    "numbers": {"NS": ["1", "2.5"]},
    "unicode": {"S": "café ☕ \u2028 \"quoted\""},
    "empty_list": {"L": []},
    "empty_map": {"M": {}},
}


def _table(db):
    db.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gpk")],
        GlobalSecondaryIndexes=[{"IndexName": "gsi", "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"},
                                               {"AttributeName": "sk", "KeyType": "RANGE"}]}],
    )


def _every_operation(db):
    """The item-bearing operations imgdrop makes, in each shape it makes them."""
    db.put_item(TableName="t", Item=ITEM)
    db.put_item(TableName="t", Item={**ITEM, "pk": {"S": "T#a#IMG#2"}}, ReturnValues="ALL_OLD")
    db.put_item(TableName="t", Item={**ITEM, "pk": {"S": "T#a#IMG#2"}, "n": {"N": "3"}}, ReturnValues="ALL_OLD")
    key = {"pk": {"S": "T#a#IMG#1"}, "sk": {"S": "IMG"}}
    db.get_item(TableName="t", Key=key)
    db.get_item(TableName="t", Key={"pk": {"S": "missing"}, "sk": {"S": "IMG"}})
    db.get_item(TableName="t", Key=key, ConsistentRead=True, ProjectionExpression="#b, #m.inner",
                ExpressionAttributeNames={"#b": "bin", "#m": "map"}, ReturnConsumedCapacity="TOTAL")
    db.batch_get_item(RequestItems={"t": {"Keys": [key, {"pk": {"S": "none"}, "sk": {"S": "B"}},
                                                   {"pk": {"S": "T#a#IMG#2"}, "sk": {"S": "IMG"}}],
                                          "ProjectionExpression": "#p, #s",
                                          "ExpressionAttributeNames": {"#p": "pk", "#s": "strings"}}})
    db.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "none"}, "sk": {"S": "B"}}]}},
                      ReturnConsumedCapacity="TOTAL")
    db.update_item(TableName="t", Key=key, UpdateExpression="ADD #s :v",
                   ExpressionAttributeNames={"#s": "strings"}, ExpressionAttributeValues={":v": {"SS": ["c#3"]}})
    db.update_item(TableName="t", Key=key, UpdateExpression="SET #n = :n",
                   ExpressionAttributeNames={"#n": "n"}, ExpressionAttributeValues={":n": {"N": "7"}},
                   ReturnValues="ALL_NEW")
    db.update_item(TableName="t", Key=key, UpdateExpression="SET #n = :n",
                   ExpressionAttributeNames={"#n": "n"}, ExpressionAttributeValues={":n": {"N": "8"}},
                   ReturnValues="UPDATED_OLD")
    db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": key["pk"]})
    db.query(TableName="t", IndexName="gsi", KeyConditionExpression="gpk = :g",
             ExpressionAttributeValues={":g": {"S": "T#a"}}, Limit=1, ScanIndexForward=False,
             ReturnConsumedCapacity="INDEXES")
    db.query(TableName="t", IndexName="gsi", KeyConditionExpression="gpk = :g",
             ExpressionAttributeValues={":g": {"S": "nobody"}}, Select="COUNT")
    db.scan(TableName="t", FilterExpression="#y = :y", ExpressionAttributeNames={"#y": "yes"},
            ExpressionAttributeValues={":y": {"BOOL": True}}, Limit=1)
    db.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": key}},
                                         {"Get": {"TableName": "t", "Key": {"pk": {"S": "x"}, "sk": {"S": "y"}}}}])
    db.delete_item(TableName="t", Key={"pk": {"S": "T#a#IMG#2"}, "sk": {"S": "IMG"}}, ReturnValues="ALL_OLD")
    db.delete_item(TableName="t", Key={"pk": {"S": "gone"}, "sk": {"S": "IMG"}})


def test_dumped_dynamodb_answers_equal_motos_own_serialization(monkeypatch):
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    compared: list[str] = []
    left_to_moto: list[str] = []
    mismatches: list[tuple[str, object, object]] = []

    def both(self, context):
        status, headers, body = original(self, context)
        fast = moto_fast.dumped(self.result, context.operation_model.output_shape)
        operation = context.operation_model.name
        assert status == 200
        assert headers.get("Content-Type") == moto_fast.CONTENT_TYPE
        if fast is None:  # left to moto: only a table's description (its timestamps)
            left_to_moto.append(operation)
            return status, headers, body
        compared.append(operation)
        if json.loads(fast) != json.loads(body):
            mismatches.append((operation, body, fast))
        return status, headers, body

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        _table(db)
        _every_operation(db)
    assert mismatches == []
    assert left_to_moto == ["CreateTable"]
    assert {"PutItem", "GetItem", "BatchGetItem", "UpdateItem", "Query", "Scan", "TransactGetItems",
            "DeleteItem"} <= set(compared)


def test_the_sdk_reads_dumped_answers_as_it_reads_motos(monkeypatch):
    """Through boto3's own parsing, binary values included, with the fast path on."""
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        _table(db)
        db.put_item(TableName="t", Item=ITEM)
        key = {"pk": {"S": "T#a#IMG#1"}, "sk": {"S": "IMG"}}
        slow = db.get_item(TableName="t", Key=key)["Item"]
        from moto.dynamodb.responses import DynamoResult

        monkeypatch.setattr(DynamoResult, "execute_result", DynamoResult.execute_result)  # undone after
        moto_fast.dump_dynamodb_results()
        fast = db.get_item(TableName="t", Key=key)["Item"]
        batch = db.batch_get_item(RequestItems={"t": {"Keys": [key]}})["Responses"]["t"]
    assert fast == slow == batch[0]
    assert fast["bin"] == {"B": b"\x00\xffpng"}
    assert fast["map"]["M"]["inner"]["L"][2]["M"]["deep"]["BS"] == [b"a", b"\x01"]


@pytest.mark.parametrize("unusual", [datetime(2026, 1, 1, tzinfo=UTC), {1, 2}, float("nan")])
def test_an_answer_that_is_not_plain_json_is_left_to_moto(unusual):
    assert moto_fast.dumped({"Item": {"x": unusual}}, None) is None


def test_a_route_is_moto_s_own_and_found_once(monkeypatch):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    calls: list[str | None] = []
    original = DomainDispatcherApplication.get_backend_for_host

    def counted(self, host):
        calls.append(host)
        return original(self, host)

    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", counted)
    app = DomainDispatcherApplication(create_backend_app)
    expected = {host: original(app, host) for host in
                ("dynamodb.us-east-1.amazonaws.com", "s3.amazonaws.com", "sqs.us-east-1.amazonaws.com", None)}
    moto_fast.route_hosts_once()
    answers = [app.get_backend_for_host(host) for _ in range(3) for host in expected]
    assert answers == list(expected.values()) * 3
    assert calls == list(expected)  # each host looked up by moto once, then remembered
    assert expected["dynamodb.us-east-1.amazonaws.com"] == "dynamodb"


def _queries(db):
    """Queries of the table's own key, in the shapes imgdrop makes them, and one of an index."""
    pk = {"S": "T#a"}
    yield db.query(TableName="t", KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                   ExpressionAttributeValues={":p": pk, ":s": {"S": "WH#"}})
    yield db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": pk},
                   ScanIndexForward=False, Limit=3)
    first = db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": pk}, Limit=4)
    yield first
    yield db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": pk},
                   Limit=4, ExclusiveStartKey=first["LastEvaluatedKey"])
    yield db.query(TableName="t", KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                   FilterExpression="attribute_exists(n)", ExpressionAttributeValues={
                       ":p": pk, ":a": {"S": "IMG#2"}, ":b": {"S": "WH#9"}})
    yield db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "none"}})
    yield db.query(TableName="t", IndexName="gsi", KeyConditionExpression="gpk = :g",
                   ExpressionAttributeValues={":g": {"S": "G"}})
    yield db.query(TableName="h", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "k3"}})


def _answers(db) -> list[dict]:
    return [{k: v for k, v in answer.items() if k != "ResponseMetadata"} for answer in _queries(db)]


def test_a_query_of_the_table_key_reads_its_partition_only_and_answers_as_moto(monkeypatch):
    from moto.dynamodb.models.table import Table

    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        _table(db)
        db.create_table(TableName="h", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        for n in range(5):
            db.put_item(TableName="h", Item={"pk": {"S": f"k{n}"}, "n": {"N": str(n)}})
        for partition in ("T#a", "T#b", "T#c"):
            for n, sk in enumerate(["WH#1", "IMG#3", "WH#2", "IMG#1", "ALB#1", "IMG#2", "WH#10"]):
                item = {"pk": {"S": partition}, "sk": {"S": sk}, "gpk": {"S": "G"}}
                if n % 2:
                    item["n"] = {"N": str(n)}
                db.put_item(TableName="t", Item=item)
        moto_answers = _answers(db)

        whole_table_reads: list[str] = []
        all_items = Table.all_items

        def counted_all_items(self):
            whole_table_reads.append(self.name)
            return all_items(self)

        monkeypatch.setattr(Table, "query", Table.query)  # both undone after the test
        monkeypatch.setattr(Table, "all_items", counted_all_items)
        moto_fast.query_partitions_only()
        fast_answers = _answers(db)
    assert fast_answers == moto_answers
    assert [len(a["Items"]) for a in fast_answers] == [3, 3, 4, 3, 2, 0, 21, 1]
    assert whole_table_reads == ["t"]  # the index query's, only
