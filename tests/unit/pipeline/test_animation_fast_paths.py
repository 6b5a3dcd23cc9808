"""The animated fast paths: a GIF variant of the source's own size is the source's frames
copied (metadata dropped), and smaller variants are shrunk as one strip, frame for frame as
one resize of each frame would make them."""

import io

import numpy as np
import pytest
from PIL import Image, ImageSequence

from imgdrop.pipeline import render


def _gif(size=(60, 40), frames=5, comment=b"GIF-SECRET", loop=0):
    rng = np.random.default_rng(1)
    images = [
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(frames)
    ]
    images = [im.convert("P", palette=Image.Palette.ADAPTIVE) for im in images]
    buf = io.BytesIO()
    images[0].save(
        buf,
        "GIF",
        save_all=True,
        append_images=images[1:],
        duration=[40, 60, 80, 100, 120][:frames],
        loop=loop,
        comment=comment,
    )
    return buf.getvalue()


def test_a_variant_of_the_source_size_is_the_source_frames_without_metadata():
    data = _gif()
    r = render(data, "default")
    large = r.variants["large"][0]
    assert (large.format, large.width, large.height) == ("gif", 60, 40)
    assert b"GIF-SECRET" not in large.data
    out, src = Image.open(io.BytesIO(large.data)), Image.open(io.BytesIO(data))
    assert out.n_frames == src.n_frames == 5 and out.info.get("loop") == 0
    for a, b in zip(ImageSequence.Iterator(src), ImageSequence.Iterator(out), strict=True):
        assert a.info["duration"] == b.info["duration"]
        assert np.array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))


def test_a_damaged_or_odd_gif_is_encoded_not_copied():
    from imgdrop.pipeline.encode import gif_copy

    data = _gif()
    assert gif_copy(data, 60, 40, 5, 0) is not None
    assert gif_copy(data, 61, 40, 5, 0) is None  # another canvas
    assert gif_copy(data, 60, 40, 4, 0) is None  # another frame count
    assert gif_copy(data[:-40], 60, 40, 5, 0) is None  # short


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(480, 320), (320, 480), (333, 517), (90, 1000)])
def test_the_strip_is_shrunk_as_each_frame_would_be(mode, size):
    """Every variant has its size; where the frames can be padded (a shrink under 4x whose
    padding comes out whole) each frame is exactly what a resize of it alone makes."""
    import pyvips

    from imgdrop.pipeline import engine
    from imgdrop.pipeline.geometry import plan
    from imgdrop.profiles import load_profiles

    w, h = size
    rng = np.random.default_rng(2)
    pages = 6
    pixels = rng.integers(0, 255, (h * pages, w, len(mode)), dtype=np.uint8)
    if mode == "RGBA":
        pixels[..., 3] = 255 - (np.arange(h * pages) % h * 200 // h)[:, None].astype(np.uint8)
    strip = pyvips.Image.new_from_array(pixels, interpretation="srgb").cast("uchar").copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", h)
    # (320, 480): the cover crops take rows from the middle of each frame, and are padded
    exact = {(480, 320): {"thumb", "m", "l"}, (320, 480): {"thumb", "m", "l"}, (333, 517): set(),
             (90, 1000): {"small"}}[size]
    for spec in load_profiles()["default"].variants + load_profiles()["avatar"].variants:
        p = plan(spec, w, h)
        a = engine._animated_from_strip(strip, w, h, p, w, h)
        assert (a.width, a.height, a.bands) == (p.width, p.height * pages, len(mode)), spec.name
        if spec.name in exact:
            b = engine._animated_frame_by_frame(strip, w, h, p, w, h)
            assert (a - b).abs().max() == 0, spec.name


def test_frames_cut_in_memory_keep_their_pixels_alive_through_copy_memory():
    """The strip path's frames are numpy arrays that libvips only points at (_from_frames).
    pyvips' `copy_memory()` of an image already in memory answers that same image without
    pyvips' reference to the array, which was then freed under it: wrong pixels or a segfault
    within a few hundred renders. In a subprocess, so that a regression fails this test alone."""
    import subprocess
    import sys
    from pathlib import Path

    code = """
import gc
import numpy as np
from imgdrop.pipeline import engine
pixels = np.random.default_rng(2).integers(0, 255, (6, 320, 480, 3), dtype=np.uint8)
for _ in range(150):
    got = engine._from_frames(pixels.copy()).copy_memory()
    gc.collect()
    np.full((6, 320, 480, 3), 7, dtype=np.uint8)  # reuses the freed memory, if any was
    seen = np.ndarray(buffer=got.write_to_memory(), dtype=np.uint8, shape=(6, 320, 480, 3))
    assert (seen == pixels).all()
print("ok")
"""
    core = Path(__file__).resolve().parents[3] / "layers" / "core"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(core), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
