"""S3's refusals of presigned requests, which moto does not make: a WSGI middleware in front of moto.

moto's S3 stores whatever a browser-form POST or a query-signed URL sends: it checks no POST
policy, no signature and no expiry. imgdrop relies on S3 refusing them (the exact key, the
`content-length-range`, the `Content-Type` and the expiry of an upload's policy; the expiry of a
download URL), so the local stack checks them here, before moto sees the request, and answers
with S3's own statuses and XML error bodies:

- browser-form POST uploads (multipart/form-data to a bucket): the SigV4 signature of the policy,
  its expiration and every condition (exact matches, `starts-with`, `content-length-range`
  against the size of the file part), and that every field is named by a condition;
- SigV4 query-signed URLs (any method: downloads, and every request of a multipart upload,
  create, parts, list, complete, abort): the signature recomputed from the request as S3
  canonicalises it, and `X-Amz-Date` + `X-Amz-Expires` against the clock; SigV2 query-signed
  URLs are refused, as S3 does for buckets created since mid-2020. A CORS preflight of such a
  URL (OPTIONS, no credentials) is answered from the bucket's CORS rules, as S3 does.

Everything else passes through untouched: SDK calls signed in the Authorization header (S3 or
any other service), calls with an `X-Amz-Target` (DynamoDB, ...) and unsigned requests without
presigned parameters (SQS's form bodies, CORS preflights, moto's own API).

Credentials are looked up through `secret_for(access_key_id)`, so the per-role credentials of
the local stack's functions can be supplied by another module; `local_secret_for` knows the
process's own credentials and the access keys that moto's IAM and STS have issued.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Final, Literal
from urllib.parse import quote, unquote_to_bytes, urlsplit
from xml.sax.saxutils import escape  # nosec B406 - escapes the error bodies written; nothing is parsed

from botocore.auth import S3SigV4PostAuth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

log = logging.getLogger("imgdrop_local.s3_guard")

SecretLookup = Callable[[str], "str | None"]
"""access key id -> its secret access key, or None for a key S3 would not know."""
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
MAX_QUERY_EXPIRES: Final = 7 * 24 * 3600
SIGV4_QUERY_PARAMS: Final = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                             "X-Amz-SignedHeaders", "X-Amz-Expires")
SIGV4_FORM_FIELDS: Final = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
# Form fields no policy condition needs to name (S3's list; plus x-ignore-*).
UNCONDITIONED_FIELDS: Final = frozenset({"policy", "x-amz-signature", "file"})
UNSUPPORTED_AUTH: Final = ("The authorization mechanism you have provided is not supported. "
                           "Please use AWS4-HMAC-SHA256.")
MALFORMED_CREDENTIAL: Final = ('Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; '
                               'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
# Set in the environ once the guard has buffered the body (moto reads the buffered copy).
_BODY_READ: Final = "imgdrop_local.s3_guard.body_read"
# S3 virtual-host addressing: {bucket}.s3[.-]{region}.amazonaws.com (path-style otherwise).
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+?)\.s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com$")


# ---------------------------------------------------------------- errors, as S3 writes them


class S3Error(Exception):
    """One of S3's error answers: status, code, message and the extra elements S3 adds."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, object] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def xml(self, request_id: str, host_id: str) -> bytes:
        elements = {"Code": self.code, "Message": self.message, **self.details,
                    "RequestId": request_id, "HostId": host_id}
        inner = "".join(f"<{name}>{escape(str(value))}</{name}>" for name, value in elements.items())
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()


def _access_denied(message: str, **details: object) -> S3Error:
    return S3Error(403, "AccessDenied", message, details)


def _invalid_argument(message: str, name: str, value: str = "") -> S3Error:
    return S3Error(400, "InvalidArgument", message, {"ArgumentName": name, "ArgumentValue": value})


def _query_parameters_error(message: str, **details: object) -> S3Error:
    return S3Error(400, "AuthorizationQueryParametersError", message, details)


