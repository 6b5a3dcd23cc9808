"""Bearer tokens through functions/authorizer/app.py, then functions/api/app.py.

The emulated HTTP API of infra/local calls the authorizer first, as API Gateway does, and the
api function answers its verdict in imgdrop's error shape. The authorizer's verifier accepts the
stack's HS256 tokens and, as when deployed with `OidcIssuer`, RS256 tokens of an OIDC issuer
whose JWKS a stub `jwt.PyJWKClient` serves from an RSA key made here (no network).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from imgdrop.auth import TokenVerifier
from imgdrop_local.http_api import HttpApi
from imgdrop_local.lambda_runtime import LambdaRuntime, load_handler
from imgdrop_local.template import load

ISSUER = "https://idp.example.test/pool-1"
AUDIENCE = "imgdrop-api"
KID = "key-1"
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


IDP_KEY = _rsa_key()
OTHER_KEY = _rsa_key()


class StubJWKClient(jwt.PyJWKClient):
    """The issuer's JWKS, served from memory instead of `{issuer}/.well-known/jwks.json`."""

    def __init__(self, keys: dict[str, rsa.RSAPublicKey]):
        super().__init__(f"{ISSUER}/.well-known/jwks.json", cache_keys=False)
        self.jwks = {"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True), "kid": kid, "use": "sig",
                               "alg": "RS256"} for kid, key in keys.items()]}
        self.fetches = 0

    def fetch_data(self) -> Any:
        self.fetches += 1
        return self.jwks


# --------------------------------------------------------------------------- the gateway


class Gateway:
    def __init__(self, aws: Any, jwks: StubJWKClient):
        authorizer = load_handler(aws.stack.function("AuthorizerFunction"))
        self.authorizer_module = sys.modules[authorizer.__module__]
        self.runtime = LambdaRuntime(aws.stack, retry_delays=(0.0,), workers=1,
                                     handlers={"AuthorizerFunction": authorizer})
        self.http = HttpApi(self.runtime, aws.stack.routes, aws.stack.cors, static_dir=Path("/nonexistent"))
        self.secret = aws.jwt_secret
        self.jwks = jwks

    def call(self, method: str, path: str, token: str | None, body: Any = None,
             authorization: str | None = None) -> tuple[int, dict[str, str], Any]:
        headers = {"host": "127.0.0.1:3000"}
        if authorization is not None:
            headers["authorization"] = authorization
        elif token is not None:
            headers["authorization"] = f"Bearer {token}"
        payload = b""
        if body is not None:
            headers["content-type"] = "application/json"
            payload = json.dumps(body).encode()
        status, pairs, raw = self.http.handle(method, path, headers, payload)
        headers = dict(pairs)
        if raw and headers.get("content-type", "").startswith("application/json"):
            return status, headers, json.loads(raw)
        return status, headers, raw.decode("utf-8", "replace") or None

    # tokens
    def hs256(self, *, tenant: str | None = "acme", scope: str = "images:read images:write tags:write",
              ttl: int = 3600, key: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": "ana", "scope": scope, "iat": now, "exp": now + ttl}
        if tenant is not None:
            payload["tenant"] = tenant
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not _DROP}, key or self.secret,
                          algorithm="HS256")

    def rs256(self, *, key: rsa.RSAPrivateKey = IDP_KEY, kid: str = KID, ttl: int = 3600,
              **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"sub": "oidc-user", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl,
                                   "custom:tenant": "acme", "scope": "images:read images:write"}
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not _DROP}, key, algorithm="RS256",
                          headers={"kid": kid})


_DROP = object()


@pytest.fixture
def gateway(aws, monkeypatch) -> Gateway:
    jwks = StubJWKClient({KID: IDP_KEY.public_key()})
    gw = Gateway(aws, jwks)
    verifier = TokenVerifier(aws.jwt_secret, oidc_issuer=ISSUER, oidc_audience=AUDIENCE, jwks_client=jwks)
    monkeypatch.setattr(gw.authorizer_module, "verifier", verifier)
    return gw


