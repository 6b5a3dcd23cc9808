"""imgdrop.models: one Image for the answers, the events and the webhooks; request models whose
errors map onto imgdrop's codes; every model a component of the OpenAPI document."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from imgdrop.catalogue.presenting import present_image
from imgdrop.delivery import Delivery, UrlSigner
from imgdrop.models import (
    DOCUMENTED,
    AlbumCreate,
    Image,
    TagCreate,
    UploadItem,
    UploadsRequest,
    WebhookEvent,
    component_schemas,
)
from imgdrop.store.db import ImageRecord, image_pk, image_sk
from imgdrop.validation import field_errors


@pytest.fixture(autouse=True)
def settings_env(monkeypatch):
    """Settings (read by profiles) need the deployment's names."""
    from imgdrop.settings import get_settings

    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("BUCKET_NAME", "b")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def services() -> SimpleNamespace:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    delivery = Delivery("https://cdn.example.com", UrlSigner("KTEST", lambda: pem, window_seconds=3600))
    settings = SimpleNamespace(api_base_url="https://api.example.com", api_base_path="/v1")
    return SimpleNamespace(delivery=delivery, settings=settings, repo=None)


def record(status: str, **attributes) -> ImageRecord:
    return ImageRecord(
        image_pk("acme", "01IMG"), image_sk("01IMG"), tenant="acme", id="01IMG", status=status, content_type="image/jpeg",
        declared_bytes=1234, profile="default", tag_ids=["t1", "t2"], upload_key="uploads/acme/01IMG",
        upload_expires_at="2026-01-01T00:15:00.000Z", created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z", **attributes,
    )


READY = dict(
    filename="a.jpg",
    fields={"title": "A", "privacy": "public", "rating": 4, "usage_license_code": "cc_by_4_0",
            "usage_license_name": "Creative Commons Attribution 4.0", "metadata": {"k": "v"}},
    result={"sha256": "ab" * 32, "format": "jpeg", "width": 800, "height": 600, "phash": "d3d6288320d7d3d3",
            "dhash": "0" * 16, "exif": {"Make": "Canon"}, "gps": {"lat": 48.8, "lon": 2.29, "alt": None},
            "taken_at": "2024-05-01T12:30:00+02:00", "camera": {"make": "Canon", "model": "EOS"},
            "colors": [{"hex": "#0a64c8", "percent": 100.0}], "grayscale": False, "has_alpha": False,
            "blurhash": "L81F", "animated": False, "frames": 1},
    variants={"medium": {"width": 800, "height": 600, "format": "jpeg", "formats": {
        "jpeg": {"key": "public/acme/01IMG/r1/medium.jpg", "bytes": 900},
        "webp": {"key": "public/acme/01IMG/r1/medium.webp", "bytes": 700}}}},
    original={"key": "images/acme/01IMG/r1/original.jpg", "width": 800, "height": 600, "bytes": 1234,
              "format": "jpeg"},
    tags=[{"id": "t1", "category": None, "label": "sun"}, {"id": "t2", "error": "tag_error"}],
    similar=[{"id": "01OTHER", "distance": 3}],
    processed_at="2026-01-01T00:00:05.000Z",
)


@pytest.mark.parametrize(("status", "attributes"), [
    ("pending", {}),
    ("ready", READY),
    ("failed", {"errors": [{"code": "file_error", "title": "The file is no image."}],
                "processed_at": "2026-01-01T00:00:05.000Z"}),
])
def test_the_presented_image_is_exactly_the_image_model(services, status, attributes):
    body = present_image(record(status, **attributes), services)
    image = Image.model_validate(body)  # what the API answers, the events carry and webhooks deliver
    assert set(body) == set(Image.model_fields), "present_image and Image name the same fields"
    assert image.model_dump(mode="json") == body
    assert WebhookEvent.model_validate({"type": "image.ready", "timestamp": "2026-01-01T00:00:05Z",
                                        "data": body}).data == image


def test_every_field_present_before_processing_is_required_and_nullable():
    schema = component_schemas()["Image"]
    assert {"id", "status", "width", "variants", "srcset", "original", "gps", "processed_at", "links"} <= set(
        schema["required"])
    assert {"type": "null"} in schema["properties"]["width"]["anyOf"]
    variant = component_schemas()["Variant"]
    assert set(variant["required"]) == {"url", "width", "height", "bytes", "format", "formats", "auto_url"}


def test_every_documented_model_is_a_component():
    names = set(component_schemas())
    assert {model.__name__ for model in DOCUMENTED} <= names
    assert {"Webhook", "WebhookCreated", "Job", "UploadPending", "UploadDuplicate", "UploadFailed",
            "ErrorBody", "ImageUploadJson", "ImageUploadForm"} <= names
    form = component_schemas()["ImageUploadForm"]
    assert form["properties"]["file"]["format"] == "binary"


def test_the_uploads_envelope_is_lenient_and_documents_its_items():
    assert UploadsRequest.model_validate({"items": [{"size": "not checked here"}]}).items == [
        {"size": "not checked here"}]
    items = component_schemas()["UploadsRequest"]["properties"]["items"]
    assert items["items"] == {"$ref": "#/components/schemas/UploadItem"}
    assert (items["minItems"], items["maxItems"]) == (1, 100)
    assert set(component_schemas()["UploadItem"]["required"]) == {"content_type", "size"}


def codes(model, raw, prefix=""):
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw, context={"max_bytes": 100})
    return {(e.code, e.pointer) for e in field_errors(caught.value.errors(), prefix)}


def test_pydantic_errors_map_onto_stable_codes_and_pointers():
    assert codes(TagCreate, {"label": "   ", "category": 5}) == {("label_blank", "/label"),
                                                                ("category_invalid", "/category")}
    assert codes(TagCreate, {"label": "x" * 65}) == {("label_too_long", "/label")}
    assert codes(AlbumCreate, {}) == {("name_blank", "/name")}
    assert codes(AlbumCreate, {"name": "x" * 101}) == {("name_too_long", "/name")}
    assert codes(UploadItem, {"content_type": "image/png", "size": 101, "tags": ["ok", "not ok"]}, "/items/3") == {
        ("file_too_large", "/items/3/size"), ("tag_id_invalid", "/items/3/tags/1")}
    assert codes(UploadItem, {"content_type": "image/png", "size": 1, "colour": 1}) == {
        ("unknown_field", "/colour")}
