"""Encodings: the Encoding tuple, what each format looks like decoded, and the GIF writer."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from sample_images import PIL_FORMAT, all_encodings, decode, encode, formats

from imgdrop.pipeline import EXT, FORMATS, OUTPUT_MIME, Encoding, parse_profiles, render


def test_the_encoding_tuple():
    e = Encoding(b"\xff\xd8\xff", "jpeg", 3, 2)
    assert e == (b"\xff\xd8\xff", "jpeg", 3, 2) and e._fields == ("data", "format", "width", "height")
    assert (e.ext, e.mime, e.bytes) == ("jpg", "image/jpeg", 3)
    assert "\\xff" not in repr(e)  # the bytes stay out of logs
    assert FORMATS == ("jpeg", "png", "gif", "webp", "avif")
    assert {f: (EXT[f], OUTPUT_MIME[f]) for f in FORMATS} == {
        "jpeg": ("jpg", "image/jpeg"),
        "png": ("png", "image/png"),
        "gif": ("gif", "image/gif"),
        "webp": ("webp", "image/webp"),
        "avif": ("avif", "image/avif"),
    }


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(decode(data).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("profile", ["default", "avatar"])
def test_every_format_shows_the_same_picture(china, profile):
    """Each encoding is within a few levels of the others: no format bought with a blur."""
    r = render(china, profile)
    for name, encodings in r.variants.items():
        reference = _rgb(encodings[0].data)
        for e in encodings[1:]:
            diff = np.abs(_rgb(e.data) - reference).mean()
            assert diff < 6, (name, e, diff)


def test_webp_and_avif_are_smaller_than_the_fallback_on_a_photo(china):
    r = render(china, "default")
    for name, encodings in r.variants.items():
        jpeg, *others = encodings
        assert all(e.bytes < jpeg.bytes for e in others), (name, encodings)


def test_every_variant_of_an_animation_is_a_gif_and_a_webp_of_every_frame():
    frames = [Image.new("RGB", (120, 80), (20, 40, 60)) for _ in range(5)]
    for i, frame in enumerate(frames):  # a small square moving across a still background
        frame.paste((250, 250, 0), (10 + 20 * i, 30, 30 + 20 * i, 50))
    data = encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=[40, 50, 60, 70, 80], loop=0
    )
    r = render(data, "default")
    assert r.frames == 5 and set(map(tuple, formats(r).values())) == {("gif", "webp")}
    gif = r.variants["large"][0]
    assert gif.format == "gif" and gif.data.count(b"\x21\xf9\x04") == 5  # five graphic control blocks
    for name, e in all_encodings(r):
        out = decode(e.data)
        assert (out.format, out.n_frames, out.size) == (PIL_FORMAT[e.format], 5, (e.width, e.height))
        durations = []
        for i in range(5):
            out.seek(i)
            got = np.asarray(out.convert("RGB"), dtype=np.int16)
            durations.append(out.info["duration"])
            want = np.asarray(
                ImageOps.fit(frames[i], (e.width, e.height), Image.Resampling.LANCZOS), dtype=np.int16
            )
            assert np.abs(got - want).mean() < 6, (name, e, i)  # the whole canvas, not just what changed
        assert durations == [40, 50, 60, 70, 80], (name, e)


def _strip_of(frames: list[Image.Image], delays: list[int], loop: int):
    import pyvips

    pixels = np.concatenate([np.asarray(f) for f in frames])
    img = pyvips.Image.new_from_array(pixels, interpretation="srgb").cast("uchar").copy()
    img.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    img.set_type(pyvips.GValue.array_int_type, "delay", delays)
    img.set_type(pyvips.GValue.gint_type, "loop", loop)
    return img


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_the_gif_writer_keeps_identical_frames_and_partial_changes(mode):
    from imgdrop.pipeline.encode import gif_bytes

    background = (20, 40, 60, 255) if mode == "RGB" else (0, 0, 0, 0)
    frames = []
    for x in (0, 10, 10, 30):  # the third frame repeats the second
        frame = Image.new(mode, (64, 32), background[: len(mode)])
        frame.paste((250, 250, 0, 255)[: len(mode)], (x, 8, x + 16, 24))
        frames.append(frame)
    out = decode(gif_bytes(_strip_of(frames, [30, 40, 50, 60], 2)))
    assert (out.n_frames, out.info.get("loop")) == (4, 1)  # two plays: one repeat
    for i, want in enumerate(frames):
        out.seek(i)
        assert out.info["duration"] == [30, 40, 50, 60][i]
        got = out.convert(mode)
        assert np.array_equal(np.asarray(got), np.asarray(want)), i  # flat colours: exact


def test_animated_outputs_keep_no_metadata():
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "green", "blue")]
    data = encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0, comment=b"GIF-SECRET"
    )
    assert b"GIF-SECRET" in data
    r = render(data, "avatar")
    for _, e in all_encodings(r):
        assert b"GIF-SECRET" not in e.data
        assert "comment" not in decode(e.data).info


def test_a_profile_can_drop_avif_or_webp_per_variant(china):
    doc = {
        "profiles": {
            "p": {
                "formats": ["webp", "avif"],
                "variants": [
                    {"name": "a", "mode": "fit", "width": 100, "formats": []},
                    {"name": "b", "mode": "fit", "width": 100, "formats": ["avif"]},
                    {"name": "c", "mode": "cover", "width": 2048, "height": 100},
                    {"name": "d", "mode": "cover", "width": 1024, "height": 100},
                ],
            }
        }
    }
    r = render(china, "p", profiles=parse_profiles(doc))
    assert formats(r) == {
        "a": ["jpeg"],
        "b": ["jpeg", "avif"],
        "c": ["jpeg", "webp"],  # the box's larger side decides: 2048
        "d": ["jpeg", "webp", "avif"],
    }
