"""Every accepted input kind: dimensions, orientation, colour, alpha, animation, bit depth."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps
from sample_images import decode, encode, quadrants

from imgdrop.pipeline import render


def _profile_name(img: Image.Image) -> str:
    return ImageCms.getProfileDescription(
        ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
    ).strip()


def _with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation):
    stored = quadrants(96, 64)
    data = _with_orientation(stored, orientation)
    expected = ImageOps.exif_transpose(decode(data)).convert("RGB")
    r = render(data, "default")
    assert (r.width, r.height) == expected.size
    out = decode(r.variants["large"].data).convert("RGB")
    assert out.size == expected.size
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(expected, dtype=int)).mean()
    assert diff < 6, f"orientation {orientation}: mean difference {diff}"


def test_portrait_stored_sideways_comes_out_portrait(china):
    # china.jpg's pixels stored as landscape with "rotate 90 CW to display" (orientation 6)
    data = _with_orientation(decode(china), 6)
    r = render(data, "default")
    assert (r.width, r.height) == (427, 640)
    assert {k: (v.width, v.height) for k, v in r.variants.items()} == {
        "large": (427, 640),
        "medium": (427, 640),
        "small": (342, 512),
        "thumb": (256, 256),
    }
    assert decode(r.variants["large"].data).getexif().get(0x0112) is None


def test_progressive_jpeg(china):
    data = encode(decode(china), "JPEG", quality=90, progressive=True)
    r = render(data, "flickr")
    assert (r.format, r.width, r.height) == ("jpeg", 640, 427)
    assert r.variants["o"].width == 640


def test_cmyk_jpeg_is_converted_to_srgb():
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)
    assert decode(data).mode == "CMYK"
    r = render(data, "default")
    out = decode(r.variants["large"].data)
    assert out.mode == "RGB" and _profile_name(out).startswith("sRGB")
    red, green, blue = out.getpixel((32, 24))
    assert red > 180 and green < 80 and blue < 80, (red, green, blue)


def test_wide_gamut_red_comes_out_srgb_red():
    """A Display P3 JPEG of pure sRGB red (stored as P3 values ~ (234, 51, 35))."""
    import pyvips

    red = (
        pyvips.Image.black(64, 48, bands=3)
        .new_from_image([255, 0, 0])
        .copy(interpretation="srgb")
        .cast("uchar")
    )
    p3 = red.icc_transform("p3", input_profile="srgb", embedded=False)
    icc = p3.get("icc-profile-data")
    pixels = np.ndarray(buffer=p3.write_to_memory(), dtype=np.uint8, shape=(48, 64, 3))
    assert tuple(pixels[0, 0]) != (255, 0, 0)  # really P3-encoded
    data = encode(Image.fromarray(pixels), "JPEG", quality=98, icc_profile=icc)
    r = render(data, "default")
    for v in r.variants.values():
        out = decode(v.data)
        assert _profile_name(out).startswith("sRGB")
        red_, green, blue = out.convert("RGB").getpixel((out.width // 2, out.height // 2))
        assert red_ > 245 and green < 16 and blue < 16, (red_, green, blue)


def _rgba() -> Image.Image:
    img = quadrants(80, 60).convert("RGBA")
    img.paste((0, 0, 0, 0), (0, 0, 40, 30))  # transparent top-left quadrant
    return img


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_alpha_is_kept_as_png(fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    r = render(encode(_rgba(), fmt, **kw), "default")
    assert r.has_alpha
    for v in r.variants.values():
        assert v.format == "png" and v.filename.endswith(".png")
        out = decode(v.data)
        assert out.mode == "RGBA"
        assert out.getpixel((1, 1))[3] == 0
        assert out.getpixel((out.width - 2, out.height - 2))[3] == 255


def test_opaque_alpha_channel_gives_jpeg():
    data = encode(quadrants(80, 60).convert("RGBA"), "PNG")
    r = render(data, "default")
    assert not r.has_alpha
    assert {v.format for v in r.variants.values()} == {"jpeg"}


def test_webp_sibling_keeps_alpha(tmp_path):
    from imgdrop.pipeline import parse_profiles

    profiles = parse_profiles(
        {
            "profiles": {
                "p": {
                    "formats": ["jpeg", "webp"],
                    "variants": [{"name": "v", "mode": "fit", "width": 40, "height": 40}],
                }
            }
        }
    )
    r = render(encode(_rgba(), "PNG"), "p", profiles=profiles)
    assert sorted(r.variants) == ["v", "v.webp"]
    assert r.variants["v.webp"].filename == "v.webp" and r.variants["v"].filename == "v.png"
    assert decode(r.variants["v.webp"].data).getpixel((1, 1))[3] == 0


def test_palette_png_with_transparency():
    img = _rgba().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    img.info["transparency"] = img.getpixel((1, 1))
    data = encode(img, "PNG", transparency=img.getpixel((1, 1)))
    r = render(data, "default")
    assert (r.width, r.height, r.has_alpha) == (80, 60, True)
    assert decode(r.variants["small"].data).getpixel((1, 1))[3] == 0


def test_palette_png_without_transparency():
    data = encode(quadrants(80, 60).convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "PNG")
    r = render(data, "default")
    assert not r.has_alpha and r.variants["large"].format == "jpeg"
    assert decode(r.variants["large"].data).convert("RGB").getpixel((5, 5))[0] > 240


def test_16_bit_rgb_png():
    import pyvips

    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1))
    rgb = np.dstack([ramp, ramp // 2, np.zeros_like(ramp)])
    img = pyvips.Image.new_from_array(rgb).copy(interpretation="rgb16").cast("ushort")
    data = img.pngsave_buffer(bitdepth=16)
    assert decode(data).mode in ("RGB;16", "RGB", "I;16", "I")  # Pillow reads 16-bit RGB as 8-bit RGB
    r = render(data, "default")
    out = decode(r.variants["large"].data)
    assert (out.mode, out.size) == ("RGB", (64, 48))
    right = out.getpixel((62, 24))
    assert right[0] > 240 and 100 < right[1] < 150 and right[2] < 10, right


def test_gray_and_16_bit_gray_png():
    gray = Image.linear_gradient("L").resize((64, 64))
    for data in (encode(gray, "PNG"), encode(gray.convert("I;16"), "PNG")):
        r = render(data, "default")
        assert r.grayscale and not r.has_alpha
        out = decode(r.variants["large"].data)
        assert out.size == (64, 64)
        px = np.asarray(out.convert("RGB"), dtype=int)
        assert np.abs(px[..., 0] - px[..., 1]).max() <= 2


def test_color_photo_is_not_grayscale(china):
    assert render(china, "avatar").grayscale is False


@pytest.mark.parametrize("kw", [{"quality": 80}, {"lossless": True}])
def test_webp_still(china, kw):
    data = encode(decode(china), "WEBP", **kw)
    r = render(data, "album")
    assert (r.format, r.mime, r.width, r.height, r.animated, r.frames) == (
        "webp",
        "image/webp",
        640,
        427,
        False,
        1,
    )
    assert r.variants["full"].format == "jpeg"


def _frames(n: int, size=(60, 40)) -> list[Image.Image]:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    return [Image.new("RGB", size, colors[i % len(colors)]) for i in range(n)]


@pytest.mark.parametrize("stream", [False, True], ids=["decoded-once", "streamed"])
@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_is_kept_as_animated_webp(fmt, stream, monkeypatch):
    if stream:  # an animation too big to hold decoded streams each variant from the source
        monkeypatch.setattr("imgdrop.pipeline.engine.ANIMATION_DECODE_PIXELS", 0)
    frames = _frames(4)
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=120, loop=0)
    r = render(data, "default")
    assert (r.format, r.width, r.height, r.animated, r.frames) == (fmt.lower(), 60, 40, True, 4)
    for name, v in r.variants.items():
        assert v.format == "webp" and v.filename == f"{name}.webp"
        out = decode(v.data)
        assert out.n_frames == 4 and (out.width, out.height) == (v.width, v.height)
        assert out.info.get("duration") == 120
        out.seek(2)
        assert out.convert("RGB").getpixel((v.width // 2, v.height // 2))[2] > 200  # third frame is blue
    assert (r.variants["thumb"].width, r.variants["thumb"].height) == (40, 40)


def test_single_frame_gif_is_a_still():
    r = render(encode(quadrants(60, 40).convert("P"), "GIF"), "default")
    assert (r.format, r.animated, r.frames) == ("gif", False, 1)
    assert r.variants["large"].format == "jpeg"


def test_heic():
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(quadrants(96, 64)).save(buf, quality=90)
    r = render(buf.getvalue(), "default")
    assert (r.format, r.mime, r.width, r.height) == ("heic", "image/heic", 96, 64)
    out = decode(r.variants["large"].data).convert("RGB")
    assert out.size == (96, 64)
    assert out.getpixel((10, 10))[0] > 200 and out.getpixel((10, 10))[1] < 60


def test_avif(china):
    data = encode(decode(china), "AVIF", quality=70)
    r = render(data, "default")
    assert (r.format, r.mime, r.width, r.height) == ("avif", "image/avif", 640, 427)
    assert r.variants["thumb"].width == 256


def test_tiff_first_page():
    first, second = quadrants(96, 64), Image.new("RGB", (300, 300), "yellow")
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    r = render(data, "default")
    assert (r.format, r.width, r.height, r.animated, r.frames) == ("tiff", 96, 64, False, 2)
    assert decode(r.variants["large"].data).convert("RGB").getpixel((5, 5))[0] > 240
