"""SnapStart (template.yaml: api, authorizer, finalize): what each loads into its snapshot.

Lambda's python runtime provides `snapshot_restore_py`; here a stand-in records the hooks. A hook
that raises would fail the version's publication, and one that read a secret or called AWS would
put it in every restored environment: each hook runs here with every AWS call refused.
"""

from __future__ import annotations

import sys
import types

import botocore.client
import pytest

from imgdrop import snapshot
from imgdrop.delivery.signing import SIGNING_MODULES
from imgdrop_local.lambda_runtime import load_handler


@pytest.fixture
def snapshot_runtime(monkeypatch):
    hooks: list = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_before_snapshot = hooks.append  # type: ignore[attr-defined]
    runtime.register_after_restore = lambda hook: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    return hooks


def refuse_aws_calls(monkeypatch):
    def refused(self, operation, params):
        raise AssertionError(f"a snapshot hook called {self.meta.service_model.service_name}.{operation}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refused)


@pytest.mark.parametrize(("function", "loads"), [
    ("ApiFunction", ("imgdrop.uploads.direct", "imgdrop.webhooks.registry", "imgdrop.lifecycle.reprocess",
                     "imgdrop.dedupe.index", "imgdrop.dedupe.stores", "imgdrop.dedupe.policy", *SIGNING_MODULES)),
    ("AuthorizerFunction", ("jwt", "aws_lambda_powertools.utilities.parameters")),
    ("FinalizeFunction", SIGNING_MODULES),
])
def test_a_snapstart_function_loads_what_it_defers_before_the_snapshot_and_calls_nothing(
    aws, snapshot_runtime, monkeypatch, function, loads
):
    load_handler(aws.stack.function(function), copy_number=7)
    assert len(snapshot_runtime) == 1
    # recorded, not removed from sys.modules first: importing botocore or imgdrop modules a second
    # time would leave two copies of their classes for the rest of the session
    imported: list[str] = []
    real_import = snapshot.importlib.import_module
    monkeypatch.setattr(snapshot.importlib, "import_module", lambda name: imported.append(name) or real_import(name))
    refuse_aws_calls(monkeypatch)

    snapshot_runtime[0]()

    assert set(loads) <= set(imported)
    assert all(name in sys.modules for name in loads)


def test_the_api_snapshot_holds_every_routes_validation_models(aws, snapshot_runtime, monkeypatch):
    handler = load_handler(aws.stack.function("ApiFunction"), copy_number=8)
    app = sys.modules[handler.__module__].app
    refuse_aws_calls(monkeypatch)
    snapshot_runtime[0]()
    # generating the document built each route's dependant (its request and response models)
    routes = [route for route in app._static_routes + app._dynamic_routes if route.include_in_schema]
    assert len(routes) >= 20
    assert all(route._dependant is not None for route in routes)


def test_without_lambdas_snapshot_runtime_nothing_is_registered():
    from imgdrop.snapshot import before_snapshot

    assert "snapshot_restore_py" not in sys.modules
    assert before_snapshot("json") is False
