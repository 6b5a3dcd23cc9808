"""A multipart/form-data body streamed from disk, reporting how many bytes were sent.

S3's presigned POST needs a Content-Length (no chunked encoding), and the file part must
come last: the body is a preamble (the policy fields and the file part's headers), the
file itself read in blocks, then the closing boundary, with its length known up front.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

BLOCK = 64 * 1024


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFile:
    """A file-like, iterable body: `requests.post(url, data=body, headers=body.headers)`."""

    def __init__(
        self,
        fields: Mapping[str, str],
        path: Path,
        *,
        filename: str | None = None,
        content_type: str = "application/octet-stream",
        field_name: str = "file",
        on_progress: Callable[[int], None] | None = None,
    ):
        self.boundary = "imgdrop-" + secrets.token_hex(16)
        self.path = Path(path)
        self.on_progress = on_progress
        head = bytearray()
        for name, value in fields.items():
            head += f"--{self.boundary}\r\n".encode()
            head += f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            head += str(value).encode() + b"\r\n"
        head += f"--{self.boundary}\r\n".encode()
        head += (
            f'Content-Disposition: form-data; name="{_quote(field_name)}"; '
            f'filename="{_quote(filename or self.path.name)}"\r\n'
        ).encode()
        head += f"Content-Type: {content_type}\r\n\r\n".encode()
        self._head = bytes(head)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file_size = os.path.getsize(self.path)
        self.length = len(self._head) + self._file_size + len(self._tail)
        self.sent = 0
        self._fh: BinaryIO | None = None
        self._stage = 0  # 0 head, 1 file, 2 tail, 3 done

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.length),
        }

    def __len__(self) -> int:
        return self.length

    def _next_piece(self, size: int) -> bytes:
        if self._stage == 0:
            self._stage = 1
            self._fh = self.path.open("rb")
            return self._head
        if self._stage == 1:
            assert self._fh is not None  # type narrowing: stage 1 always has a file open  # nosec B101
            data = self._fh.read(size)
            if data:
                return data
            self._fh.close()
            self._fh = None
            self._stage = 2
        if self._stage == 2:
            self._stage = 3
            return self._tail
        return b""

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while piece := self._next_piece(BLOCK):
                chunks.append(piece)
            data = b"".join(chunks)
        else:
            data = self._next_piece(max(size, 1))
        if data:
            self.sent += len(data)
            if self.on_progress is not None:
                self.on_progress(len(data))
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(BLOCK):
            yield data

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
