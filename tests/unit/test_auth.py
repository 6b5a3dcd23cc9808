"""Token issuing and verification: the rules of the contract's Auth section."""

import importlib.util
import time
import uuid
from pathlib import Path
from types import ModuleType, SimpleNamespace

import jwt
import pytest
from aws_lambda_powertools.utilities import parameters
from cryptography.hazmat.primitives.asymmetric import rsa

from imgdrop.auth import (
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
    SECRET_REFETCH_AFTER_SECONDS,
    SECRET_TTL_SECONDS,
    ConfigurationError,
    Principal,
    TokenVerifier,
    bearer_token,
)
from imgdrop.errors import Forbidden, StorageError, Unauthorized
from imgdrop.settings import get_settings
from imgdrop_local.tokens import issue_token

SECRET = "unit-test-secret-of-at-least-32-bytes"
_DROP = object()


def verify(token: str) -> Principal:
    return TokenVerifier(SECRET).verify(token)


def test_issued_token_round_trips_tenant_subject_scopes_and_albums():
    token = issue_token(
        SECRET,
        tenant="acme",
        scope="images:read images:write",
        sub="ana",
        albums={"a1": ["upload", "read"], "a2": ["read"]},
    )
    principal = verify(token)
    assert principal.tenant == "acme"
    assert principal.sub == "ana"
    assert principal.scopes == {"images:read", "images:write"}
    assert principal.albums == {"a1": {"upload", "read"}, "a2": {"read"}}
    assert Principal.from_context(principal.to_context()) == principal


def test_expired_token_is_token_expired_beyond_five_seconds_of_leeway():
    with pytest.raises(Unauthorized) as raised:
        verify(issue_token(SECRET, tenant="acme", scope="images:read", ttl=-10))
    assert raised.value.code == "token_expired"
    # within the 5 s leeway the token still passes
    assert verify(issue_token(SECRET, tenant="acme", scope="images:read", ttl=-2)).tenant == "acme"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(
            {"sub": "x", "tenant": "acme", "exp": int(time.time()) + 60}, "other-secret", algorithm="HS256"
        ),
        jwt.encode({"sub": "x", "tenant": "acme", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "not-a-jwt",
    ],
    ids=["wrong-key", "alg-none", "garbage"],
)
def test_forged_tokens_are_token_invalid(token):
    with pytest.raises(Unauthorized) as raised:
        verify(token)
    assert raised.value.code == "token_invalid"


def test_tampered_payload_is_token_invalid():
    header, payload, signature = issue_token(SECRET, tenant="acme", scope="images:read").split(".")
    other = issue_token(SECRET, tenant="evil", scope="admin").split(".")[1]
    with pytest.raises(Unauthorized) as raised:
        verify(f"{header}.{other}.{signature}")
    assert raised.value.code == "token_invalid"
    assert payload != other


def test_token_without_tenant_is_refused():
    with pytest.raises(Unauthorized) as raised:
        verify(issue_token(SECRET, tenant=None, scope="images:read"))
    assert raised.value.code == "token_invalid"


def test_not_yet_valid_token_is_refused():
    token = issue_token(SECRET, tenant="acme", scope="images:read", claims={"nbf": int(time.time()) + 600})
    with pytest.raises(Unauthorized):
        verify(token)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "token_missing"),
        ("", "token_missing"),
        ("Basic abc", "token_invalid"),
        ("Bearer ", "token_invalid"),
    ],
)
def test_authorization_header_forms(header, code):
    with pytest.raises(Unauthorized) as raised:
        bearer_token(header)
    assert raised.value.code == code