def _invalid_policy(message: str) -> S3Error:
    return S3Error(400, "InvalidPolicyDocument", f"Invalid Policy: {message}")


def _signature_does_not_match(access_key_id: str, string_to_sign: str, signature: str,
                              canonical_request: str | None = None) -> S3Error:
    """With the elements S3 adds, so a client's author can see what was signed."""
    details: dict[str, object] = {
        "AWSAccessKeyId": access_key_id,
        "StringToSign": string_to_sign,
        "SignatureProvided": signature,
        "StringToSignBytes": string_to_sign.encode().hex(" "),
    }
    if canonical_request is not None:
        details["CanonicalRequest"] = canonical_request
        details["CanonicalRequestBytes"] = canonical_request.encode().hex(" ")
    return S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                   "signature you provided. Check your key and signing method.", details)


def _unknown_access_key(access_key_id: str) -> S3Error:
    return S3Error(403, "InvalidAccessKeyId",
                   "The AWS Access Key Id you provided does not exist in our records.",
                   {"AWSAccessKeyId": access_key_id})


# ---------------------------------------------------------------- CORS on error answers


@dataclass(frozen=True)
class CorsRule:
    """One rule of a bucket's CORS configuration (the fields S3 answers from)."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    exposed_headers: tuple[str, ...] = ()
    max_age: int | None = None

    def allows(self, origin: str, method: str) -> bool:
        return method.upper() in self.allowed_methods and any(
            _origin_matches(origin, allowed) for allowed in self.allowed_origins
        )

    def headers(self, origin: str) -> list[tuple[str, str]]:
        """The headers moto's S3 adds to an answer for a matching origin."""
        headers = [("Access-Control-Allow-Origin", origin),
                   ("Access-Control-Allow-Methods", ", ".join(self.allowed_methods))]
        if self.allowed_headers:
            headers.append(("Access-Control-Allow-Headers", ", ".join(self.allowed_headers)))
        if self.exposed_headers:
            headers.append(("Access-Control-Expose-Headers", ", ".join(self.exposed_headers)))
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        headers.append(("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"))
        return headers


CorsLookup = Callable[[str], Sequence[CorsRule]]
"""bucket name -> its CORS rules (empty when none or no such bucket)."""


def _origin_matches(origin: str, allowed: str) -> bool:
    """S3 allows one `*` wildcard in an AllowedOrigin."""
    if allowed == "*" or allowed == origin:
        return True
    if "*" not in allowed:
        return False
    head, _, tail = allowed.partition("*")
    return len(origin) >= len(head) + len(tail) and origin.startswith(head) and origin.endswith(tail)


def moto_cors_rules(bucket: str) -> list[CorsRule]:
    """The bucket's CORS rules from moto's in-process S3 backend, as moto itself would answer
    from them (the local stack runs moto's server in this process)."""
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return []
    partition, account_id = owner
    fake = s3_backends[account_id][partition].buckets.get(bucket)
    if fake is None:
        return []

    def strings(value: Any) -> tuple[str, ...]:
        return tuple(value) if isinstance(value, list | tuple) else ((value,) if value else ())

    return [
        CorsRule(
            allowed_origins=strings(rule.allowed_origins),
            allowed_methods=tuple(m.upper() for m in strings(rule.allowed_methods)),
            allowed_headers=strings(rule.allowed_headers),
            exposed_headers=strings(rule.exposed_headers),
            max_age=int(rule.max_age_seconds) if rule.max_age_seconds not in (None, "") else None,
        )
        for rule in fake.cors
    ]


# ---------------------------------------------------------------- credentials


