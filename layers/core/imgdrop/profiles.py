"""Profile names and the purpose → profile rule, read without any imaging library.

The profile definitions live in profiles.json beside this module; a deployment overrides the
whole file with IMGDROP_PROFILES_FILE. The pipeline reads the same file for the variant specs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

BUILTIN_PROFILES_FILE = Path(__file__).with_name("profiles.json")

PURPOSE_PROFILES = {"product": "product", "account": "avatar", "user": "avatar", "category": "default"}


def profiles_file() -> Path:
    """The deployment's file (Settings' IMGDROP_PROFILES_FILE), else the built-in one."""
    from imgdrop.settings import get_settings

    override = get_settings().profiles_file
    return Path(override) if override else BUILTIN_PROFILES_FILE


@lru_cache(maxsize=4)
def _read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def profiles_document() -> dict[str, Any]:
    """The whole file: `profiles` and the deployment's `near_duplicate` policy."""
    return _read(str(profiles_file()))


def profile_definitions() -> dict[str, Any]:
    document = profiles_document()
    return document.get("profiles", document)


def profile_names() -> frozenset[str]:
    return frozenset(profile_definitions())


def profile_for(profile: str | None, purpose: str | None) -> str:
    if profile:
        return profile
    if purpose:
        return PURPOSE_PROFILES[purpose]
    return "default"
