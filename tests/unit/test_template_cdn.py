"""template.yaml's delivery (CDN) resources, and the edge function's own node tests.

infra/cdn/auto_format.js is the one copy of the CloudFront Function: template.yaml inlines it
(infra/cdn/sync_template.py) and the local CDN runs it with node (infra/cdn/serve.mjs).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTION = ROOT / "infra" / "cdn" / "auto_format.js"


class _Loader(yaml.SafeLoader):
    """CloudFormation's short tags as {"Ref": ...} / {"Fn::X": ...}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506  # nosec B506


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def props(resources: dict[str, Any], name: str) -> dict[str, Any]:
    return resources[name]["Properties"]


# ---------------------------------------------------------------- the edge function


def test_the_edge_functions_node_tests_pass():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: infra/cdn's tests (node --test infra/cdn/) need it")
    result = subprocess.run(  # noqa: S603  # nosec B603
        [node, "--test", "infra/cdn/"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_inline_function_code_is_the_file(resources):
    function = props(resources, "AutoFormatFunction")
    assert function["FunctionCode"] == FUNCTION.read_text(encoding="utf-8"), (
        "template.yaml's AutoFormatFunction differs from infra/cdn/auto_format.js: "
        "run python infra/cdn/sync_template.py"
    )
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert function["AutoPublish"] is True


def test_sync_template_rewrites_only_the_inline_copy():
    spec = importlib.util.spec_from_file_location("sync_template", ROOT / "infra" / "cdn" / "sync_template.py")
    assert spec and spec.loader
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    text = TEMPLATE.read_text(encoding="utf-8")
    assert sync.synced(text, FUNCTION.read_text(encoding="utf-8")) == text
    changed = sync.synced(text, "function handler(event) {\n\n    return event.request;\n}\n")
    before, after = text.splitlines(), changed.splitlines()
    assert [line for line in before if line not in after and not line.startswith("        ")] == []
    loaded = yaml.load(changed, Loader=_Loader)  # noqa: S506  # nosec B506
    assert loaded["Resources"]["AutoFormatFunction"]["Properties"]["FunctionCode"] == (
        "function handler(event) {\n\n    return event.request;\n}\n")
    assert {k: v for k, v in loaded.items() if k != "Resources"} == {
        k: v for k, v in yaml.load(text, Loader=_Loader).items() if k != "Resources"}  # noqa: S506  # nosec B506


# ---------------------------------------------------------------- the distribution


def behaviours(resources) -> dict[str, dict[str, Any]]:
    config = props(resources, "ImagesDistribution")["DistributionConfig"]
    out = {"*": config["DefaultCacheBehavior"]}
    out.update({b["PathPattern"]: b for b in config["CacheBehaviors"]})
    return out


def test_public_variants_are_unsigned_and_everything_else_needs_the_key_group(resources):
    by_pattern = behaviours(resources)
    assert set(by_pattern) == {"*", "public/*"}
    assert by_pattern["*"]["TrustedKeyGroups"] == [{"Ref": "DeliveryKeyGroup"}]
    assert "TrustedKeyGroups" not in by_pattern["public/*"] and "TrustedSigners" not in by_pattern["public/*"]
    assert props(resources, "DeliveryKeyGroup")["KeyGroupConfig"]["Items"] == [{"Ref": "DeliveryPublicKey"}]
    assert props(resources, "DeliveryPublicKey")["PublicKeyConfig"]["EncodedKey"] == {"Ref": "DeliveryPublicKeyPem"}


def test_both_behaviours_run_the_function_and_serve_images_as_they_are(resources):
    function = {"Fn::GetAtt": ["AutoFormatFunction", "FunctionARN"]}
    for pattern, behaviour in behaviours(resources).items():
        assert behaviour["FunctionAssociations"] == [
            {"EventType": "viewer-request", "FunctionARN": function},
            {"EventType": "viewer-response", "FunctionARN": function},
        ], pattern
        assert behaviour["Compress"] is False
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
        assert behaviour["CachePolicyId"] == {"Ref": "ImagesCachePolicy"}
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "ImagesResponseHeadersPolicy"}


def test_the_distribution_reads_the_bucket_through_its_origin_access_control(resources):
    config = props(resources, "ImagesDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ImagesOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert origin["DomainName"]["Fn::Sub"].startswith(props(resources, "ImagesBucket")["BucketName"]["Fn::Sub"])
    oac = props(resources, "ImagesOriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["SigningBehavior"], oac["SigningProtocol"], oac["OriginAccessControlOriginType"]) == (
        "always", "sigv4", "s3")
    assert config["HttpVersion"] == "http2and3"
    viewer_certificate = config["ViewerCertificate"]["Fn::If"]
    assert viewer_certificate[0] == "HasDeliveryDomain"
    assert viewer_certificate[1]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert viewer_certificate[2] == {"CloudFrontDefaultCertificate": True}


def test_the_bucket_admits_only_this_distribution_and_never_to_uploads(resources):
    statements = props(resources, "ImagesBucketPolicy")["PolicyDocument"]["Statement"]
    (cdn,) = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert cdn["Effect"] == "Allow" and cdn["Action"] == "s3:GetObject"
    assert [r["Fn::Sub"] for r in cdn["Resource"]] == ["${ImagesBucket.Arn}/public/*", "${ImagesBucket.Arn}/images/*"]
    assert cdn["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"].endswith(
        ":distribution/${ImagesDistribution}")
    assert "uploads" not in str(cdn)


def test_the_cache_key_is_the_normalized_format_never_accept(resources):
    config = props(resources, "ImagesCachePolicy")["CachePolicyConfig"]
    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"] == {"HeaderBehavior": "whitelist", "Headers": ["x-imgdrop-format"]}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert key["EnableAcceptEncodingGzip"] is False and key["EnableAcceptEncodingBrotli"] is False
    assert config["MinTTL"] == 0 and config["MaxTTL"] >= 31536000
    assert "x-imgdrop-format" in FUNCTION.read_text(encoding="utf-8")


def test_delivery_answers_cors_star_and_nosniff(resources):
    config = props(resources, "ImagesResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    cors = config["CorsConfig"]
    assert cors["AccessControlAllowOrigins"] == {"Items": ["*"]}
    assert cors["AccessControlAllowMethods"] == {"Items": ["GET", "HEAD"]}
    assert cors["AccessControlAllowCredentials"] is False
    assert config["SecurityHeadersConfig"]["ContentTypeOptions"] == {"Override": True}
    assert "RemoveHeadersConfig" not in config


def test_the_bucket_cors_allows_the_multipart_calls(resources):
    (rule,) = props(resources, "ImagesBucket")["CorsConfiguration"]["CorsRules"]
    assert set(rule["AllowedMethods"]) == {"GET", "PUT", "POST", "DELETE", "HEAD"}
    assert "ETag" in rule["ExposedHeaders"]


# ---------------------------------------------------------------- the functions


def test_every_function_knows_the_cdn(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["CDN_BASE_URL"]["Fn::If"][0] == "HasDeliveryDomain"
    assert env["CDN_BASE_URL"]["Fn::If"][2] == {"Fn::Sub": "https://${ImagesDistribution.DomainName}"}
    assert env["CDN_KEY_PAIR_ID"] == {"Ref": "DeliveryPublicKey"}
    assert env["CDN_PRIVATE_KEY_SECRET_ARN"] == {"Ref": "DeliveryPrivateKeySecretArn"}
    assert env["CDN_DISTRIBUTION_ID"] == {"Ref": "ImagesDistribution"}


def statements(resources, function: str) -> list[dict[str, Any]]:
    return [s for policy in props(resources, function)["Policies"] if "Statement" in policy
            for s in policy["Statement"]]


@pytest.mark.parametrize("function", ["ApiFunction", "FinalizeFunction"])
def test_presenting_functions_may_sign_and_invalidate(resources, function):
    by_sid = {s["Sid"]: s for s in statements(resources, function)}
    assert by_sid["ReadUrlSigningKey"]["Action"] == "secretsmanager:GetSecretValue"
    assert by_sid["ReadUrlSigningKey"]["Resource"] == {"Ref": "DeliveryPrivateKeySecretArn"}
    assert by_sid["InvalidateDeliveredImages"]["Action"] == "cloudfront:CreateInvalidation"
    assert by_sid["InvalidateDeliveredImages"]["Resource"]["Fn::Sub"].endswith(":distribution/${ImagesDistribution}")


def test_functions_that_remove_variants_reach_public_too(resources):
    def deletes(function: str) -> list[str]:
        out = []
        for s in statements(resources, function):
            if "s3:DeleteObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]):
                res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                out += [r["Fn::Sub"].rsplit("}", 1)[-1] for r in res]
        return out

    assert {"/images/*", "/public/*"} <= set(deletes("FinalizeFunction"))
    assert {"/images/*", "/public/*"} <= set(deletes("SweepFunction"))
    assert "/*" in deletes("ApiFunction") and "/*" in deletes("ProcessFunction")  # the whole bucket


def test_the_outputs_name_the_distribution(template):
    outputs = template["Outputs"]
    assert outputs["DistributionDomainName"]["Value"] == {"Fn::GetAtt": ["ImagesDistribution", "DomainName"]}
    assert outputs["DistributionId"]["Value"] == {"Ref": "ImagesDistribution"}