def assert_refused(answer: tuple[int, dict[str, str], Any], status: int, code: str) -> dict[str, Any]:
    """The contract's error shape: {"errors": [{"status": "401", "code": ..., "title": ...}]}."""
    got_status, headers, body = answer
    assert (got_status, body and body["errors"][0]["code"]) == (status, code), body
    assert headers.get("content-type", "").startswith("application/json")
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["status"] == str(status)
    assert isinstance(error["title"], str) and error["title"]
    assert set(error) <= {"status", "code", "title", "source"}
    return error


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hmac_token(claims: dict[str, Any], key: bytes) -> str:
    """HS256 by hand: PyJWT itself refuses a PEM key as an HMAC secret, an attacker would not."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{_b64(claims)}"
    digest = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def _with_payload(token: str, **changes: Any) -> str:
    """The same header and signature over a changed payload: a tampered token."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(claims)}.{signature}"


PROTECTED = [r for r in load().routes if r.function == "ApiFunction" and r.authorizer]


# --------------------------------------------------------------------------- the happy paths


def test_valid_tokens_of_both_kinds_are_accepted(gateway: Gateway):
    assert gateway.call("GET", "/v1/images", gateway.hs256())[0] == 200
    status, _, body = gateway.call("POST", "/v1/albums", gateway.rs256(), {"name": "From OIDC"})
    assert status == 201, body
    # the OIDC caller is tenant acme (Cognito's custom:tenant): the HS256 caller of acme sees the album
    assert gateway.call("GET", f"/v1/albums/{body['id']}", gateway.hs256())[0] == 200
    assert gateway.call("GET", f"/v1/albums/{body['id']}", gateway.hs256(tenant="other"))[0] == 404
    assert gateway.jwks.fetches >= 1


def test_leeway_is_five_seconds_at_most(gateway: Gateway):
    assert gateway.call("GET", "/v1/images", gateway.hs256(ttl=-3))[0] == 200
    assert gateway.call("GET", "/v1/images", gateway.rs256(ttl=-3))[0] == 200
    assert_refused(gateway.call("GET", "/v1/images", gateway.hs256(ttl=-8)), 401, "token_expired")
    assert_refused(gateway.call("GET", "/v1/images", gateway.rs256(ttl=-8)), 401, "token_expired")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.route_key)
def test_every_protected_route_without_a_token_is_401_token_missing(gateway: Gateway, route):
    path = route.path.replace("{id}", "01ANYTHING")
    assert_refused(gateway.call(route.method, path, None, {} if route.method in ("POST", "PATCH") else None),
                   401, "token_missing")


def test_public_routes_need_no_token(gateway: Gateway):
    public = sorted(r.path for r in load().routes if r.function == "ApiFunction" and not r.authorizer)
    assert public == ["/v1/docs", "/v1/health", "/v1/openapi.json"]
    for path in public:
        assert gateway.call("GET", path, None)[0] == 200, path


FORGED_CASES = [
    "alg none", "alg none, uppercase", "HS256 with a wrong key", "HS256, payload tampered", "HS256, tenant swapped",
    "HS256, signature dropped", "HS256 keyed with the RSA public key", "RS256 with a wrong key",
    "RS256 with an unknown kid", "RS256, payload tampered", "RS384 (not accepted)", "not a JWT", "two segments",
]


def _forged(gateway: Gateway) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "ana", "tenant": "acme", "scope": "admin", "exp": now + 3600, "iat": now}
    rsa_public_pem = IDP_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg none, uppercase": f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{_b64(claims)}.",
        "HS256 with a wrong key": gateway.hs256(key="not-the-stack-secret-at-all-0123456789"),
        "HS256, payload tampered": _with_payload(gateway.hs256(scope="images:read"), scope="admin"),
        "HS256, tenant swapped": _with_payload(gateway.hs256(), tenant="victim"),
        "HS256, signature dropped": gateway.hs256().rsplit(".", 1)[0] + ".",
        # algorithm confusion: the issuer's public key used as an HMAC secret
        "HS256 keyed with the RSA public key": _hmac_token(claims, rsa_public_pem),
        "RS256 with a wrong key": gateway.rs256(key=OTHER_KEY),
        "RS256 with an unknown kid": gateway.rs256(key=OTHER_KEY, kid="key-2"),
        "RS256, payload tampered": _with_payload(gateway.rs256(), **{"custom:tenant": "victim"}),
        "RS384 (not accepted)": jwt.encode({**claims, "iss": ISSUER, "aud": AUDIENCE}, IDP_KEY, algorithm="RS384",
                                           headers={"kid": KID}),
        "not a JWT": "definitely-not-a-jwt",
        "two segments": "a.b",
    }


