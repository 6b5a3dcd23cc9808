"""Dedupe by perceptual hash: the bit-sampling tables (bands), where they are stored
(stores), how a lookup is answered (index), what a near-duplicate means per profile (policy)
and how a deployment moves to a new layout (migrate). Exact repeats (the same bytes) are the
content claims of ``imgdrop.dedupe.exact``."""

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
