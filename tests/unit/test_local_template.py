"""template.yaml, resolved for the local stack: the values the emulation routes on."""

from __future__ import annotations

import json
import textwrap

import pytest

from imgdrop_local.template import ACCOUNT_ID, REGION, load, load_yaml


@pytest.fixture(scope="module")
def stack():
    return load()


def test_every_http_api_event_becomes_a_route(stack):
    keys = {r.route_key for r in stack.routes}
    assert len(stack.routes) == len(keys) >= 21
    expected = {"GET /v1/health", "POST /v1/uploads", "GET /v1/images/{id}", "GET /v1/images/{id}/similar"}
    assert expected <= keys
    assert all(r.function == "ApiFunction" for r in stack.routes)


def test_routes_use_the_default_authorizer_unless_auth_is_none(stack):
    by_key = {r.route_key: r for r in stack.routes}
    public = {k for k, r in by_key.items() if r.authorizer is None}
    assert public == {"GET /v1/health", "GET /v1/openapi.json", "GET /v1/docs"}
    assert by_key["POST /v1/uploads"].authorizer == "AuthorizerFunction"


def test_process_retries_twice_then_both_destinations_are_finalize(stack):
    config = stack.function("ProcessFunction").invoke_config
    assert config.maximum_retry_attempts == 2
    assert config.on_success.type == config.on_failure.type == "Lambda"
    assert config.on_success.target == config.on_failure.target == "FinalizeFunction"
    # the alias: the published version SnapStart restores, not $LATEST
    assert config.on_failure.arn == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:FinalizeFunction:live"


def test_finalize_failures_go_to_the_failed_events_queue(stack):
    config = stack.function("FinalizeFunction").invoke_config
    assert config.on_success is None
    assert (config.on_failure.type, config.on_failure.target) == ("SQS", "FailedEventsQueue")
    assert stack.failed_events_queue == "imgdrop-dev-failed-events"


def test_bucket_notifies_process_for_objects_under_uploads(stack):
    (note,) = stack.notifications
    assert (note.event, note.function, note.prefix) == ("s3:ObjectCreated:*", "ProcessFunction", "uploads/")
    assert note.matches("uploads/t/abc") and not note.matches("images/t/abc/large.webp")


def test_environment_resolves_to_local_names(stack):
    env = stack.environment()
    assert env["TABLE_NAME"] == stack.table_name == "imgdrop-dev"
    assert env["BUCKET_NAME"] == stack.bucket_name == f"imgdrop-dev-{ACCOUNT_ID}-{REGION}"
    assert env["JWT_SECRET_ARN"] == stack.secret_name == "imgdrop/dev/jwt-hs256"
    assert env["API_BASE_PATH"] == "/v1"  # ApiFunction's own variable, merged over Globals
    assert stack.function("ProcessFunction").environment["MAX_PIXELS"] == "100000000"
    assert "MAX_PIXELS" not in stack.function("ApiFunction").environment


def test_functions_point_at_their_folders(stack):
    api = stack.by_short_name("api")
    assert api.logical_id == "ApiFunction"
    assert api.module_path.parts[-3:] == ("functions", "api", "app.py")
    assert api.handler_attr == "lambda_handler"
    assert stack.function("ProcessFunction").memory_mb == 2048
    assert stack.function("AuthorizerFunction").timeout_s == 5


def test_sweep_runs_on_its_rate(stack):
    (schedule,) = stack.schedules
    assert (schedule.function, schedule.rate_seconds) == ("SweepFunction", 900)


