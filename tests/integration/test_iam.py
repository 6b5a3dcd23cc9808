"""Each function calls AWS as the role template.yaml (through SAM) gives it, and moto enforces it:
a permission missing from the template fails here with AccessDenied, as it would deployed.

A test that removes a permission runs against a copy of template.yaml without it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml
from aws_env import Aws, aws_environment
from botocore.exceptions import ClientError

from imgdrop_local.lambda_runtime import LambdaRuntime
from imgdrop_local.template import TEMPLATE_PATH, Stack, load, load_yaml

from lambdas import Functions, china_jpeg, upload

ROOT = TEMPLATE_PATH.parent


def template_without(tmp_path: Path, function: str, action: str | None = None, *,
                     policy_template: str | None = None) -> Stack:
    """A copy of template.yaml whose `function` lacks `action` (in its own statements) or a whole
    SAM policy template; code paths point back at the repository."""
    template = load_yaml()
    resources = template["Resources"]
    for res in resources.values():
        props = res.get("Properties") or {}
        for prop in ("CodeUri", "ContentUri"):
            if isinstance(props.get(prop), str):
                props[prop] = str(ROOT / props[prop])
    policies = resources[function]["Properties"]["Policies"]
    removed = False
    if policy_template is not None:
        kept = [p for p in policies if not (isinstance(p, dict) and policy_template in p)]
        removed = len(kept) < len(policies)
        policies[:] = kept
    if action is not None:
        for policy in policies:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if action in actions:
                    statement["Action"] = [a for a in actions if a != action]
                    removed = True
    assert removed, f"{function} has no {action or policy_template} to remove"
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return load(path)


@pytest.fixture
def make_aws(template_stack, tmp_path, monkeypatch) -> Iterator[Any]:
    """make_aws() → the `aws` environment; make_aws(function, action) or make_aws(function,
    policy_template=...) → the same, from a copy of template.yaml lacking that permission."""
    with ExitStack() as stack:

        def make(function: str | None = None, action: str | None = None, *,
                 policy_template: str | None = None) -> Aws:
            source = template_stack if function is None else template_without(
                tmp_path, function, action, policy_template=policy_template)
            return stack.enter_context(aws_environment(source, monkeypatch))

        yield make


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of an exception or of any exception it was raised from."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ClientError):
            return str(seen.response["Error"]["Code"])
        seen = seen.__cause__ or seen.__context__
    return None


def image_event(tenant: str = "acme") -> dict[str, Any]:
    return {"Source": "imgdrop", "DetailType": "Image Ready", "Detail": json.dumps({"tenant": tenant}),
            "EventBusName": "default"}


# ---------------------------------------------------------------- identities


def test_each_function_calls_aws_as_its_own_role_and_the_harness_as_admin(aws):
    for logical_id in aws.stack.functions:
        with aws.acting_as(logical_id):
            arn = boto3.client("sts").get_caller_identity()["Arn"]
        assert f":assumed-role/{logical_id}Role/{logical_id}" in arn
    roles = {f"{logical_id}Role" for logical_id in aws.stack.functions}
    for harness in (aws.client("iam"), boto3.client("iam")):  # the fixture's clients, and any made in a test
        assert roles <= {role["RoleName"] for role in harness.list_roles()["Roles"]}
    with aws.acting_as("ApiFunction"), pytest.raises(ClientError) as raised:
        boto3.client("iam").list_roles()
    assert error_code(raised.value) == "AccessDenied"


def test_pynamodb_pool_tasks_and_threads_act_as_the_function(aws):
    from concurrent.futures import ThreadPoolExecutor

    from imgdrop.store.db import ImageRecord, bind

    bind(aws.table_name)
    with aws.acting_as("AuthorizerFunction"):  # no DynamoDB rights at all
        with pytest.raises(Exception) as raised:
            ImageRecord.get("T#acme#IMG#nope", "IMG#nope")
        with ThreadPoolExecutor(2) as pool:
            pooled = pool.submit(boto3.client("sts").get_caller_identity).result()
        seen: list[dict[str, Any]] = []
        thread = threading.Thread(target=lambda: seen.append(boto3.client("sts").get_caller_identity()))
        thread.start()
        thread.join()
    assert "AccessDenied" in str(raised.value)
    assert ":assumed-role/AuthorizerFunctionRole/" in pooled["Arn"]
    assert ":assumed-role/AuthorizerFunctionRole/" in seen[0]["Arn"]


def test_unknown_keys_wrong_secrets_and_forged_session_tokens_are_refused(aws):
    stranger = boto3.client("s3", aws_access_key_id="AKIASTRANGER0000000", aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as raised:
        stranger.list_objects_v2(Bucket=aws.bucket_name)
    assert error_code(raised.value) == "InvalidAccessKeyId"
    forger = boto3.client("s3", aws_access_key_id="testing", aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as raised:
        forger.list_objects_v2(Bucket=aws.bucket_name)
    assert error_code(raised.value) == "SignatureDoesNotMatch"
    api = aws.identities.of("ApiFunction")
    wrong_token = boto3.client("s3", aws_access_key_id=api.access_key_id,
                               aws_secret_access_key=api.secret_access_key, aws_session_token="forged")
    with pytest.raises(ClientError) as raised:
        wrong_token.list_objects_v2(Bucket=aws.bucket_name)
    assert error_code(raised.value) == "InvalidToken"


# ---------------------------------------------------------------- a permission removed from a copy of template.yaml


@pytest.mark.parametrize("without", [None, "s3:PutObject"])
def test_process_writes_variants_only_with_s3_put_object(without, make_aws):
    aws = make_aws("ProcessFunction", without) if without else make_aws()
    functions = Functions(aws)
    data = china_jpeg()
    _, key = upload(functions, data)
    if without is None:
        assert functions.process(key, len(data))["outcomes"][0]["outcome"] == "rendered"
        return
    with pytest.raises(Exception) as raised:
        functions.process(key, len(data))
    assert error_code(raised.value) == "AccessDenied"


@pytest.mark.parametrize("without", [None, "EventBridgePutEventsPolicy"])
def test_finalize_publishes_events_only_with_its_eventbridge_policy(without, make_aws):
    aws = make_aws("FinalizeFunction", policy_template=without) if without else make_aws()
    with aws.acting_as("FinalizeFunction"):
        events = boto3.client("events")
        if without is None:
            assert events.put_events(Entries=[image_event()])["FailedEntryCount"] == 0
            return
        with pytest.raises(ClientError) as raised:
            events.put_events(Entries=[image_event()])
    assert error_code(raised.value) == "AccessDeniedException"  # as EventBridge answers it
    assert "on resource: arn:aws:events:us-east-1:123456789012:event-bus/default" in str(raised.value)


@pytest.mark.parametrize("without", [None, "DynamoDBCrudPolicy"])
def test_the_api_reads_the_table_only_with_its_dynamodb_policy(without, make_aws):
    aws = make_aws("ApiFunction", policy_template=without) if without else make_aws()
    status, body = Functions(aws).api("GET", "/v1/images", "/v1/images")
    if without is None:
        assert status == 200, body
    else:
        assert (status, body["errors"][0]["code"]) == (503, "storage_error"), body


# ---------------------------------------------------------------- resources, not only actions


def test_dynamodb_calls_are_checked_against_the_table_and_its_indexes(aws):
    aws.dynamodb.create_table(TableName="someone-elses", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    with aws.acting_as("ApiFunction"):
        ddb = boto3.client("dynamodb")
        ddb.get_item(TableName=aws.table_name, Key={"pk": {"S": "x"}, "sk": {"S": "y"}})
        ddb.query(TableName=aws.table_name, IndexName="gsi1", KeyConditionExpression="gsi1pk = :p",
                  ExpressionAttributeValues={":p": {"S": "x"}})
        with pytest.raises(ClientError) as raised:
            ddb.get_item(TableName="someone-elses", Key={"pk": {"S": "x"}})
        assert error_code(raised.value) == "AccessDeniedException"
        with pytest.raises(ClientError) as raised:
            ddb.batch_get_item(RequestItems={
                aws.table_name: {"Keys": [{"pk": {"S": "x"}, "sk": {"S": "y"}}]},
                "someone-elses": {"Keys": [{"pk": {"S": "x"}}]},
            })
        assert error_code(raised.value) == "AccessDeniedException"
        # a transaction is authorized item by item, as PutItem, UpdateItem, ... on each item's table
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": aws.table_name, "Item": {"pk": {"S": "t"}, "sk": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": aws.table_name, "Key": {"pk": {"S": "t"}, "sk": {"S": "2"}},
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
        with pytest.raises(ClientError) as raised:
            ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": aws.table_name, "Item": {"pk": {"S": "t"}, "sk": {"S": "3"}}}},
                {"Put": {"TableName": "someone-elses", "Item": {"pk": {"S": "t"}}}},
            ])
        assert error_code(raised.value) == "AccessDeniedException"
        assert "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/someone-elses" in str(
            raised.value)
        with pytest.raises(ClientError) as raised:
            ddb.create_table(TableName="mine", BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        assert error_code(raised.value) == "AccessDeniedException"


def test_s3_keys_are_checked_against_each_statements_prefix(aws):
    s3 = aws.s3
    for key in ("uploads/acme/a", "images/acme/a/large.webp", "elsewhere/a"):
        s3.put_object(Bucket=aws.bucket_name, Key=key, Body=b"x")
    with aws.acting_as("SweepFunction"):  # reads uploads/* (and images/*, public/*) only
        sweep_s3 = boto3.client("s3")
        assert sweep_s3.get_object(Bucket=aws.bucket_name, Key="uploads/acme/a")["Body"].read() == b"x"
        with pytest.raises(ClientError) as raised:
            sweep_s3.get_object(Bucket=aws.bucket_name, Key="elsewhere/a")
        assert error_code(raised.value) == "AccessDenied"
        # CopyObject reads its source as the caller: a write to uploads/ cannot copy from elsewhere/
        sweep_s3.copy_object(Bucket=aws.bucket_name, Key="uploads/acme/a", MetadataDirective="REPLACE",
                             CopySource={"Bucket": aws.bucket_name, "Key": "uploads/acme/a"})
        with pytest.raises(ClientError) as raised:
            sweep_s3.copy_object(Bucket=aws.bucket_name, Key="uploads/acme/b",
                                 CopySource={"Bucket": aws.bucket_name, "Key": "elsewhere/a"})
        assert error_code(raised.value) == "AccessDenied"
    with aws.acting_as("FinalizeFunction"):  # deletes images/* and uploads/* only, answered key by key
        answer = boto3.client("s3").delete_objects(Bucket=aws.bucket_name, Delete={"Objects": [
            {"Key": "elsewhere/a"}, {"Key": "images/acme/a/large.webp"}]})
    assert [(e["Key"], e["Code"]) for e in answer.get("Errors", [])] == [("elsewhere/a", "AccessDenied")]
    assert [d["Key"] for d in answer.get("Deleted", [])] == ["images/acme/a/large.webp"]
    remaining = s3.list_objects_v2(Bucket=aws.bucket_name).get("Contents", [])
    assert sorted(o["Key"] for o in remaining) == ["elsewhere/a", "uploads/acme/a"]


def test_only_the_authorizer_reads_the_jwt_secret(aws):
    name = aws.stack.secret_name  # the policy names it `name-??????`; moto's ARN ends in its own suffix
    with aws.acting_as("AuthorizerFunction"):
        assert boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"] == aws.jwt_secret
    with aws.acting_as("ApiFunction"), pytest.raises(ClientError) as raised:
        boto3.client("secretsmanager").get_secret_value(SecretId=name)
    assert error_code(raised.value) == "AccessDeniedException"
    assert f":secret:{name}-" in str(raised.value)


# ---------------------------------------------------------------- presigned requests carry the signer's rights


def presigned_post(aws: Aws, signer: str, key: str) -> dict[str, Any]:
    with aws.acting_as(signer):
        return boto3.client("s3").generate_presigned_post(
            Bucket=aws.bucket_name, Key=key, Fields={"Content-Type": "image/jpeg"},
            Conditions=[{"Content-Type": "image/jpeg"}], ExpiresIn=300)


def test_a_browser_post_is_accepted_when_its_signer_may_put_the_object(aws):
    post = presigned_post(aws, "ApiFunction", "uploads/acme/posted")
    assert "x-amz-security-token" in post["fields"]  # a role session's credentials
    answer = requests.post(post["url"], data=post["fields"], files={"file": ("a.jpg", b"jpeg")}, timeout=10)
    assert answer.status_code in (200, 204), answer.text
    assert aws.s3.get_object(Bucket=aws.bucket_name, Key="uploads/acme/posted")["Body"].read() == b"jpeg"

    refused = presigned_post(aws, "FinalizeFunction", "uploads/acme/refused")  # no s3:PutObject
    answer = requests.post(refused["url"], data=refused["fields"], files={"file": ("a.jpg", b"jpeg")}, timeout=10)
    assert answer.status_code == 403, answer.text
    forged = {**post["fields"], "x-amz-security-token": "forged"}
    answer = requests.post(post["url"], data=forged, files={"file": ("a.jpg", b"jpeg")}, timeout=10)
    assert answer.status_code in (400, 403), answer.text


def test_a_presigned_get_carries_its_signers_rights_and_anonymous_reads_are_refused(aws):
    aws.s3.put_object(Bucket=aws.bucket_name, Key="images/acme/x/large.webp", Body=b"webp")
    url = f"https://{aws.bucket_name}.s3.amazonaws.com/images/acme/x/large.webp"
    for signer, expected in (("ApiFunction", 200), ("AuthorizerFunction", 403)):
        with aws.acting_as(signer):
            signed = boto3.client("s3").generate_presigned_url(
                "get_object", Params={"Bucket": aws.bucket_name, "Key": "images/acme/x/large.webp"}, ExpiresIn=60)
        answer = requests.get(signed, timeout=10)
        assert answer.status_code == expected, (signer, answer.text)
    assert requests.get(url, timeout=10).status_code == 403  # anonymous


def test_a_cors_preflight_needs_no_credentials(aws):
    bucket_url = f"https://{aws.bucket_name}.s3.amazonaws.com/"  # where a browser POSTs an upload
    preflight = requests.options(bucket_url, headers={"Origin": "https://app.example",
                                                      "Access-Control-Request-Method": "POST"}, timeout=10)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"


# ---------------------------------------------------------------- destinations use the source function's role


@pytest.fixture
def runtime_of(aws) -> Iterator[Any]:
    made: list[LambdaRuntime] = []

    def make(**handlers: Any) -> LambdaRuntime:
        runtime = LambdaRuntime(aws.stack, retry_delays=(0, 0), workers=2, sqs_client=aws.sqs, handlers=handlers)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.shutdown(1)


def failed_events(aws: Aws) -> list[dict[str, Any]]:
    messages = aws.sqs.receive_message(QueueUrl=aws.failed_events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def crash(event: Any, context: Any) -> Any:
    raise RuntimeError("crash")


def without_statements(aws: Aws, function: str, action: str) -> None:
    """Drop every statement granting `action` from the function's role, as if SAM had not added it."""
    assert aws.identities is not None
    for policies in (aws.identities.policies[function],):
        for document in policies:
            statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
            document["Statement"] = [s for s in statements if action not in json.dumps(s.get("Action"))]
    iam_client = aws.client("iam")
    for name in iam_client.list_role_policies(RoleName=f"{function}Role")["PolicyNames"]:
        document = iam_client.get_role_policy(RoleName=f"{function}Role", PolicyName=name)["PolicyDocument"]
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        document["Statement"] = [s for s in statements if action not in json.dumps(s.get("Action"))] or [
            {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]
        iam_client.put_role_policy(RoleName=f"{function}Role", PolicyName=name, PolicyDocument=json.dumps(document))


def test_an_on_failure_record_reaches_sqs_only_if_the_role_may_send_it(aws, runtime_of):
    runtime_of(FinalizeFunction=crash).run_async("FinalizeFunction", {"n": 1})
    assert [r["requestPayload"] for r in failed_events(aws)] == [{"n": 1}]

    without_statements(aws, "FinalizeFunction", "sqs:SendMessage")
    runtime_of(FinalizeFunction=crash).run_async("FinalizeFunction", {"n": 2})
    assert failed_events(aws) == []


def test_a_lambda_destination_is_invoked_only_if_the_role_may_invoke_it(aws, runtime_of):
    seen: list[Any] = []
    runtime_of(ProcessFunction=lambda e, c: {"ok": 1}, FinalizeFunction=lambda e, c: seen.append(e)).run_async(
        "ProcessFunction", {"n": 1})
    assert len(seen) == 1

    without_statements(aws, "ProcessFunction", "lambda:InvokeFunction")
    runtime_of(ProcessFunction=lambda e, c: {"ok": 1}, FinalizeFunction=lambda e, c: seen.append(e)).run_async(
        "ProcessFunction", {"n": 2})
    assert len(seen) == 1


def test_policies_match_as_iam_does():
    from imgdrop_local.iam import _evaluate

    allow = {"Statement": [{"Effect": "Allow", "Action": "S3:getobject", "Resource": "arn:aws:s3:::b.c/u?/*"}]}
    assert _evaluate([allow], "s3:GetObject", "arn:aws:s3:::b.c/u1/x")  # actions ignore case
    assert not _evaluate([allow], "s3:GetObject", "arn:aws:s3:::bxc/u1/x")  # a dot is a dot
    assert not _evaluate([allow], "s3:GetObject", "arn:aws:s3:::b.c/u12/x")  # ? is one character
    assert not _evaluate([allow], "s3:PutObject", "arn:aws:s3:::b.c/u1/x")
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    assert not _evaluate([allow, deny], "s3:GetObject", "arn:aws:s3:::b.c/u1/x")  # an explicit Deny wins
