"""Dedupe by perceptual hash: the bit-sampling tables (bands), where they are stored
(stores), how a lookup is answered (index), what a near-duplicate means per profile (policy)
and how a deployment moves to a new layout (migrate). Exact repeats (the same bytes) are the
content claims of ``imgdrop.dedupe.exact``.

The package's names load their module on first use: a function that needs only the content
claims (the API's image routes import ``imgdrop.dedupe.exact``) does not pay for the index's
modules at its cold start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imgdrop.dedupe.bands import (
        BATCH_GET_LIMIT,
        DEFAULT_LAYOUT,
        DEFAULT_THRESHOLD,
        ENTRIES_PER_ITEM,
        HASH_BITS,
        MAX_LOOKUP_REQUESTS,
        MAX_THRESHOLD,
        BandLayout,
        band_key,
        format_hash,
        hamming,
        neighbour_masks,
        neighbours,
        parse_hash,
        read_keys,
        write_keys,
    )
    from imgdrop.dedupe.index import LookupStats, NearDuplicateIndex, band_postings, table_values
    from imgdrop.dedupe.policy import MODES, NearDuplicatePolicy, Verdict, policy_for
    from imgdrop.dedupe.stores import (
        DynamoHashIndexStore,
        HashIndexStore,
        IndexEntry,
        InMemoryHashIndexStore,
        StoreStats,
    )

_MODULE_OF = {
    **dict.fromkeys(
        ("BATCH_GET_LIMIT", "DEFAULT_LAYOUT", "DEFAULT_THRESHOLD", "ENTRIES_PER_ITEM", "HASH_BITS",
         "MAX_LOOKUP_REQUESTS", "MAX_THRESHOLD", "BandLayout", "band_key", "format_hash", "hamming",
         "neighbour_masks", "neighbours", "parse_hash", "read_keys", "write_keys"),
        "bands",
    ),
    **dict.fromkeys(("LookupStats", "NearDuplicateIndex", "band_postings", "table_values"), "index"),
    **dict.fromkeys(("MODES", "NearDuplicatePolicy", "Verdict", "policy_for"), "policy"),
    **dict.fromkeys(
        ("DynamoHashIndexStore", "HashIndexStore", "IndexEntry", "InMemoryHashIndexStore", "StoreStats"),
        "stores",
    ),
}

# What the first lookup loads (the API's /similar); a SnapStart function loads them into its
# snapshot instead.
NEAR_DUPLICATE_MODULES = tuple(f"{__name__}.{module}" for module in dict.fromkeys(_MODULE_OF.values()))


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BATCH_GET_LIMIT",
    "DEFAULT_LAYOUT",
    "DEFAULT_THRESHOLD",
    "ENTRIES_PER_ITEM",
    "HASH_BITS",
    "MAX_LOOKUP_REQUESTS",
    "MAX_THRESHOLD",
    "MODES",
    "BandLayout",
    "DynamoHashIndexStore",
    "HashIndexStore",
    "InMemoryHashIndexStore",
    "IndexEntry",
    "LookupStats",
    "NearDuplicateIndex",
    "NearDuplicatePolicy",
    "StoreStats",
    "Verdict",
    "band_key",
    "band_postings",
    "format_hash",
    "hamming",
    "neighbour_masks",
    "neighbours",
    "parse_hash",
    "policy_for",
    "read_keys",
    "table_values",
    "write_keys",
]
