"""The local CDN: template.yaml's CloudFront distribution, emulated on http://127.0.0.1:3001
(`IMGDROP_CDN_PORT`), serving the emulated bucket under the distribution's own rules.

Per request, in CloudFront's order:
1. the cache behaviour whose PathPattern matches the path (template.yaml: `public/*` unsigned,
   the default behaviour with TrustedKeyGroups); methods it does not allow answer 403;
2. a behaviour with trusted key groups needs a valid canned-policy signed URL of the dev key pair
   (imgdrop.delivery.verify_signed_url over the URL as asked, Host included): 403 otherwise, with
   CloudFront's short XML body (MissingKey for an unsigned URL, AccessDenied naming the reason);
3. the viewer-request function: infra/cdn/auto_format.js itself, run by ONE long-lived
   `node infra/cdn/serve.mjs` child (restarted if it dies); it may rewrite the URI or answer;
4. the origin: the object from moto's in-process S3 backend, readable only where the bucket
   policy lets cloudfront.amazonaws.com GetObject (public/*, images/*: never uploads/, even signed,
   as deployed). A missing or unreadable key answers S3's 403 AccessDenied, since the policy grants
   no s3:ListBucket (S3 answers 404 only to a principal that may list); with ListBucket, 404;
5. the viewer-response function (only for answers below 400, as CloudFront), which adds
   `Vary: Accept` to auto-format answers; then the response headers policy (CORS `*`, nosniff).

Answers carry the object's Content-Type, Cache-Control, ETag, Last-Modified and Content-Length;
If-None-Match / If-Modified-Since answer 304; HEAD has no body. No cache, so nothing to invalidate;
no Range requests (whole objects only).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import select
import shutil
import subprocess  # nosec B404 - runs node on the repo's own edge function, no shell
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .http_server import LocalHandler, LocalServer
from .template import LOCAL_CDN_KEY_PAIR_ID, REPO_ROOT, Resolver, Stack

log = logging.getLogger("imgdrop_local.cdn")

EDGE_DIR = REPO_ROOT / "infra" / "cdn"
SERVE_MJS = EDGE_DIR / "serve.mjs"
EDGE_FUNCTION_JS = EDGE_DIR / "auto_format.js"
EDGE_TIMEOUT_S = 5.0
DEV_KEY_FILE = "cdn-dev-private-key.pem"


# ---------------------------------------------------------------- the dev key pair


def state_dir() -> Path:
    """Where the local stack keeps what outlives a run: `IMGDROP_STATE_DIR`, by default the
    repository's git-ignored `.local-data/`."""
    return Path(os.environ.get("IMGDROP_STATE_DIR") or REPO_ROOT / ".local-data")


def dev_private_key_pem(directory: Path | None = None) -> str:
    """The dev key pair's private key (RSA 2048, PKCS#8 PEM), generated on first use and kept in the
    state dir (mode 0600); two stacks starting at once agree on the first one written."""
    path = (directory or state_dir()) / DEV_KEY_FILE
    if path.exists():
        return path.read_text()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # fails if another process got there first: keep its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    log.info("generated the local CDN's dev key pair in %s", path)
    return path.read_text()


def public_key_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# ---------------------------------------------------------------- the distribution's rules


@dataclass(frozen=True)
class Behavior:
    path_pattern: str  # "*" for the default behaviour
    signed: bool  # TrustedKeyGroups / TrustedSigners
    methods: tuple[str, ...] = ("GET", "HEAD")
    viewer_request: bool = True
    viewer_response: bool = True

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.path_pattern.lstrip("/"))


