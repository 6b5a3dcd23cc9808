"""The five seed use cases of design.md, end to end on the local stack over HTTP."""

from __future__ import annotations

import base64
import io
import json

import pytest
import requests
from PIL import Image

from api_client import Api, jpeg, sha256


@pytest.fixture
def api(local_stack):
    return Api(
        local_stack.api_url, local_stack.token(tenant="seeds", scope="images:read images:write tags:write")
    )


def photo_with_exif_and_gps() -> bytes:
    image = Image.open(io.BytesIO(jpeg(800, 600, (40, 120, 200))))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS 5D"
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = "2024:05:01 12:30:00"  # DateTimeOriginal
    exif_ifd[0x9011] = "+02:00"  # OffsetTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0), 5: 0, 6: 35.0})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def multipart_files(parts: list[tuple[str, bytes, dict | None]]) -> list[tuple[str, tuple]]:
    files = []
    for name, data, fields in parts:
        files.append((name, (f"{name}.jpg", data, "image/jpeg")))
        if fields is not None:
            files.append((f"{name}-data", (None, json.dumps(fields), "application/json")))
    return files


def test_batch_upload_with_tag_ids_answers_per_item_outcomes(api):
    """Seed 1: file_error for a broken file, image_already_exists with the existing id for a
    repeat (tags not updated), tag_error for an unknown tag, the other images processed."""
    tag = api.call("POST", "/tags", json={"category": "some_category", "label": "some_label"}).json()
    existing_bytes = jpeg(320, 240, (10, 200, 10))
    existing = api.upload(existing_bytes, tags=[tag["id"]])
    assert api.wait(existing["id"])["status"] == "ready"

    good = jpeg(640, 480, (200, 10, 10))
    broken = jpeg(640, 480, (10, 10, 200))[:700]
    response = api.call(
        "POST",
        "/images",
        files=multipart_files(
            [
                ("image-1", good, {"tags": [{"id": tag["id"]}, {"id": "2693493ba3b3438e946460aa41e64db7"}]}),
                ("image-2", broken, None),
                ("image-3", existing_bytes, {"tags": [{"id": "af93d2a6961a433ca35010c356a3d076"}]}),
            ]
        ),
    )
    assert response.status_code == 201, response.text
    first, second, third = response.json()["items"]

    assert third["id"] == existing["id"]
    assert third["error"]["code"] == "image_already_exists"

    processed = api.wait(first["id"])
    assert processed["status"] == "ready"
    assert processed["tags"] == [
        {"id": tag["id"], "category": "some_category", "label": "some_label"},
        {"id": "2693493ba3b3438e946460aa41e64db7", "error": "tag_error"},
    ]
    assert set(processed["variants"]) == {"large", "medium", "small", "thumb"}

    failed = api.wait(second["id"])
    assert failed["status"] == "failed"
    assert failed["processing_error"] == "file_error"

    untouched = api.image(existing["id"])
    assert untouched["tags"] == [{"id": tag["id"], "category": "some_category", "label": "some_label"}]


def test_album_rights_in_the_token_and_the_rich_image_object(local_stack):
    """Seed 2: per-album rights; infos, EXIF, GPS, taken_at, phash, colours, mini/large/full,
    a processed flag and processing_error."""
    owner = Api(local_stack.api_url, local_stack.token(tenant="albums", scope="images:read images:write"))
    allowed = owner.call("POST", "/albums", json={"name": "Site visit"}).json()
    other = owner.call("POST", "/albums", json={"name": "Board only"}).json()
    assert set(allowed) == {"id", "name", "created_at"}

    uploader = Api(
        local_stack.api_url,
        local_stack.token(
            tenant="albums",
            scope="images:read images:write",
            albums={allowed["id"]: ["upload", "read"], other["id"]: []},
        ),
    )
    data = photo_with_exif_and_gps()
    answer = uploader.upload(data, album_id=allowed["id"], profile="album")
    refused = uploader.presign(
        [{"filename": "x.jpg", "content_type": "image/jpeg", "size": 10, "album_id": other["id"]}]
    )[0]
    assert refused["error"]["code"] == "album_forbidden"
    assert refused["error"]["source"]["pointer"] == "/items/0/album_id"

    image = uploader.wait(answer["id"])
    assert image["status"] == "ready"
    assert image["processed"] is True and image["processing_error"] is None
    assert image["album_id"] == allowed["id"]
    assert (image["width"], image["height"]) == (800, 600)
    assert image["exif"]["Make"] == "Canon"
    assert image["gps"]["lat"] == pytest.approx(48.858, abs=1e-3)
    assert image["gps"]["lon"] == pytest.approx(2.2944, abs=1e-3)
    assert image["taken_at"].startswith("2024-05-01T12:30:00+02:00")
    assert len(image["phash"]) == 16
    assert image["colors"] and abs(sum(c["percent"] for c in image["colors"]) - 100) < 1.5
    sizes = {name: (v["width"], v["height"]) for name, v in image["variants"].items()}
    assert sizes == {"mini": (100, 100), "large": (200, 200), "full": (800, 600)}
    full = requests.get(image["variants"]["full"]["url"], timeout=30).content
    assert "exif" not in Image.open(io.BytesIO(full)).info  # GPS never leaves the private original

    # the album-restricted token can't read an image outside its albums: it answers like a missing one
    board_image = owner.upload(jpeg(300, 200, (90, 90, 90)), album_id=other["id"])
    response = uploader.call("GET", f"/images/{board_image['id']}")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "not_found")


