"""The near-duplicate index: insert a hash, look up the images within a threshold."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from imgdrop.dedupe.bands import (
    DEFAULT_LAYOUT,
    BandLayout,
    band_key,
    check_tenant,
    parse_hash,
    read_keys,
    write_keys,
)
from imgdrop.dedupe.stores import HashIndexStore, IndexEntry

if TYPE_CHECKING:  # numpy is only needed for bulk loads (benchmarks, backfills)
    import numpy as np

# How many recent lookups remember which of their own buckets were full (an insert follows
# its lookup in the process function; the memo spares it a read).
FULL_MEMO = 256


# --- the index ----------------------------------------------------------------------------


class LookupStats(NamedTuple):
    keys: int  # bucket keys asked for
    candidates: int  # distinct images verified by full Hamming distance
    matches: int


@dataclass
class NearDuplicateIndex:
    """``find`` reads the buckets around a hash; ``add`` writes one entry per table.

    An insert never writes to a bucket it knows is full: the lookup that precedes it in the
    process function has just read its buckets (remembered here), otherwise the insert reads
    them first (one BatchGetItem). A crowded region of hash space (a burst of near-identical
    uploads) so stops taking writes once its buckets are full, instead of sending every
    upload's write to the same partitions; the images beyond are still found through their
    other tables, or stand next to the ones that filled the buckets.
    """

    store: HashIndexStore
    layout: BandLayout = field(default=DEFAULT_LAYOUT)
    last_lookup: LookupStats | None = field(default=None, init=False)
    _full: OrderedDict[tuple[str, str], frozenset[str]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _entries(self, tenant: str, image_id: str, phash: str) -> list[IndexEntry]:
        return [IndexEntry(k, image_id, phash) for k in write_keys(tenant, phash, self.layout)]

    def _remember(self, tenant: str, phash: str, full: frozenset[str]) -> None:
        with self._lock:
            self._full[(tenant, phash)] = full
            self._full.move_to_end((tenant, phash))
            while len(self._full) > FULL_MEMO:
                self._full.popitem(last=False)

    def add(self, tenant: str, image_id: str, phash: str) -> None:
        """Index a canonical image (idempotent): one conditional UpdateItem per table."""
        phash = phash.lower()
        entries = self._entries(tenant, image_id, phash)
        with self._lock:
            full = self._full.pop((tenant, phash), None)
        if full is None:
            cap = self.store.entries_per_item
            found = self.store.batch_get([e.key for e in entries])
            full = frozenset(k for k, v in found.items() if len(v) >= cap)
        self.store.batch_add([e for e in entries if e.key not in full])

    def remove(self, tenant: str, image_id: str, phash: str) -> None:
        with self._lock:
            self._full.clear()  # a bucket may have room again
        self.store.remove(self._entries(tenant, image_id, phash.lower()))

    def find(
        self, tenant: str, phash: str, threshold: int, *, exclude: str | None = None, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """The indexed images of ``tenant`` within ``threshold`` of ``phash``, nearest first.

        Exact up to ``layout.exact_radius``; beyond, a pair is found when some table's key
        differs in at most one bit (recall in bench/near_duplicate_table.md). Every answer
        is verified by its full Hamming distance.
        """
        max_threshold = self.layout.max_threshold()
        if not 0 <= threshold <= max_threshold:
            raise ValueError(f"threshold must be between 0 and {max_threshold} for this index layout")
        phash = phash.lower()
        query = parse_hash(phash)
        keys = read_keys(tenant, phash, threshold, self.layout)
        found = self.store.batch_get(keys)
        cap = self.store.entries_per_item
        own = write_keys(tenant, phash, self.layout)
        self._remember(tenant, phash, frozenset(k for k in own if len(found.get(k, ())) >= cap))
        candidates: dict[str, str] = {}
        for entries in found.values():
            candidates.update(entries)
        candidates.pop(exclude, None)  # type: ignore[arg-type]
        matches = []
        for image_id, stored in candidates.items():
            distance = (int(stored, 16) ^ query).bit_count()
            if distance <= threshold:
                matches.append((image_id, distance))
        matches.sort(key=lambda m: (m[1], m[0]))
        self.last_lookup = LookupStats(len(keys), len(candidates), len(matches))
        return matches[:limit] if limit is not None else matches


def table_values(hashes: np.ndarray, layout: BandLayout = DEFAULT_LAYOUT) -> Iterator[np.ndarray]:
    """Bulk form of ``layout.band_values``: per table, the key value of every hash (uint32),
    one table at a time so that 10 M hashes never need all tables in memory at once."""
    import numpy as np

    columns = np.ascontiguousarray(hashes, dtype="<u8").view(np.uint8).reshape(-1, 8).T.copy()
    for per_byte in layout.byte_tables:
        values = np.zeros(len(hashes), dtype=np.uint32)
        for byte, row in enumerate(per_byte):
            if any(row):
                values |= np.asarray(row, dtype=np.uint32)[columns[byte]]
        yield values


def band_postings(
    tenant: str,
    hashes: np.ndarray,
    layout: BandLayout = DEFAULT_LAYOUT,
    *,
    only: Iterable[str] | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bulk form of ``write_keys`` for many hashes at once (numpy uint64 array).

    Returns ``(keys, offsets, members)``: bucket ``keys[k]`` holds the hash indexes
    ``members[offsets[k]:offsets[k+1]]`` in insertion order. ``only`` restricts the answer to
    those keys (a benchmark resolves just the buckets its lookups read). Feeds
    ``InMemoryHashIndexStore.load_postings``.
    """
    import numpy as np

    check_tenant(tenant)
    wanted: dict[int, list[int]] | None = None
    if only is not None:
        prefix = f"T#{tenant}#{layout.prefix}"
        wanted = {}
        for key in only:
            if key.startswith(prefix):
                number, _, value = key[len(prefix) :].partition("#")
                wanted.setdefault(int(number), []).append(int(value, 16))
    all_keys: list[str] = []
    offsets_parts: list[np.ndarray] = []
    members_parts: list[np.ndarray] = []
    base = 0
    for table, values in enumerate(table_values(hashes, layout)):
        if wanted is None:
            members = np.argsort(values, kind="stable").astype(np.int64)
        else:
            mask = np.zeros(1 << layout.band_bits, dtype=bool)
            mask[np.asarray(wanted.get(table, []), dtype=np.int64)] = True
            picked = np.flatnonzero(mask[values])
            members = picked[np.argsort(values[picked], kind="stable")]
        uniq, starts = np.unique(values[members], return_index=True)
        all_keys.extend(band_key(tenant, table, int(v), layout) for v in uniq.tolist())
        offsets_parts.append(starts.astype(np.int64) + base)
        members_parts.append(members)
        base += len(members)
    offsets = np.concatenate([*offsets_parts, np.array([base], dtype=np.int64)])
    return all_keys, offsets, np.concatenate(members_parts)