@dataclass
class CdnRules:
    """What template.yaml's distribution, response headers policy and bucket policy say."""

    bucket: str
    behaviors: list[Behavior] = field(default_factory=lambda: [
        Behavior("public/*", signed=False), Behavior("*", signed=True)])
    readable: tuple[str, ...] = ("*",)  # key patterns the bucket policy lets CloudFront GetObject
    list_bucket: bool = False
    cors_origin: str | None = "*"
    nosniff: bool = True

    def behavior(self, key: str) -> Behavior:
        return next(b for b in self.behaviors if b.matches(key))

    def can_read(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in self.readable)

    @classmethod
    def from_stack(cls, stack: Stack) -> CdnRules:
        resources: dict[str, Any] = stack.raw.get("Resources") or {}
        resolver = Resolver(stack.raw, dict(stack.parameters))
        rules = cls(bucket=stack.bucket_name)
        dist = next((r for r in resources.values() if r.get("Type") == "AWS::CloudFront::Distribution"), None)
        if dist is None:
            log.warning("template.yaml has no CloudFront distribution: the local CDN uses its defaults")
            return rules
        config = ((dist.get("Properties") or {}).get("DistributionConfig")) or {}

        def behavior(raw: dict[str, Any], pattern: str) -> Behavior:
            resolved = resolver.resolve(raw)
            events = {a.get("EventType") for a in resolved.get("FunctionAssociations") or []}
            signed = bool(resolved.get("TrustedKeyGroups") or resolved.get("TrustedSigners"))
            methods = tuple(m.upper() for m in resolved.get("AllowedMethods") or ["GET", "HEAD"])
            return Behavior(pattern, signed=signed, methods=methods,
                            viewer_request="viewer-request" in events,
                            viewer_response="viewer-response" in events)

        behaviors = [behavior(b, str(resolver.resolve(b["PathPattern"])))
                     for b in config.get("CacheBehaviors") or []]
        default_raw = config.get("DefaultCacheBehavior") or {}
        behaviors.append(behavior(default_raw, "*"))
        rules.behaviors = behaviors

        policy_id = _logical_id(default_raw.get("ResponseHeadersPolicyId"))
        policy = resources.get(policy_id or "") or {}
        if policy.get("Type") == "AWS::CloudFront::ResponseHeadersPolicy":
            cfg = resolver.resolve((policy.get("Properties") or {}).get("ResponseHeadersPolicyConfig") or {})
            cors = cfg.get("CorsConfig") or {}
            origins = (cors.get("AccessControlAllowOrigins") or {}).get("Items") or []
            rules.cors_origin = "*" if "*" in origins else None
            rules.nosniff = "ContentTypeOptions" in (cfg.get("SecurityHeadersConfig") or {})

        readable: list[str] = []
        bucket_arn = f"arn:aws:s3:::{stack.bucket_name}"
        for res in resources.values():
            if res.get("Type") != "AWS::S3::BucketPolicy":
                continue
            document = resolver.resolve((res.get("Properties") or {}).get("PolicyDocument") or {})
            statements = document.get("Statement") or []
            for st in [statements] if isinstance(statements, dict) else statements:
                principal = st.get("Principal") or {}
                services = principal.get("Service") if isinstance(principal, dict) else None
                services = [services] if isinstance(services, str) else services or []
                if st.get("Effect") != "Allow" or "cloudfront.amazonaws.com" not in services:
                    continue
                actions = st.get("Action") or []
                actions = [actions] if isinstance(actions, str) else actions
                targets = st.get("Resource") or []
                targets = [targets] if isinstance(targets, str) else targets
                if any(fnmatch.fnmatchcase("s3:GetObject", a) for a in actions):
                    readable += [t[len(bucket_arn) + 1:] for t in targets if t.startswith(bucket_arn + "/")]
                if any(fnmatch.fnmatchcase("s3:ListBucket", a) for a in actions) and bucket_arn in targets:
                    rules.list_bucket = True
        if readable:
            rules.readable = tuple(readable)
        return rules


def _logical_id(expr: Any) -> str | None:
    return str(expr["Ref"]) if isinstance(expr, dict) and "Ref" in expr else None


# ---------------------------------------------------------------- the origin: moto's S3, in process


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    content_type: str
    etag: str
    last_modified: float  # epoch seconds
    cache_control: str | None = None


