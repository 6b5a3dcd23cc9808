"""CloudFront signed URLs with a canned policy: signing (botocore's CloudFrontSigner, RSA-SHA1 by
`cryptography`) and verification (what CloudFront checks; the local CDN uses it).

A signed URL stays the same for every read within a window of W seconds and is valid for at least
W more: Expires = floor(now / W) * W + 2W. Browsers can then cache private images between reads.

Nothing heavy is imported at module import: `cryptography`, botocore and boto3 load on the first
signature, so a cold start that signs nothing does not pay for them.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

# What the first signature loads; a SnapStart function loads them into its snapshot instead.
SIGNING_MODULES = (
    "botocore.signers",
    "cryptography.hazmat.primitives.hashes",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.padding",
    "cryptography.hazmat.primitives.asymmetric.rsa",
)

SIGNATURE_PARAMS = ("Expires", "Signature", "Key-Pair-Id")

# Why a URL is refused (verify_signed_url); None means it is valid.
UNSIGNED = "unsigned"
TAMPERED = "tampered"
EXPIRED = "expired"
UNKNOWN_KEY = "unknown key"

KeyProvider = Callable[[], str | bytes]


def window_expires(now: float, window_seconds: int) -> int:
    """The Expires of a URL signed at `now`: the end of the window after the current one."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    return (int(now) // window_seconds) * window_seconds + 2 * window_seconds


def canned_policy(resource: str, expires: int) -> str:
    """The canned policy CloudFront reconstructs from a URL (the statement's order matters)."""
    return json.dumps({"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {
        "AWS:EpochTime": int(expires)}}}]}, separators=(",", ":"))


def _b64_cloudfront(data: bytes) -> str:
    return base64.b64encode(data).decode().replace("+", "-").replace("=", "_").replace("/", "~")


def _unb64_cloudfront(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"), validate=True)


class SecretsManagerKey:
    """A key provider: the PEM held by a Secrets Manager secret (its SecretString), fetched on first
    use with a boto3 client made then (or the one given), and kept for the process's life."""

    def __init__(self, secret_arn: str, *, client: Any = None):
        if not secret_arn:
            raise ValueError("no secret ARN for the CDN's private key")
        self.secret_arn = secret_arn
        self._client = client
        self._value: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    client = self._client
                    if client is None:
                        import boto3

                        client = boto3.client("secretsmanager")
                    self._value = str(client.get_secret_value(SecretId=self.secret_arn)["SecretString"])
        return self._value


class UrlSigner:
    """Signs URLs with a canned policy for `key_pair_id` (the CloudFront public key's id).

    `private_key` is a callable answering the RSA private key PEM; it is called once, on the
    first signature. `clock` answers the time (seconds since the epoch); tests pass their own,
    or `now=` to sign(). Signed URLs are memoised per (url, expires): the same URL within a
    window costs one RSA signature.
    """

    _MEMO_SIZE = 4096

    def __init__(self, key_pair_id: str, private_key: KeyProvider, *, window_seconds: int = 3600,
                 clock: Callable[[], float] = time.time):
        if not key_pair_id:
            raise ValueError("no CloudFront key pair id")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.key_pair_id = key_pair_id
        self.window_seconds = window_seconds
        self._private_key = private_key
        self._clock = clock
        self._signer: Any = None
        self._lock = threading.Lock()
        self._memo: OrderedDict[tuple[str, int], str] = OrderedDict()

    def expires(self, now: float | None = None) -> int:
        return window_expires(self._clock() if now is None else now, self.window_seconds)

    def _cloudfront_signer(self) -> Any:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    from botocore.signers import CloudFrontSigner
                    from cryptography.hazmat.primitives import hashes, serialization
                    from cryptography.hazmat.primitives.asymmetric import padding, rsa

                    pem = self._private_key()
                    key = serialization.load_pem_private_key(pem.encode() if isinstance(pem, str) else pem,
                                                             password=None)
                    if not isinstance(key, rsa.RSAPrivateKey):
                        raise ValueError("the CDN private key is not an RSA key (CloudFront needs RSA 2048)")

                    def rsa_sign(message: bytes) -> bytes:
                        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's  # nosec B303

                    self._signer = CloudFrontSigner(self.key_pair_id, rsa_sign)
        return self._signer

    def sign(self, url: str, *, now: float | None = None) -> str:
        """`url` with `Expires`, `Signature` and `Key-Pair-Id` appended."""
        expires = self.expires(now)
        memo_key = (url, expires)
        with self._lock:
            hit = self._memo.get(memo_key)
            if hit is not None:
                self._memo.move_to_end(memo_key)
                return hit
        signer = self._cloudfront_signer()
        signed = str(signer.generate_presigned_url(url, date_less_than=datetime.fromtimestamp(expires, UTC)))
        with self._lock:
            self._memo[memo_key] = signed
            while len(self._memo) > self._MEMO_SIZE:
                self._memo.popitem(last=False)
        return signed


def split_signed_url(url: str) -> tuple[str, dict[str, str]]:
    """(the URL without the signature parameters, those parameters). The other query parameters
    stay in their order and encoding: the canned policy's Resource is that URL, byte for byte."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    kept: list[str] = []
    params: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name in SIGNATURE_PARAMS:
            if name in params:  # a parameter twice: not a URL imgdrop signed
                params[name] = "\0"
            else:
                params[name] = value
        elif part:
            kept.append(part)
    return (base + "?" + "&".join(kept)) if kept else base, params


def verify_signed_url(url: str, public_keys: Mapping[str, str | bytes], *, now: float) -> str | None:
    """None when `url` (scheme, host, path and query, as the viewer asked) carries a valid canned-policy
    signature by one of `public_keys` (PEM by key pair id) that has not expired at `now`; otherwise
    why not: UNSIGNED, UNKNOWN_KEY, TAMPERED or EXPIRED. The signature is checked before the expiry,
    so an Expires changed by hand is TAMPERED, not a longer life."""
    resource, params = split_signed_url(url)
    key_id = params.get("Key-Pair-Id")
    if not key_id:
        return UNSIGNED
    pem = public_keys.get(key_id)
    if pem is None:
        return UNKNOWN_KEY
    expires_text, signature_text = params.get("Expires", ""), params.get("Signature", "")
    if not expires_text.isdigit() or not signature_text:
        return TAMPERED
    try:
        signature = _unb64_cloudfront(signature_text)
    except (binascii.Error, ValueError):
        return TAMPERED
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    public_key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(public_key, rsa.RSAPublicKey):
        return UNKNOWN_KEY
    expires = int(expires_text)
    try:
        public_key.verify(signature, canned_policy(resource, expires).encode(), padding.PKCS1v15(),
                          hashes.SHA1())  # noqa: S303 - CloudFront's  # nosec B303
    except InvalidSignature:
        return TAMPERED
    if now >= expires:
        return EXPIRED
    return None
