"""The browser uploader page (web/) in headless Chromium against the local stack: presigned POSTs,
multipart uploads with parallel parts, and resuming one after a reload."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SETTLE_MS = 120_000


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()


def make_images(folder: Path, count: int) -> list[Path]:
    """New noise images (never fetched), big enough for the progress bar to move."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = Image.frombytes("RGB", (640, 480), os.urandom(640 * 480 * 3))
        path = folder / f"web-{i}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def test_three_images_upload_with_progress_and_render_in_the_gallery(local_stack, page, tmp_path):
    # Given the page served by the local stack and a token pasted into it
    page.goto(local_stack.api_url + "/")
    page.fill("#token", local_stack.token(tenant="web-" + uuid.uuid4().hex[:8]))
    page.wait_for_function("document.querySelector('#health').textContent.includes('reachable')")
    files = make_images(tmp_path, 3)

    # When three images are picked with the file input
    page.set_input_files("#file-input", [str(f) for f in files])

    # Then each row's progress reaches 100% and its status settles to ready
    page.wait_for_function(
        """() => {
          const rows = [...document.querySelectorAll('#uploads .upload')];
          const done = new Set(['ready', 'duplicate', 'failed', 'error', 'expired', 'timeout']);
          return rows.length === 3 && rows.every(r => done.has(r.dataset.status));
        }""",
        timeout=SETTLE_MS,
    )
    rows = page.eval_on_selector_all(
        "#uploads .upload",
        "rows => rows.map(r => ({file: r.dataset.file, status: r.dataset.status, "
        "progress: r.dataset.progress, bar: r.querySelector('progress').value, "
        "text: r.querySelector('.status').textContent}))",
    )
    assert sorted(r["file"] for r in rows) == sorted(f.name for f in files)
    assert [r["status"] for r in rows] == ["ready"] * 3, rows
    assert all(r["progress"] == "100" and r["bar"] == 100 for r in rows), rows

    # And the gallery shows a card per image with its thumb loaded, dimensions and a placeholder
    page.wait_for_function(
        """() => {
          const imgs = [...document.querySelectorAll('#gallery .card img.thumb')];
          return imgs.length === 3 && imgs.every(i => i.complete && i.naturalWidth > 0);
        }""",
        timeout=30_000,
    )
    cards = page.eval_on_selector_all(
        "#gallery .card",
        "cards => cards.map(c => ({status: c.dataset.status, facts: c.querySelector('.facts').textContent, "
        "blur: c.querySelector('canvas.blur').dataset.painted || '', "
        "thumbW: c.querySelector('img.thumb').naturalWidth}))",
    )
    assert all(c["status"] == "ready" for c in cards), cards
    assert all("640 × 480" in c["facts"] for c in cards), cards
    assert all(c["thumbW"] > 0 for c in cards)
    assert page.errors == []


def test_a_repeat_is_a_duplicate_linking_to_the_existing_image(local_stack, page, tmp_path):
    page.goto(local_stack.api_url + "/")
    page.fill("#token", local_stack.token(tenant="web-" + uuid.uuid4().hex[:8]))
    (image,) = make_images(tmp_path, 1)
    page.set_input_files("#file-input", [str(image)])
    page.wait_for_selector("#uploads .upload[data-status=ready]", timeout=SETTLE_MS)

    page.set_input_files("#file-input", [str(image)])
    row = page.wait_for_selector("#uploads .upload[data-status=duplicate]", timeout=30_000)
    assert "uploaded before" in row.inner_text()
    link = row.query_selector("a")
    existing_id = page.get_attribute("#gallery .card", "data-image-id")
    assert link.get_attribute("href") == "#image-" + existing_id


def test_an_expired_token_is_explained_in_plain_words(local_stack, page, tmp_path):
    page.goto(local_stack.api_url + "/")
    page.fill("#token", local_stack.token(ttl=-60))
    assert "expired" in page.inner_text("#token-state")
    page.set_input_files("#file-input", [str(p) for p in make_images(tmp_path, 1)])
    banner = page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
    assert "expired" in banner.inner_text() and "token_expired" in banner.inner_text()


# ------------------------------------------------------------------ multipart and resume

