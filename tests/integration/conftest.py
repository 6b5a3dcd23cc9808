"""`aws`: moto (in-process, `mock_aws`) with the table, bucket, queue and secret of template.yaml,
and the environment the functions get from it, so tests cannot drift from the deployment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imgdrop_local.atomic_writes import make_conditional_writes_atomic
from imgdrop_local.template import DEV_JWT_SECRET, REGION, Stack, create_resources, load

TEST_JWT_SECRET = DEV_JWT_SECRET + "-integration-tests"


@dataclass
class Aws:
    stack: Stack
    table_name: str
    bucket_name: str
    queue_urls: dict[str, str]
    jwt_secret: str
    session: boto3.session.Session
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def failed_events_queue_url(self) -> str | None:
        """The queue that an OnFailure destination of type SQS names in template.yaml."""
        name = self.stack.failed_events_queue
        return next((self.queue_urls[k] for k, v in self.stack.queue_names.items() if v == name), None)


def _clear_cached_settings() -> None:
    try:
        from imgdrop.settings import get_settings
    except ImportError:
        return
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def template_stack() -> Stack:
    return load()


@pytest.fixture
def aws(template_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    # mock_aws intercepts requests to AWS's own hostnames: no endpoint override may stay set.
    for var in ("AWS_ENDPOINT_URL", "PUBLIC_S3_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    env = {
        **template_stack.environment(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "JWT_SECRET": TEST_JWT_SECRET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "imgdrop",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _clear_cached_settings()
    make_conditional_writes_atomic()  # as DynamoDB is; moto alone is not, under threads
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        names = create_resources(session, template_stack, jwt_secret=TEST_JWT_SECRET)
        yield Aws(
            stack=template_stack,
            table_name=names["table"],
            bucket_name=names["bucket"],
            queue_urls={k.split(":", 1)[1]: v for k, v in names.items() if k.startswith("queue:")},
            jwt_secret=TEST_JWT_SECRET,
            session=session,
        )
    _clear_cached_settings()
