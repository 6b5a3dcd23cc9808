"""The Uppy example (web/examples/uppy.html) uploads through imgdrop's presigned POSTs."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "web" / "examples" / "uppy.bundle.js"


@pytest.fixture(scope="module", autouse=True)
def uppy_bundle():
    if not BUNDLE.exists():
        pytest.skip("web/examples/uppy.bundle.js is missing: run web/build.sh")


def test_uppy_uploads_a_file_that_becomes_ready(local_stack, browser, tmp_path):
    # Given the Uppy example served by the local stack, with a token
    path = tmp_path / "uppy.png"
    Image.frombytes("RGB", (300, 200), os.urandom(300 * 200 * 3)).save(path)
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(local_stack.api_url + "/examples/uppy.html")
        page.fill("#token", local_stack.token(tenant="uppy-" + uuid.uuid4().hex[:8]))

        # When a file is added to the Dashboard (autoProceed starts the upload)
        page.set_input_files("input.uppy-Dashboard-input[type=file]:not([webkitdirectory])", str(path))

        # Then Uppy reports success and imgdrop's image settles to ready with a thumb
        row = page.wait_for_selector(
            "#results li[data-status=ready], #results li[data-status=failed], #results li[data-status=error]",
            timeout=120_000,
        )
        assert row.get_attribute("data-status") == "ready", row.inner_text()
        page.wait_for_function("document.querySelector('#results li img').naturalWidth > 0", timeout=30_000)
        assert page.evaluate("uppy.getFiles().every(f => f.progress.uploadComplete)")
        assert errors == []
    finally:
        context.close()
