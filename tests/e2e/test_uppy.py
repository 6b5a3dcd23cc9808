"""The Uppy 6 example (web/examples/uppy.html): a small file through imgdrop's presigned POST form,
a large one (>= 120 MiB) through S3 multipart, both signed by the example's one `signRequest`."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "web" / "examples" / "uppy.bundle.js"
MiB = 1024 * 1024
SETTLED = "#results li:is([data-status=ready], [data-status=failed], [data-status=error], [data-status=duplicate])"


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
        row = page.wait_for_selector(SETTLED, timeout=120_000)
        assert row.get_attribute("data-status") == "ready", row.inner_text()
        page.wait_for_function("document.querySelector('#results li img').naturalWidth > 0", timeout=30_000)
        assert page.evaluate("uppy.getFiles().every(f => f.progress.uploadComplete)")
        assert errors == []
    finally:
        context.close()


@pytest.fixture(scope="module")
def large_tiff(tmp_path_factory) -> Path:
    """A real photo (scikit-learn's china.jpg) upscaled to 6500x6500, as an uncompressed TIFF:
    127 MB, over 120 MiB and over the multipart threshold (100 MiB)."""
    import sklearn.datasets

    photo = Image.open(Path(sklearn.datasets.__file__).parent / "images" / "china.jpg")
    path = tmp_path_factory.mktemp("uppy-large") / "china.tif"
    photo.resize((6500, 6500), Image.Resampling.BILINEAR).save(path, "TIFF")
    assert path.stat().st_size >= 120 * MiB
    return path


@pytest.mark.large
def test_uppy_sends_a_large_file_as_s3_multipart_that_becomes_ready(local_stack, browser, large_tiff):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    parts: list[int] = []
    signs: list[dict] = []

    def on_request(request):
        if request.method == "PUT" and "partNumber=" in request.url:
            parts.append(int(parse_qs(urlsplit(request.url).query)["partNumber"][0]))
        if request.method == "POST" and request.url.endswith("/sign"):
            signs.append(request.post_data_json)

    page.on("request", on_request)
    try:
        page.goto(local_stack.api_url + "/examples/uppy.html")
        page.fill("#token", local_stack.token(tenant="uppy-" + uuid.uuid4().hex[:8]))

        # When a file over 100 MiB is added (Uppy 6 and imgdrop both switch to multipart there)
        page.set_input_files("input.uppy-Dashboard-input[type=file]:not([webkitdirectory])", str(large_tiff))

        # Then every S3 request went through imgdrop's sign endpoint and the image is ready
        row = page.wait_for_selector(SETTLED, timeout=400_000)
        assert row.get_attribute("data-status") == "ready", row.inner_text()
        size = large_tiff.stat().st_size
        part_size = max(8 * MiB, -(-size // 10000))
        assert sorted(parts) == list(range(1, -(-size // part_size) + 1))
        methods = [s["method"] for s in signs]
        assert methods[0] == "POST" and "upload_id" not in signs[0]  # create
        assert methods.count("PUT") == len(parts)
        assert signs[-1]["method"] == "POST" and signs[-1]["upload_id"]  # complete
        image_id = row.get_attribute("data-image-id")
        image = page.evaluate(
            "async (id) => (await fetch('/v1/images/' + id, {headers: {Authorization: 'Bearer ' + "
            "document.querySelector('#token').value}})).json()",
            image_id,
        )
        assert (image["width"], image["height"], image["bytes"]) == (6500, 6500, size)
        assert errors == []
    finally:
        context.close()
