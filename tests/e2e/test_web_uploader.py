"""The browser uploader page (web/) in headless Chromium against the local stack."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

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