MiB = 1024 * 1024
# The page's multipart threshold, lowered (the API's is 100 MiB): a smaller file asks "multipart": true.
LOW_THRESHOLD = "multipart_threshold=1048576"


def noise_png(folder: Path, name: str) -> Path:
    """A real ~20 MB image (noise does not compress): three parts of the API's advised 8 MiB."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.frombytes("RGB", (2600, 2600), os.urandom(2600 * 2600 * 3)).save(path, compress_level=1)
    assert 16 * MiB < path.stat().st_size < 24 * MiB
    return path


def part_puts(page) -> list[int]:
    """Record the part numbers the page PUTs to storage from now on."""
    seen: list[int] = []

    def on_request(request):
        if request.method == "PUT":
            query = parse_qs(urlsplit(request.url).query)
            if "partNumber" in query:
                seen.append(int(query["partNumber"][0]))

    page.on("request", on_request)
    return seen


def test_a_large_file_goes_multipart_with_parallel_parts_and_becomes_ready(local_stack, page, tmp_path):
    path = noise_png(tmp_path, "large.png")
    page.goto(local_stack.api_url + "/?" + LOW_THRESHOLD)
    page.fill("#token", local_stack.token(tenant="web-" + uuid.uuid4().hex[:8]))
    puts = part_puts(page)

    page.set_input_files("#file-input", [str(path)])

    row = page.wait_for_selector(
        "#uploads .upload:is([data-status=ready], [data-status=error], [data-status=failed])", timeout=SETTLE_MS
    )
    assert row.get_attribute("data-status") == "ready", row.inner_text()
    assert row.get_attribute("data-parts") == "3"
    assert row.get_attribute("data-progress") == "100"
    assert sorted(puts) == [1, 2, 3]
    assert page.evaluate("Object.keys(imgdrop.resumable()).length") == 0  # done: nothing to resume
    card = page.wait_for_selector("#gallery .card[data-status=ready]", timeout=30_000)
    assert "2600 × 2600" in card.inner_text()
    assert page.errors == []


def test_an_interrupted_upload_resumes_after_a_reload_with_only_the_missing_parts(local_stack, page, tmp_path):
    path = noise_png(tmp_path, "resume.png")
    tenant = "web-" + uuid.uuid4().hex[:8]
    # Given an upload stopped after its first part (as a tab closed then would)
    page.goto(local_stack.api_url + "/?" + LOW_THRESHOLD + "&parallel=1&stop_after_parts=1")
    page.fill("#token", local_stack.token(tenant=tenant))
    first = part_puts(page)
    page.set_input_files("#file-input", [str(path)])
    row = page.wait_for_selector(
        "#uploads .upload:is([data-status=interrupted], [data-status=error])", timeout=SETTLE_MS
    )
    assert row.get_attribute("data-status") == "interrupted", row.inner_text()
    assert first == [1]
    (record,) = page.evaluate("Object.values(imgdrop.resumable())")
    s3 = boto3.client("s3", endpoint_url=local_stack.aws_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"]
                  if s3.list_multipart_uploads(Bucket=b["Name"], Prefix=record["key"]).get("Uploads"))
    stored = s3.list_parts(Bucket=bucket, Key=record["key"], UploadId=record["upload_id"])["Parts"]
    assert [p["PartNumber"] for p in stored] == [1]

    # When the page is reloaded and the same file dropped again
    page.goto(local_stack.api_url + "/?" + LOW_THRESHOLD)
    again = part_puts(page)
    page.set_input_files("#file-input", [str(path)])

    # Then the stored part is listed, only the two others are sent, and the image is ready
    row = page.wait_for_selector(
        "#uploads .upload:is([data-status=ready], [data-status=error], [data-status=failed])", timeout=SETTLE_MS
    )
    assert row.get_attribute("data-status") == "ready", row.inner_text()
    assert row.get_attribute("data-resumed-parts") == "1"
    assert row.get_attribute("data-upload-id") == record["upload_id"]
    assert sorted(again) == [2, 3]
    card = page.wait_for_selector(f"#gallery .card[data-image-id='{record['image_id']}']", timeout=30_000)
    assert card.get_attribute("data-status") == "ready"
    assert page.evaluate("Object.keys(imgdrop.resumable()).length") == 0
    assert page.errors == []