class MotoOrigin:
    """Objects of one bucket, read from moto's S3 backend in this process (the local stack runs
    moto's server here): no HTTP round trip, no IAM (CloudFront reads with its OAC's own rights)."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def get(self, key: str) -> StoredObject | None:
        from moto.s3.models import s3_backends

        owner = s3_backends.bucket_accounts.get(self.bucket)
        if owner is None:
            return None
        partition, account_id = owner
        backend = s3_backends[account_id][partition]
        if self.bucket not in backend.buckets:
            return None
        try:
            obj = backend.get_object(self.bucket, key)
        except Exception:  # noqa: BLE001 - moto raises its own "no such key" flavours
            return None
        if obj is None or getattr(obj, "is_delete_marker", False):
            return None
        meta = obj.metadata
        etag = str(obj.etag)
        return StoredObject(
            body=obj.value,
            content_type=str(meta.get("Content-Type") or "binary/octet-stream"),
            etag=etag if etag.startswith('"') else f'"{etag}"',
            last_modified=obj.last_modified.timestamp(),
            cache_control=meta.get("Cache-Control"),
        )


# ---------------------------------------------------------------- the edge function, in node


class EdgeFunctionError(RuntimeError):
    def __init__(self, message: str, *, unavailable: bool = False):
        super().__init__(message)
        self.unavailable = unavailable


class EdgeFunction:
    """One long-lived `node infra/cdn/serve.mjs infra/cdn/auto_format.js`: one JSON CloudFront
    Functions event per line in, the handler's result per line out, one request at a time (a lock
    around the pipe). Started on first use, restarted when it died, killed when it hangs."""

    def __init__(self, script: Path = SERVE_MJS, function: Path = EDGE_FUNCTION_JS, node: str | None = None):
        self.script = script
        self.function = function
        self.node = node if node is not None else shutil.which("node")
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self._closed = False

    @property
    def unavailable_reason(self) -> str | None:
        if not self.node:
            return "node is not installed"
        for path in (self.script, self.function):
            if not path.exists():
                return f"{path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path} is missing"
        return None

    def _start(self) -> subprocess.Popen[bytes]:
        if not self.node:
            raise RuntimeError("node is not installed")
        self._buffer = b""
        self._proc = subprocess.Popen([self.node, str(self.script), str(self.function)],  # noqa: S603  # nosec B603
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
                                      cwd=REPO_ROOT, start_new_session=True)
        log.debug("edge function started (node pid %s)", self._proc.pid)
        return self._proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        _close_pipes(proc)

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float) -> bytes | None:
        if proc.stdout is None:
            raise RuntimeError("the edge function's stdout is not a pipe")
        fd = proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler's result for `event`; EdgeFunctionError when it cannot run or failed."""
        reason = self.unavailable_reason
        if reason:
            raise EdgeFunctionError(reason, unavailable=True)
        payload = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            if self._closed:
                raise EdgeFunctionError("the local CDN is stopping", unavailable=True)
            for attempt in (1, 2):
                if self._proc is not None and self._proc.poll() is not None:
                    log.warning("the edge function's node process exited (%s): restarting it",
                                self._proc.returncode)
                    self._kill()
                proc = self._proc if self._proc is not None else self._start()
                if proc.stdin is None:
                    raise RuntimeError("the edge function's stdin is not a pipe")
                try:
                    proc.stdin.write(payload)
                    proc.stdin.flush()
                    line = self._read_line(proc, time.monotonic() + EDGE_TIMEOUT_S)
                except (BrokenPipeError, EOFError, OSError):
                    self._kill()
                    if attempt == 1:
                        log.warning("the edge function's node process died: restarting it")
                        continue
                    raise EdgeFunctionError("the edge function's node process keeps dying",
                                            unavailable=True) from None
                if line is None:
                    self._kill()
                    raise EdgeFunctionError(f"the edge function did not answer within {EDGE_TIMEOUT_S:.0f} s",
                                            unavailable=True)
                break
            else:  # pragma: no cover - the loop always breaks or raises
                raise EdgeFunctionError("unreachable", unavailable=True)
        result = json.loads(line)
        if not isinstance(result, dict):
            raise EdgeFunctionError(f"the edge function answered {result!r}, not an object")
        if "error" in result and len(result) == 1:
            raise EdgeFunctionError(str(result["error"]))
        return result

    def warm(self) -> None:
        """Start node now rather than on the first request."""
        if self.unavailable_reason is None:
            with self._lock:
                if self._proc is None and not self._closed:
                    self._start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()  # serve.mjs exits 0 when stdin closes
        try:
            proc.wait(1)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
        _close_pipes(proc)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            if pipe is not None:
                pipe.close()


# ---------------------------------------------------------------- the CDN itself


Answer = tuple[int, list[tuple[str, str]], bytes]


