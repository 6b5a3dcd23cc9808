"""Dedupe by perceptual hash: the band index (bands), where it is stored (stores), how a
lookup is answered (index) and what a near-duplicate means per profile (policy). Exact
repeats (the same bytes) are the content claims of ``imgdrop.dedupe.exact``."""

from imgdrop.dedupe.bands import (
    BATCH_GET_LIMIT,
    DEFAULT_LAYOUT,
    DEFAULT_THRESHOLD,
    ENTRIES_PER_ITEM,
    HASH_BITS,
    MAX_LOOKUP_REQUESTS,
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
from imgdrop.dedupe.index import LookupStats, NearDuplicateIndex, band_postings
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
    "write_keys",
]
