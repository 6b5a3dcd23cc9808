"""How many examples the fuzz run takes: `--fuzz-long` (registered in tests/conftest.py) is `make fuzz`."""

from __future__ import annotations

import pytest

SHORT_EXAMPLES = 6  # per operation: the default run stays well under a minute
LONG_EXAMPLES = 150


def fuzz_examples(config: pytest.Config) -> int:
    return LONG_EXAMPLES if config.getoption("--fuzz-long", default=False) else SHORT_EXAMPLES