def test_scopes_and_album_rights():
    principal = Principal("acme", "ana", frozenset({"images:read"}), {"a1": frozenset({"read"})})
    principal.require("images:read")
    with pytest.raises(Forbidden) as raised:
        principal.require("images:write")
    assert raised.value.code == "insufficient_scope"
    principal.require_album("a1", "read")
    with pytest.raises(Forbidden) as raised:
        principal.require_album("a1", "upload")
    assert raised.value.code == "album_forbidden"
    with pytest.raises(Forbidden):
        principal.require_album("a2", "read")
    # without an albums claim the scopes cover every album
    Principal("acme", "ana", frozenset({"images:write"})).require_album("any", "upload")
    # reading an image needs the scope as well as the album's right
    assert principal.can_read_image("a1") and not principal.can_read_image("a2")
    assert not Principal("acme", "ana", frozenset({"images:write"})).can_read_image(None)


def test_an_albums_claim_narrows_admin_too():
    """design.md: with an albums claim "only the listed albums may be uploaded to or read"; before
    the mend `admin` lifted the claim, so such a token read every album and registered webhooks
    that carried every image's events."""
    limited = Principal("acme", "ana", frozenset({"admin"}), {"a1": frozenset({"read", "upload"})})
    limited.require_album("a1", "upload")
    assert limited.can_read_album("a1")
    assert not limited.can_read_album("a2") and not limited.can_read_album(None)
    for album in ("a2", None):
        with pytest.raises(Forbidden) as raised:
            limited.require_album(album, "upload")
        assert raised.value.code == "album_forbidden"
    with pytest.raises(Forbidden) as raised:
        limited.require_whole_tenant("admin")
    assert raised.value.code == "album_forbidden"
    Principal("acme", "ana", frozenset({"admin"})).require_whole_tenant("admin")
    with pytest.raises(Forbidden) as raised:
        Principal("acme", "ana", frozenset({"images:write"})).require_whole_tenant("admin")
    assert raised.value.code == "insufficient_scope"


# --------------------------------------------------------------------------- tenant claim


BAD_TENANTS = ["a/b", "T#x", "acme/../victim", "", "x" * 65, "a b", "acme\n", "ümlaut", "a.b", "a:b", 42, ["acme"]]
GOOD_TENANTS = ["a", "x" * 64, "Acme_corp-9", "0", "-", "_"]


def _raw(claims: dict, key: str = SECRET) -> str:
    """A token signed with the verifier's key, bypassing issue_token's own checks."""
    now = int(time.time())
    payload = {"sub": "ana", "scope": "images:read", "iat": now, "exp": now + 60, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not _DROP}, key, algorithm="HS256")


@pytest.mark.parametrize("tenant", BAD_TENANTS, ids=repr)
@pytest.mark.parametrize("claim", ["tenant", "custom:tenant"])
def test_tenant_claim_must_be_1_to_64_characters_of_a_safe_alphabet(claim, tenant):
    with pytest.raises(Unauthorized) as raised:
        verify(_raw({claim: tenant}))
    assert raised.value.code == "token_invalid"


@pytest.mark.parametrize("tenant", GOOD_TENANTS)
def test_safe_tenants_of_1_to_64_characters_are_accepted(tenant):
    assert verify(_raw({"tenant": tenant})).tenant == tenant
    assert verify(_raw({"custom:tenant": tenant})).tenant == tenant


def test_a_present_but_invalid_tenant_claim_never_falls_back_to_custom_tenant():
    # `tenant` comes from the issuer (e.g. a pre-token-generation trigger); `custom:tenant` may be
    # user-writable: a broken `tenant` must not let the user's own attribute pick the tenant.
    for bad in ("", None, "a/b"):
        with pytest.raises(Unauthorized):
            verify(_raw({"tenant": bad, "custom:tenant": "victim"}))
    assert verify(_raw({"tenant": "acme", "custom:tenant": "victim"})).tenant == "acme"


@pytest.mark.parametrize("tenant", [t for t in BAD_TENANTS if isinstance(t, str)], ids=repr)
def test_issue_token_refuses_an_unsafe_tenant(tenant):
    with pytest.raises(ValueError, match="tenant"):
        issue_token(SECRET, tenant=tenant, scope="images:read")
    with pytest.raises(ValueError, match="tenant"):
        issue_token(SECRET, tenant="acme", scope="images:read", claims={"tenant": tenant})
    with pytest.raises(ValueError, match="tenant"):
        issue_token(SECRET, tenant=None, scope="images:read", claims={"custom:tenant": tenant})


