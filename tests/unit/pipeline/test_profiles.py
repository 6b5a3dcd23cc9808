"""Profiles: the built-in file, validation, and the geometry (never upscale)."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from sample_images import decode, encode

from imgdrop.pipeline import load_profiles, parse_profiles, render
from imgdrop.pipeline.profiles import VariantSpec, plan

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
    assert all(p.formats == ("jpeg",) for p in profiles.values())


@pytest.mark.parametrize("profile", sorted(CHINA_GOLDEN))
def test_china_golden_dimensions(china, profile):
    r = render(china, profile)
    assert (r.format, r.width, r.height) == ("jpeg", 640, 427)
    assert {k: (v.width, v.height) for k, v in r.variants.items()} == CHINA_GOLDEN[profile]
    for v in r.variants.values():
        img = decode(v.data)
        assert (img.format, img.size) == ("JPEG", (v.width, v.height))


@pytest.mark.parametrize("profile", sorted(BIG_GOLDEN))
def test_12mp_golden_dimensions(china_12mp, profile):
    r = render(china_12mp, profile)
    assert (r.width, r.height) == (4000, 2669)
    assert {k: (v.width, v.height) for k, v in r.variants.items()} == BIG_GOLDEN[profile]
    assert (
        decode(r.variants["o" if profile == "flickr" else "large"].data).size
        == BIG_GOLDEN[profile]["o" if profile == "flickr" else "large"]
    )


def test_small_source_is_never_upscaled():
    data = encode(Image.new("RGB", (100, 50), (10, 200, 30)), "PNG")
    r = render(data, "default")
    sizes = {k: (v.width, v.height) for k, v in r.variants.items()}
    # fit keeps the source size; cover crops to the box aspect (1:1) and does not grow
    assert sizes == {"large": (100, 50), "medium": (100, 50), "small": (100, 50), "thumb": (50, 50)}
    assert {k: (v.width, v.height) for k, v in render(data, "avatar").variants.items()} == {
        "s": (50, 50),
        "m": (50, 50),
        "l": (50, 50),
    }


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
                "profiles": {
                    "tiny": {
                        "formats": ["jpeg", "webp", "avif"],
                        "variants": [{"name": "px", "mode": "cover", "width": 32, "height": 16}],
                    }
                }
            }
        )
    )
    profiles = load_profiles(path)
    r = render(china, "tiny", profiles=profiles)
    assert sorted(r.variants) == ["px", "px.avif", "px.webp"]
    assert [(r.variants[k].format, r.variants[k].filename) for k in sorted(r.variants)] == [
        ("jpeg", "px.jpg"),
        ("avif", "px.avif"),
        ("webp", "px.webp"),
    ]
    assert decode(r.variants["px.webp"].data).size == (32, 16)
    assert decode(r.variants["px.avif"].data).format == "AVIF"


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"profiles": {"x": {"variants": []}}},
        {"profiles": {"x": {"variants": [{"name": "a", "mode": "stretch", "width": 1, "height": 1}]}}},
        {"profiles": {"x": {"variants": [{"name": "a", "mode": "fit", "width": 0, "height": 1}]}}},
        {"profiles": {"x": {"variants": [{"name": "a/b", "mode": "fit", "width": 1, "height": 1}]}}},
        {"profiles": {"x": {"formats": ["gif"], "variants": [{"name": "a", "mode": "original"}]}}},
        {
            "profiles": {
                "x": {"variants": [{"name": "a", "mode": "original"}, {"name": "a", "mode": "original"}]}
            }
        },
    ],
)
def test_invalid_profiles_are_refused(doc):
    with pytest.raises(ValueError):
        parse_profiles(doc)


def test_unknown_profile_has_a_stable_code(china):
    from imgdrop.errors import ImgdropError

    with pytest.raises(ImgdropError) as err:
        render(china, "nope")
    assert err.value.code == "unknown_profile"


def test_a_variant_unpacks_as_the_design_documents_it(china):
    from imgdrop.pipeline import render

    data, fmt, width, height = render(china, "avatar").variants["s"]
    assert (fmt, width, height) == ("jpeg", 64, 64)
    assert data[:2] == b"\xff\xd8"