def local_secret_for(access_key_id: str) -> str | None:
    """The secret of an access key the local stack knows: the process's own credentials (which
    `server.run` sets), else an access key that moto's IAM or STS issued."""
    if access_key_id and access_key_id == os.environ.get("AWS_ACCESS_KEY_ID"):
        return os.environ.get("AWS_SECRET_ACCESS_KEY")
    try:
        from moto.iam.models import iam_backends
    except ImportError:  # pragma: no cover - moto[server] is a dependency of the local stack
        return None
    for _account_id, account in list(iam_backends.items()):
        for _partition, backend in list(account.items()):
            key = backend.access_keys.get(access_key_id)
            if key is not None and getattr(key, "status", "Active") == "Active":
                return str(key.secret_access_key)
    return None


# ---------------------------------------------------------------- reading the request


def _header(environ: dict[str, Any], name: str) -> str | None:
    """A request header from the WSGI environ (Content-Type and Content-Length have no HTTP_)."""
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return environ.get(key) or None
    return environ.get("HTTP_" + key)


def _raw_path(environ: dict[str, Any]) -> bytes:
    """The path as the client sent it (still percent-encoded), as bytes."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if not raw.startswith("/"):  # absolute-form request target
            raw = urlsplit(raw).path or "/"
        return raw.split("?", 1)[0].encode("latin-1")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return quote(path.encode("latin-1"), safe="/").encode()


def _canonical_path(environ: dict[str, Any]) -> str:
    """The URI path as S3 canonicalises it for SigV4: each segment decoded once and encoded
    once (RFC 3986 unreserved characters kept), no normalisation and no double encoding."""
    return "/".join(quote(unquote_to_bytes(segment), safe="") for segment in _raw_path(environ).split(b"/"))


def _query_pairs(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    pairs = []
    for part in environ.get("QUERY_STRING", "").encode("latin-1").split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _canonical_query(pairs: list[tuple[bytes, bytes]]) -> str:
    """SigV4's canonical query string: every parameter but X-Amz-Signature, encoded, sorted."""
    encoded = sorted((quote(name, safe=""), quote(value, safe="")) for name, value in pairs
                     if name != b"X-Amz-Signature")
    return "&".join(f"{name}={value}" for name, value in encoded)


def _bucket(environ: dict[str, Any]) -> tuple[str | None, str]:
    """(bucket, path inside it) as moto's S3 reads the request: virtual-host addressing on an
    S3 host name or `{bucket}.localhost`, path-style otherwise (the local stack's way)."""
    host = (_header(environ, "Host") or "").lower()
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    path = environ.get("PATH_INFO", "") or "/"
    virtual = _VIRTUAL_HOST.match(hostname)
    if virtual:
        return virtual["bucket"], path
    if hostname.endswith(".localhost"):
        return hostname.split(".", 1)[0], path
    bucket, _, rest = path.lstrip("/").partition("/")
    return (bucket or None), "/" + rest


def _parse_credential(credential: str) -> tuple[str, str, str, str] | None:
    """`AKID/YYYYMMDD/region/service/aws4_request` -> (akid, date, region, service)."""
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0] or not re.fullmatch(r"\d{8}", parts[1]):
        return None
    return parts[0], parts[1], parts[2], parts[3]


@dataclass
class _Form:
    """A browser form's fields up to the file (S3 ignores every field after it), and the file's size."""

    fields: dict[str, tuple[str, str]]  # lower-cased name -> (name as sent, value)
    file_size: int | None

    def get(self, name: str) -> str | None:
        found = self.fields.get(name.lower())
        return found[1] if found else None


def _parse_form(body: bytes, boundary: str) -> _Form:
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    fields: dict[str, tuple[str, str]] = {}
    part: Field | File | None = None
    value = bytearray()
    size = 0
    while True:
        event = decoder.next_event()  # ValueError on a malformed body
        if isinstance(event, NeedData | Epilogue):
            return _Form(fields, None)
        if isinstance(event, Field | File):
            part, value, size = event, bytearray(), 0
        elif isinstance(event, Data) and part is not None:
            is_file = part.name.lower() == "file"
            if is_file:
                size += len(event.data)
            else:
                value += event.data
            if not event.more_data:
                if is_file:
                    return _Form(fields, size)
                fields.setdefault(part.name.lower(), (part.name, value.decode("utf-8", "replace")))