# --------------------------------------------------------------------------- token lifetime


def test_tokens_that_live_longer_than_24_hours_are_refused():
    now = int(time.time())
    assert DEFAULT_MAX_TOKEN_LIFETIME_SECONDS == 24 * 3600
    # the local stack's dev token lives exactly 24 h: still accepted
    assert verify(issue_token(SECRET, tenant="dev", scope="images:read", ttl=86400)).tenant == "dev"
    assert verify(_raw({"tenant": "acme", "iat": now - 10, "exp": now - 10 + 86400})).tenant == "acme"
    for claims in (
        {"iat": now, "exp": now + 86401},
        {"iat": now - 86400, "exp": now + 60},  # issued a day ago, still within its exp: lived too long
        {"iat": now, "exp": now + 10 * 365 * 86400},
        {"iat": _DROP, "exp": now + 86400 + 60},  # no iat: measured from now
    ):
        with pytest.raises(Unauthorized) as raised:
            verify(_raw({"tenant": "acme", **claims}))
        assert raised.value.code == "token_invalid"
    assert verify(_raw({"tenant": "acme", "iat": _DROP, "exp": now + 86000})).tenant == "acme"


def test_the_maximum_lifetime_is_configurable():
    short = TokenVerifier(SECRET, max_lifetime_seconds=600)
    assert short.verify(issue_token(SECRET, tenant="acme", scope="", ttl=600)).tenant == "acme"
    with pytest.raises(Unauthorized) as raised:
        short.verify(issue_token(SECRET, tenant="acme", scope="", ttl=601))
    assert raised.value.code == "token_invalid"


def test_issue_token_refuses_a_lifetime_above_the_maximum():
    with pytest.raises(ValueError, match="lifetime"):
        issue_token(SECRET, tenant="acme", scope="images:read", ttl=86401)
    now = int(time.time())
    with pytest.raises(ValueError, match="lifetime"):
        issue_token(SECRET, tenant="acme", scope="images:read", claims={"exp": now + 7 * 86400})
    issue_token(SECRET, tenant="acme", scope="images:read", ttl=86400)
    issue_token(SECRET, tenant="acme", scope="images:read", ttl=-60)  # expired tokens, for tests
    with pytest.raises(ValueError, match="lifetime"):
        issue_token(SECRET, tenant="acme", scope="images:read", ttl=601, max_lifetime_seconds=600)


# --------------------------------------------------------------------------- OIDC


ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
CLIENT_ID = "imgdrop-app-client"


class StaticJwks:
    """The issuer's JWKS, without a network: every kid maps to the one public key."""

    def __init__(self, public_key):
        self.public_key = public_key

    def get_signing_key_from_jwt(self, token):
        return SimpleNamespace(key=self.public_key)


@pytest.fixture(scope="module")
def idp_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _oidc(key, **claims) -> str:
    now = int(time.time())
    payload = {"sub": "u1", "iss": ISSUER, "iat": now, "exp": now + 3600, "tenant": "acme", "scope": "images:read",
               **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not _DROP}, key, algorithm="RS256",
                      headers={"kid": "k1"})


def test_an_oidc_issuer_without_an_audience_is_a_configuration_error(idp_key):
    for audience in ("", "   "):
        with pytest.raises(ConfigurationError, match="OIDC_AUDIENCE"):
            TokenVerifier(SECRET, oidc_issuer=ISSUER, oidc_audience=audience,
                          jwks_client=StaticJwks(idp_key.public_key()))
    # without an issuer no audience is needed (HS256 only)
    TokenVerifier(SECRET)


