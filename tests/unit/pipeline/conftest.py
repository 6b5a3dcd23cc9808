"""Fixtures for the pipeline tests: real photos from scikit-learn and a generated corpus."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

_CORE = Path(__file__).resolve().parents[3] / "layers" / "core"
if str(_CORE) not in sys.path:
    sys.path.insert(0, str(_CORE))

from PIL import Image  # noqa: E402
from sample_images import encode  # noqa: E402


def _sklearn_image(name: str) -> Path:
    import sklearn

    return Path(sklearn.__file__).parent / "datasets" / "images" / name


@pytest.fixture(scope="session")
def china_path() -> Path:
    return _sklearn_image("china.jpg")


@pytest.fixture(scope="session")
def china(china_path) -> bytes:
    return china_path.read_bytes()


@pytest.fixture(scope="session")
def flower() -> bytes:
    return _sklearn_image("flower.jpg").read_bytes()


@pytest.fixture(scope="session")
def china_12mp(china) -> bytes:
    """china.jpg upscaled to 4000x2669 (12 MP), a large camera-sized JPEG."""
    return encode(
        Image.open(io.BytesIO(china)).resize((4000, 2669), Image.Resampling.BICUBIC), "JPEG", quality=90
    )
