"""`aws`: moto (in-process, `mock_aws`) with the table, bucket, queue and secret of template.yaml,
and the environment the functions get from it, so tests cannot drift from the deployment.

IAM is enforced as deployed (imgdrop_local.iam): a handler (Functions.invoke, LambdaRuntime) calls
AWS with its role's credentials, built from template.yaml by SAM's own transform; everything else
(the fixture, the tests' own clients and assertions, domain code called outside a handler) acts as
an administrator. To run domain code as a function, wrap it in `aws.acting_as("SweepFunction")`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_env import Aws, aws_environment

from imgdrop_local.template import Stack, load


@pytest.fixture(scope="session")
def template_stack() -> Stack:
    return load()


@pytest.fixture
def aws(template_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with aws_environment(template_stack, monkeypatch) as env:
        yield env
