"""moto checks a DynamoDB write's condition and then writes, without a lock: two threads can
both pass `attribute_not_exists` and both write. DynamoDB itself applies each conditional
write atomically, and imgdrop's claims (sha256, slug) rely on that, so the local stack and
the tests serialize moto's item writes to behave as the service does."""

from __future__ import annotations

import functools
import threading
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def make_conditional_writes_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_imgdrop_atomic", False):
            continue

        @functools.wraps(original)
        def atomic(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        atomic._imgdrop_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, atomic)
