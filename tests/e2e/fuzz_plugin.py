"""`--fuzz-long` and the `fuzz` marker, for tests/e2e/test_fuzz.py (`make fuzz` runs the long run).

Registered from tests/e2e/conftest.py: `pytest_plugins = ["fuzz_plugin"]`.
"""

from __future__ import annotations

import pytest

SHORT_EXAMPLES = 6  # per operation: the default run stays well under a minute
LONG_EXAMPLES = 150


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help=f"fuzz the API with {LONG_EXAMPLES} examples per operation instead of {SHORT_EXAMPLES}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: property-based fuzzing of the API (schemathesis)")


def fuzz_examples(config: pytest.Config) -> int:
    return LONG_EXAMPLES if config.getoption("--fuzz-long", default=False) else SHORT_EXAMPLES
