"""moto checks a DynamoDB write's condition and then writes, without a lock: two threads can
both pass `attribute_not_exists` and both write. DynamoDB itself applies each conditional
write atomically, and imgdrop's claims (sha256, slug) rely on that, so the local stack and
the tests serialize moto's item writes to behave as the service does."""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterable
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def hold_the_lock(names: Iterable[str]) -> None:
    """Run these methods of moto's DynamoDB backend under the one lock (once, however often
    this is called): the writes here, reads that must not see a write half-done elsewhere."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in names:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_imgdrop_locked", False):
            continue

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        locked._imgdrop_locked = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)


def make_conditional_writes_atomic() -> None:
    hold_the_lock(_WRITES)
    _back_up_transactions_by_item()


class _TablesAsThey:
    """moto's `copy` inside a transaction: tables are not copied (see below), anything else is."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _back_up_transactions_by_item() -> None:
    """moto backs a transaction up by deep-copying each table it names, once per item: O(table)
    per transaction, which with imgdrop's single table (images, claims, the near-duplicate index,
    jobs) grows to seconds in a dev session, all of it under the lock above. Back up the items the
    transaction writes instead, and put them back when it is cancelled, as DynamoDB leaves them."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_imgdrop_by_item", False):
        return

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]], *args: Any,
                             **kwargs: Any) -> Any:
        with _lock:
            backup = []
            for entry in transact_items:
                try:
                    ((kind, op),) = entry.items()
                    table = self.get_table(op["TableName"])
                    source = op["Item"] if kind == "Put" else op["Key"]
                    hash_value = DynamoType(source[table.hash_key_attr])
                    range_value = DynamoType(source[table.range_key_attr]) if table.range_key_attr else None
                    item = table.get_item(hash_value, range_value)
                except Exception:  # noqa: BLE001, S112 - malformed: moto refuses it itself  # nosec B112
                    continue
                backup.append((table, hash_value, range_value, copy.deepcopy(item)))
            models.copy = _TablesAsThey  # type: ignore[assignment]
            try:
                return original(self, transact_items, *args, **kwargs)
            except Exception:
                for table, hash_value, range_value, item in reversed(backup):
                    if item is None:
                        table.delete_item(hash_value, range_value)
                    elif range_value is not None:
                        table.items[hash_value][range_value] = item
                    else:
                        table.items[hash_value] = item
                raise
            finally:
                models.copy = copy  # type: ignore[assignment]

    transact_write_items._imgdrop_by_item = True  # type: ignore[attr-defined]
    transact_write_items._imgdrop_locked = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
