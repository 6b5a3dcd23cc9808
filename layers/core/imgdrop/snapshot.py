"""Lambda SnapStart: what goes into the snapshot a published version is restored from.

SnapStart (template.yaml: the api, authorizer and finalize functions) initialises a version once,
when it is published, and restores new environments from a snapshot of it. Work done before the
snapshot is free at every restore, so these functions load there what they otherwise load on
first use. What must not be in a snapshot is not: no secret is read, no connection opened and no
random state drawn at import (ids and webhook secrets come from os.urandom, fresh at every call;
botocore resolves and refreshes credentials itself).

Outside Lambda's python runtime (tests, the local stack) `snapshot_restore_py` does not exist and
nothing is registered; in Lambda without SnapStart the hooks are registered and never run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def before_snapshot(*modules: str, warm: Callable[[], object] | None = None) -> bool:
    """Load `modules` (and run `warm`) before the snapshot is taken. True if registered."""
    try:
        from snapshot_restore_py import register_before_snapshot  # Lambda's python 3.12+ runtimes
    except ImportError:
        return False

    def load() -> None:
        for name in modules:
            importlib.import_module(name)
        if warm is not None:
            warm()

    register_before_snapshot(load)
    return True
