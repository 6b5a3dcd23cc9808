"""Field rules: stable codes and pointers, every error of an item at once."""

from datetime import date

import pytest

from imgdrop.validation import safe_filename, slugify, validate_item

TODAY = date(2026, 11, 22)


@pytest.fixture(autouse=True)
def settings_env(monkeypatch):
    """Settings (read by profiles, which `profile` is checked against) need the deployment's names."""
    from imgdrop.settings import get_settings

    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("BUCKET_NAME", "b")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


VALID = {"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000}


def codes(raw, **kwargs):
    _, errors = validate_item(raw, "/items/0", max_bytes=10_000, today=TODAY, **kwargs)
    return {(e.code, e.pointer) for e in errors}


def test_valid_item_has_no_errors_and_keeps_fields():
    spec, errors = validate_item(
        {
            **VALID,
            "title": "Portrait",
            "rating": 5,
            "tags": ["t1", "t1", "t2"],
            "usage_type": "licensed",
            "usage_license_code": "cc_by_4_0",
            "attributed_name": "Jonny",
            "source_url": "https://x.org/a.jpg",
        },
        "/items/0",
        max_bytes=10_000,
        today=TODAY,
    )
    assert errors == []
    assert spec.tag_ids == ["t1", "t2"]
    assert spec.descriptive["usage_license_name"] == "Creative Commons Attribution 4.0"
    assert spec.descriptive["rating"] == 5


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"content_type": "text/html"}, ("unsupported_content_type", "/items/0/content_type")),
        ({"content_type": None}, ("content_type_blank", "/items/0/content_type")),
        ({"size": 0}, ("size_invalid", "/items/0/size")),
        ({"size": 10_001}, ("file_too_large", "/items/0/size")),
        ({"sha256": "xyz"}, ("sha256_invalid", "/items/0/sha256")),
        ({"title": "t" * 101}, ("title_too_long", "/items/0/title")),
        ({"description": "d" * 251}, ("description_too_long", "/items/0/description")),
        ({"rating": 6}, ("rating_inclusion", "/items/0/rating")),
        ({"rating": -1}, ("rating_inclusion", "/items/0/rating")),
        ({"slug": "Not A Slug"}, ("slug_invalid", "/items/0/slug")),
        ({"slug": "a" * 31}, ("slug_invalid", "/items/0/slug")),
        ({"year": 1799}, ("year_inclusion", "/items/0/year")),
        ({"year": 2027}, ("year_inclusion", "/items/0/year")),
        ({"date": "2026-11-23"}, ("date_inclusion", "/items/0/date")),
        ({"date": "1799-12-31"}, ("date_inclusion", "/items/0/date")),
        ({"type": "Image::Video"}, ("type_inclusion", "/items/0/type")),
        ({"type": "Image::Photo", "kind": "gameplay"}, ("kind_inclusion", "/items/0/kind")),
        ({"privacy": "secret"}, ("privacy_inclusion", "/items/0/privacy")),
        ({"usage_type": "stolen"}, ("usage_type_inclusion", "/items/0/usage_type")),
        ({"usage_license_code": "mine"}, ("usage_license_code_inclusion", "/items/0/usage_license_code")),
        ({"attributed_url": "javascript:alert(1)"}, ("attributed_url_invalid", "/items/0/attributed_url")),
        ({"profile": "huge"}, ("profile_unknown", "/items/0/profile")),
        ({"purpose": "banner"}, ("purpose_inclusion", "/items/0/purpose")),
        ({"metadata": {"k": 1}}, ("metadata_invalid", "/items/0/metadata")),
        ({"tags": [{"nope": 1}]}, ("tag_id_invalid", "/items/0/tags/0")),
        ({"colour": "red"}, ("unknown_field", "/items/0/colour")),
    ],
)
def test_each_rule_has_a_stable_code_and_pointer(change, expected):
    assert expected in codes({**VALID, **change})


def test_licensed_usage_needs_licence_attribution_and_source_all_reported_at_once():
    found = codes({**VALID, "usage_type": "licensed"})
    assert found == {
        ("usage_license_code_blank", "/items/0/usage_license_code"),
        ("attributed_name_blank", "/items/0/attributed_name"),
        ("source_url_blank", "/items/0/source_url"),
    }


def test_comma_separated_tags_are_labels():
    spec, errors = validate_item({**VALID, "tags": "sunset, beach,,sunset"}, "", max_bytes=10_000)
    assert errors == []
    assert spec.tag_labels == ["sunset", "beach"]
    assert spec.tag_ids == []


def test_filenames_lose_paths_and_control_characters():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\..\\boot.ini") == "boot.ini"
    assert safe_filename("a\x00b\nc.jpg") == "abc.jpg"
    assert safe_filename("...") == "upload"
    assert len(safe_filename("é" * 300)) == 255
    assert safe_filename("é" * 300 + ".jpeg") == "é" * 250 + ".jpeg"


def test_slugify_limits_to_thirty_characters_of_a_to_z_digits_and_hyphens():
    assert slugify("Portrait of Takashi Tezuka!") == "portrait-of-takashi-tezuka"
    assert slugify("Ünïcödé  title — with a very long tail indeed") == "unicode-title-with-a-very-long"
    assert slugify("!!!") == ""
