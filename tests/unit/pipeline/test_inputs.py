"""Every accepted input kind: dimensions, orientation, colour, alpha, animation, bit depth."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps
from sample_images import PIL_FORMAT, all_encodings, decode, encode, fallback, formats, quadrants, sizes

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
    out = decode(fallback(r, "large").data).convert("RGB")
    assert out.size == expected.size
    diff = np.abs(np.asarray(out, dtype=int) - np.asarray(expected, dtype=int)).mean()
    assert diff < 6, f"orientation {orientation}: mean difference {diff}"


def test_portrait_stored_sideways_comes_out_portrait(china):
    # china.jpg's pixels stored as landscape with "rotate 90 CW to display" (orientation 6)
    data = _with_orientation(decode(china), 6)
    r = render(data, "default")
    assert (r.width, r.height) == (427, 640)
    assert sizes(r) == {"large": (427, 640), "medium": (427, 640), "small": (342, 512), "thumb": (256, 256)}
    for _, e in all_encodings(r):
        out = decode(e.data)
        assert out.size == (e.width, e.height) and out.getexif().get(0x0112) is None


def test_progressive_jpeg(china):
    data = encode(decode(china), "JPEG", quality=90, progressive=True)
    r = render(data, "flickr")
    assert (r.format, r.width, r.height) == ("jpeg", 640, 427)
    assert fallback(r, "o").width == 640


def test_cmyk_jpeg_is_converted_to_srgb():
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)
    assert decode(data).mode == "CMYK"
    r = render(data, "default")
    for _, e in all_encodings(r):
        out = decode(e.data)
        assert out.mode == "RGB" and _profile_name(out).startswith("sRGB")
        red, green, blue = out.getpixel((32, 24))
        assert red > 180 and green < 80 and blue < 80, (e, red, green, blue)


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
    for _, e in all_encodings(r):
        out = decode(e.data)
        assert _profile_name(out).startswith("sRGB")
        red_, green, blue = out.convert("RGB").getpixel((out.width // 2, out.height // 2))
        assert red_ > 240 and green < 20 and blue < 20, (e, red_, green, blue)


def _rgba() -> Image.Image:
    img = quadrants(80, 60).convert("RGBA")
    img.paste((0, 0, 0, 0), (0, 0, 40, 30))  # transparent top-left quadrant
    return img


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_alpha_gives_a_png_fallback_and_keeps_alpha_in_every_format(fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    r = render(encode(_rgba(), fmt, **kw), "default")
    assert r.has_alpha
    assert formats(r) == {
        "large": ["png", "webp"],
        "medium": ["png", "webp", "avif"],
        "small": ["png", "webp", "avif"],
        "thumb": ["png", "webp", "avif"],
    }
    for name, e in all_encodings(r):
        assert e.ext == e.format and e.mime == f"image/{e.format}"
        out = decode(e.data)
        shape = (PIL_FORMAT[e.format], "RGBA", (e.width, e.height))
        assert (out.format, out.mode, out.size) == shape, (name, e)
        assert out.getpixel((1, 1))[3] == 0, (name, e)
        assert out.getpixel((out.width - 2, out.height - 2))[3] == 255, (name, e)


def test_opaque_alpha_channel_gives_jpeg():
    data = encode(quadrants(80, 60).convert("RGBA"), "PNG")
    r = render(data, "default")
    assert not r.has_alpha
    assert {encs[0].format for encs in r.variants.values()} == {"jpeg"}
    assert {decode(e.data).mode for _, e in all_encodings(r)} == {"RGB"}


def test_palette_png_with_transparency():
    img = _rgba().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    img.info["transparency"] = img.getpixel((1, 1))
    data = encode(img, "PNG", transparency=img.getpixel((1, 1)))
    r = render(data, "default")
    assert (r.width, r.height, r.has_alpha) == (80, 60, True)
    assert fallback(r, "small").format == "png"
    assert decode(fallback(r, "small").data).getpixel((1, 1))[3] == 0


def test_palette_png_without_transparency():
    data = encode(quadrants(80, 60).convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "PNG")
    r = render(data, "default")
    assert not r.has_alpha and fallback(r, "large").format == "jpeg"
    assert decode(fallback(r, "large").data).convert("RGB").getpixel((5, 5))[0] > 240


def test_16_bit_rgb_png():
    import pyvips

    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1))
    rgb = np.dstack([ramp, ramp // 2, np.zeros_like(ramp)])
    img = pyvips.Image.new_from_array(rgb).copy(interpretation="rgb16").cast("ushort")
    data = img.pngsave_buffer(bitdepth=16)
    assert decode(data).mode in ("RGB;16", "RGB", "I;16", "I")  # Pillow reads 16-bit RGB as 8-bit RGB
    r = render(data, "default")
    out = decode(fallback(r, "large").data)
    assert (out.mode, out.size) == ("RGB", (64, 48))
    right = out.getpixel((62, 24))
    assert right[0] > 240 and 100 < right[1] < 150 and right[2] < 10, right


def test_gray_and_16_bit_gray_png():
    gray = Image.linear_gradient("L").resize((64, 64))
    for data in (encode(gray, "PNG"), encode(gray.convert("I;16"), "PNG")):
        r = render(data, "default")
        assert r.grayscale and not r.has_alpha
        out = decode(fallback(r, "large").data)
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
    assert formats(r)["full"] == ["jpeg", "webp"]


def _frames(n: int, size=(60, 40)) -> list[Image.Image]:
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    return [Image.new("RGB", size, colors[i % len(colors)]) for i in range(n)]


@pytest.mark.parametrize("stream", [False, True], ids=["decoded-once", "streamed"])
@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_animated_gif_and_webp(fmt, stream, monkeypatch):
    if stream:  # an animation too big to hold decoded streams each variant from the source
        monkeypatch.setattr("imgdrop.pipeline.engine.ANIMATION_DECODE_PIXELS", 0)
    frames = _frames(4)
    durations = [120, 60, 200, 90]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    r = render(data, "default")
    assert (r.format, r.width, r.height, r.animated, r.frames) == (fmt.lower(), 60, 40, True, 4)
    assert formats(r) == {name: ["gif", "webp"] for name in ("large", "medium", "small", "thumb")}
    for name, e in all_encodings(r):
        out = decode(e.data)
        shape = (PIL_FORMAT[e.format], 4, (e.width, e.height))
        assert (out.format, out.n_frames, out.size) == shape, (name, e)
        assert out.info.get("loop") == 0, (name, e)  # forever
        got = []
        for i in range(4):
            out.seek(i)
            pixel = out.convert("RGB").getpixel((e.width // 2, e.height // 2))
            got.append(out.info.get("duration"))  # WebP's is read when the frame loads
            want = frames[i].getpixel((0, 0))
            assert max(abs(a - b) for a, b in zip(pixel, want, strict=True)) < 40, (name, e, i, pixel)
        assert got == durations, (name, e)
    assert sizes(r)["thumb"] == (40, 40)


@pytest.mark.parametrize("loop", [None, 3])
def test_animation_loop_count_is_kept(loop):
    frames = _frames(3)
    kw = {} if loop is None else {"loop": loop}
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, **kw)
    r = render(data, "avatar")
    gif, webp = r.variants["s"]
    assert decode(gif.data).info.get("loop") == loop  # plays once: no NETSCAPE block; else its count
    assert decode(webp.data).info.get("loop") == (1 if loop is None else loop + 1)  # WebP counts plays


def test_animation_with_transparency_keeps_it_in_gif_and_webp():
    frames = []
    for i in range(3):
        img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
        img.paste((255, 0, 0, 255) if i % 2 == 0 else (0, 0, 255, 255), (10 + i * 5, 10, 25 + i * 5, 30))
        frames.append(img)
    data = encode(
        frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True
    )
    r = render(data, "avatar")
    assert r.animated and r.has_alpha
    for _, e in all_encodings(r):
        out = decode(e.data)
        for i in range(3):
            out.seek(i)
            rgba = out.convert("RGBA")
            assert rgba.getpixel((1, 1))[3] == 0, (e, i)  # transparent corner, every frame
            x = (17 + i * 5) * e.width // 40
            pixel = rgba.getpixel((x, 20))
            assert pixel[3] == 255 and (pixel[0] > 200) == (i % 2 == 0), (e, i, pixel)


def test_animation_without_webp_in_the_profile_is_gif_only():
    from imgdrop.pipeline import parse_profiles

    frames = _frames(3)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    doc = {"profiles": {"p": {"formats": ["avif"], "variants": [{"name": "v", "mode": "fit", "width": 30}]}}}
    r = render(data, "p", profiles=parse_profiles(doc))
    assert formats(r) == {"v": ["gif"]}  # never avif for an animation
    assert decode(fallback(r, "v").data).n_frames == 3


def test_single_frame_gif_is_a_still():
    r = render(encode(quadrants(60, 40).convert("P"), "GIF"), "default")
    assert (r.format, r.animated, r.frames) == ("gif", False, 1)
    assert formats(r)["large"] == ["jpeg", "webp"]


def test_heic():
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(quadrants(96, 64)).save(buf, quality=90)
    r = render(buf.getvalue(), "default")
    assert (r.format, r.mime, r.width, r.height) == ("heic", "image/heic", 96, 64)
    out = decode(fallback(r, "large").data).convert("RGB")
    assert out.size == (96, 64)
    assert out.getpixel((10, 10))[0] > 200 and out.getpixel((10, 10))[1] < 60


def test_heic_with_alpha_keeps_every_quadrant_and_its_alpha():
    """libheif's buffer goes to libvips as it is (no copy through Pillow): every pixel must still
    be where it was, alpha included."""
    import pillow_heif

    rgba = quadrants(96, 64).convert("RGBA")
    rgba.paste((255, 255, 255, 0), (0, 0, 20, 20))  # a transparent corner
    buf = io.BytesIO()
    pillow_heif.from_pillow(rgba).save(buf, quality=95)
    r = render(buf.getvalue(), "default")
    assert (r.format, r.width, r.height, r.has_alpha) == ("heic", 96, 64, True)
    out = decode(fallback(r, "large").data).convert("RGBA")
    assert fallback(r, "large").format == "png" and out.getpixel((5, 5))[3] < 30
    red, green, blue, white = (out.getpixel(xy) for xy in ((30, 20), (70, 10), (10, 50), (80, 50)))
    assert red[0] > 200 and red[1] < 60 and green[1] > 200 and green[0] < 60
    assert blue[2] > 200 and blue[0] < 60 and min(white[:3]) > 200 and red[3] == 255


def test_avif(china):
    data = encode(decode(china), "AVIF", quality=70)
    r = render(data, "default")
    assert (r.format, r.mime, r.width, r.height) == ("avif", "image/avif", 640, 427)
    assert sizes(r)["thumb"] == (256, 256)


def test_tiff_first_page():
    first, second = quadrants(96, 64), Image.new("RGB", (300, 300), "yellow")
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    r = render(data, "default")
    assert (r.format, r.width, r.height, r.animated, r.frames) == ("tiff", 96, 64, False, 2)
    assert decode(fallback(r, "large").data).convert("RGB").getpixel((5, 5))[0] > 240
