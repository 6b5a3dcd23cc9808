"""Token issuing and verification: the rules of the contract's Auth section."""

import time

import jwt
import pytest

from imgdrop.auth import Principal, TokenVerifier, bearer_token, issue_token
from imgdrop.errors import Forbidden, Unauthorized

SECRET = "unit-test-secret-of-at-least-32-bytes"


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
