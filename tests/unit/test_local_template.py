"""template.yaml, resolved for the local stack: the values the emulation routes on."""

from __future__ import annotations

import textwrap

import pytest
from imgdrop_local.template import ACCOUNT_ID, REGION, load, load_yaml


@pytest.fixture(scope="module")
def stack():
    return load()


def test_every_http_api_event_becomes_a_route(stack):
    keys = {r.route_key for r in stack.routes}
    assert len(stack.routes) == 15
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
    assert config.on_failure.arn == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:FinalizeFunction"


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
    assert stack.table_properties["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
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
    assert arn == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}


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
