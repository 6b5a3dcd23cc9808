"""Multi-index hashing of 64-bit perceptual hashes: bands, neighbour keys, Hamming distance.

Multi-index hashing. The 64-bit phash is split into ``bands`` bands of ``64 / bands`` bits.
By pigeonhole, two hashes within Hamming distance r agree within ``s = r // bands`` bits on
at least one band. Each stored hash is written under every band value within ``write_radius``
of its own band value; a lookup reads every band value within ``read_radius = s - write_radius``
of the query's. Any band pair within s meets on some key (walk ``write_radius`` bits from the
stored value towards the query), so the candidates hold every hash within r, and each one is
verified by its full Hamming distance: the result is exact.

Default layout: 4 bands of 16 bits, write radius 1 (4 x 17 = 68 bucket updates per insert).
Per lookup: threshold 0-7 reads 4 keys, 8-11 reads 68 (one BatchGetItem), 12-15 reads
548 (six BatchGetItem); 16 and above would need 28 and is refused. The number of requests
does not depend on the size of the collection; the number of entries read does
(about 0.14 x N at threshold 12 for uniformly random hashes, see bench/bench_dedupe.py).

Storage on the single table: one item per (tenant, band, band value), its entries in a
string set ``e`` of ``"<phash hex>:<image id>"``. Inserts use UpdateItem ``ADD`` (atomic
and idempotent, so concurrent process functions and S3 redeliveries never lose or double
an entry; BatchWriteItem can only overwrite whole items). A bucket item holds at most
``entries_per_item`` entries; beyond that, entries overflow to shard items ``S#1``, ``S#2``...
and ``S#0`` records the shard count in ``n``, so a lookup fetches the overflow shards in a
second round (counted in the requests).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is only needed for bulk loads (benchmarks, backfills)
    pass

HASH_BITS = 64
HASH_HEX_LEN = HASH_BITS // 4
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
DEFAULT_THRESHOLD = 12  # from bench/near_duplicate_table.md: precision 1.0, recall 0.96 on real photos
MAX_LOOKUP_REQUESTS = 10
ENTRIES_PER_ITEM = 1000  # ~45 bytes each: ~45 KB per bucket item, far below the 400 KB limit


# --- pure functions ---------------------------------------------------------------------


def parse_hash(value: str) -> int:
    """A 64-bit hash from its 16 hex characters; ValueError for anything else."""
    if not isinstance(value, str) or len(value) != HASH_HEX_LEN:
        raise ValueError(f"a perceptual hash is {HASH_HEX_LEN} hex characters, got {value!r}")
    try:
        return int(value, 16)
    except ValueError:
        raise ValueError(f"a perceptual hash is {HASH_HEX_LEN} hex characters, got {value!r}") from None


def format_hash(value: int) -> str:
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Hamming distance of two hex hashes (imagehash's ``h1 - h2``)."""
    return (parse_hash(a) ^ parse_hash(b)).bit_count()


@lru_cache(maxsize=64)
def neighbour_masks(bits: int, radius: int) -> tuple[int, ...]:
    """XOR masks of every value within ``radius`` of a ``bits``-bit value, distance 0 first."""
    masks = [0]
    for r in range(1, min(radius, bits) + 1):
        for positions in itertools.combinations(range(bits), r):
            mask = 0
            for p in positions:
                mask |= 1 << p
            masks.append(mask)
    return tuple(masks)


def neighbours(value: int, bits: int, radius: int) -> list[int]:
    """Every ``bits``-bit value within Hamming ``radius`` of ``value`` (value itself first)."""
    return [value ^ m for m in neighbour_masks(bits, radius)]


@dataclass(frozen=True)
class BandLayout:
    """How hashes are cut into bands and how the neighbour radius is split write/read."""

    bands: int = 4
    write_radius: int = 1

    def __post_init__(self) -> None:
        if self.bands < 1 or HASH_BITS % self.bands:
            raise ValueError(f"bands must divide {HASH_BITS}")
        if self.write_radius < 0:
            raise ValueError("write_radius must be >= 0")

    @property
    def band_bits(self) -> int:
        return HASH_BITS // self.bands

    def band_values(self, value: int) -> list[int]:
        """Band 0 is the most significant ``band_bits`` bits."""
        bits = self.band_bits
        mask = (1 << bits) - 1
        return [(value >> (HASH_BITS - bits * (b + 1))) & mask for b in range(self.bands)]

    def read_radius(self, threshold: int) -> int:
        return max(0, threshold // self.bands - self.write_radius)

    def read_keys(self, threshold: int) -> int:
        return self.bands * len(neighbour_masks(self.band_bits, self.read_radius(threshold)))

    def max_threshold(self, max_requests: int = MAX_LOOKUP_REQUESTS) -> int:
        """The largest threshold whose keys fit in ``max_requests`` BatchGetItem calls."""
        best = -1
        for t in range(HASH_BITS + 1):
            if math.ceil(self.read_keys(t) / BATCH_GET_LIMIT) > max_requests:
                break
            best = t
        return best


DEFAULT_LAYOUT = BandLayout()


def check_tenant(tenant: str) -> str:
    if not tenant or "#" in tenant:
        raise ValueError(f"invalid tenant {tenant!r}")
    return tenant


def band_key(tenant: str, band: int, value: int, layout: BandLayout = DEFAULT_LAYOUT) -> str:
    """The partition key of one bucket: the tenant is in the key, so tenants never meet."""
    width = (layout.band_bits + 3) // 4
    return f"T#{tenant}#PH{band}#{value:0{width}x}"


def write_keys(tenant: str, phash: str, layout: BandLayout = DEFAULT_LAYOUT) -> list[str]:
    """Every bucket a stored hash is written to (bands x write-radius neighbours)."""
    check_tenant(tenant)
    masks = neighbour_masks(layout.band_bits, layout.write_radius)
    return [
        band_key(tenant, band, value ^ m, layout)
        for band, value in enumerate(layout.band_values(parse_hash(phash)))
        for m in masks
    ]


def read_keys(tenant: str, phash: str, threshold: int, layout: BandLayout = DEFAULT_LAYOUT) -> list[str]:
    """Every bucket a lookup within ``threshold`` must read (distinct keys, stable order)."""
    check_tenant(tenant)
    masks = neighbour_masks(layout.band_bits, layout.read_radius(threshold))
    keys = [
        band_key(tenant, band, value ^ m, layout)
        for band, value in enumerate(layout.band_values(parse_hash(phash)))
        for m in masks
    ]
    return list(dict.fromkeys(keys))
