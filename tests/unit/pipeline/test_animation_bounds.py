"""Animations are bounded in total: frames x canvas pixels, decided from the header before decoding.

Per-frame limits (max_pixels, max_frames) let a 0.5 MB GIF of 120 frames of 2048x2048 decode
to 2 GB, and a 3 MB one of 40 frames of 10000x10000 run for minutes. ``max_animation_pixels``
bounds frames x width x height, and the canvas to an eighth of it (the animated WebP encoder's
working memory grows with the frame); over either the image is refused ``image_too_large``
from its header, before a single frame is decoded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sample_images import all_encodings, decode, flat_gif, sizes, tiny_frame_gif, tiny_frame_webp

from imgdrop.errors import ImageRejected
from imgdrop.pipeline import render
from imgdrop.pipeline.engine import DEFAULT_MAX_ANIMATION_PIXELS

CORE = Path(__file__).resolve().parents[3] / "layers" / "core"

BOMBS = {
    # the adversarial review's two: 0.5 MB and 3 MB files, 2 GB and 16 GB of decoded RGBA frames
    "gif-2048x2048x120": lambda: flat_gif(2048, 2048, 120),
    "gif-10000x10000x40": lambda: flat_gif(10000, 10000, 40),
    # a few bytes a frame: 1x1 frames on a canvas that every frame repaints in full
    "gif-1x1-frames-on-10000x10000x40": lambda: tiny_frame_gif(10000, 10000, 40),
    "webp-1x1-frames-on-10000x10000x40": lambda: tiny_frame_webp(10000, 10000, 40),
    # few frames, but each one over max_animation_pixels / 8 (2 x 25 M pixels)
    "gif-5000x5000x2": lambda: flat_gif(5000, 5000, 2),
    "webp-1x1-frames-on-5000x5000x2": lambda: tiny_frame_webp(5000, 5000, 2),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Every way the pipeline turns compressed frames into pixels fails the test if called."""
    import pyvips
    from PIL import ImageFile

    from imgdrop.pipeline import engine

    def decoded(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    engine._pyvips()  # the real module is loaded (and configured) before its methods are patched
    for name in ("thumbnail_buffer", "copy_memory", "write_to_memory", "webpsave_buffer", "avg", "min"):
        monkeypatch.setattr(pyvips.Image, name, decoded)
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    for name in ("_thumb", "_decode_heic"):
        monkeypatch.setattr(engine, name, decoded)


def _refusal(data: bytes, **kw) -> ImageRejected:
    with pytest.raises(ImageRejected) as err:
        render(data, "default", **kw)
    return err.value


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_animation_bombs_are_refused_before_any_frame_is_decoded(name, no_decoding):
    data = BOMBS[name]()
    assert len(data) < 4_000_000  # within every upload limit: only the decoded size is a bomb
    refused = _refusal(data)
    assert (refused.code, refused.status) == ("image_too_large", 422)
    assert "frames" in refused.title and "pixels" in refused.title


def test_the_libvips_header_counts_too(monkeypatch, no_decoding):
    """libvips decodes what its own header reads: a bigger canvas or more frames than Pillow's count."""
    import dataclasses

    from imgdrop.pipeline import engine

    probe = engine._probe_vips
    monkeypatch.setattr(engine, "_probe_vips", lambda data: dataclasses.replace(probe(data), pages=10**6))
    assert _refusal(flat_gif(64, 48, 10)).code == "image_too_large"


def test_the_message_says_what_is_too_large():
    title = _refusal(flat_gif(2048, 2048, 120)).title
    assert "120 frames of 2048x2048" in title, title
    assert f"{DEFAULT_MAX_ANIMATION_PIXELS:,}" in title, title
    title = _refusal(tiny_frame_gif(5000, 5000, 2)).title
    assert "5000x5000 is 25,000,000 pixels a frame" in title, title
    assert f"{DEFAULT_MAX_ANIMATION_PIXELS // 8:,}" in title, title


def test_refusing_a_bomb_costs_a_small_fraction_of_its_decoded_size(tmp_path):
    """Peak RSS of a fresh interpreter refusing the 2048x2048x120 GIF (2 GB of RGBA frames)."""
    path = tmp_path / "bomb.gif"
    path.write_bytes(flat_gif(2048, 2048, 120))
    decoded_mb = 2048 * 2048 * 120 * 4 / 2**20
    out = _peak_rss(path)
    assert out["outcome"] == "image_too_large"
    assert out["rss_mb"] < decoded_mb / 8, out


def _peak_rss(path: Path, profile: str = "default", **kw) -> dict:
    """Render in a fresh interpreter: the outcome and its peak RSS (VmHWM: ru_maxrss would carry
    the pytest worker's own peak over fork and exec)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status")
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(CORE)!r})\n"
        "from imgdrop.errors import ImageRejected\n"
        "from imgdrop.pipeline import render\n"
        "try:\n"
        f"    r = render(open(sys.argv[1], 'rb').read(), {profile!r}, **json.loads(sys.argv[2]))\n"
        "    outcome = {k: [v[0].width, v[0].height] for k, v in r.variants.items()}\n"
        "except ImageRejected as exc:\n"
        "    outcome = exc.code\n"
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
        "rss = int(hwm.split()[1]) / 1024\n"
        "print(json.dumps({'outcome': outcome, 'rss_mb': rss}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), json.dumps(kw)], capture_output=True, text=True, check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_budget_is_a_parameter():
    data = flat_gif(64, 48, 10)
    assert _refusal(data, max_animation_pixels=64 * 48 * 10 - 1).code == "image_too_large"
    r = render(data, "avatar", max_animation_pixels=64 * 48 * 10)
    assert (r.animated, r.frames) == (True, 10)
    # two frames: within the total, but a canvas is at most an eighth of the budget
    data = flat_gif(64, 48, 2)
    assert _refusal(data, max_animation_pixels=64 * 48 * 8 - 1).code == "image_too_large"
    assert render(data, "avatar", max_animation_pixels=64 * 48 * 8).frames == 2


def test_the_budget_is_a_setting_of_the_process_function():
    from imgdrop.settings import Settings

    env = {"TABLE_NAME": "t", "BUCKET_NAME": "b"}
    assert Settings.from_environment(env).max_animation_pixels == DEFAULT_MAX_ANIMATION_PIXELS
    assert Settings.from_environment(env | {"MAX_ANIMATION_PIXELS": "5000"}).max_animation_pixels == 5000


def test_stills_and_first_page_formats_are_not_counted_against_it():
    """A still has one frame; a multi-page TIFF renders its first page only."""
    from PIL import Image
    from sample_images import encode, quadrants

    still = encode(quadrants(200, 100), "PNG")
    assert render(still, "avatar", max_animation_pixels=200 * 100).frames == 1
    pages = encode(quadrants(96, 64), "TIFF", save_all=True, append_images=[Image.new("RGB", (96, 64))] * 3)
    assert render(pages, "avatar", max_animation_pixels=96 * 64).frames == 4


def test_a_10000x10000_still_gif_is_not_an_animation():
    """One frame within max_pixels: a still, whatever the budget's per-frame cap."""
    r = render(flat_gif(10000, 10000, 1), "avatar")
    assert (r.animated, r.frames, r.width, r.height) == (False, 1, 10000, 10000)
    assert [e.format for e in r.variants["l"]] == ["jpeg", "webp", "avif"]


def _frames_of(data: bytes) -> tuple[int, tuple[int, int]]:
    img = decode(data)
    return img.n_frames, img.size


@pytest.mark.parametrize(
    ("width", "height", "frames"),
    [(480, 270, 200), (1000, 1000, 24)],
    ids=["480x270x200", "1000x1000x24"],
)
def test_ordinary_animations_stay_animated(width, height, frames):
    assert frames * width * height < DEFAULT_MAX_ANIMATION_PIXELS
    r = render(flat_gif(width, height, frames), "default")
    assert (r.animated, r.frames, r.width, r.height) == (True, frames, width, height)
    for encodings in r.variants.values():
        assert [e.format for e in encodings] == ["gif", "webp"]
        for e in encodings:
            assert _frames_of(e.data) == (frames, (e.width, e.height))


def _banded_frames(width: int, height: int, frames: int) -> list:
    """Frames of one colour each, between a black band (top 100 rows) and a white one (bottom)."""
    from PIL import Image

    out = []
    for i in range(frames):
        img = Image.new("RGB", (width, height), ((i * 67) % 256, 200 - i * 10, (i * 29 + 60) % 256))
        img.paste((0, 0, 0), (0, 0, width, 100))
        img.paste((255, 255, 255), (0, height - 100, width, height))
        out.append(img)
    return out


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_an_animation_at_the_budget_renders_every_variant_animated(fmt, monkeypatch):
    """Exactly at the budget, every variant streamed from the source (the big-animation path).

    Portrait frames: thumb's cover crop keeps the middle 300x300 of each frame (rows 100-400),
    so its top and bottom rows are the frame's colour, not the black and white bands.
    """
    from sample_images import encode

    monkeypatch.setattr("imgdrop.pipeline.engine.ANIMATION_DECODE_PIXELS", 0)
    width, height, count = 300, 500, 12
    frames = _banded_frames(width, height, count)
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=80, loop=0, **kw)
    r = render(data, "default", max_animation_pixels=width * height * count)
    assert sizes(r) == {"large": (300, 500), "medium": (300, 500), "small": (300, 500), "thumb": (256, 256)}
    for name, e in all_encodings(r):
        out = decode(e.data)
        assert (out.n_frames, e.format) == (count, {"GIF": "gif", "WEBP": "webp"}[out.format])
        for i in (0, 5, 11):
            out.seek(i)
            rgb = out.convert("RGB")
            want = frames[i].getpixel((width // 2, height // 2))
            rows = (2, e.height // 2, e.height - 3) if name == "thumb" else (e.height // 2,)
            for y in rows:
                got = rgb.getpixel((e.width // 2, y))
                off = max(abs(a - b) for a, b in zip(got, want, strict=True))
                assert off < 24, (name, e, i, y, got, want)


def test_a_big_accepted_animation_is_not_held_decoded(tmp_path):
    """1024x1024 x 60 frames (240 MB of RGBA frames) renders in well under that.

    The big variants stream from the source into their encoder, one variant at a time (a GIF
    is decoded frame by frame); only the small ones come from a decoded strip. Before, every
    variant's frames were held at once: ~310 MB.
    """
    path = tmp_path / "big.gif"
    path.write_bytes(flat_gif(1024, 1024, 60))
    out = _peak_rss(path)
    assert out["outcome"]["large"] == [1024, 1024]
    decoded_mb = 1024 * 1024 * 60 * 4 / 2**20
    assert out["rss_mb"] < decoded_mb * 0.75, out
