"""The moto environment of the integration tests: template.yaml's resources with each function's
role enforced. A module of its own, so that tests import it by a name no other conftest.py shares
(`from conftest import ...` found whichever conftest.py pytest had imported first)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imgdrop_local import iam
from imgdrop_local.atomic_writes import make_conditional_writes_atomic
from imgdrop_local.template import DEV_JWT_SECRET, REGION, Stack, create_resources

TEST_JWT_SECRET = DEV_JWT_SECRET + "-integration-tests"


@dataclass
class Aws:
    stack: Stack
    table_name: str
    bucket_name: str
    queue_urls: dict[str, str]
    jwt_secret: str
    session: boto3.session.Session
    identities: iam.Identities | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @staticmethod
    def acting_as(logical_id: str | None) -> AbstractContextManager[None]:
        """Run the block with that function's role (None: the administrator)."""
        return iam.acting_as(logical_id)

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


@contextmanager
def aws_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch, *, enforce_iam: bool = True) -> Iterator[Aws]:
    """moto with the resources of `stack` (template.yaml, or a test's copy of it) and, unless told
    otherwise, each function's role enforced."""
    # mock_aws intercepts requests to AWS's own hostnames: no endpoint override may stay set.
    for var in ("AWS_ENDPOINT_URL", "PUBLIC_S3_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    env = {
        **stack.environment(),
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
        names = create_resources(session, stack, jwt_secret=TEST_JWT_SECRET)

        def environment(identities: iam.Identities | None = None) -> Aws:
            return Aws(
                stack=stack,
                table_name=names["table"],
                bucket_name=names["bucket"],
                queue_urls={k.split(":", 1)[1]: v for k, v in names.items() if k.startswith("queue:")},
                jwt_secret=TEST_JWT_SECRET,
                # made after IAM is on: it resolves the credentials of whoever calls (the admin here)
                session=boto3.session.Session(region_name=REGION),
                identities=identities,
            )

        if enforce_iam:
            with iam.enforced(session, stack) as identities:
                yield environment(identities)
        else:
            yield environment()
    _clear_cached_settings()
