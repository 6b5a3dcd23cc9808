"""A small HTTP client of the local stack for the end-to-end tests (what any client does)."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import requests
from PIL import Image

SETTLED = {"ready", "duplicate", "failed", "expired"}


def jpeg(
    width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 30, 30), **save: Any
) -> bytes:
    """A JPEG with some structure (a gradient and a block), so perceptual hashes differ by colour/layout."""
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, max(1, width // 16)):
        for y in range(height // 3):
            image.putpixel((x, y), (x * 255 // width, y * 255 // height, 128))
    image.paste((color[2], color[0], color[1]), (width // 4, height // 2, width // 2, height * 3 // 4))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


class Api:
    def __init__(self, base_url: str, token: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}/v1{path}", timeout=30, **kwargs)

    def presign(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.call("POST", "/uploads", json={"items": items})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    @staticmethod
    def send(upload: dict[str, Any], data: bytes, filename: str = "file") -> requests.Response:
        """The browser's multipart POST straight to S3, with the presigned fields first."""
        response = requests.post(
            upload["url"], data=upload["fields"], files={"file": (filename, data)}, timeout=30
        )
        assert response.status_code in (200, 201, 204), response.text
        return response

    def upload(self, data: bytes, content_type: str = "image/jpeg", **fields: Any) -> dict[str, Any]:
        item = {"filename": "photo", "content_type": content_type, "size": len(data), **fields}
        answer = self.presign([item])[0]
        if "upload" in answer:
            self.send(answer["upload"], data)
        return answer

    def image(self, image_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/images/{image_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, image_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            image = self.image(image_id)
            if image["status"] in SETTLED:
                return image
            if time.monotonic() > deadline:
                raise AssertionError(f"{image_id} still {image['status']} after {timeout} s")
            time.sleep(0.2)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
