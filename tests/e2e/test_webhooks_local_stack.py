"""Webhooks and reprocessing on the local stack, over HTTP (a stack of this module's own: its profiles
file is one the test changes, as a deployment would).

- A receiver on 127.0.0.1 that fails the first delivery gets the retry, with the same `webhook-id`,
  within 10 s; both are signed as Standard Webhooks specify (checked with `standardwebhooks`).
- A reprocess job over 50 images completes while uploads go on, and the images get the variants of
  the profile as it is now.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image
from standardwebhooks import Webhook
from webhook_receiver import Receiver

from api_client import Api

REPO = Path(__file__).resolve().parents[2]
ADMIN = "images:read images:write tags:write admin"
BEFORE = [{"name": "small", "mode": "fit", "width": 40, "height": 40},
          {"name": "thumb", "mode": "cover", "width": 24, "height": 24}]
AFTER = [*BEFORE, {"name": "mini", "mode": "cover", "width": 12, "height": 12}]


def write_profiles(path: Path, variants: list[dict]) -> None:
    document = json.loads((REPO / "layers/core/imgdrop/profiles.json").read_text())
    document["profiles"]["rp"] = {"formats": [], "variants": variants}  # the fallback only: quick
    path.write_text(json.dumps(document))


def _e2e_conftest():
    """tests/e2e/conftest.py under its own name (`import conftest` could find tests/conftest.py)."""
    spec = importlib.util.spec_from_file_location("imgdrop_e2e_conftest_webhooks", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    launch_stack = _e2e_conftest().launch_stack
    workdir = tmp_path_factory.mktemp("webhooks-stack")
    profiles = workdir / "profiles.json"
    write_profiles(profiles, BEFORE)
    started = launch_stack(workdir, IMGDROP_PROFILES_FILE=str(profiles), IMGDROP_QUEUE_CONCURRENCY="3")
    started.profiles = profiles
    try:
        yield started
    finally:
        assert started.stop() == 0, started.logs()[-3000:]


def png(n: int) -> bytes:
    """A small PNG of its own layout (random blocks seeded by n): no two are near duplicates."""
    blocks = random.Random(n).randbytes(8 * 6 * 3)
    image = Image.frombytes("RGB", (8, 6), blocks).resize((64, 48), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def png_uri(n: int) -> str:
    return "data:image/png;base64," + base64.b64encode(png(n)).decode()


def test_a_receiver_that_fails_the_first_delivery_gets_the_retry_with_the_same_webhook_id(stack):
    api = Api(stack.api_url, stack.token(tenant="e2e-hooks", scope=ADMIN))
    with Receiver(statuses=[500]) as receiver:
        created = api.call("POST", "/webhooks", json={"url": receiver.url, "events": ["image.ready"]})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        image = api.call("POST", "/images", json={"file": png_uri(1)})
        assert image.status_code == 201, image.text
        first, second = receiver.wait_for(2, timeout=40)[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.at - first.at < 10, f"the retry came {second.at - first.at:.1f} s later"
    for request in (first, second):
        body = Webhook(secret).verify(request.body, request.headers)
        assert (body["type"], body["data"]["id"], body["data"]["status"]) == (
            "image.ready", image.json()["id"], "ready")
    deadline = time.monotonic() + 10
    while True:
        listed = api.call("GET", f"/webhooks/{created.json()['id']}/deliveries").json()["items"]
        if listed and listed[0]["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (listed[0]["status"], listed[0]["attempts"]) == ("delivered", 2), listed
    assert [a["status_code"] for a in listed[0]["last_attempts"]] == [200, 500]


def test_a_reprocess_job_over_50_images_completes_while_uploads_go_on(stack):
    tenant = "e2e-reprocess"
    api = Api(stack.api_url, stack.token(tenant=tenant))
    admin = Api(stack.api_url, stack.token(tenant=tenant, scope=ADMIN))

    def upload(n: int) -> str:
        answer = api.upload(png(n), content_type="image/png", profile="rp")
        assert answer["status"] == "pending", answer
        return answer["id"]

    with ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(upload, range(100, 150)))
    for image_id in ids:
        settled = api.wait(image_id, timeout=60)
        assert settled["status"] == "ready", (settled["errors"], settled["duplicate_of"])
    before = api.image(ids[0])
    assert set(before["variants"]) == {"small", "thumb"}

    write_profiles(stack.profiles, AFTER)  # the profile changes in place
    started = time.monotonic()
    answer = admin.call("POST", "/reprocess", json={"profile": "rp"})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["status"], job["total"]) == ("running", 50)
    with ThreadPoolExecutor(2) as pool:  # uploads go on meanwhile
        during = list(pool.map(upload, range(200, 210)))
        readable = [api.image(i)["status"] for i in ids[::7]]  # images stay ready throughout
    assert set(readable) == {"ready"}
    while True:
        state = admin.call("GET", f"/jobs/{job['id']}").json()
        if state["status"] == "done" or time.monotonic() - started > 60:
            break
        time.sleep(0.5)
    assert state == {"id": job["id"], "status": "done", "total": 50, "done": 50, "failed": 0}, state
    for image_id in during:
        assert api.wait(image_id, timeout=30)["status"] == "ready"
    after = api.image(ids[0])
    assert set(after["variants"]) == {"small", "thumb", "mini"}
    # small and thumb come out byte for byte as before: their URLs stay and still serve (a URL
    # changes when its bytes change, and only then)
    for name in ("small", "thumb"):
        assert after["variants"][name] == before["variants"][name]
        assert requests.get(before["variants"][name]["url"], timeout=10).status_code == 200
    served = requests.get(after["variants"]["mini"]["url"], timeout=10)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