# ---------------------------------------------------------------- the middleware


class PresignedRequestGuard:
    """WSGI middleware: refuses, as S3 would, the presigned requests that moto would accept.

    `secret_for` gives the secret of an access key id (None: unknown key); `region` is the
    stack's region (None accepts any); `cors_rules` gives a bucket's CORS rules, so a refusal
    carries the CORS headers S3 would add and a browser can read it; `now` is the clock.
    """

    def __init__(self, app: WSGIApp, secret_for: SecretLookup, *, region: str | None = None,
                 cors_rules: CorsLookup | None = None, now: Callable[[], datetime] | None = None):
        self.app = app
        self.secret_for = secret_for
        self.region = region
        self.cors_rules = cors_rules or (lambda bucket: ())
        self.now = now or (lambda: datetime.now(UTC))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = self._kind(environ)
        if kind is None:
            return self.app(environ, start_response)
        try:
            if kind == "query-v4":
                self._check_query_v4(environ)
            elif kind == "query-v2":
                raise S3Error(400, "InvalidRequest", UNSUPPORTED_AUTH)
            else:
                self._check_form(environ)
        except S3Error as error:
            return self._refuse(environ, start_response, error)
        except Exception:  # a bug here: answer as S3 does, and say where in the stack's log
            log.exception("checking %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            internal = S3Error(500, "InternalError", "We encountered an internal error. Please try again.")
            return self._refuse(environ, start_response, internal)
        return self.app(environ, start_response)

    def _refuse(self, environ: dict[str, Any], start_response: Callable[..., Any],
                error: S3Error) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        log.info("refused %s %s: %s %s: %s", method, environ.get("PATH_INFO"), error.status, error.code,
                 error.message)
        request_id = secrets.token_hex(8).upper()
        host_id = base64.b64encode(secrets.token_bytes(48)).decode()
        body = b"" if method == "HEAD" else error.xml(request_id, host_id)
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                   ("x-amz-request-id", request_id), ("x-amz-id-2", host_id), ("Server", "AmazonS3"),
                   *self._cors_headers(environ)]
        has_body = environ.get("CONTENT_LENGTH") not in (None, "", "0") or "HTTP_TRANSFER_ENCODING" in environ
        if has_body and not environ.get(_BODY_READ):
            # The body was not read: the connection cannot carry another request after this answer.
            headers.append(("Connection", "close"))
        start_response(f"{error.status} {HTTPStatus(error.status).phrase}", headers)
        return [body]

    def _cors_headers(self, environ: dict[str, Any]) -> list[tuple[str, str]]:
        """The CORS headers of the bucket's first rule that allows the Origin and method, as S3
        adds them to error answers too (else a browser could not read why it was refused)."""
        origin = _header(environ, "Origin")
        bucket, _ = _bucket(environ)
        if not origin or not bucket:
            return []
        try:
            rules = self.cors_rules(bucket)
        except Exception:  # noqa: BLE001 - an answer without CORS headers beats no answer
            log.exception("reading the CORS rules of %s", bucket)
            return []
        method = environ.get("REQUEST_METHOD", "GET")
        return next((rule.headers(origin) for rule in rules if rule.allows(origin, method)), [])

    # -- which requests are S3's presigned ones

    @staticmethod
    def _kind(environ: dict[str, Any]) -> Literal["query-v4", "query-v2", "form"] | None:
        """"query-v4", "query-v2", "form", or None for a request to pass through.

        moto's server sends a request without an Authorization header or an X-Amz-Target to S3
        unless its form-encoded body names an Action (SQS, STS, ...); of those, S3's presigned
        requests are the ones with query-string auth parameters and the multipart POSTs to a
        bucket. Header-signed calls pass: their signature is moto's business (it checks none).
        """
        if _header(environ, "Authorization") or _header(environ, "X-Amz-Target"):
            return None
        if environ.get("REQUEST_METHOD", "").upper() == "OPTIONS":
            # A CORS preflight: a browser sends it to the presigned URL itself, query and all, but
            # with no credentials; S3 answers it from the bucket's CORS rules, never checking a
            # signature (which signs the real method).
            return None
        path = environ.get("PATH_INFO", "")
        if path.startswith(("/moto-api", "/latest/")) or path == "/favicon.ico":
            return None
        names = {name for name, _ in _query_pairs(environ)}
        if any(p.encode() in names for p in SIGV4_QUERY_PARAMS):
            params = dict(_query_pairs(environ))
            credential = _parse_credential(params.get(b"X-Amz-Credential", b"").decode("utf-8", "replace"))
            if credential and credential[3] != "s3" and b"Action" in names:
                return None  # another service's presigned query API call, not S3's
            return "query-v4"
        query_api = names & {b"Action", b"SignatureVersion"}  # SQS, EC2, ...: SigV2 in their own way
        if (b"AWSAccessKeyId" in names or b"Signature" in names) and not query_api:
            return "query-v2"
        content_type, _ = parse_options_header(_header(environ, "Content-Type") or "")
        if environ.get("REQUEST_METHOD", "").upper() == "POST" and content_type == "multipart/form-data":
            bucket, inside = _bucket(environ)
            if bucket and inside == "/":
                return "form"
        return None

    # -- query-signed URLs

    def _check_query_v4(self, environ: dict[str, Any]) -> None:
        pairs = _query_pairs(environ)
        params: dict[str, str] = {}
        for name, value in pairs:
            params.setdefault(name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
        if any(not params.get(p) for p in SIGV4_QUERY_PARAMS if p != "X-Amz-SignedHeaders") or \
                "X-Amz-SignedHeaders" not in params:
            raise _query_parameters_error(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise _query_parameters_error(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
        credential = _parse_credential(params["X-Amz-Credential"])
        if credential is None:
            raise _query_parameters_error(MALFORMED_CREDENTIAL)
        access_key_id, _date, region, service = credential
        self._check_scope(region, service, _query_parameters_error)
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _query_parameters_error(
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None
        try:
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            raise _query_parameters_error("X-Amz-Expires should be a number") from None
        if expires < 0:
            raise _query_parameters_error("X-Amz-Expires must be non-negative")
        if expires > MAX_QUERY_EXPIRES:
            raise _query_parameters_error(
                "X-Amz-Expires must be less than a week (in seconds) that is 7 days")
        secret = self.secret_for(access_key_id)
        if secret is None:
            raise _unknown_access_key(access_key_id)

        signed_names = [n for n in params["X-Amz-SignedHeaders"].lower().split(";") if n]
        amz_headers = (key[5:].lower().replace("_", "-") for key in environ if key.startswith("HTTP_X_AMZ_"))
        unsigned = sorted(name for name in amz_headers
                          if name not in signed_names and name != "x-amz-content-sha256")
        if unsigned:
            raise _access_denied("There were headers present in the request which were not signed",
                                 HeadersNotSigned=", ".join(unsigned))

        # botocore's own S3 query signer over the request rebuilt as S3 canonicalises it: the
        # path and query already canonical (botocore keeps an S3 path as is and sorts the
        # query's pairs), only the headers the URL says it signed (a missing one drops out of
        # the signed list, so the signature cannot match), UNSIGNED-PAYLOAD.
        host = _header(environ, "Host") or "{}:{}".format(environ.get("SERVER_NAME", ""),
                                                           environ.get("SERVER_PORT", ""))
        headers = {name: sent for name in signed_names if (sent := _header(environ, name)) is not None}
        headers["host"] = host  # SigV4 always signs it
        request = AWSRequest(method=environ.get("REQUEST_METHOD", "GET").upper(),
                             url=f"http://{host}{_canonical_path(environ)}?{_canonical_query(pairs)}",
                             headers=headers)
        request.context["timestamp"] = params["X-Amz-Date"]
        signer = S3SigV4QueryAuth(Credentials(access_key_id, secret), service, region, expires=expires)
        canonical_request = signer.canonical_request(request)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        expected = signer.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            raise _signature_does_not_match(access_key_id, string_to_sign, params["X-Amz-Signature"],
                                            canonical_request)

        now = self.now()
        expiry = signed_at + timedelta(seconds=expires)
        if now > expiry:
            raise _access_denied("Request has expired", **{
                "X-Amz-Expires": expires,
                "Expires": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            })

    def _check_scope(self, region: str, service: str, error: Callable[..., S3Error]) -> None:
        if service != "s3":
            raise error(f'Error parsing the X-Amz-Credential parameter; incorrect service "{service}". '
                        'This endpoint belongs to "s3".')
        if self.region and region != self.region:
            raise error(f"Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; "
                        f"expecting '{self.region}'", Region=self.region)

    # -- browser-form POSTs

    def _check_form(self, environ: dict[str, Any]) -> None:
        """Buffers the body (moto gets a fresh copy of it), then checks the form as S3 does: the
        fields it requires, the policy's signature, its expiration, then its conditions."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise S3Error(411, "MissingContentLength",
                          "You must provide the Content-Length HTTP header.") from None
        body = _read_exactly(environ["wsgi.input"], length)
        environ["wsgi.input"] = io.BytesIO(body)
        environ[_BODY_READ] = True
        environ["CONTENT_LENGTH"] = str(len(body))
        if len(body) < length:
            raise S3Error(400, "IncompleteBody", "You did not provide the number of bytes specified by the "
                          "Content-Length HTTP header")

        _, options = parse_options_header(_header(environ, "Content-Type") or "")
        try:
            form = _parse_form(body, options["boundary"])
        except (KeyError, ValueError):
            raise S3Error(400, "MalformedPOSTRequest",
                          "The body of your POST request is not well-formed multipart/form-data.") from None

        if not form.get("key"):
            raise _invalid_argument("Bucket POST must contain a field named 'key'.  If it is specified, "
                                    "please check the order of the fields.", "key")
        if form.file_size is None:
            raise _invalid_argument("POST requires exactly one file upload per request.", "file")
        present = [name for name in SIGV4_FORM_FIELDS if form.get(name) is not None]
        if not present:
            if form.get("awsaccesskeyid") is not None or form.get("signature") is not None:
                raise S3Error(400, "InvalidRequest", UNSUPPORTED_AUTH)
            # No signature: an anonymous POST, which only a public-write bucket accepts.
            raise _access_denied("Access Denied")
        for name in (*SIGV4_FORM_FIELDS, "policy"):
            if form.get(name) is None:
                shown = "-".join(word.capitalize() for word in name.split("-"))
                raise _invalid_argument(f"Bucket POST must contain a field named '{shown}'.  If it is "
                                        "specified, please check the order of the fields.", shown)

        fields = {name: str(form.get(name)) for name in (*SIGV4_FORM_FIELDS, "policy")}
        if fields["x-amz-algorithm"] != ALGORITHM:
            raise _invalid_argument(f'X-Amz-Algorithm only supports "{ALGORITHM}"', "X-Amz-Algorithm",
                                    fields["x-amz-algorithm"])
        credential = _parse_credential(fields["x-amz-credential"])
        if credential is None:
            raise _invalid_argument(MALFORMED_CREDENTIAL, "X-Amz-Credential", fields["x-amz-credential"])
        access_key_id, date, region, service = credential
        self._check_scope(region, service, lambda message, **_: _invalid_argument(
            message, "X-Amz-Credential", fields["x-amz-credential"]))
        secret = self.secret_for(access_key_id)
        if secret is None:
            raise _unknown_access_key(access_key_id)

        # SigV4 for POST: the key derived from the credential's scope signs the base64 policy itself.
        signer = S3SigV4PostAuth(Credentials(access_key_id, secret), service, region)
        scope_request = AWSRequest()
        scope_request.context["timestamp"] = date
        expected = signer.signature(fields["policy"], scope_request)
        if not hmac.compare_digest(expected, fields["x-amz-signature"]):
            raise _signature_does_not_match(access_key_id, fields["policy"], fields["x-amz-signature"])

        policy = _decode_policy(fields["policy"])
        expiration = _parse_expiration(policy.get("expiration"))
        if self.now() > expiration:
            raise _access_denied("Invalid according to Policy: Policy expired.")
        bucket, _ = _bucket(environ)
        _check_conditions(policy.get("conditions"), form, bucket or "", form.file_size)


def _read_exactly(stream: Any, length: int) -> bytes:
    chunks = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _decode_policy(encoded: str) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(policy, dict):
        raise _invalid_policy("Invalid JSON.")
    return policy


def _parse_expiration(value: Any) -> datetime:
    if value is None:
        raise _invalid_policy("Policy missing expiration.")
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(str(value), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise _invalid_policy(f"Invalid 'expiration' value: '{value}'")


def _check_conditions(conditions: Any, form: _Form, bucket: str, size: int) -> None:
    """Each condition in the policy's order, then that the policy names every field sent.

    A field's value is compared as sent; field names compare without case, as S3 does. The
    failed condition is quoted in S3's canonical form (`["eq", "$key", ...]`).
    """
    if not isinstance(conditions, list):
        raise _invalid_policy("Policy missing conditions.")
    named: set[str] = set()
    for condition in conditions:
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise _invalid_policy("Invalid Simple-Condition: Simple-Conditions must have exactly one "
                                      "property specified.")
            ((name, expected),) = condition.items()
            operator, field = "eq", f"${name}"
        elif isinstance(condition, list) and len(condition) == 3 and isinstance(condition[0], str):
            operator, field, expected = condition[0].lower(), condition[1], condition[2]
            if operator == "content-length-range":
                _check_size(field, expected, size)
                continue
        else:
            raise _invalid_policy(f"Invalid Condition: {json.dumps(condition)}")
        if operator not in ("eq", "starts-with") or not isinstance(field, str) or not field.startswith("$") \
                or not isinstance(expected, str):
            raise _invalid_policy(f"Invalid Condition: {json.dumps(condition)}")
        name = field[1:].lower()
        named.add(name)
        actual = bucket if name == "bucket" else form.get(name)
        if operator == "eq":
            satisfied = actual == expected
        elif name == "content-type" and actual is not None:
            # S3 lets Content-Type list several types; each must start with the prefix.
            satisfied = all(part.strip().startswith(expected) for part in actual.split(","))
        else:
            satisfied = (actual or "").startswith(expected)
        if not satisfied:
            raise _access_denied("Invalid according to Policy: Policy Condition failed: "
                                 + json.dumps([operator, field, expected]))
    extra = [sent for name, (sent, _) in form.fields.items()
             if name not in named and name not in UNCONDITIONED_FIELDS and not name.startswith("x-ignore-")]
    if extra:
        raise _access_denied("Invalid according to Policy: Extra input fields: " + ", ".join(extra))


def _check_size(low: Any, high: Any, size: int) -> None:
    try:
        minimum, maximum = int(low), int(high)
    except (TypeError, ValueError):
        raise _invalid_policy("Invalid content-length-range: its bounds must be integers.") from None
    if size < minimum:
        raise S3Error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
                      {"ProposedSize": size, "MinSizeAllowed": minimum})
    if size > maximum:
        raise S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
                      {"ProposedSize": size, "MaxSizeAllowed": maximum})
