"""Profiles: the built-in file, validation, the geometry (never upscale) and the formats."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image
from sample_images import PIL_FORMAT, all_encodings, decode, encode, fallback, formats, sizes

from imgdrop.pipeline import load_profiles, parse_profiles, render
from imgdrop.pipeline.geometry import plan
from imgdrop.profiles import VariantSpec

CHINA_GOLDEN = {
    "default": {"large": (640, 427), "medium": (640, 427), "small": (512, 342), "thumb": (256, 256)},
    "flickr": {
        "sq": (75, 75),
        "t": (100, 67),
        "s": (240, 160),
        "m": (500, 334),
        "l": (640, 427),
        "o": (640, 427),
    },
    "album": {"mini": (100, 100), "large": (200, 200), "full": (640, 427)},
    "product": {
        "thumb": (150, 100),
        "thumb_retina": (300, 200),
        "image": (640, 427),
        "ipad": (640, 427),
        "ipad_retina": (640, 427),
        "ebay": (640, 427),
    },
    "avatar": {"s": (64, 64), "m": (128, 128), "l": (256, 256)},
}

BIG_GOLDEN = {  # the 4000x2669 upscale
    "default": {"large": (2048, 1367), "medium": (1024, 683), "small": (512, 342), "thumb": (256, 256)},
    "flickr": {
        "sq": (75, 75),
        "t": (100, 67),
        "s": (240, 160),
        "m": (500, 334),
        "l": (1024, 683),
        "o": (4000, 2669),
    },
}


def test_builtin_profiles_are_the_design_table():
    profiles = load_profiles()
    assert set(profiles) == {"default", "flickr", "album", "product", "avatar"}
    assert [(v.name, v.mode, v.width, v.height) for v in profiles["default"].variants] == [
        ("large", "fit", 2048, 2048),
        ("medium", "fit", 1024, 1024),
        ("small", "fit", 512, 512),
        ("thumb", "cover", 256, 256),
    ]
    assert profiles["flickr"].variants[-1] == VariantSpec("o", "original", 0, 0)
    for p in profiles.values():
        assert (p.formats, p.format_max_box) == (("webp", "avif"), {"avif": 1024})
        assert p.quality == {"jpeg": 85, "webp": 80, "avif": 60}


WITH_AVIF = ["jpeg", "webp", "avif"]
NO_AVIF = ["jpeg", "webp"]
# every built-in profile's formats per variant: webp everywhere, avif where the box is <= 1024
BUILTIN_FORMATS = {
    "default": {"large": NO_AVIF, "medium": WITH_AVIF, "small": WITH_AVIF, "thumb": WITH_AVIF},
    "flickr": {"sq": WITH_AVIF, "t": WITH_AVIF, "s": WITH_AVIF, "m": WITH_AVIF, "l": WITH_AVIF},
    "album": {"mini": WITH_AVIF, "large": WITH_AVIF, "full": NO_AVIF},
    "product": {
        "thumb": WITH_AVIF,
        "thumb_retina": WITH_AVIF,
        "image": WITH_AVIF,
        "ipad": WITH_AVIF,
        "ipad_retina": NO_AVIF,
        "ebay": NO_AVIF,
    },
    "avatar": {"s": WITH_AVIF, "m": WITH_AVIF, "l": WITH_AVIF},
}


@pytest.mark.parametrize("profile", sorted(BUILTIN_FORMATS))
def test_builtin_formats_per_variant(profile):
    """From the box alone (whatever the source's size), except flickr's original-size ``o``."""
    p = load_profiles()[profile]
    for spec in p.variants:
        if spec.mode == "original":
            assert p.extra_formats(spec, 1024, 700) == ("webp", "avif")
            assert p.extra_formats(spec, 1025, 700) == ("webp",)
            continue
        assert ["jpeg", *p.extra_formats(spec, 64, 64)] == BUILTIN_FORMATS[profile][spec.name]
        assert p.extra_formats(spec, 64, 64) == p.extra_formats(spec, 8000, 6000)


@pytest.mark.parametrize("profile", sorted(CHINA_GOLDEN))
def test_china_golden_dimensions_and_formats(china, profile):
    r = render(china, profile)
    assert (r.format, r.width, r.height) == ("jpeg", 640, 427)
    assert sizes(r) == CHINA_GOLDEN[profile]
    expected = dict(BUILTIN_FORMATS[profile])
    if profile == "flickr":
        expected["o"] = WITH_AVIF  # 640x427 fits in 1024
    assert formats(r) == expected
    for name, e in all_encodings(r):  # each encoding decodes back to its format and size
        img = decode(e.data)
        assert (img.format, img.size) == (PIL_FORMAT[e.format], (e.width, e.height)), (name, e)
        assert (img.mode, e.mime) == ("RGB", f"image/{e.format}")
        assert e.ext == ("jpg" if e.format == "jpeg" else e.format)


@pytest.mark.parametrize("profile", sorted(BIG_GOLDEN))
def test_12mp_golden_dimensions(china_12mp, profile):
    r = render(china_12mp, profile)
    assert (r.width, r.height) == (4000, 2669)
    assert sizes(r) == BIG_GOLDEN[profile]
    name = "o" if profile == "flickr" else "large"
    assert [decode(e.data).size for e in r.variants[name]] == [BIG_GOLDEN[profile][name]] * 2
    if profile == "flickr":  # 4000 px: no avif for the original-size variant
        assert formats(r)["o"] == NO_AVIF and formats(r)["l"] == WITH_AVIF


def test_small_source_is_never_upscaled():
    data = encode(Image.new("RGB", (100, 50), (10, 200, 30)), "PNG")
    r = render(data, "default")
    # fit keeps the source size; cover crops to the box aspect (1:1) and does not grow
    assert sizes(r) == {"large": (100, 50), "medium": (100, 50), "small": (100, 50), "thumb": (50, 50)}
    assert formats(r)["large"] == NO_AVIF  # the box decides, not the size it came out at
    assert sizes(render(data, "avatar")) == {"s": (50, 50), "m": (50, 50), "l": (50, 50)}


def test_same_image_is_encoded_once_per_format(china):
    r = render(china, "default")  # 640x427: large, medium are the same image
    assert r.variants["large"][0] is r.variants["medium"][0]
    assert r.variants["large"][1] is r.variants["medium"][1]


@pytest.mark.parametrize(
    ("spec", "src", "crop", "size"),
    [
        (VariantSpec("t", "fit", 2048, 2048), (4000, 3000), (0, 0, 4000, 3000), (2048, 1536)),
        (VariantSpec("t", "fit", 2048, 2048), (1000, 800), (0, 0, 1000, 800), (1000, 800)),
        (VariantSpec("t", "cover", 256, 256), (4000, 3000), (500, 0, 3000, 3000), (256, 256)),
        (VariantSpec("t", "cover", 256, 256), (3000, 4000), (0, 500, 3000, 3000), (256, 256)),
        (VariantSpec("t", "cover", 200, 100), (150, 150), (0, 37, 150, 75), (150, 75)),
        (VariantSpec("t", "original"), (123, 45), (0, 0, 123, 45), (123, 45)),
    ],
)
def test_plan_geometry(spec, src, crop, size):
    p = plan(spec, *src)
    assert p.crop == crop
    assert (p.width, p.height) == size


def test_a_deployment_can_override_the_profiles_file(tmp_path, china):
    path = tmp_path / "profiles.json"
    path.write_text(
        json.dumps(
            {
                "defaults": {"formats": ["webp"], "quality": {"webp": 70}},
                "profiles": {
                    "tiny": {
                        "formats": ["avif", "webp"],
                        "format_max_box": {"avif": 32},
                        "variants": [
                            {"name": "px", "mode": "cover", "width": 32, "height": 16},
                            {"name": "big", "mode": "fit", "width": 64, "height": 64},
                            {"name": "own", "mode": "fit", "width": 2000, "formats": ["avif"]},
                        ],
                    },
                    "plain": {"variants": [{"name": "v", "mode": "fit", "width": 40}]},
                    "fallback_only": {"formats": [], "variants": [{"name": "v", "mode": "fit", "width": 40}]},
                },
            }
        )
    )
    profiles = load_profiles(path)
    assert profiles["tiny"].quality == {"jpeg": 85, "webp": 70, "avif": 60}
    r = render(china, "tiny", profiles=profiles)
    # the profile's order after the fallback; avif only within its box; a variant's own list
    assert formats(r) == {"px": ["jpeg", "avif", "webp"], "big": ["jpeg", "webp"], "own": ["jpeg", "avif"]}
    assert sizes(r) == {"px": (32, 16), "big": (64, 43), "own": (640, 427)}
    for _, e in all_encodings(r):
        assert decode(e.data).format == PIL_FORMAT[e.format]
    plain = render(china, "plain", profiles=profiles)
    assert formats(plain) == {"v": ["jpeg", "webp"]}  # the file's defaults
    assert formats(render(china, "fallback_only", profiles=profiles)) == {"v": ["jpeg"]}


@pytest.mark.parametrize(
    ("listed", "made"),
    [
        (["jpeg"], ["jpeg"]),
        (["jpeg", "webp", "avif"], ["jpeg", "webp", "avif"]),
        (["webp", "jpeg"], ["jpeg", "webp"]),
    ],
)
def test_files_that_list_jpeg_still_work(china, listed, made):
    """Before the fallback was implied, ``formats`` started with the primary ``jpeg``."""
    doc = {"profiles": {"p": {"formats": listed, "variants": [{"name": "v", "mode": "fit", "width": 40}]}}}
    assert formats(render(china, "p", profiles=parse_profiles(doc))) == {"v": made}


def test_format_max_box_null_lifts_the_default_limit():
    doc = {
        "profiles": {
            "p": {"format_max_box": {"avif": None}, "variants": [{"name": "v", "mode": "fit", "width": 4000}]}
        }
    }
    p = parse_profiles(doc)["p"]
    assert p.format_max_box == {} and p.extra_formats(p.variants[0]) == ("webp", "avif")


_ONE = [{"name": "a", "mode": "original"}]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "profiles"),
        ({"profiles": {"x": {"variants": []}}}, "variants"),
        (
            {"profiles": {"x": {"variants": [{"name": "a", "mode": "stretch", "width": 1, "height": 1}]}}},
            "mode",
        ),
        ({"profiles": {"x": {"variants": [{"name": "a", "mode": "fit", "width": 0, "height": 1}]}}}, "width"),
        ({"profiles": {"x": {"variants": [{"name": "a", "mode": "fit", "width": True}]}}}, "width"),
        (
            {"profiles": {"x": {"variants": [{"name": "a/b", "mode": "fit", "width": 1, "height": 1}]}}},
            "name",
        ),
        ({"profiles": {"x": {"formats": ["jxl"], "variants": _ONE}}}, "unknown format 'jxl'"),
        ({"profiles": {"x": {"formats": ["heic"], "variants": _ONE}}}, "unknown format 'heic'"),
        ({"profiles": {"x": {"formats": ["gif"], "variants": _ONE}}}, "'gif' cannot be listed"),
        ({"profiles": {"x": {"formats": ["png", "webp"], "variants": _ONE}}}, "'png' cannot be listed"),
        ({"profiles": {"x": {"formats": "webp", "variants": _ONE}}}, "list of format names"),
        ({"profiles": {"x": {"formats": ["webp", "webp"], "variants": _ONE}}}, "twice"),
        (
            {"defaults": {"formats": ["bmp"]}, "profiles": {"x": {"variants": _ONE}}},
            "defaults: unknown format 'bmp'",
        ),
        (
            {"profiles": {"x": {"variants": [{"name": "a", "mode": "original", "formats": ["tiff"]}]}}},
            "variant 'a'",
        ),
        ({"profiles": {"x": {"format_max_box": {"jpeg": 10}, "variants": _ONE}}}, "format_max_box"),
        ({"profiles": {"x": {"format_max_box": {"avif": 0}, "variants": _ONE}}}, "format_max_box"),
        ({"profiles": {"x": {"quality": {"png": 9}, "variants": _ONE}}}, "unknown format 'png' in 'quality'"),
        ({"profiles": {"x": {"quality": {"webp": 101}, "variants": _ONE}}}, "1..100"),
        ({"profiles": {"x": {"variants": _ONE * 2}}}, "unique"),
    ],
)
def test_invalid_profiles_are_refused_with_a_clear_message(doc, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_profiles(doc)


def test_unknown_profile_has_a_stable_code(china):
    from imgdrop.errors import ImgdropError

    with pytest.raises(ImgdropError) as err:
        render(china, "nope")
    assert err.value.code == "unknown_profile"


def test_an_encoding_unpacks_as_the_design_documents_it(china):
    from imgdrop.pipeline import Encoding

    encodings = render(china, "avatar").variants["s"]
    assert all(isinstance(e, Encoding) for e in encodings)
    (data, fmt, width, height), *others = encodings  # the fallback first
    assert (fmt, width, height) == ("jpeg", 64, 64)
    assert data[:2] == b"\xff\xd8"
    assert [(f, w, h) for _, f, w, h in others] == [("webp", 64, 64), ("avif", 64, 64)]
    assert fallback(render(china, "avatar"), "s").bytes == len(data)