def test_cognito_id_tokens_are_checked_by_aud(idp_key):
    verifier = TokenVerifier(None, oidc_issuer=ISSUER, oidc_audience=CLIENT_ID,
                             jwks_client=StaticJwks(idp_key.public_key()))
    assert verifier.verify(_oidc(idp_key, aud=CLIENT_ID, token_use="id")).tenant == "acme"
    assert verifier.verify(_oidc(idp_key, aud=["other", CLIENT_ID])).tenant == "acme"
    for claims in (
        {"aud": "another-app-client", "token_use": "id"},
        {"aud": ["another-app-client"]},
        # an aud that names another client is not rescued by a matching client_id
        {"aud": "another-app-client", "token_use": "access", "client_id": CLIENT_ID},
        {"token_use": "id", "client_id": CLIENT_ID},  # an ID token without aud
        {},  # neither aud nor client_id
    ):
        with pytest.raises(Unauthorized) as raised:
            verifier.verify(_oidc(idp_key, **claims))
        assert raised.value.code == "token_invalid", claims


def test_cognito_access_tokens_are_checked_by_client_id(idp_key):
    verifier = TokenVerifier(None, oidc_issuer=ISSUER, oidc_audience=CLIENT_ID,
                             jwks_client=StaticJwks(idp_key.public_key()))
    access = _oidc(idp_key, token_use="access", client_id=CLIENT_ID)
    assert verifier.verify(access).tenant == "acme"
    for claims in (
        {"token_use": "access", "client_id": "another-app-client"},
        {"token_use": "access"},
        {"token_use": "access", "client_id": [CLIENT_ID]},
        {"client_id": CLIENT_ID},  # not marked as an access token
        {"token_use": "refresh", "client_id": CLIENT_ID},
    ):
        with pytest.raises(Unauthorized) as raised:
            verifier.verify(_oidc(idp_key, **claims))
        assert raised.value.code == "token_invalid", claims


def test_oidc_tokens_obey_the_maximum_lifetime(idp_key):
    verifier = TokenVerifier(None, oidc_issuer=ISSUER, oidc_audience=CLIENT_ID,
                             jwks_client=StaticJwks(idp_key.public_key()))
    now = int(time.time())
    with pytest.raises(Unauthorized) as raised:
        verifier.verify(_oidc(idp_key, aud=CLIENT_ID, exp=now + 2 * 86400))
    assert raised.value.code == "token_invalid"


# --------------------------------------------------------------------------- the HS256 secret: lazy, TTL, rotation

OLD = "old-secret-of-at-least-32-bytes-0123456789"
NEW = "new-secret-of-at-least-32-bytes-9876543210"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SecretStore:
    """What Secrets Manager answers now; counts fetches and can be made unreachable."""

    def __init__(self, value: str | None) -> None:
        self.value = value
        self.fetches = 0
        self.unreachable = False

    def __call__(self) -> str | None:
        self.fetches += 1
        if self.unreachable:
            raise ConnectionError("Secrets Manager is unreachable")
        return self.value


def _hs(secret: str, tenant: str = "acme") -> str:
    return issue_token(secret, tenant=tenant, scope="images:read")


def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as raised:
        verifier.verify(token)
    return raised.value.code


def test_the_secret_is_fetched_on_first_use_then_refreshed_after_its_ttl():
    store, clock = SecretStore(OLD), Clock()
    verifier = TokenVerifier(secret_provider=store, clock=clock)
    assert store.fetches == 0  # nothing is fetched before the first HS256 token
    assert verifier.verify(_hs(OLD)).tenant == "acme"
    clock.now += SECRET_TTL_SECONDS - 1
    assert verifier.verify(_hs(OLD)).tenant == "acme"
    assert store.fetches == 1  # cached within its TTL
    store.value = NEW  # rotated
    clock.now += 2  # the TTL has passed: the next token fetches the secret again
    assert verifier.verify(_hs(NEW)).tenant == "acme"
    assert store.fetches == 2
    # the stale secret's tokens are refused now, without another fetch (the cache is fresh)
    assert _refused(verifier, _hs(OLD)) == "token_invalid"
    assert store.fetches == 2


