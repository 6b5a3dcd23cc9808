"""When a near-duplicate is rejected, flagged or ignored: per profile, from the profiles file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from imgdrop.dedupe.bands import DEFAULT_LAYOUT, DEFAULT_THRESHOLD

Mode = Literal["reject", "flag", "off"]
MODES: tuple[str, ...] = ("reject", "flag", "off")

if TYPE_CHECKING:  # numpy is only needed for bulk loads (benchmarks, backfills)
    pass


# --- policy -------------------------------------------------------------------------------


class Verdict(NamedTuple):
    status: Literal["ready", "duplicate"]
    duplicate_of: str | None
    similar: list[tuple[str, int]]


@dataclass(frozen=True)
class NearDuplicatePolicy:
    """What a near duplicate does to a new image; per deployment, overridden per profile.

    ``reject``: the new image becomes ``duplicate`` of its nearest match; ``flag``: it is
    ``ready`` with a ``similar`` list; ``off``: no lookup.
    """

    threshold: int = DEFAULT_THRESHOLD
    mode: Mode = "flag"
    max_similar: int = 20

    def __post_init__(self) -> None:
        limit = DEFAULT_LAYOUT.max_threshold()
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise ValueError("near_duplicate.threshold must be an integer")
        if not 0 <= self.threshold <= limit:
            raise ValueError(f"near_duplicate.threshold must be between 0 and {limit}")
        if self.mode not in MODES:
            raise ValueError(f"near_duplicate.mode must be one of {', '.join(MODES)}")
        if self.max_similar < 1:
            raise ValueError("near_duplicate.max_similar must be >= 1")

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any] | None, *, base: NearDuplicatePolicy | None = None
    ) -> NearDuplicatePolicy:
        """``base`` (or the defaults) with the keys of ``data`` applied; unknown keys are errors."""
        base = base or cls()
        if not data:
            return base
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"profiles"})
        if unknown:
            raise ValueError(f"unknown near_duplicate settings: {', '.join(unknown)}")
        return replace(base, **{k: v for k, v in data.items() if k in known})

    @classmethod
    def for_profile(cls, config: Mapping[str, Any] | None, profile: str | None = None) -> NearDuplicatePolicy:
        """The deployment's settings, then the profile's overrides under ``profiles``.

        ``{"threshold": 12, "mode": "flag", "profiles": {"avatar": {"mode": "off"}}}``
        """
        deployment = cls.from_dict(config)
        overrides = ((config or {}).get("profiles") or {}).get(profile or "") if profile else None
        return cls.from_dict(overrides, base=deployment)

    def decide(self, matches: Sequence[tuple[str, int]]) -> Verdict:
        """The verdict for a new image given its matches (nearest first, as ``find`` answers).

        Only canonical images are indexed (a duplicate is never added), so ``duplicate_of``
        always names a canonical image.
        """
        kept = [(i, d) for i, d in matches if d <= self.threshold]
        if self.mode == "off" or not kept:
            return Verdict("ready", None, [])
        if self.mode == "reject":
            return Verdict("duplicate", kept[0][0], kept[: self.max_similar])
        return Verdict("ready", None, kept[: self.max_similar])


# --- configuration -----------------------------------------------------------------------


def policy_for(
    profile: str | None,
    document: Mapping[str, Any],
    *,
    threshold: int | None = None,
    mode: str | None = None,
) -> NearDuplicatePolicy:
    """The policy of a profile, from the profiles document.

    Precedence, lowest first: the defaults; the document's top-level ``near_duplicate``; the
    deployment's overrides (``threshold``, ``mode``: Settings' IMGDROP_NEAR_DUPLICATE_*); the
    profile's own ``near_duplicate`` (``profiles.<name>.near_duplicate``).
    """
    config: dict[str, Any] = dict(document.get("near_duplicate") or {})
    if threshold is not None:
        config["threshold"] = threshold
    if mode is not None:
        config["mode"] = mode
    config["profiles"] = {
        name: raw["near_duplicate"]
        for name, raw in (document.get("profiles") or {}).items()
        if isinstance(raw, dict) and raw.get("near_duplicate")
    }
    return NearDuplicatePolicy.for_profile(config, profile)
