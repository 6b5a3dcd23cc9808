"""phash/dhash equal imagehash bit for bit on real photos; the numpy DCT equals scipy's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imagehash
import numpy as np
import pytest
import scipy.fftpack
from PIL import Image, ImageOps
from sample_images import decode, encode

from imgdrop.pipeline import render
from imgdrop.pipeline.analysis import _dct_matrix, dhash, phash

# Pinned values (imagehash 4.3.2) so a change of imagehash or of the pipeline shows up.
GOLDEN = {
    "china.jpg": ("9db8c2c7445dbb24", "bfbf3a383c3870e0"),
}


def _reference(data: bytes) -> tuple[str, str]:
    img = ImageOps.exif_transpose(decode(data))
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    return str(imagehash.phash(img)), str(imagehash.dhash(img))


def test_numpy_dct_equals_scipy_dct_type_2():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 256, size=(32, 32)).astype(np.float64)
        c = _dct_matrix(32)
        ours = c @ x @ c.T
        theirs = scipy.fftpack.dct(scipy.fftpack.dct(x, axis=0), axis=1)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("fixture", ["china", "flower"])
@pytest.mark.parametrize("profile", ["default", "avatar", "flickr"])
def test_render_hashes_equal_imagehash_on_photos(request, fixture, profile):
    data = request.getfixturevalue(fixture)
    r = render(data, profile)
    assert (r.phash, r.dhash) == _reference(data)
    assert len(r.phash) == len(r.dhash) == 16


def test_golden_hashes(china):
    r = render(china, "default")
    assert (r.phash, r.dhash) == GOLDEN["china.jpg"]


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_function_level_equality_on_transformed_photos(china, flower, angle):
    for data in (china, flower):
        img = decode(data).rotate(angle, expand=True)
        gray = img.convert("L")
        assert phash(gray) == str(imagehash.phash(img))
        assert dhash(gray) == str(imagehash.dhash(img))


def test_oriented_hash_is_of_the_displayed_image(china):
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(decode(china), "JPEG", quality=95, exif=exif.tobytes())
    r = render(data, "default")
    assert (r.phash, r.dhash) == _reference(data)
    assert r.phash != render(china, "default").phash


def test_alpha_is_flattened_on_white(china):
    img = decode(china).convert("RGBA")
    img.paste((0, 0, 0, 0), (0, 0, 200, 200))
    data = encode(img, "PNG")
    r = render(data, "default")
    assert r.has_alpha
    assert (r.phash, r.dhash) == _reference(data)


def test_large_images_hash_from_a_small_rendition_within_a_bit(china_12mp, flower):
    big_flower = encode(decode(flower).resize((4000, 2669), Image.Resampling.BICUBIC), "JPEG", quality=90)
    for data in (china_12mp, big_flower):
        r = render(data, "default")
        ref_p, ref_d = _reference(data)
        assert imagehash.hex_to_hash(r.phash) - imagehash.hex_to_hash(ref_p) <= 2
        assert imagehash.hex_to_hash(r.dhash) - imagehash.hex_to_hash(ref_d) <= 2


def test_pipeline_never_imports_scipy_imagehash_or_blurhash(china):
    # none is in the imaging layer: the tests hold them as references
    core = Path(__file__).resolve().parents[3] / "layers" / "core"
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from imgdrop.pipeline import render\n"
        "data = open(%r, 'rb').read()\n"
        "r = render(data, 'default')\n"
        "assert 'scipy' not in sys.modules, 'scipy imported'\n"
        "assert 'imagehash' not in sys.modules\n"
        "assert 'blurhash' not in sys.modules\n"
        "print(r.phash)\n"
    )
    import sklearn

    photo = Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg"
    out = subprocess.run(
        [sys.executable, "-c", code % (str(core), str(photo))], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == GOLDEN["china.jpg"][0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_blurhash_and_colors(china):
    import blurhash

    r = render(china, "default")
    assert len(r.blurhash) == 28  # 4x3 components
    assert blurhash.components(r.blurhash) == (4, 3)
    # the hash's first component is the average colour: decoded, it matches the photo's
    decoded = np.asarray(blurhash.decode(r.blurhash, 16, 16), dtype=float).reshape(-1, 3).mean(axis=0)
    average = np.asarray(decode(china).convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    assert np.abs(decoded - average).max() < 25
    assert 1 <= len(r.colors) <= 8
    assert sum(c["percent"] for c in r.colors) == pytest.approx(100, abs=0.5)
    assert all(c["hex"].startswith("#") and len(c["hex"]) == 7 for c in r.colors)
    assert r.colors == sorted(r.colors, key=lambda c: -c["percent"])


def test_colors_of_a_two_colour_image():
    img = Image.new("RGB", (100, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 100, 25))
    r = render(encode(img, "PNG"), "avatar")
    by_hex = {c["hex"]: c["percent"] for c in r.colors}
    assert by_hex == {"#ff0000": pytest.approx(75, abs=2), "#0000ff": pytest.approx(25, abs=2)}


def test_sha256_is_of_the_input(china):
    import hashlib

    assert render(china, "avatar").sha256 == hashlib.sha256(china).hexdigest()


def test_blurhash_of_equals_the_reference_encoder():
    """The numpy encoder gives the `blurhash` package's string (Wolt's reference, ported) on
    photos, noise, smooth gradients, flat colours and odd sizes down to 1 px."""
    import blurhash
    from sklearn.datasets import load_sample_images

    from imgdrop.pipeline.analysis import blurhash_of

    rng = np.random.default_rng(7)
    images = [Image.fromarray(photo) for photo in load_sample_images().images]
    for _ in range(40):
        width, height = (int(n) for n in rng.integers(1, 70, 2))
        images.append(Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)))
        grid = Image.frombytes("RGB", (4, 3), rng.integers(0, 256, 36, dtype=np.uint8).tobytes())
        images.append(grid.resize((width + 3, height + 3), Image.Resampling.BICUBIC))
    images += [Image.new("RGB", (40, 30), colour) for colour in ((0, 0, 0), (255, 255, 255), (1, 2, 3))]
    for image in images:
        small = image.copy()
        small.thumbnail((32, 32), Image.Resampling.BILINEAR)
        for x, y in ((4, 3), (1, 1), (9, 9)):
            expected = blurhash.encode(np.asarray(small.convert("RGB")), components_x=x, components_y=y)
            assert blurhash_of(image, x, y) == expected, (image.size, x, y)


def test_blurhash_of_a_solid_colour_decodes_to_that_colour():
    import blurhash

    from imgdrop.pipeline.analysis import blurhash_of

    for colour in ((200, 30, 30), (0, 0, 0), (255, 255, 255)):
        decoded = np.asarray(blurhash.decode(blurhash_of(Image.new("RGB", (40, 30), colour)), 4, 4), dtype=float)
        assert np.abs(decoded.reshape(-1, 3).mean(axis=0) - colour).max() <= 6