def _error_xml(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>").encode()


def _cf_headers(headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: {"value": value} for name, value in headers.items()}


def _cf_querystring(query: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        entry = out.get(name)
        if entry is None:
            out[name] = {"value": value}
        else:
            entry.setdefault("multiValue", [{"value": entry["value"]}]).append({"value": value})
    return out


def _cf_cookies(header: str) -> dict[str, dict[str, Any]]:
    cookies: dict[str, dict[str, Any]] = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, _, value = part.partition("=")
        cookies.setdefault(name, {"value": value})
    return cookies


def _flatten(headers: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, spec in (headers or {}).items():
        multi = spec.get("multiValue") or spec.get("multivalue")
        values = [m.get("value") for m in multi] if multi else [spec.get("value")]
        pairs += [(name, str(v)) for v in values if v is not None]
    return pairs


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag.removeprefix("W/") for t in tags)


class LocalCdn:
    """The distribution's logic without the HTTP server: `handle()` answers one request."""

    def __init__(self, rules: CdnRules, origin: MotoOrigin, edge: EdgeFunction,
                 public_keys: dict[str, str], *, clock: Any = time.time):
        self.rules = rules
        self.origin = origin
        self.edge = edge
        self.public_keys = public_keys
        self.clock = clock

    def _edge_failure(self, exc: EdgeFunctionError) -> Answer:
        log.error("edge function failed: %s", exc)
        status = 502 if exc.unavailable else 503
        return status, [("content-type", "text/plain; charset=utf-8")], \
            f"The CloudFront function could not run: {exc}\n".encode()

    def _finish(self, status: int, pairs: list[tuple[str, str]], body: bytes) -> Answer:
        names = {k.lower() for k, _ in pairs}
        if self.rules.cors_origin and "access-control-allow-origin" not in names:
            pairs.append(("access-control-allow-origin", self.rules.cors_origin))
        if self.rules.nosniff and "x-content-type-options" not in names:
            pairs.append(("x-content-type-options", "nosniff"))
        return status, pairs, body

    def handle(self, method: str, raw_path: str, headers: dict[str, str], *, host: str,
               client_ip: str = "127.0.0.1") -> Answer:
        """`headers` lower-cased (repeated ones joined with ","); `raw_path` as on the request line."""
        from imgdrop.delivery import EXPIRED, TAMPERED, UNKNOWN_KEY, UNSIGNED, verify_signed_url

        path, _, query = raw_path.partition("?")
        key = unquote(path.lstrip("/"))
        behavior = self.rules.behavior(key)
        if method not in behavior.methods:
            return self._finish(403, [("content-type", "text/plain; charset=utf-8")],
                                b"This distribution is not configured to allow the HTTP request method "
                                b"that was used for this request.\n")
        if behavior.signed:
            refusal = verify_signed_url(f"http://{host}{raw_path}", self.public_keys, now=self.clock())
            if refusal is not None:
                code, message = {
                    UNSIGNED: ("MissingKey", "Missing Key-Pair-Id query parameter: unsigned URL"),
                    UNKNOWN_KEY: ("InvalidKey", "Unknown Key-Pair-Id"),
                    TAMPERED: ("AccessDenied", "Access denied: the signature does not match (tampered)"),
                    EXPIRED: ("AccessDenied", "Access denied: the signed URL has expired"),
                }[refusal]
                log.info("403 %s %s: %s", method, path, refusal)
                return self._finish(403, [("content-type", "text/xml")], _error_xml(code, message))

        request: dict[str, Any] = {
            "method": method,
            "uri": path or "/",
            "querystring": _cf_querystring(query),
            "headers": _cf_headers({k: v for k, v in headers.items() if k != "cookie"}),
            "cookies": _cf_cookies(headers.get("cookie", "")),
        }
        context = {"distributionDomainName": host, "distributionId": "ELOCALCDN",
                   "requestId": uuid.uuid4().hex}
        if behavior.viewer_request:
            try:
                result = self.edge.run({"version": "1.0",
                                        "context": {**context, "eventType": "viewer-request"},
                                        "viewer": {"ip": client_ip}, "request": request})
            except EdgeFunctionError as exc:
                return self._edge_failure(exc)
            if "statusCode" in result:  # the function answered: no origin, no viewer-response
                body = result.get("body") or b""
                if isinstance(body, dict):
                    body = body.get("data", "")
                data = body.encode() if isinstance(body, str) else body
                return self._finish(int(result["statusCode"]), _flatten(result.get("headers") or {}), data)
            request = result

        key = unquote(str(request.get("uri") or "/").lstrip("/"))
        obj = self.origin.get(key) if self.rules.can_read(key) else None
        if obj is None:
            if self.rules.list_bucket and self.rules.can_read(key):
                return self._finish(404, [("content-type", "application/xml")],
                                    _error_xml("NoSuchKey", "The specified key does not exist."))
            return self._finish(403, [("content-type", "application/xml")],
                                _error_xml("AccessDenied", "Access Denied"))

        status = 200
        request_headers = {k: v["value"] for k, v in (request.get("headers") or {}).items() if "value" in v}
        inm = request_headers.get("if-none-match")
        ims = request_headers.get("if-modified-since")
        if inm is not None:
            status = 304 if _etag_matches(inm, obj.etag) else 200
        elif ims:
            with contextlib.suppress(TypeError, ValueError, IndexError):
                if int(obj.last_modified) <= parsedate_to_datetime(ims).timestamp():
                    status = 304
        response_headers = {
            "content-type": obj.content_type,
            "etag": obj.etag,
            "last-modified": formatdate(obj.last_modified, usegmt=True),
        }
        if obj.cache_control:
            response_headers["cache-control"] = obj.cache_control
        if status == 304:
            del response_headers["content-type"]
        pairs = list(response_headers.items())
        if behavior.viewer_response:
            try:
                response = {"statusCode": status, "statusDescription": HTTPStatus(status).phrase,
                            "headers": _cf_headers(response_headers), "cookies": {}}
                result = self.edge.run({"version": "1.0",
                                        "context": {**context, "eventType": "viewer-response"},
                                        "viewer": {"ip": client_ip}, "request": request,
                                        "response": response})
            except EdgeFunctionError as exc:
                return self._edge_failure(exc)
            pairs = _flatten(result.get("headers") or {})  # the status is not the function's to change
        if status == 304:
            return self._finish(304, pairs, b"")
        return self._finish(200, pairs, obj.body)


class _Handler(LocalHandler):
    server_version = "imgdrop-local-cdn"
    timeout = 30  # an idle keep-alive connection ends after this
    log = log
    cdn: LocalCdn  # set on the subclass made by serve()

    def _dispatch(self) -> None:
        headers = self.request_headers()
        length = int(headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        host = headers.get("host") or f"127.0.0.1:{self.server.server_port}"  # type: ignore[attr-defined]
        try:
            status, pairs, body = self.cdn.handle(self.command, self.path, headers, host=host,
                                                  client_ip=self.client_address[0])
        except Exception:
            log.exception("local CDN failure on %s %s", self.command, self.path)
            status, pairs, body = 500, [("content-type", "text/plain")], b"local CDN failure\n"
        self.respond(status, pairs, body, head=self.command == "HEAD")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch


class RunningCdn:
    """The server on its thread, with the edge function's node process; stop() ends both."""

    def __init__(self, server: LocalServer, cdn: LocalCdn):
        self.server = server
        self.cdn = cdn
        self.url = f"http://127.0.0.1:{server.server_port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="local-cdn", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(2)
        self.cdn.edge.close()


def start(stack: Stack, port: int, *, private_key_pem: str | None = None) -> RunningCdn:
    """Serve the stack's bucket as its distribution would, on 127.0.0.1:`port`."""
    pem = private_key_pem or dev_private_key_pem()
    edge = EdgeFunction()
    reason = edge.unavailable_reason
    if reason:
        log.warning("local CDN: %s, so the edge function cannot run: every request answers 502 "
                    "(install Node.js 18+ to serve images locally)", reason)
    cdn = LocalCdn(CdnRules.from_stack(stack), MotoOrigin(stack.bucket_name), edge,
                   {LOCAL_CDN_KEY_PAIR_ID: public_key_pem(pem)})
    handler = type("Handler", (_Handler,), {"cdn": cdn})
    running = RunningCdn(LocalServer(("127.0.0.1", port), handler), cdn)
    edge.warm()
    return running
