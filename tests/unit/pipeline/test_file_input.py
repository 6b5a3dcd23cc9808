"""render() of a file: the same Rendition as of its bytes, the same refusals, limits from the header.

Large uploads are streamed to the process function's /tmp and rendered from there: libvips reads
the file through a file source, Pillow opens it lazily, the sniffers look at its mapped pages.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sample_images import encode, quadrants
from test_rejects import ACCEPTED, _png_header, _truncations

from imgdrop.errors import ImageRejected
from imgdrop.pipeline import render


def _summary(r) -> dict:
    return r.summary()


def _write(tmp_path: Path, data: bytes, name: str = "source") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_a_file_renders_as_its_bytes(name, tmp_path):
    data = ACCEPTED[name]()
    path = _write(tmp_path, data)
    from_bytes, from_file = render(data, "avatar"), render(path, "avatar")
    assert _summary(from_file) == _summary(from_bytes)
    for variant, encodings in from_bytes.variants.items():
        assert [e.data for e in from_file.variants[variant]] == [e.data for e in encodings]
    assert render(str(path), "avatar").sha256 == hashlib.sha256(data).hexdigest()  # a str path too


def test_a_photo_from_a_file_gives_every_variant(china, tmp_path):
    r = render(_write(tmp_path, china), "default")
    assert (r.width, r.height, r.format) == (640, 427, "jpeg")
    assert set(r.variants) == {"large", "medium", "small", "thumb"}
    assert r.sha256 == hashlib.sha256(china).hexdigest()


def test_a_given_sha256_is_trusted(china, tmp_path):
    """The process function hashes while it streams the upload to disk: no second read."""
    assert render(_write(tmp_path, china), "avatar", sha256="ab" * 32).sha256 == "ab" * 32


@pytest.mark.parametrize("name", ["jpeg", "png", "animated-gif", "tiff", "heic"])
def test_a_truncated_file_is_a_file_error(name, tmp_path):
    data = ACCEPTED[name]()
    for i, cut in enumerate(_truncations(data)):
        with pytest.raises(ImageRejected) as err:
            render(_write(tmp_path, cut, f"cut{i}"), "avatar")
        assert err.value.code == "file_error", (name, len(cut))


def test_an_empty_file_and_other_files_are_refused_with_the_same_codes(tmp_path):
    cases = {
        "empty": (b"", "file_error"),
        "text": (b"not an image\n" * 40, "file_error"),
        "svg": (b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", "unsupported_format"),
        "pdf": (b"%PDF-1.7\n" + b"\0" * 100, "unsupported_format"),
    }
    for name, (data, code) in cases.items():
        with pytest.raises(ImageRejected) as err:
            render(_write(tmp_path, data, name), "default")
        assert err.value.code == code, name


def test_the_pixel_limit_is_decided_from_the_header(tmp_path):
    # 60000 x 60000 claimed by a 70-byte file: refused before any pixel is decoded
    with pytest.raises(ImageRejected) as err:
        render(_write(tmp_path, _png_header(60000, 60000)), "default")
    assert err.value.code == "image_too_large"
    data = encode(quadrants(300, 200), "PNG")
    with pytest.raises(ImageRejected) as err:
        render(_write(tmp_path, data, "small"), "default", max_pixels=300 * 200 - 1)
    assert err.value.code == "image_too_large"


def test_a_path_with_brackets_and_commas_is_read_as_a_file_name(tmp_path):
    """libvips reads load options from `name[...]` in a file name: a file source has none."""
    data = encode(quadrants(120, 80), "PNG")
    assert render(_write(tmp_path, data, "scan[1],final.png"), "avatar").width == 120


def test_no_file_handle_is_left_open(tmp_path):
    import os

    data = ACCEPTED["tiff"]()
    path = _write(tmp_path, data)
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        pytest.skip("no /proc")
    before = len(os.listdir(fd_dir))
    for _ in range(5):
        render(path, "avatar")
    assert len(os.listdir(fd_dir)) <= before + 1