@pytest.mark.parametrize("case", FORGED_CASES)
def test_forged_tokens_are_401_token_invalid(gateway: Gateway, case: str):
    forged = _forged(gateway)
    assert sorted(forged) == sorted(FORGED_CASES)
    token = forged[case]
    for method, path, body in (("GET", "/v1/images", None), ("POST", "/v1/albums", {"name": "x"})):
        assert_refused(gateway.call(method, path, token, body), 401, "token_invalid")


@pytest.mark.parametrize("authorization", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", "Token abc"])
def test_a_malformed_authorization_header_is_401_token_invalid(gateway: Gateway, authorization: str):
    assert_refused(gateway.call("GET", "/v1/images", None, authorization=authorization), 401, "token_invalid")


def test_expired_tokens_are_401_token_expired(gateway: Gateway):
    for token in (gateway.hs256(ttl=-60), gateway.rs256(ttl=-60)):
        assert_refused(gateway.call("GET", "/v1/images", token), 401, "token_expired")
        assert_refused(gateway.call("POST", "/v1/tags", token, {"label": "x"}), 401, "token_expired")


@pytest.mark.parametrize("kind", ["hs256", "rs256"])
def test_not_yet_valid_tokens_are_401_token_invalid(gateway: Gateway, kind: str):
    make = getattr(gateway, kind)
    now = int(time.time())
    assert_refused(gateway.call("GET", "/v1/images", make(nbf=now + 60)), 401, "token_invalid")
    assert_refused(gateway.call("GET", "/v1/images", make(iat=now + 60)), 401, "token_invalid")
    assert gateway.call("GET", "/v1/images", make(nbf=now + 3))[0] == 200  # within the 5 s leeway


@pytest.mark.parametrize("claims", [
    {"aud": "someone-else"}, {"aud": ["someone-else", "another"]}, {"aud": _DROP},
], ids=["wrong", "wrong list", "missing"])
def test_oidc_tokens_for_another_audience_are_401_token_invalid(gateway: Gateway, claims: dict[str, Any]):
    assert_refused(gateway.call("GET", "/v1/images", gateway.rs256(**claims)), 401, "token_invalid")
    # the audience may be a list that names imgdrop
    assert gateway.call("GET", "/v1/images", gateway.rs256(aud=["other", AUDIENCE]))[0] == 200


@pytest.mark.parametrize("issuer", ["https://evil.example.test/pool-1", ISSUER + "/", "", _DROP],
                         ids=["other", "trailing slash", "empty", "missing"])
def test_oidc_tokens_of_another_issuer_are_401_token_invalid(gateway: Gateway, issuer: Any):
    assert_refused(gateway.call("GET", "/v1/images", gateway.rs256(iss=issuer)), 401, "token_invalid")


@pytest.mark.parametrize("claims", [
    {"tenant": None}, {"tenant": ""}, {"tenant": 42}, {"tenant": ["acme"]},
], ids=["missing", "empty", "number", "list"])
def test_tokens_without_a_tenant_are_401_token_invalid(gateway: Gateway, claims: dict[str, Any]):
    assert_refused(gateway.call("GET", "/v1/images", gateway.hs256(**claims)), 401, "token_invalid")
    oidc = gateway.rs256(**{"custom:tenant": _DROP if claims["tenant"] is None else claims["tenant"]})
    assert_refused(gateway.call("GET", "/v1/images", oidc), 401, "token_invalid")


@pytest.mark.parametrize("claims", [{"exp": _DROP}, {"sub": _DROP}, {"albums": ["a1"]}, {"albums": "a1:read"}],
                         ids=["no exp", "no sub", "albums list", "albums string"])
def test_tokens_missing_required_claims_are_401_token_invalid(gateway: Gateway, claims: dict[str, Any]):
    assert_refused(gateway.call("GET", "/v1/images", gateway.hs256(**claims)), 401, "token_invalid")


@pytest.mark.parametrize("tenant", ["a/b", "T#x", "acme/../victim", "x" * 65, "a b", "acme\n", "ümlaut"],
                         ids=["slash", "hash", "dots", "65 chars", "space", "newline", "non-ascii"])
def test_unsafe_tenants_are_401_token_invalid(gateway: Gateway, tenant: str):
    """S3 keys are uploads/{tenant}/{id} and DynamoDB keys T#{tenant}: `/` and `#` never get there."""
    for token in (gateway.hs256(tenant=tenant), gateway.rs256(**{"custom:tenant": tenant})):
        assert_refused(gateway.call("GET", "/v1/images", token), 401, "token_invalid")
        assert_refused(gateway.call("POST", "/v1/uploads", token, {"items": [
            {"filename": "a.png", "content_type": "image/png", "size": 10}]}), 401, "token_invalid")
    assert gateway.call("GET", "/v1/images", gateway.hs256(tenant="x" * 64))[0] == 200
    assert gateway.call("GET", "/v1/images", gateway.hs256(tenant="Acme_corp-9"))[0] == 200


def test_tokens_that_live_longer_than_24_hours_are_401_token_invalid(gateway: Gateway):
    now = int(time.time())
    for token in (gateway.hs256(ttl=86401), gateway.rs256(ttl=86401), gateway.hs256(ttl=365 * 86400),
                  gateway.hs256(iat=now - 86400, exp=now + 60),  # issued a day ago: lived too long
                  gateway.hs256(iat=_DROP, exp=now + 86400 + 60), gateway.rs256(iat=_DROP, exp=now + 86400 + 60)):
        assert_refused(gateway.call("GET", "/v1/images", token), 401, "token_invalid")
    # the local stack's dev token lives exactly 24 h
    assert gateway.call("GET", "/v1/images", gateway.hs256(ttl=86400))[0] == 200
    assert gateway.call("GET", "/v1/images", gateway.rs256(ttl=86400))[0] == 200
    assert gateway.call("GET", "/v1/images", gateway.hs256(iat=_DROP, exp=now + 3600))[0] == 200


def test_cognito_access_tokens_are_checked_by_client_id(gateway: Gateway):
    """Cognito's access tokens carry the app client in `client_id` and no `aud`."""
    access = gateway.rs256(aud=_DROP, token_use="access", client_id=AUDIENCE, tenant="acme")
    assert gateway.call("GET", "/v1/images", access)[0] == 200
    for claims in ({"token_use": "access", "client_id": "another-app-client"}, {"token_use": "access"},
                   {"token_use": "id", "client_id": AUDIENCE}, {"client_id": AUDIENCE}):
        assert_refused(gateway.call("GET", "/v1/images", gateway.rs256(aud=_DROP, **claims)), 401, "token_invalid")


# --------------------------------------------------------------------------- the secret, as deployed


@pytest.fixture
def deployed_gateway(aws, monkeypatch) -> Gateway:
    """The authorizer as deployed: JWT_SECRET_ARN (the template's secret, in moto), no JWT_SECRET."""
    from aws_lambda_powertools.utilities import parameters

    from imgdrop.settings import get_settings

    monkeypatch.delenv("JWT_SECRET")
    get_settings.cache_clear()
    parameters.clear_caches()  # powertools keeps its Secrets Manager client per process
    assert get_settings().jwt_secret_arn == aws.stack.secret_name
    yield Gateway(aws, StubJWKClient({KID: IDP_KEY.public_key()}))
    get_settings.cache_clear()
    parameters.clear_caches()


def test_the_authorizer_reads_its_secret_on_first_use_and_takes_a_rotation(deployed_gateway: Gateway, aws,
                                                                           monkeypatch):
    from imgdrop.auth import SECRET_REFETCH_AFTER_SECONDS

    gw = deployed_gateway
    assert gw.authorizer_module.verifier is None  # nothing was fetched at import
    old_token = gw.hs256()
    assert gw.call("GET", "/v1/images", old_token)[0] == 200
    rotated = "rotated-" + aws.jwt_secret
    aws.client("secretsmanager").put_secret_value(SecretId=aws.stack.secret_name, SecretString=rotated)
    # right after a fetch, a token of the rotated secret does not make the verifier fetch again...
    assert_refused(gw.call("GET", "/v1/images", gw.hs256(key=rotated)), 401, "token_invalid")
    # ...a while later it does, once, and is accepted...
    monkeypatch.setattr(gw.authorizer_module.verifier, "clock",
                        lambda: time.monotonic() + SECRET_REFETCH_AFTER_SECONDS)
    assert gw.call("GET", "/v1/images", gw.hs256(key=rotated))[0] == 200
    # ...and the old secret's tokens are refused from then on
    assert_refused(gw.call("GET", "/v1/images", old_token), 401, "token_invalid")
    assert_refused(gw.call("GET", "/v1/images", gw.hs256()), 401, "token_invalid")


# --------------------------------------------------------------------------- scopes


WRITES = [
    ("POST", "/v1/uploads", {"items": [{"filename": "a.png", "content_type": "image/png", "size": 10}]}),
    ("POST", "/v1/images", {"file": "data:image/png;base64," + base64.b64encode(TINY_PNG).decode()}),
    ("PATCH", "/v1/images/{image}", {"title": "changed"}),
    ("DELETE", "/v1/images/{image}", None),
    ("POST", "/v1/albums", {"name": "Holidays"}),
    ("POST", "/v1/tags", {"label": "sunset"}),
]


@pytest.fixture
def image_id(gateway: Gateway) -> str:
    status, _, body = gateway.call("POST", "/v1/images", gateway.hs256(), {
        "file": "data:image/png;base64," + base64.b64encode(TINY_PNG).decode()})
    assert status == 201, body
    return body["id"]


@pytest.mark.parametrize("scope", ["images:read", "images:read superuser images:admin", ""])
@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_writes_with_a_read_only_token_are_403_insufficient_scope(gateway: Gateway, image_id: str, scope: str,
                                                                 method: str, path: str, body: Any):
    token = gateway.hs256(scope=scope)
    assert_refused(gateway.call(method, path.format(image=image_id), token, body), 403, "insufficient_scope")
    # and nothing changed
    status, _, image = gateway.call("GET", f"/v1/images/{image_id}", gateway.hs256())
    assert status == 200 and image["title"] is None


def test_reads_need_images_read(gateway: Gateway, image_id: str):
    token = gateway.hs256(scope="images:write tags:write")
    for path in ("/v1/images", f"/v1/images/{image_id}", f"/v1/images/{image_id}/similar", "/v1/tags",
                 "/v1/tags/01ANY", "/v1/albums/01ANY"):
        assert_refused(gateway.call("GET", path, token), 403, "insufficient_scope")


def test_creating_tags_needs_tags_write(gateway: Gateway):
    assert_refused(gateway.call("POST", "/v1/tags", gateway.hs256(scope="images:read images:write"),
                                {"label": "sunset"}), 403, "insufficient_scope")
    assert_refused(gateway.call("POST", "/v1/tags", gateway.rs256(), {"label": "sunset"}), 403, "insufficient_scope")
    status, _, tag = gateway.call("POST", "/v1/tags", gateway.hs256(scope="images:read tags:write"),
                                  {"label": "sunset"})
    assert (status, tag["label"]) == (201, "sunset")
    assert gateway.call("POST", "/v1/tags", gateway.hs256(scope="admin"), {"label": "dusk"})[0] == 201


def test_creating_albums_needs_images_write(gateway: Gateway):
    assert_refused(gateway.call("POST", "/v1/albums", gateway.hs256(scope="images:read tags:write"),
                                {"name": "x"}), 403, "insufficient_scope")
    assert gateway.call("POST", "/v1/albums", gateway.hs256(scope="images:write"), {"name": "x"})[0] == 201


# --------------------------------------------------------------------------- album rights


@pytest.fixture
def albums(gateway: Gateway) -> dict[str, str]:
    """Albums `open` and `closed` of acme, each with one (pending) image."""
    out = {}
    for name in ("open", "closed"):
        status, _, album = gateway.call("POST", "/v1/albums", gateway.hs256(), {"name": name})
        assert status == 201
        out[name] = album["id"]
        status, _, image = gateway.call("POST", "/v1/images", gateway.hs256(), {
            "file": "data:image/png;base64," + base64.b64encode(TINY_PNG + name.encode()).decode(),
            "album_id": album["id"]})
        assert status == 201, image
        out[f"{name}_image"] = image["id"]
    return out


def test_album_restricted_tokens_are_refused_outside_their_albums(gateway: Gateway, albums: dict[str, str]):
    token = gateway.hs256(albums={albums["open"]: ["upload", "read"]})
    closed, closed_image = albums["closed"], albums["closed_image"]
    # an album or image the token may not read is answered as one that does not exist
    assert_refused(gateway.call("GET", f"/v1/albums/{closed}", token), 404, "not_found")
    assert_refused(gateway.call("GET", f"/v1/images/{closed_image}", token), 404, "not_found")
    assert_refused(gateway.call("GET", f"/v1/images/{closed_image}/similar", token), 404, "not_found")
    assert_refused(gateway.call("PATCH", f"/v1/images/{closed_image}", token, {"title": "x"}), 404, "not_found")
    assert_refused(gateway.call("DELETE", f"/v1/images/{closed_image}", token), 404, "not_found")
    assert_refused(gateway.call("GET", f"/v1/images?album_id={closed}", token), 403, "album_forbidden")
    data_uri = "data:image/png;base64," + base64.b64encode(TINY_PNG + b"new").decode()
    error = assert_refused(gateway.call("POST", "/v1/images", token, {"file": data_uri, "album_id": closed}),
                           403, "album_forbidden")
    assert error["source"]["pointer"] == "/album_id"
    # a batch answers 200 with the refusal on the item, pointing at its album_id
    status, _, batch = gateway.call("POST", "/v1/uploads", token, {"items": [
        {"filename": "a.png", "content_type": "image/png", "size": 10, "album_id": closed},
        {"filename": "b.png", "content_type": "image/png", "size": 10, "album_id": albums["open"]},
    ]})
    assert status == 200
    refused, allowed = batch["items"]
    assert refused["error"]["code"] == "album_forbidden" and refused["error"]["status"] == "403"
    assert refused["error"]["source"]["pointer"] == "/items/0/album_id"
    assert allowed["status"] == "pending"
    # moving an image it can see into the closed album is refused as well
    status, _, moved = gateway.call("PATCH", f"/v1/images/{albums['open_image']}", token, {"album_id": closed})
    assert (status, moved["errors"][0]["code"]) == (403, "album_forbidden")
    # inside its album, everything works; the list shows only what it may read
    assert gateway.call("GET", f"/v1/images/{albums['open_image']}", token)[0] == 200
    listed = {i["id"] for i in gateway.call("GET", "/v1/images", token)[2]["items"]}
    assert albums["open_image"] in listed and closed_image not in listed


def test_an_upload_only_album_right_does_not_read(gateway: Gateway, albums: dict[str, str]):
    token = gateway.hs256(albums={albums["open"]: ["upload"]})
    assert_refused(gateway.call("GET", f"/v1/images/{albums['open_image']}", token), 404, "not_found")
    assert_refused(gateway.call("GET", f"/v1/albums/{albums['open']}", token), 404, "not_found")
    status, _, batch = gateway.call("POST", "/v1/uploads", token, {"items": [
        {"filename": "a.png", "content_type": "image/png", "size": 10, "album_id": albums["open"]}]})
    assert status == 200 and batch["items"][0]["status"] == "pending"


def test_album_rights_apply_to_oidc_tokens_too(gateway: Gateway, albums: dict[str, str]):
    token = gateway.rs256(albums={albums["open"]: ["read"]}, scope="images:read")
    assert gateway.call("GET", f"/v1/images/{albums['open_image']}", token)[0] == 200
    assert_refused(gateway.call("GET", f"/v1/images/{albums['closed_image']}", token), 404, "not_found")
