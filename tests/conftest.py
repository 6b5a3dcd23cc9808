"""Shared test setup: no test reaches AWS; the domain package is importable from its layer."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "layers" / "core", ROOT / "infra" / "local", ROOT / "cli"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Dummy credentials and a region, so a stray client can never reach a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "imgdrop")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "imgdrop")


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help="fuzz the API with many examples per operation (make fuzz)")
