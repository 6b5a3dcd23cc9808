"""The local stack end to end, over HTTP: `python -m imgdrop_local` with the real handlers."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import time
from pathlib import Path

import requests
from PIL import Image

TIMEOUT = 10


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(image).rectangle((4, 4, width // 2, height // 2), fill=(20, 180, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def wait_for_status(stack, image_id: str, headers: dict[str, str], *, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    image: dict = {}
    while time.monotonic() < deadline:
        response = requests.get(f"{stack.api_url}/v1/images/{image_id}", headers=headers, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        image = response.json()
        if image["status"] not in ("pending", "processing"):
            return image
        time.sleep(0.2)
    raise AssertionError(f"{image_id} still {image.get('status')} after {timeout} s:\n{stack.logs()[-3000:]}")


def test_health_answers_without_a_token(local_stack):
    response = requests.get(f"{local_stack.api_url}/v1/health", timeout=TIMEOUT)
    assert response.status_code == 200


def test_api_gateway_answers_for_unknown_routes_and_preflights(local_stack):
    response = requests.get(f"{local_stack.api_url}/v1/no-such-route", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})
    preflight = requests.options(f"{local_stack.api_url}/v1/uploads", timeout=TIMEOUT, headers={
        "Origin": "http://localhost:8080", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_a_protected_route_without_a_token_answers_401_token_missing(local_stack):
    response = requests.get(f"{local_stack.api_url}/v1/images", timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "token_missing"


def test_presigned_upload_is_processed_to_ready(local_stack):
    """presign -> multipart POST straight to S3 -> notification -> process -> finalize -> ready."""
    headers = local_stack.headers(tenant="e2e-ready")
    data = png()
    response = requests.post(f"{local_stack.api_url}/v1/uploads", headers=headers, timeout=TIMEOUT, json={
        "items": [{"filename": "square.png", "content_type": "image/png", "size": len(data)}]})
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["status"] == "pending", item
    upload = item["upload"]
    assert upload["url"].startswith(local_stack.aws_url)  # a browser can reach it: path-style on 127.0.0.1

    posted = requests.post(upload["url"], data=upload["fields"], timeout=TIMEOUT,
                           files={"file": ("square.png", data, "image/png")})
    assert posted.status_code in (200, 201, 204), posted.text

    image = wait_for_status(local_stack, item["id"], headers)
    assert image["status"] == "ready", (image.get("errors"), local_stack.logs()[-3000:])
    assert (image["width"], image["height"]) == (64, 48)
    assert image["variants"], image


def test_default_variants_download_at_their_documented_sizes(local_stack):
    """The default profile's variants, fetched through their presigned URLs: fit boxes never
    upscale, the thumb is cropped to 256×256, and every object is what the image object says."""
    headers = local_stack.headers(tenant="e2e-variants")
    buffer = io.BytesIO()
    Image.new("RGB", (1500, 1000), (30, 120, 200)).save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    response = requests.post(f"{local_stack.api_url}/v1/uploads", headers=headers, timeout=TIMEOUT, json={
        "items": [{"filename": "wide.jpg", "content_type": "image/jpeg", "size": len(data)}]})
    (item,) = response.json()["items"]
    posted = requests.post(item["upload"]["url"], data=item["upload"]["fields"], timeout=TIMEOUT,
                           files={"file": ("wide.jpg", data, "image/jpeg")})
    assert posted.status_code in (200, 201, 204), posted.text

    image = wait_for_status(local_stack, item["id"], headers)
    assert image["status"] == "ready", image.get("errors")
    expected = {"large": (1500, 1000), "medium": (1024, 683), "small": (512, 341), "thumb": (256, 256)}
    assert {name: (v["width"], v["height"]) for name, v in image["variants"].items()} == expected
    for name, variant in image["variants"].items():
        body = requests.get(variant["url"], timeout=TIMEOUT).content
        assert len(body) == variant["bytes"]
        assert Image.open(io.BytesIO(body)).size == expected[name]


def test_several_uploads_process_concurrently(local_stack):
    headers = local_stack.headers(tenant="e2e-many")
    files = [png(40 + i, 30 + i, (10 * i, 100, 200 - 10 * i)) for i in range(4)]
    response = requests.post(f"{local_stack.api_url}/v1/uploads", headers=headers, timeout=TIMEOUT, json={
        "items": [{"filename": f"{i}.png", "content_type": "image/png", "size": len(f)}
                  for i, f in enumerate(files)]})
    items = response.json()["items"]
    for item, data in zip(items, files, strict=True):
        upload = item["upload"]
        posted = requests.post(upload["url"], data=upload["fields"], timeout=TIMEOUT,
                               files={"file": ("x.png", data, "image/png")})
        assert posted.status_code in (200, 201, 204), posted.text
    statuses = {wait_for_status(local_stack, item["id"], headers)["status"] for item in items}
    assert statuses <= {"ready", "duplicate"} and "ready" in statuses


def test_a_broken_file_ends_failed(local_stack):
    """Bytes that are no image: process rejects them; finalize records the error."""
    headers = local_stack.headers(tenant="e2e-broken")
    data = b"this is not a png at all" * 10
    response = requests.post(f"{local_stack.api_url}/v1/uploads", headers=headers, timeout=TIMEOUT, json={
        "items": [{"filename": "broken.png", "content_type": "image/png", "size": len(data)}]})
    (item,) = response.json()["items"]
    upload = item["upload"]
    requests.post(upload["url"], data=upload["fields"], timeout=TIMEOUT,
                  files={"file": ("broken.png", data, "image/png")})
    image = wait_for_status(local_stack, item["id"], headers)
    assert image["status"] == "failed", image
    assert image["errors"], image


def _aws_process(stack) -> int:
    """The pid of the stack's AWS process (moto and the CDN), from its banner."""
    found = re.search(r"AWS endpoint .*in process (\d+);", stack.stdout_path.read_text())
    assert found, stack.stdout_path.read_text()
    return int(found.group(1))


def _gone(pid: int, within: float) -> bool:
    """Whether the process ended within `within` s (a zombie has: an orphan's reaper may be slow)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return False
    return True


def test_the_stack_stops_cleanly_on_sigterm(start_stack, tmp_path: Path):
    stack = start_stack(tmp_path)
    aws = _aws_process(stack)
    assert requests.get(f"{stack.api_url}/v1/health", timeout=TIMEOUT).status_code == 200
    started = time.monotonic()
    assert stack.stop() == 0, stack.logs()[-3000:]
    assert time.monotonic() - started < 10
    assert "stopping" in stack.logs()
    assert _gone(aws, within=1)


def test_the_aws_process_ends_when_the_stack_is_killed(start_stack, tmp_path: Path):
    """SIGKILL leaves the stack no time to stop anything: its AWS process sees its stdin close
    and ends itself, freeing its ports, instead of serving on as an orphan."""
    stack = start_stack(tmp_path)
    aws = _aws_process(stack)
    assert _listening(stack.aws_url)
    stack.process.kill()
    stack.process.wait(TIMEOUT)
    assert _gone(aws, within=10), stack.logs()[-3000:]
    assert not _listening(stack.aws_url)


def test_the_stack_stops_with_an_error_when_its_aws_process_dies(start_stack, tmp_path: Path):
    stack = start_stack(tmp_path)
    aws = _aws_process(stack)
    os.kill(aws, signal.SIGKILL)
    assert stack.process.wait(TIMEOUT) == 1
    assert "the AWS process (moto, the CDN) exited with -9: stopping the stack" in stack.logs()
    assert not _listening(stack.api_url)