def test_a_rotated_secret_is_accepted_after_one_refetch():
    store, clock = SecretStore(OLD), Clock()
    verifier = TokenVerifier(secret_provider=store, clock=clock)
    assert verifier.verify(_hs(OLD)).tenant == "acme"
    store.value = NEW
    clock.now += SECRET_REFETCH_AFTER_SECONDS  # well within the TTL, but old enough to refetch on failure
    assert verifier.verify(_hs(NEW)).tenant == "acme"
    assert store.fetches == 2
    # a failure within the short interval after a fetch does not refetch: forged tokens cost no calls
    for _ in range(5):
        assert _refused(verifier, _hs("forged-secret-of-at-least-32-bytes-000")) == "token_invalid"
    assert store.fetches == 2


def test_a_stale_secrets_tokens_are_refused_after_rotation():
    store, clock = SecretStore(OLD), Clock()
    verifier = TokenVerifier(secret_provider=store, clock=clock)
    old_token = _hs(OLD)
    assert verifier.verify(old_token).tenant == "acme"
    store.value = NEW
    clock.now += SECRET_REFETCH_AFTER_SECONDS + 1
    # the first token of the new secret makes the verifier fetch it (once)...
    assert verifier.verify(_hs(NEW)).tenant == "acme"
    assert store.fetches == 2
    # ...and from then on the old secret's tokens are refused, with no further fetch
    assert _refused(verifier, old_token) == "token_invalid"
    assert _refused(verifier, old_token) == "token_invalid"
    assert store.fetches == 2

    # with no new token seen, the old secret's tokens are refused once the TTL has passed
    store, clock = SecretStore(OLD), Clock()
    verifier = TokenVerifier(secret_provider=store, clock=clock)
    assert verifier.verify(old_token).tenant == "acme"
    store.value = NEW
    clock.now += SECRET_TTL_SECONDS
    assert _refused(verifier, old_token) == "token_invalid"
    assert store.fetches == 2


def test_an_unreachable_secret_store():
    store, clock = SecretStore(OLD), Clock()
    store.unreachable = True
    verifier = TokenVerifier(secret_provider=store, clock=clock)
    # never fetched: 503 storage_error (the request may succeed later), not a crash nor a 401
    with pytest.raises(StorageError):
        verifier.verify(_hs(OLD))
    store.unreachable = False
    assert verifier.verify(_hs(OLD)).tenant == "acme"
    # fetched once: when a refresh fails, the cached secret is kept and retried a little later
    store.unreachable = True
    clock.now += SECRET_TTL_SECONDS + 1
    fetches = store.fetches
    assert verifier.verify(_hs(OLD)).tenant == "acme"
    assert verifier.verify(_hs(OLD)).tenant == "acme"
    assert store.fetches == fetches + 1
    # nor do signature failures ask the failing store again within the short interval
    for _ in range(5):
        assert _refused(verifier, _hs("forged-secret-of-at-least-32-bytes-000")) == "token_invalid"
    assert store.fetches == fetches + 1
    store.unreachable = False
    store.value = NEW
    clock.now += SECRET_REFETCH_AFTER_SECONDS + 1
    assert verifier.verify(_hs(NEW)).tenant == "acme"


def test_no_secret_refuses_hs256_tokens():
    verifier = TokenVerifier(secret_provider=SecretStore(None))
    assert _refused(verifier, _hs(OLD)) == "token_invalid"
    assert _refused(TokenVerifier(None), _hs(OLD)) == "token_invalid"


# --------------------------------------------------------------------------- functions/authorizer/app.py

AUTHORIZER = Path(__file__).resolve().parents[2] / "functions" / "authorizer" / "app.py"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:imgdrop/dev/jwt-hs256-AbCdEf"


def _load_authorizer() -> ModuleType:
    name = f"authorizer_under_test_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, AUTHORIZER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _authorize(module: ModuleType, token: str) -> dict:
    event = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/v1/images",
        "identitySource": [f"Bearer {token}"],
        "routeKey": "GET /v1/images",
        "rawPath": "/v1/images",
        "rawQueryString": "",
        "headers": {"authorization": f"Bearer {token}"},
        "requestContext": {"http": {"method": "GET", "path": "/v1/images"}},
    }
    context = SimpleNamespace(function_name="imgdrop-dev-authorizer", memory_limit_in_mb=256,
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:a",
                              aws_request_id=uuid.uuid4().hex)
    return module.lambda_handler(event, context)


