"""Hostile and odd files through the pure pipeline: each ends as documented, none crashes or hangs.

The corpus and its table of outcomes (name → ready, or failed with a stable code) live in
tests/hostile_corpus.py, shared with the handler-level test tests/integration/test_hostile_uploads.py.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import pytest
from hostile_corpus import CORPUS, FAILED, READY

from imgdrop.errors import ImageRejected
from imgdrop.pipeline import load_profiles, render

# The process function's timeout is 120 s; a file that takes a sixth of it on a test machine
# is a hang in waiting.
BUDGET_SECONDS = 20
STABLE_CODES = {"file_error", "unsupported_format", "image_too_large"}
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render-budget")


def _render_within_budget(data: bytes, profile: str = "default"):
    """render() in a worker thread, so a hang fails the test instead of stalling the run."""

    def work():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns loudly about corrupt EXIF; that is the point
            return render(data, profile)

    future = _pool.submit(work)
    try:
        return future.result(timeout=BUDGET_SECONDS)
    except FutureTimeout:
        pytest.fail(f"render took more than {BUDGET_SECONDS} s")


def test_the_corpus_covers_the_hostile_kinds_of_issue_7():
    assert len(CORPUS) >= 30
    required = {
        "zero_bytes", "random_bytes", "truncated_jpeg", "truncated_png", "truncated_gif",
        "png_header_50000x50000", "png_real_101_megapixels", "gif_2000_frames", "svg_with_script",
        "html_declared_as_jpeg", "pdf", "polyglot_jpeg_zip", "polyglot_jpeg_html", "garbage_exif_offsets",
        "garbage_exif_counts", "exif_orientation_9", "aspect_1x10000", "aspect_10000x1", "one_pixel",
        "png_16bit", "cmyk_jpeg", "palette_png_transparency", "animated_webp", "heic", "avif", "tiff_multipage",
        "png_declared_as_jpeg",
    }
    assert required <= CORPUS.keys(), required - CORPUS.keys()
    for name, case in CORPUS.items():
        assert case.status in {READY, FAILED}, name
        assert (case.code in STABLE_CODES) if case.status == FAILED else case.code is None, name


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_file_ends_as_documented(name):
    case = CORPUS[name]
    data = case.build()
    if case.status == FAILED:
        with pytest.raises(ImageRejected) as refused:
            _render_within_budget(data)
        assert (refused.value.code, refused.value.status) == (case.code, 422)
        return
    rendition = _render_within_budget(data)
    expected = [spec.name for spec in load_profiles()["default"].variants]
    assert sorted(rendition.variants) == sorted(expected)
    for encoded in rendition.variants.values():
        assert encoded and all(e.data and e.width >= 1 and e.height >= 1 for e in encoded)
    assert len(rendition.sha256) == 64 and len(rendition.phash) == 16
    if case.check is not None:
        case.check(rendition)


@pytest.mark.parametrize("name", ["aspect_1x10000", "aspect_10000x1", "one_pixel", "animated_webp"])
@pytest.mark.parametrize("profile", ["flickr", "album", "avatar"])
def test_odd_geometry_renders_every_profile(name, profile):
    """Extreme aspect ratios and a single pixel through cover, fit and original variants."""
    rendition = _render_within_budget(CORPUS[name].build(), profile)
    expected = {spec.name for spec in load_profiles()[profile].variants}
    assert set(rendition.variants) == expected
    assert all(e.width >= 1 and e.height >= 1 for encoded in rendition.variants.values() for e in encoded)


def test_the_frame_limit_is_read_from_the_header_before_decoding():
    data = CORPUS["gif_2000_frames"].build()
    with pytest.raises(ImageRejected) as refused:
        render(data, "default", max_frames=1999)
    assert refused.value.code == "image_too_large"
    assert "1999 frames" in refused.value.title
