"""imgdrop.delivery: CloudFront canned-policy signing and verification, the stable signing window,
delivery URLs of an image record (variants, formats, auto URL, srcset, original) and invalidation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from imgdrop.delivery import (
    EXPIRED,
    TAMPERED,
    UNKNOWN_KEY,
    UNSIGNED,
    Delivery,
    DeliveryNotConfigured,
    Invalidator,
    SecretsManagerKey,
    UrlSigner,
    auto_key,
    caller_reference,
    canned_policy,
    verify_signed_url,
    window_expires,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://cdn.example.com"
KEY_ID = "K2TESTKEYPAIR"
W = 3600
T0 = 1_800_000_000.0  # a window boundary: 1_800_000_000 = 500_000 * 3600


def _pems(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def signer(keys) -> UrlSigner:
    return UrlSigner(KEY_ID, lambda: keys[0], window_seconds=W)


@pytest.fixture
def cdn(signer) -> Delivery:
    return Delivery(BASE + "/", signer)


def public_keys(keys) -> dict[str, str]:
    return {KEY_ID: keys[1]}


def params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def record(prefix: str = "public/t1/img_1/r1", *, alpha: bool = False) -> dict:
    fallback, ext = ("png", "png") if alpha else ("jpeg", "jpg")

    def variant(name: str, width: int, height: int, formats: tuple[str, ...]) -> dict:
        exts = {"jpeg": ext, "png": "png", "webp": "webp", "avif": "avif"}
        fmts = {fallback: {"key": f"{prefix}/{name}.{exts[fallback]}", "bytes": width * 10}}
        for fmt in formats:
            fmts[fmt] = {"key": f"{prefix}/{name}.{exts[fmt]}", "bytes": width * 5}
        return {"width": width, "height": height, "format": fallback, "formats": fmts}

    return {
        "large": variant("large", 2048, 1536, ("webp",)),
        "medium": variant("medium", 1024, 768, ("webp", "avif")),
        "small": variant("small", 512, 384, ("webp", "avif")),
        "thumb": variant("thumb", 256, 256, ("webp", "avif")),
    }


FIT = ("large", "medium", "small")  # the default profile's fit variants; thumb is cover


# ---------------------------------------------------------------- signing and verification


def test_sign_then_verify_round_trip(signer, keys):
    url = signer.sign(f"{BASE}/images/t1/img_1/r1/original.jpg", now=T0 + 10)
    assert url.startswith(f"{BASE}/images/t1/img_1/r1/original.jpg?Expires=")
    assert set(params(url)) == {"Expires", "Signature", "Key-Pair-Id"}
    assert params(url)["Key-Pair-Id"] == KEY_ID
    assert verify_signed_url(url, public_keys(keys), now=T0 + 11) is None


def test_the_policy_is_the_canned_policy_botocore_signs():
    from datetime import UTC, datetime

    from botocore.signers import CloudFrontSigner

    built = CloudFrontSigner(KEY_ID, lambda m: b"").build_policy(f"{BASE}/a.jpg", datetime.fromtimestamp(T0, UTC))
    assert canned_policy(f"{BASE}/a.jpg", int(T0)) == built


def test_expires_is_the_end_of_the_next_window():
    assert window_expires(T0, W) == T0 + 2 * W
    assert window_expires(T0 + W - 1, W) == T0 + 2 * W
    assert window_expires(T0 + W, W) == T0 + 3 * W
    for now in (T0, T0 + 1, T0 + W / 2, T0 + W - 0.5):  # valid at least one window more
        assert window_expires(now, W) - now > W


def test_the_same_url_within_a_window_and_another_after_it(signer):
    url = f"{BASE}/images/t1/img_1/r1/medium.jpg"
    first = signer.sign(url, now=T0 + 1)
    assert signer.sign(url, now=T0 + W - 1) == first
    after = signer.sign(url, now=T0 + W)
    assert after != first
    assert int(params(after)["Expires"]) == int(params(first)["Expires"]) + W


def test_the_clock_is_injectable(keys):
    clock = [T0 + 5]
    signer = UrlSigner(KEY_ID, lambda: keys[0], window_seconds=W, clock=lambda: clock[0])
    url = signer.sign(f"{BASE}/x.jpg")
    assert int(params(url)["Expires"]) == T0 + 2 * W
    clock[0] = T0 + W + 5
    assert int(params(signer.sign(f"{BASE}/x.jpg"))["Expires"]) == T0 + 3 * W


def test_an_expired_url_is_refused(signer, keys):
    url = signer.sign(f"{BASE}/images/t1/i/r/original.jpg", now=T0)
    expires = int(params(url)["Expires"])
    assert verify_signed_url(url, public_keys(keys), now=expires - 1) is None
    assert verify_signed_url(url, public_keys(keys), now=expires) == EXPIRED
    assert verify_signed_url(url, public_keys(keys), now=expires + 86400) == EXPIRED


def test_tampering_is_refused(signer, keys):
    url = signer.sign(f"{BASE}/images/t1/img_1/r1/large.jpg", now=T0)
    pk = public_keys(keys)
    expires = params(url)["Expires"]
    signature = params(url)["Signature"]
    cases = {
        "path": url.replace("/img_1/", "/img_2/"),
        "host": url.replace("cdn.example.com", "evil.example.com"),
        "expires": url.replace(f"Expires={expires}", f"Expires={int(expires) + W}"),
        "signature": url.replace(f"Signature={signature}", f"Signature={'A' if signature[0] != 'A' else 'B'}"
                                 f"{signature[1:]}"),
        "signature not base64": url.replace(f"Signature={signature}", "Signature=%%%"),
        "no signature": url.replace(f"&Signature={signature}", ""),
        "no expires": url.replace(f"Expires={expires}&", ""),
        "query added": url + "&w=100",
    }
    for name, bad in cases.items():
        assert verify_signed_url(bad, pk, now=T0 + 1) == TAMPERED, name
    # a signed URL made expired by hand stays tampered, not expired: the signature is checked first
    assert verify_signed_url(url.replace(f"Expires={expires}", f"Expires={int(T0) - 1}"), pk,
                             now=T0 + 1) == TAMPERED


def test_unsigned_and_unknown_keys_are_refused(signer, keys):
    assert verify_signed_url(f"{BASE}/images/t1/i/r/original.jpg", public_keys(keys), now=T0) == UNSIGNED
    url = signer.sign(f"{BASE}/images/t1/i/r/original.jpg", now=T0)
    assert verify_signed_url(url, {"KOTHER": keys[1]}, now=T0) == UNKNOWN_KEY
    other = _pems(rsa.generate_private_key(public_exponent=65537, key_size=2048))[1]
    assert verify_signed_url(url, {KEY_ID: other}, now=T0) == TAMPERED  # signed by another key


def test_other_query_parameters_are_part_of_the_signed_resource(signer, keys):
    url = signer.sign(f"{BASE}/images/t1/i/r/original.jpg?download=1", now=T0)
    assert "?download=1&Expires=" in url
    assert verify_signed_url(url, public_keys(keys), now=T0) is None
    assert verify_signed_url(url.replace("download=1", "download=2"), public_keys(keys), now=T0) == TAMPERED


def test_the_key_is_fetched_lazily_once(keys):
    calls = []

    def provider() -> str:
        calls.append(1)
        return keys[0]

    signer = UrlSigner(KEY_ID, provider, window_seconds=W)
    assert calls == []
    signer.sign(f"{BASE}/a.jpg", now=T0)
    signer.sign(f"{BASE}/b.jpg", now=T0)
    signer.sign(f"{BASE}/a.jpg", now=T0 + 5 * W)
    assert calls == [1]


def test_secrets_manager_key_reads_the_secret_once(keys):
    class Client:
        calls: list[str] = []

        def get_secret_value(self, SecretId):  # noqa: N803 - boto3's name
            self.calls.append(SecretId)
            return {"SecretString": keys[0]}

    client = Client()
    provider = SecretsManagerKey("arn:aws:secretsmanager:us-east-1:1:secret:cdn-abcdef", client=client)
    signer = UrlSigner(KEY_ID, provider, window_seconds=W)
    signer.sign(f"{BASE}/a.jpg", now=T0)
    signer.sign(f"{BASE}/b.jpg", now=T0)
    assert client.calls == ["arn:aws:secretsmanager:us-east-1:1:secret:cdn-abcdef"]


def test_importing_delivery_loads_no_aws_sdk_nor_cryptography():
    code = ("import sys, imgdrop.delivery; "
            "print(sorted(m for m in ('boto3', 'botocore', 'cryptography') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT / "layers" / "core"), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- the image object's URLs


def all_urls(answers: dict, srcset: dict) -> list[str]:
    urls = []
    for v in answers.values():
        urls += [v["url"], v["auto_url"], *(f["url"] for f in v["formats"].values())]
    for value in srcset.values():
        urls += [entry.rsplit(" ", 1)[0] for entry in value.split(", ")]
    return urls


def test_public_variants_are_unsigned_and_the_same_on_every_read(cdn):
    first = cdn.variant_answers(record(), "public", fit_variants=FIT, now=T0)
    again = cdn.variant_answers(record(), "unlisted", fit_variants=FIT, now=T0 + 10 * W)
    assert first == again
    answers, _ = first
    assert answers["medium"] == {
        "url": f"{BASE}/public/t1/img_1/r1/medium.jpg",
        "width": 1024,
        "height": 768,
        "bytes": 10240,
        "format": "jpeg",
        "formats": {
            "jpeg": {"url": f"{BASE}/public/t1/img_1/r1/medium.jpg", "bytes": 10240},
            "webp": {"url": f"{BASE}/public/t1/img_1/r1/medium.webp", "bytes": 5120},
            "avif": {"url": f"{BASE}/public/t1/img_1/r1/medium.avif", "bytes": 5120},
        },
        "auto_url": f"{BASE}/public/t1/img_1/r1/medium.auto.avif-webp-jpg",
    }
    assert list(answers["medium"]["formats"]) == ["jpeg", "webp", "avif"]  # the fallback first
    assert all("?" not in url for url in all_urls(*first))


def test_private_variants_are_signed_everywhere(cdn, keys):
    answers, srcset = cdn.variant_answers(record("images/t1/img_1/r1"), "private", fit_variants=FIT, now=T0)
    urls = all_urls(answers, srcset)
    assert len(urls) == 4 + 4 + 11 + 3 + 3 + 2  # url, auto_url, formats; srcset jpeg, webp, avif
    for url in urls:
        assert set(params(url)) == {"Expires", "Signature", "Key-Pair-Id"}, url
        assert verify_signed_url(url, public_keys(keys), now=T0 + 1) is None, url
    assert answers["thumb"]["auto_url"].startswith(f"{BASE}/images/t1/img_1/r1/thumb.auto.avif-webp-jpg?Expires=")
    # the same signed URLs for every read within the window
    assert cdn.variant_answers(record("images/t1/img_1/r1"), "private", fit_variants=FIT,
                               now=T0 + W - 1) == (answers, srcset)


def test_a_key_outside_public_is_signed_whatever_the_privacy_says(cdn):
    answers, _ = cdn.variant_answers(record("images/t1/img_1/r1"), "public", now=T0)
    assert "Signature=" in answers["small"]["url"] and "Signature=" in answers["small"]["auto_url"]


def test_srcset_lists_fit_variants_by_width_per_format(cdn):
    rec = record()
    rec["ipad"] = {**rec["medium"], "formats": {"jpeg": {"key": "public/t1/img_1/r1/ipad.jpg", "bytes": 1}}}
    _, srcset = cdn.variant_answers(rec, "public", fit_variants=(*FIT, "ipad"), now=T0)
    p = f"{BASE}/public/t1/img_1/r1"
    # thumb is a cover variant: never listed; ipad has medium's width: one entry per width
    assert srcset == {
        "jpeg": f"{p}/small.jpg 512w, {p}/ipad.jpg 1024w, {p}/large.jpg 2048w",
        "webp": f"{p}/small.webp 512w, {p}/medium.webp 1024w, {p}/large.webp 2048w",
        "avif": f"{p}/small.avif 512w, {p}/medium.avif 1024w",  # large has no avif
    }
    assert cdn.variant_answers(rec, "public", now=T0)[1] == {}  # no fit variants named


def test_auto_urls_list_the_formats_by_preference_with_the_fallback_last(cdn):
    answers, _ = cdn.variant_answers(record(alpha=True), "public", now=T0)
    assert answers["large"]["auto_url"].endswith("/public/t1/img_1/r1/large.auto.webp-png")
    assert answers["thumb"]["auto_url"].endswith("/thumb.auto.avif-webp-png")
    assert answers["thumb"]["format"] == "png"
    assert auto_key("public/t/i/r/m.gif", ["gif", "webp"], "gif") == "public/t/i/r/m.auto.webp-gif"
    assert auto_key("public/t/i/r/m.jpg", ["jpeg"], "jpeg") == "public/t/i/r/m.auto.jpg"


def test_a_single_format_variant_record_still_answers(cdn):
    legacy = {"small": {"key": "public/t/i/r/small.webp", "width": 512, "height": 300, "bytes": 9,
                        "format": "webp"}}
    answers, _ = cdn.variant_answers(legacy, "public", now=T0)
    assert answers["small"]["url"] == f"{BASE}/public/t/i/r/small.webp"
    assert answers["small"]["formats"] == {"webp": {"url": f"{BASE}/public/t/i/r/small.webp", "bytes": 9}}


def test_decimal_numbers_from_dynamodb_answer_as_ints(cdn):
    from decimal import Decimal

    rec = {"s": {"width": Decimal(512), "height": Decimal(300), "format": "jpeg",
                 "formats": {"jpeg": {"key": "public/t/i/r/s.jpg", "bytes": Decimal(77)}}}}
    answers, srcset = cdn.variant_answers(rec, "public", fit_variants=["s"], now=T0)
    assert (answers["s"]["width"], answers["s"]["bytes"]) == (512, 77)
    assert type(answers["s"]["width"]) is int
    assert srcset == {"jpeg": f"{BASE}/public/t/i/r/s.jpg 512w"}


def test_the_original_is_always_signed(cdn, keys):
    original = {"key": "images/t1/img_1/r1/original.jpg", "width": 4000, "height": 3000, "bytes": 123,
                "format": "jpeg"}
    answer = cdn.original_answer(original, now=T0)
    assert {k: v for k, v in answer.items() if k != "url"} == {"width": 4000, "height": 3000, "bytes": 123,
                                                                "format": "jpeg"}
    assert answer["url"].startswith(f"{BASE}/images/t1/img_1/r1/original.jpg?Expires=")
    assert verify_signed_url(answer["url"], public_keys(keys), now=T0) is None


def test_signing_without_a_signer_or_urls_without_a_base_refuse():
    with pytest.raises(DeliveryNotConfigured):
        Delivery(BASE).original_answer({"key": "images/t/i/r/original.jpg"})
    with pytest.raises(DeliveryNotConfigured):
        Delivery("").variant_answers(record(), "public")
    assert Delivery(BASE).variant_answers(record(), "public")[0]["small"]["url"].startswith(BASE)


def test_the_services_build_delivery_from_the_settings(keys):
    from imgdrop.services import build_services
    from imgdrop.settings import Settings

    settings = Settings.from_environment({
        "TABLE_NAME": "t",
        "BUCKET_NAME": "b",
        "CDN_BASE_URL": "http://127.0.0.1:3001",
        "CDN_KEY_PAIR_ID": KEY_ID,
        "CDN_PRIVATE_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:k-abcdef",
        "SIGNED_URL_WINDOW_SECONDS": "7200",
        "CDN_DISTRIBUTION_ID": "E123",
    })
    services = build_services(settings)
    d = services.delivery
    assert d.base_url == "http://127.0.0.1:3001"
    assert d.signer is not None and (d.signer.key_pair_id, d.signer.window_seconds) == (KEY_ID, 7200)
    answers, _ = d.variant_answers(record(), "public", now=T0)
    assert answers["small"]["url"] == "http://127.0.0.1:3001/public/t1/img_1/r1/small.jpg"
    assert services.invalidator.distribution_id == "E123"


# ---------------------------------------------------------------- invalidation


class StubCloudFront:
    def __init__(self):
        self.calls: list[dict] = []

    def create_invalidation(self, **kwargs):
        self.calls.append(kwargs)
        return {"Invalidation": {"Id": f"I{len(self.calls)}", "Status": "InProgress"}}


def test_invalidate_sends_the_paths_to_the_distribution():
    client = StubCloudFront()
    ids = Invalidator("E123", client=client).invalidate(["/public/t1/img_1/*", "/public/t1/img_1/*"], "img_1:v7")
    assert ids == ["I1"]
    (call,) = client.calls
    assert call["DistributionId"] == "E123"
    assert call["InvalidationBatch"]["Paths"] == {"Quantity": 1, "Items": ["/public/t1/img_1/*"]}
    assert call["InvalidationBatch"]["CallerReference"] == caller_reference(["/public/t1/img_1/*"], "img_1:v7")


def test_caller_reference_is_the_same_for_a_retry_and_differs_between_changes():
    a, b = "/public/t1/img_1/*", "/public/t1/img_2/*"
    ref = caller_reference([a, b], "change-1")
    assert caller_reference([b, a], "change-1") == ref  # a retry of the same change
    assert caller_reference([a, b], "change-2") != ref  # another change of the same image
    assert caller_reference([a], "change-1") != ref  # other paths
    assert len(ref) <= 128


def test_invalidation_is_a_no_op_without_a_distribution_or_paths():
    client = StubCloudFront()
    assert Invalidator("", client=client).invalidate(["/public/t/i/*"], "x") == []
    assert Invalidator("E1", client=client).invalidate([], "x") == []
    assert client.calls == []


def test_many_paths_go_in_batches_of_cloudfronts_limit():
    client = StubCloudFront()
    paths = [f"/public/t/img_{i}/*" for i in range(3001)]
    assert Invalidator("E1", client=client).invalidate(paths, "bulk") == ["I1", "I2"]
    assert [c["InvalidationBatch"]["Paths"]["Quantity"] for c in client.calls] == [3000, 1]
    refs = {c["InvalidationBatch"]["CallerReference"] for c in client.calls}
    assert len(refs) == 2
