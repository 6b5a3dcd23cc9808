"""The near-duplicate index: insert a hash, look up the images within a threshold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from imgdrop.dedupe.bands import (
    DEFAULT_LAYOUT,
    HASH_BITS,
    BandLayout,
    band_key,
    check_tenant,
    neighbour_masks,
    parse_hash,
    read_keys,
    write_keys,
)
from imgdrop.dedupe.stores import HashIndexStore, IndexEntry

if TYPE_CHECKING:  # numpy is only needed for bulk loads (benchmarks, backfills)
    import numpy as np


# --- the index ----------------------------------------------------------------------------


class LookupStats(NamedTuple):
    keys: int  # bucket keys asked for
    candidates: int  # distinct images verified by full Hamming distance
    matches: int


@dataclass
class NearDuplicateIndex:
    store: HashIndexStore
    layout: BandLayout = field(default=DEFAULT_LAYOUT)
    last_lookup: LookupStats | None = field(default=None, init=False)

    def _entries(self, tenant: str, image_id: str, phash: str) -> list[IndexEntry]:
        phash = phash.lower()
        return [IndexEntry(k, image_id, phash) for k in write_keys(tenant, phash, self.layout)]

    def add(self, tenant: str, image_id: str, phash: str) -> None:
        """Index a canonical image (idempotent)."""
        self.store.batch_add(self._entries(tenant, image_id, phash))

    def remove(self, tenant: str, image_id: str, phash: str) -> None:
        self.store.remove(self._entries(tenant, image_id, phash))

    def find(
        self, tenant: str, phash: str, threshold: int, *, exclude: str | None = None, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """Every indexed image of ``tenant`` within ``threshold`` of ``phash``, nearest first."""
        max_threshold = self.layout.max_threshold()
        if not 0 <= threshold <= max_threshold:
            raise ValueError(f"threshold must be between 0 and {max_threshold} for this index layout")
        query = parse_hash(phash)
        keys = read_keys(tenant, phash, threshold, self.layout)
        candidates: dict[str, str] = {}
        for entries in self.store.batch_get(keys).values():
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


def band_postings(
    tenant: str, hashes: np.ndarray, layout: BandLayout = DEFAULT_LAYOUT
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Bulk form of ``write_keys`` for many hashes at once (numpy uint64 array).

    Returns ``(keys, offsets, members)``: bucket ``keys[k]`` holds the hash indexes
    ``members[offsets[k]:offsets[k+1]]``. Feeds ``InMemoryHashIndexStore.load_postings``.
    """
    import numpy as np

    check_tenant(tenant)
    bits = layout.band_bits
    masks = np.array(neighbour_masks(bits, layout.write_radius), dtype=np.uint64)
    n = len(hashes)
    index = np.arange(n, dtype=np.int32)
    all_keys: list[str] = []
    offsets_parts: list[np.ndarray] = []
    members_parts: list[np.ndarray] = []
    base = 0
    for band in range(layout.bands):
        shift = np.uint64(HASH_BITS - bits * (band + 1))
        values = (hashes >> shift) & np.uint64((1 << bits) - 1)
        keyed = (values[None, :] ^ masks[:, None]).ravel()  # len(masks) * n band values
        order = np.argsort(keyed, kind="stable")
        sorted_values = keyed[order]
        members = np.tile(index, len(masks))[order]
        uniq, starts = np.unique(sorted_values, return_index=True)
        all_keys.extend(band_key(tenant, band, int(v), layout) for v in uniq.tolist())
        offsets_parts.append(starts.astype(np.int64) + base)
        members_parts.append(members)
        base += len(members)
    offsets = np.concatenate([*offsets_parts, np.array([base], dtype=np.int64)])
    return all_keys, offsets, np.concatenate(members_parts)