def test_cors_and_table_come_from_the_template(stack):
    assert stack.cors.allow_origins == ["*"]
    assert "authorization" in stack.cors.allow_headers
    assert [gsi["IndexName"] for gsi in stack.table_properties["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2", "gsi3"]
    assert stack.table_properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    rule = stack.bucket_properties["CorsConfiguration"]["CorsRules"][0]
    assert "ETag" in rule["ExposedHeaders"] and "POST" in rule["AllowedMethods"]


def test_parameter_overrides_flow_into_names():
    prod = load(parameters={"Stage": "prod", "AllowedOrigins": "https://a.example,https://b.example"})
    assert prod.table_name == "imgdrop-prod"
    assert prod.environment()["STAGE"] == "prod"
    assert prod.cors.allow_origins == ["https://a.example", "https://b.example"]


def test_intrinsics(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent("""
        Parameters:
          Stage: {Type: String, Default: dev}
          Email: {Type: String, Default: ""}
          Names: {Type: CommaDelimitedList, Default: "a,b,c"}
        Conditions:
          HasEmail: !Not [!Equals [!Ref Email, ""]]
          IsDev: !Equals [!Ref Stage, dev]
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: functions/x/
              Handler: app.handler
              Environment:
                Variables:
                  SUB: !Sub "${Stage}-${AWS::Region}-${!Literal}-${Fn.Arn}"
                  SUB_VARS: !Sub ["${A}/${Stage}", {A: !Select [1, !Ref Names]}]
                  JOINED: !Join ["+", !Ref Names]
                  IF: !If [HasEmail, "yes", "no"]
                  IF_DEV: !If [IsDev, dev-only, other]
                  SPLIT: !Select [2, !Split [",", "x,y,z"]]
                  ARN: !GetAtt Fn.Arn
        """))
    env = load(template).function("Fn").environment
    assert env == {
        "SUB": f"dev-{REGION}-${{Literal}}-arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:Fn",
        "SUB_VARS": "b/dev",
        "JOINED": "a+b+c",
        "IF": "no",
        "IF_DEV": "dev-only",
        "SPLIT": "z",
        "ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:Fn",
    }


def test_short_tags_load_as_intrinsics():
    raw = load_yaml()
    arn = raw["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["TokenAuthorizer"]["FunctionArn"]
    assert arn == {"Ref": "AuthorizerFunction.Alias"}


def test_two_functions_disagreeing_on_a_variable_fail_loudly(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent("""
        Resources:
          A: {Type: AWS::Serverless::Function, Properties: {CodeUri: a/, Handler: app.h,
              Environment: {Variables: {MODE: one}}}}
          B: {Type: AWS::Serverless::Function, Properties: {CodeUri: b/, Handler: app.h,
              Environment: {Variables: {MODE: two}}}}
        """))
    with pytest.raises(ValueError, match="MODE differs between A"):
        load(template).environment()


# ---------------------------------------------------------------- the functions' roles, as SAM deploys them


def allows(stack, function, action, resource):
    """Whether any Allow statement of the function's role names the action and the resource
    (exactly, or by a trailing wildcard): enough to read the expansion, no IAM evaluator."""
    def matches(patterns, value):
        items = patterns if isinstance(patterns, list) else [patterns]
        return any(p == value or (p.endswith("*") and value.startswith(p[:-1])) for p in items)

    return any(s["Effect"] == "Allow" and matches(s["Action"], action) and matches(s["Resource"], resource)
               for s in stack.policy_statements(function))


TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/imgdrop-dev"
BUCKET_ARN = f"arn:aws:s3:::imgdrop-dev-{ACCOUNT_ID}-{REGION}"


def test_every_function_gets_the_role_sam_generates_with_logs_and_xray(stack):
    assert set(stack.roles) == set(stack.functions)
    for function in stack.functions:
        managed = {p.name: p.managed_arn for p in stack.role_policies(function) if p.managed_arn}
        expected = {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # Tracing: Active
        }
        if any(source.function == function for source in stack.queue_sources):  # SAM's, for an SQS event
            expected["AWSLambdaSQSQueueExecutionRole"] = (
                "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole")
        assert managed == expected
        assert allows(stack, function, "logs:PutLogEvents", "*")
        assert allows(stack, function, "xray:PutTraceSegments", "*")


def test_dynamodb_crud_policy_expands_to_the_table_and_its_indexes(stack):
    for function in ("ApiFunction", "ProcessFunction", "FinalizeFunction", "SweepFunction"):
        for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchWriteItem",
                       "ConditionCheckItem"):
            assert allows(stack, function, f"dynamodb:{action}", TABLE_ARN)
        assert allows(stack, function, "dynamodb:Query", f"{TABLE_ARN}/index/gsi2")
        assert not allows(stack, function, "dynamodb:TransactWriteItems", TABLE_ARN)
        assert not allows(stack, function, "dynamodb:DeleteTable", TABLE_ARN)
    assert not any(s["Action"] and "dynamodb:GetItem" in s["Action"]
                   for s in stack.policy_statements("AuthorizerFunction"))


def test_eventbridge_and_secrets_manager_templates_expand_to_their_resources(stack):
    bus = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/default"
    assert allows(stack, "FinalizeFunction", "events:PutEvents", bus)
    assert not allows(stack, "ApiFunction", "events:PutEvents", bus)
    (statement,) = [s for s in stack.policy_statements("AuthorizerFunction")
                    if s["Action"] == ["secretsmanager:GetSecretValue"]]
    # Ref of a secret is its ARN; its random suffix is IAM's `-??????`
    assert statement["Resource"] == f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:imgdrop/dev/jwt-hs256-??????"


def test_the_templates_own_statements_resolve_per_prefix(stack):
    assert allows(stack, "ProcessFunction", "s3:PutObject", f"{BUCKET_ARN}/*")
    assert allows(stack, "SweepFunction", "s3:GetObject", f"{BUCKET_ARN}/uploads/*")
    # the sweep settles as finalize does (placement may move variants), and reads nothing else
    assert allows(stack, "SweepFunction", "s3:GetObject", f"{BUCKET_ARN}/public/x")
    assert not allows(stack, "SweepFunction", "s3:GetObject", f"{BUCKET_ARN}/elsewhere/x")
    assert allows(stack, "FinalizeFunction", "s3:DeleteObject", f"{BUCKET_ARN}/images/*")
    # a duplicate keeps no upload of its own: finalize removes it (imgdrop.lifecycle.finalize._settle_duplicate)
    assert allows(stack, "FinalizeFunction", "s3:DeleteObject", f"{BUCKET_ARN}/uploads/*")
    # finalize moves variants between images/ and public/ (a privacy change mid-processing), no more
    assert allows(stack, "FinalizeFunction", "s3:PutObject", f"{BUCKET_ARN}/public/x")
    assert not allows(stack, "FinalizeFunction", "s3:PutObject", f"{BUCKET_ARN}/uploads/x")
    assert allows(stack, "ApiFunction", "s3:ListBucket", BUCKET_ARN)


def test_destinations_add_the_permission_to_deliver_as_sam_does(stack):
    names = {p.name for p in stack.role_policies("ProcessFunction")}
    assert {"ProcessFunctionEventInvokeConfigOnSuccessLambdaPolicy",
            "ProcessFunctionEventInvokeConfigOnFailureLambdaPolicy"} <= names
    finalize = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:FinalizeFunction:live"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:imgdrop-dev-failed-events"
    by_name = {p.name: p for p in stack.role_policies("ProcessFunction")}
    assert by_name["ProcessFunctionEventInvokeConfigOnFailureLambdaPolicy"].statements == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": finalize}]
    by_name = {p.name: p for p in stack.role_policies("FinalizeFunction")}
    assert by_name["FinalizeFunctionEventInvokeConfigOnFailureSQSPolicy"].statements == [
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": queue}]


def test_no_statement_is_left_with_an_intrinsic(stack):
    text = json.dumps({f: [p.document for p in stack.role_policies(f)] for f in stack.functions})
    assert "Fn::" not in text and '"Ref"' not in text and "${" not in text


def test_stage_flows_into_the_policies():
    prod = load(parameters={"Stage": "prod"})
    assert allows(prod, "ApiFunction", "dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/imgdrop-prod")
    assert not allows(prod, "ApiFunction", "dynamodb:GetItem", TABLE_ARN)


def test_an_unknown_policy_template_or_tracing_off_follow_sam(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: functions/x/
              Handler: app.handler
              Runtime: python3.13
              Policies:
                - NoSuchPolicyTemplate: {TableName: t}
        """))
    with pytest.raises(ValueError, match=r"\[Fn\] is invalid. Policy at index 0 .* is not valid"):
        load(template).roles  # noqa: B018 - computing it is the test
    template.write_text(textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: functions/x/
              Handler: app.handler
              Runtime: python3.13
              Policies:
                - SQSPollerPolicy: {QueueName: jobs}
                - AmazonS3ReadOnlyAccess
        """))
    fn = load(template)
    names = [p.name for p in fn.role_policies("Fn")]
    assert "AWSXrayWriteOnlyAccess" not in names and "AmazonS3ReadOnlyAccess" in names
    assert allows(fn, "Fn", "sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:jobs")


def test_a_role_from_outside_the_template_fails_loudly(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: functions/x/
              Handler: app.handler
              Runtime: python3.13
              Role: arn:aws:iam::123456789012:role/somewhere-else
        """))
    with pytest.raises(NotImplementedError, match="not a role of the template"):
        load(template).roles  # noqa: B018


def test_sqs_events_become_queue_sources_with_their_batch_and_concurrency(stack):
    sources = {source.function: source for source in stack.queue_sources}
    assert set(sources) == {"WebhooksFunction", "ReprocessFunction"}
    webhooks, reprocess = sources["WebhooksFunction"], sources["ReprocessFunction"]
    assert (webhooks.queue, webhooks.batch_size, webhooks.report_batch_item_failures) == ("WebhookQueue", 10, True)
    assert (reprocess.queue, reprocess.batch_size, reprocess.maximum_concurrency) == ("ReprocessQueue", 1, 5)
    # Their dead-letter queues, and the maxReceiveCount the reprocess function counts its last try by.
    redrive = stack.queue_properties["ReprocessQueue"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"].endswith(":imgdrop-dev-reprocess-dlq")
    assert str(redrive["maxReceiveCount"]) == stack.functions["ReprocessFunction"].environment["REPROCESS_MAX_RECEIVES"]
    assert stack.functions["ApiFunction"].environment["WEBHOOK_QUEUE_URL"].endswith("/imgdrop-dev-webhooks")


def test_a_queue_source_polls_like_lambda_and_leaves_failures_for_a_retry(stack):
    from imgdrop_local.dispatcher import Dispatcher, batch_item_failures, sqs_record

    class Sqs:
        deleted: list[str] = []

        def delete_message(self, QueueUrl, ReceiptHandle):
            self.deleted.append(ReceiptHandle)

    seen = []

    def webhooks(event, context):
        seen.append(event)
        return {"batchItemFailures": [{"itemIdentifier": "m2"}]}

    from imgdrop_local.lambda_runtime import LambdaRuntime

    runtime = LambdaRuntime(stack, handlers={"WebhooksFunction": webhooks})
    sqs = Sqs()
    dispatcher = Dispatcher(stack, runtime, s3=None, sqs=sqs)
    source = next(s for s in stack.queue_sources if s.function == "WebhooksFunction")
    messages = [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": "{}",
                 "Attributes": {"ApproximateReceiveCount": "1"}} for n in (1, 2)]
    assert dispatcher.handle_batch(source, "arn:aws:sqs:us-east-1:123456789012:q", "url", messages) == ["m2"]
    assert sqs.deleted == ["r1"]
    record = seen[0]["Records"][0]
    assert (record["eventSource"], record["messageId"], record["attributes"]["ApproximateReceiveCount"]) == (
        "aws:sqs", "m1", "1")
    assert sqs_record(messages[0], "arn")["receiptHandle"] == "r1"
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": "nope"}]}, ["m1"]) == ["m1"]
    assert batch_item_failures(None, ["m1"]) == []


# ---------------------------------------------------------------- SnapStart


SNAPSTART = {"ApiFunction", "AuthorizerFunction", "FinalizeFunction"}


def test_snapstart_is_on_where_it_applies_and_every_caller_reaches_the_published_alias(stack):
    resources = load_yaml()["Resources"]
    on = {name for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function"
          and (res["Properties"].get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"}
    assert on == SNAPSTART
    for name in on:
        assert resources[name]["Properties"]["AutoPublishAlias"] == "live"
    # process and reprocess need 4 GB of /tmp for 2 GiB sources: SnapStart allows 512 MB at most
    for name in ("ProcessFunction", "ReprocessFunction"):
        assert resources[name]["Properties"]["EphemeralStorage"]["Size"] > 512
    # an invocation of $LATEST never restores a snapshot: the authorizer and the destinations name the alias
    assert load_yaml()["Resources"]["HttpApi"]["Properties"]["Auth"]["Authorizers"]["TokenAuthorizer"][
        "FunctionArn"] == {"Ref": "AuthorizerFunction.Alias"}
    config = stack.function("ProcessFunction").invoke_config
    assert config.on_success.arn.endswith(":function:FinalizeFunction:live")
    assert allows(stack, "ProcessFunction", "lambda:InvokeFunction", config.on_success.arn)


@pytest.mark.parametrize(("extra", "refusal"), [
    ("EphemeralStorage: {Size: 1024}", "ephemeral storage over 512 MB"),
    ("ProvisionedConcurrencyConfig: {ProvisionedConcurrentExecutions: 1}", "provisioned concurrency"),
    ("FileSystemConfigs: [{Arn: arn:aws:elasticfilesystem:x, LocalMountPath: /mnt/x}]", "EFS"),
])
def test_the_local_stack_refuses_what_lambda_refuses_of_snapstart(tmp_path, extra, refusal):
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(f"""
        Resources:
          A:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: a/
              Handler: app.h
              AutoPublishAlias: live
              SnapStart: {{ApplyOn: PublishedVersions}}
              {extra}
        """))
    with pytest.raises(ValueError, match=refusal):
        load(template)


def test_snapstart_without_a_published_alias_is_refused(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent("""
        Resources:
          A: {Type: AWS::Serverless::Function, Properties: {CodeUri: a/, Handler: app.h,
              SnapStart: {ApplyOn: PublishedVersions}}}
        """))
    with pytest.raises(ValueError, match="AutoPublishAlias"):
        load(template)
