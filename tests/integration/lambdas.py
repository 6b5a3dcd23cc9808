"""Invoking the functions of template.yaml in-process against moto, with the samples in events/.

Each handler gets the sample event of its folder with only this run's ids and keys filled in.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from imgdrop_local.iam import acting_as
from imgdrop_local.lambda_runtime import LambdaContext, load_handler

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def sample_photo(name: str) -> bytes:
    """A real photo that scikit-learn's wheel ships: china.jpg or flower.jpg."""
    import sklearn.datasets

    return (Path(sklearn.datasets.__file__).parent / "images" / name).read_bytes()


def china_jpeg() -> bytes:
    return sample_photo("china.jpg")


class Functions:
    def __init__(self, aws: Any):
        self.aws = aws
        self._handlers: dict[str, Any] = {}

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        if logical_id not in self._handlers:
            self._handlers[logical_id] = load_handler(self.aws.stack.function(logical_id))
        context = LambdaContext(
            logical_id, 512, f"arn:aws:lambda:us-east-1:123456789012:function:{logical_id}", "request-id", 30
        )
        with acting_as(logical_id):  # its AWS calls carry its role's credentials (the `aws` fixture)
            result = self._handlers[logical_id](copy.deepcopy(event), context)
        return json.loads(json.dumps(result))

    def api(
        self,
        method: str,
        path: str,
        route: str,
        body: Any = None,
        path_params: dict[str, str] | None = None,
        tenant: str = "acme",
        scope: str = "images:read images:write tags:write",
        query: dict[str, str] | None = None,
        *,
        albums: dict[str, list[str]] | None = None,
        raw_body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """The api function behind the authorizer, for a caller with these scopes and album rights
        (`albums` None: every album); `raw_body` is sent base64-encoded, as API Gateway does."""
        event = sample("api_health.json")
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["authorizer"]["lambda"].update(
            {"tenant": tenant, "scope": scope, "albums": "" if albums is None else json.dumps(albums)}
        )
        event["headers"]["content-type"] = content_type
        if path_params:
            event["pathParameters"] = path_params
        if raw_body is not None:
            event["body"] = base64.b64encode(raw_body).decode()
            event["isBase64Encoded"] = True
        elif body is not None:
            event["body"] = json.dumps(body)
        if query:
            event["queryStringParameters"] = query
            event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
        response = self.invoke("ApiFunction", event)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def image(self, image_id: str, tenant: str = "acme") -> tuple[int, Any]:
        return self.api(
            "GET", f"/v1/images/{image_id}", "/v1/images/{id}", path_params={"id": image_id}, tenant=tenant
        )

    def process_and_finalize(self, key: str, size: int) -> dict[str, Any]:
        processed = self.process(key, size)
        self.finalize_success(processed)
        return processed

    def process(self, key: str, size: int) -> dict[str, Any]:
        event = sample("process_s3_object_created.json")
        record = event["Records"][0]
        record["s3"]["bucket"]["name"] = self.aws.bucket_name
        record["s3"]["object"].update({"key": key, "size": size})
        return self.invoke("ProcessFunction", event)

    def finalize_success(self, outcome: dict[str, Any]) -> dict[str, Any]:
        event = sample("finalize_success.json")
        event["responsePayload"] = outcome
        return self.invoke("FinalizeFunction", event)

    def finalize_failure(self, key: str) -> dict[str, Any]:
        event = sample("finalize_retries_exhausted.json")
        event["requestPayload"]["Records"][0]["s3"]["object"]["key"] = key
        return self.invoke("FinalizeFunction", event)


def upload(functions: Functions, data: bytes, **fields: Any) -> tuple[str, str]:
    """Presign one item through the api, then put the bytes where the presigned POST would."""
    item = {"filename": "photo.jpg", "content_type": "image/jpeg", "size": len(data), **fields}
    status, body = functions.api("POST", "/v1/uploads", "/v1/uploads", {"items": [item]})
    assert status == 200, body
    answer = body["items"][0]
    assert answer["status"] == "pending", answer
    key = answer["upload"]["fields"]["key"]
    functions.aws.s3.put_object(
        Bucket=functions.aws.bucket_name, Key=key, Body=data, ContentType="image/jpeg"
    )
    return answer["id"], key


def image_files(aws: Any, image_id: str, tenant: str = "acme") -> set[str]:
    """Every stored file of an image: its private folder (originals, private variants) and its
    public one (public and unlisted images' variants)."""
    keys: set[str] = set()
    for root in ("images", "public"):
        listing = aws.s3.list_objects_v2(Bucket=aws.bucket_name, Prefix=f"{root}/{tenant}/{image_id}/")
        keys |= {obj["Key"] for obj in listing.get("Contents", [])}
    return keys
