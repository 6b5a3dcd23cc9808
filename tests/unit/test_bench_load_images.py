"""The load benchmark's uploads are what it says: no exact or near repeat among them.

Its first images differed only in colour, which perceptual hashes do not see: each upload had
84 near-duplicates among 200 on average, and the run measured dedupe's answers to a burst of
look-alikes rather than the pipeline."""

from __future__ import annotations

import hashlib
import io
import itertools
import sys
from pathlib import Path

import imagehash
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from bench_load import distinct_jpeg  # noqa: E402

from imgdrop.dedupe.bands import MAX_THRESHOLD  # noqa: E402


def test_two_hundred_uploads_are_farther_apart_than_any_threshold_allows():
    images = [distinct_jpeg(index) for index in range(200)]
    assert len({hashlib.sha256(data).hexdigest() for data in images}) == 200
    hashes = [imagehash.phash(Image.open(io.BytesIO(data))) for data in images]
    closest = min(a - b for a, b in itertools.combinations(hashes, 2))
    assert closest > MAX_THRESHOLD


def test_the_same_index_gives_the_same_image():
    assert distinct_jpeg(7) == distinct_jpeg(7)