@pytest.fixture
def deployed_env(monkeypatch: pytest.MonkeyPatch):
    """The authorizer's environment as deployed: a secret ARN, no JWT_SECRET; and no network:
    the AWS endpoint is a closed local port."""
    for var in ("JWT_SECRET", "OIDC_ISSUER", "OIDC_AUDIENCE", "MAX_TOKEN_LIFETIME_SECONDS", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JWT_SECRET_ARN", SECRET_ARN)
    monkeypatch.setenv("TABLE_NAME", "imgdrop-dev-images")
    monkeypatch.setenv("BUCKET_NAME", "imgdrop-dev-123456789012-us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    parameters.clear_caches()  # powertools keeps its Secrets Manager client (and endpoint) per process
    yield monkeypatch
    get_settings.cache_clear()
    parameters.clear_caches()


def test_the_authorizer_imports_with_no_network_and_no_secret_reachable(deployed_env):
    module = _load_authorizer()  # today's module fetched the secret here, and failed without a network
    # its first request: the secret store is unreachable, the caller is told 503 storage_error
    answer = _authorize(module, _hs(OLD))
    assert answer["isAuthorized"] is True
    assert (answer["context"]["auth_error"], answer["context"]["auth_status"]) == ("storage_error", "503")


def test_the_authorizer_fetches_the_secret_per_use_and_takes_a_rotation(deployed_env):
    fetched: list[dict] = []
    current = {"value": OLD}

    def get_secret(name, **kwargs):
        fetched.append({"name": name, **kwargs})
        return current["value"]

    deployed_env.setattr(parameters, "get_secret", get_secret)
    module = _load_authorizer()
    assert fetched == []
    assert _authorize(module, _hs(OLD))["context"]["tenant"] == "acme"
    assert len(fetched) == 1 and fetched[0]["name"] == SECRET_ARN
    assert fetched[0].get("force_fetch") is True  # the verifier keeps the TTL; each fetch is fresh
    current["value"] = NEW  # rotated in Secrets Manager
    # its TTL passes (the verifier's clock, moved on)
    deployed_env.setattr(module.verifier, "clock", lambda: time.monotonic() + SECRET_TTL_SECONDS + 1)
    assert _authorize(module, _hs(NEW, tenant="t2"))["context"]["tenant"] == "t2"
    assert _authorize(module, _hs(OLD))["context"]["auth_error"] == "token_invalid"
    assert len(fetched) == 2


def test_the_authorizer_refuses_to_run_with_an_issuer_and_no_audience(deployed_env):
    deployed_env.setenv("OIDC_ISSUER", ISSUER)
    deployed_env.setattr(parameters, "get_secret", lambda name, **kw: OLD)
    module = _load_authorizer()  # importing still works
    with pytest.raises(ConfigurationError, match="OIDC_AUDIENCE"):
        _authorize(module, _hs(OLD))
    deployed_env.setenv("OIDC_AUDIENCE", CLIENT_ID)
    get_settings.cache_clear()
    module = _load_authorizer()
    assert _authorize(module, _hs(OLD))["context"]["tenant"] == "acme"


def test_the_authorizer_refuses_tokens_above_the_configured_lifetime(deployed_env):
    deployed_env.setenv("MAX_TOKEN_LIFETIME_SECONDS", "3600")
    deployed_env.setattr(parameters, "get_secret", lambda name, **kw: OLD)
    module = _load_authorizer()
    assert _authorize(module, issue_token(OLD, tenant="acme", scope="", ttl=3600))["context"]["tenant"] == "acme"
    token = issue_token(OLD, tenant="acme", scope="", ttl=3601)
    assert _authorize(module, token)["context"]["auth_error"] == "token_invalid"
