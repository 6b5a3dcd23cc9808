"""A handler invocation (or any call) in a thread of its own, for tests that make two of them
interleave on purpose."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Run(threading.Thread):
    """A handler invocation in its own thread; `result` or `error` once joined."""

    def __init__(self, name: str, target: Callable[[], Any]):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
