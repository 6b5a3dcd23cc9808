"""Bit-sampling tables for 64-bit perceptual hashes: keys, probes, Hamming distance.

A lookup must stay cheap when a tenant holds 10 M hashes: at most 10 BatchGetItem requests
and about 1 MB read, whatever the threshold. An exact multi-index scheme cannot do that at
threshold 12 (the old 4 bands x 16 bits read about 0.14 x N entries: 61 MB at 10 M, see
bench/near_duplicate_table.md), so the index samples bits instead (Hamming LSH):

- ``tables`` keys each take ``band_bits`` bits of the hash. The tables come in ``groups``:
  each group cuts the 63 informative bits (phash's top bit is its DC term, always 1, and is
  never keyed) into ``bands_per_group`` disjoint bands, in an order drawn from ``seed``;
  the few bits left over change from group to group.
- An insert writes its entry to one bucket per table (its own key: 42 UpdateItem, no walk).
- A lookup reads, per table, the query's key and, from threshold 3 up, the ``band_bits``
  keys one bit away (multi-probe): 42 x 20 = 840 keys, nine BatchGetItem requests. Every
  candidate is verified by its full Hamming distance, so precision is exact.
- Recall: a pair is found when, in some table, it differs in at most one keyed bit. That is
  certain up to distance 5 (in any group whose left-over bits the pair does not touch, a
  pigeonhole puts at most one differing bit in some band, and the left-over sets of the first
  ten groups are disjoint) and likely beyond: 0.999 at 10, 0.94 at 12 for uniformly random
  differences; on the real-photo transforms the recall at threshold 12 is that of an exact
  search minus one pair (bench/near_duplicate_table.md has the table the layout was chosen from).
- Cost at 10 M hashes: 19 entries per bucket on average, so a lookup reads about 16 k entries
  (about 0.7 MB); a bucket holds at most ``ENTRIES_PER_ITEM`` entries (an item under 4 KB),
  so no key ever takes a crowded region's writes, and no lookup reads more than
  840 x 64 entries even in a pathologically skewed tenant (bench/bench_dedupe.py).

Storage on the single table: one item per (tenant, table, key value), its entries in a
string set ``e`` of ``"<phash hex>:<image id>"``, added with UpdateItem ``ADD`` (atomic and
idempotent: concurrent process functions and S3 redeliveries never lose or double an entry).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

HASH_BITS = 64
HASH_HEX_LEN = HASH_BITS // 4
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
DEFAULT_THRESHOLD = 12  # from bench/near_duplicate_table.md: precision 1.0 on real photos
MAX_THRESHOLD = 15  # beyond, real photos give false positives and the sampled index misses more
MAX_LOOKUP_REQUESTS = 10
# A bucket's capacity: 64 entries of ~43 bytes keep an item under 4 KB (a read is half a read
# unit, a write at most 3 write units). 10 M random hashes put 19 in a bucket on average.
ENTRIES_PER_ITEM = 64
DC_BIT = HASH_BITS - 1  # phash's first bit: the DC coefficient is above the median, always 1

_M64 = (1 << 64) - 1


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


def _shuffled(items: list[int], seed: int) -> list[int]:
    """Fisher-Yates driven by splitmix64: the same order on every platform and Python version
    (the layout is part of the stored data: a different order is a different index)."""
    out = list(items)
    state = seed & _M64
    for i in range(len(out) - 1, 0, -1):
        state = (state + 0x9E3779B97F4A7C15) & _M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        j = (z ^ (z >> 31)) % (i + 1)
        out[i], out[j] = out[j], out[i]
    return out


@dataclass(frozen=True)
class BandLayout:
    """Which bits each table keys on, and how far a lookup probes around the query's keys.

    ``prefix`` names the index in its keys: a different layout is a different index (a new
    prefix, filled by a backfill: see imgdrop.dedupe.migrate).
    """

    groups: int = 14
    band_bits: int = 19
    seed: int = 0x1D5_0001
    prefix: str = "NX"
    skip_bits: tuple[int, ...] = (DC_BIT,)

    def __post_init__(self) -> None:
        if not 1 <= self.band_bits <= 32:
            raise ValueError("band_bits must be between 1 and 32")
        if self.groups < 1 or self.bands_per_group < 1:
            raise ValueError("a layout needs at least one group of one band")
        if not self.prefix.isalnum():
            raise ValueError("prefix must be alphanumeric")

    @property
    def keyed_bits(self) -> tuple[int, ...]:
        """The bits tables may key on (bit 0 is the least significant)."""
        return tuple(b for b in range(HASH_BITS) if b not in self.skip_bits)

    @property
    def bands_per_group(self) -> int:
        return len(self.keyed_bits) // self.band_bits

    @property
    def bands(self) -> int:
        """The number of tables (one bucket per table per stored hash)."""
        return self.groups * self.bands_per_group

    @cached_property
    def tables(self) -> tuple[tuple[int, ...], ...]:
        """Each table's bit positions, its key's bit 0 first."""
        keyed = _shuffled(list(self.keyed_bits), self.seed)
        spare = len(keyed) - self.bands_per_group * self.band_bits
        blocks = len(keyed) // spare if spare else 1
        out: list[tuple[int, ...]] = []
        for g in range(self.groups):
            start = (g % blocks) * spare
            left_over = set(keyed[start : start + spare])
            rest = _shuffled([b for b in keyed if b not in left_over], self.seed + 1 + g)
            for band in range(self.bands_per_group):
                out.append(tuple(rest[band * self.band_bits : (band + 1) * self.band_bits]))
        return tuple(out)

    @cached_property
    def table_masks(self) -> tuple[int, ...]:
        return tuple(sum(1 << b for b in bits) for bits in self.tables)

    @cached_property
    def byte_tables(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """Per table, per byte of the hash (byte 0 least significant): byte value -> key bits."""
        out = []
        for bits in self.tables:
            per_byte = []
            for byte in range(HASH_BITS // 8):
                row = []
                for v in range(256):
                    key = 0
                    for j, b in enumerate(bits):
                        if b // 8 == byte and v >> (b % 8) & 1:
                            key |= 1 << j
                    row.append(key)
                per_byte.append(tuple(row))
            out.append(tuple(per_byte))
        return tuple(out)

    def band_values(self, value: int) -> list[int]:
        """The key value of each table for one hash."""
        hash_bytes = [(value >> (8 * i)) & 0xFF for i in range(HASH_BITS // 8)]
        values = []
        for per_byte in self.byte_tables:
            key = 0
            for row, byte in zip(per_byte, hash_bytes, strict=True):
                key |= row[byte]
            values.append(key)
        return values

    def read_radius(self, threshold: int) -> int:
        """0 while a zero-radius probe is still exact (threshold <= exact_radius(0)), else 1."""
        return 0 if threshold <= self.exact_radius(0) else 1

    def exact_radius(self, read_radius: int) -> int:
        """Every pair within this distance shares a key at this read radius (the guarantee)."""
        spare = len(self.keyed_bits) - self.bands_per_group * self.band_bits
        disjoint = min(self.groups, len(self.keyed_bits) // spare) if spare else self.groups
        return min(self.bands_per_group * (read_radius + 1) - 1, disjoint - 1)

    def read_keys(self, threshold: int) -> int:
        return self.bands * len(neighbour_masks(self.band_bits, self.read_radius(threshold)))

    def max_threshold(self, max_requests: int = MAX_LOOKUP_REQUESTS) -> int:
        """The largest threshold (at most MAX_THRESHOLD) whose keys fit in ``max_requests``."""
        best = -1
        for t in range(MAX_THRESHOLD + 1):
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
    return f"T#{tenant}#{layout.prefix}{band:02d}#{value:0{width}x}"


def write_keys(tenant: str, phash: str, layout: BandLayout = DEFAULT_LAYOUT) -> list[str]:
    """The buckets a stored hash is written to: one per table."""
    check_tenant(tenant)
    return [band_key(tenant, t, v, layout) for t, v in enumerate(layout.band_values(parse_hash(phash)))]


def read_keys(tenant: str, phash: str, threshold: int, layout: BandLayout = DEFAULT_LAYOUT) -> list[str]:
    """The buckets a lookup within ``threshold`` reads: per table, the query's own key first,
    then the keys ``read_radius`` bits away (distinct keys, stable order)."""
    check_tenant(tenant)
    masks = neighbour_masks(layout.band_bits, layout.read_radius(threshold))
    keys = [
        band_key(tenant, t, value ^ m, layout)
        for t, value in enumerate(layout.band_values(parse_hash(phash)))
        for m in masks
    ]
    return list(dict.fromkeys(keys))