def test_json_base64_upload_with_licence_and_attribution(local_stack, api):
    """Seed 3: a base64 data URI with type/kind, title, licence and attribution; validation
    codes with pointers; 201 with a slug and a self link; expired token → 401 token_expired."""
    gif = base64.b64encode(base64.b64decode("R0lGODlhBQAFAIAAAAAAAP///ywAAAAABQAFAAACBIyPqVgAOw==")).decode()
    body = {
        "file": f"data:image/gif;base64,{gif}",
        "type": "Image::Photo",
        "kind": "likeness",
        "title": "Portrait of Takashi Tezuka",
        "description": "Takashi Tezuka in Kyoto on 2nd February 2017.",
        "date": "2017-02-02",
        "usage_type": "licensed",
        "usage_license_code": "cc_by_4_0",
        "attributed_name": "Jonny Snapper",
        "attributed_url": "http://www.jonnys-game-pics.com",
        "source_url": "http://www.jonnys-game-pics.com/tezuka.jpg",
    }
    response = api.call("POST", "/images", json=body)
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["slug"] == "portrait-of-takashi-tezuka"
    assert image["links"]["self"].endswith(f"/v1/images/{image['id']}")
    assert image["usage_license_name"] == "Creative Commons Attribution 4.0"
    assert image["year"] == 2017
    assert api.wait(image["id"])["status"] == "ready"

    invalid = {**body, "title": "t" * 101, "usage_license_code": None, "kind": "gameplay"}
    response = api.call("POST", "/images", json=invalid)
    assert response.status_code == 400
    errors = {(e["code"], e["source"]["pointer"]) for e in response.json()["errors"]}
    assert errors == {
        ("title_too_long", "/title"),
        ("usage_license_code_blank", "/usage_license_code"),
        ("kind_inclusion", "/kind"),
    }

    expired = Api(local_stack.api_url, local_stack.token(tenant="seeds", ttl=-60))
    response = expired.call("POST", "/images", json=body)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "token_expired"


def test_rating_slug_comma_tags_privacy_parent_and_sizes_filled_once_processed(api):
    """Seed 4: rating 0-5, slug rules, comma-separated tags, privacy, a parent version, and the
    flickr size set whose width/height/bytes appear once processing finishes."""
    parent = api.upload(
        jpeg(1200, 900, (120, 60, 30)),
        profile="flickr",
        slug="sunset-original",
        rating=5,
        tags="sunset, beach",
        privacy="unlisted",
    )
    child = api.upload(
        jpeg(1200, 900, (120, 60, 31), subsampling=0),
        profile="flickr",
        parent_id=parent["id"],
        title="Sunset (edited)",
    )
    bad = api.presign(
        [
            {"filename": "a.jpg", "content_type": "image/jpeg", "size": 10, "rating": 6},
            {"filename": "b.jpg", "content_type": "image/jpeg", "size": 10, "slug": "Not Valid!"},
            {"filename": "c.jpg", "content_type": "image/jpeg", "size": 10, "slug": "sunset-original"},
            {"filename": "d.jpg", "content_type": "image/jpeg", "size": 10, "privacy": "secret"},
        ]
    )
    assert [item["error"]["code"] for item in bad] == [
        "rating_inclusion",
        "slug_invalid",
        "slug_taken",
        "privacy_inclusion",
    ]

    pending = api.image(parent["id"])
    assert pending["variants"] == {}  # sizes appear once processing finishes
    image = api.wait(parent["id"])
    assert (image["rating"], image["slug"], image["privacy"]) == (5, "sunset-original", "unlisted")
    assert sorted(t["label"] for t in image["tags"]) == ["beach", "sunset"]
    sizes = {name: (v["width"], v["height"]) for name, v in image["variants"].items()}
    assert sizes == {
        "sq": (75, 75),
        "t": (100, 75),
        "s": (240, 180),
        "m": (500, 375),
        "l": (1024, 768),
        "o": (1200, 900),
    }
    assert all(v["bytes"] > 0 for v in image["variants"].values())

    edited = api.wait(child["id"])
    assert edited["parent_id"] == parent["id"]
    assert edited["slug"] == "sunset-edited"


@pytest.mark.parametrize(
    ("purpose", "variants"),
    [
        ("product", {"thumb", "thumb_retina", "image", "ipad", "ipad_retina", "ebay"}),
        ("account", {"s", "m", "l"}),
        ("user", {"s", "m", "l"}),
        ("category", {"large", "medium", "small", "thumb"}),
    ],
)
def test_purpose_picks_the_variant_set(api, purpose, variants):
    """Seed 5: a purpose type picks the profile when no profile is given."""
    shade = {"product": 30, "account": 90, "user": 150, "category": 210}[purpose]
    data = jpeg(900, 700, (shade, 100, 255 - shade))
    answer = api.upload(data, purpose=purpose, sha256=sha256(data))
    image = api.wait(answer["id"])
    assert image["purpose"] == purpose
    assert set(image["variants"]) == variants
