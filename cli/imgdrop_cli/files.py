"""Local files: expanding paths and folders, content types, sha256."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# What a folder contributes; a file named explicitly is always taken and the API judges it.
IMAGE_TYPES: dict[str, str] = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".jfif": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
}

_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    content_type: str
    sha256: str
    mtime_ns: int = 0  # when it was described (the resume file keys on it)

    @property
    def filename(self) -> str:
        return self.path.name


def content_type_of(path: Path) -> str:
    known = IMAGE_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def is_image_like(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_TYPES


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders walked recursively for image-like files (hidden ones skipped).

    The order is stable (each folder's files sorted) and a file named twice appears once.
    Raises FileNotFoundError for a path that does not exist.
    """
    seen: set[Path] = set()
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(str(raw))
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and is_image_like(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            found = [path]
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: Path) -> LocalFile:
    stat = path.stat()
    return LocalFile(
        path=path,
        size=stat.st_size,
        content_type=content_type_of(path),
        sha256=sha256_of(path),
        mtime_ns=stat.st_mtime_ns,
    )
