"""API Gateway HTTP API, emulated: payload format 2.0, the routes of template.yaml, the Lambda
authorizer called first (simple responses), CORS from the template, a 10 MB payload limit,
and the web/ folder served as static files outside /v1.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .http_server import LocalHandler, LocalServer
from .lambda_runtime import FunctionError, LambdaRuntime
from .template import ACCOUNT_ID, LOCAL_API_ID, REGION, REPO_ROOT, Cors, Route

log = logging.getLogger("imgdrop_local.api")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
STAGE = "$default"
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded|graphql)"
    r")(;.*)?$", re.IGNORECASE)


class _Matcher:
    def __init__(self, route: Route):
        self.route = route
        pattern = ""
        self.params = 0
        for part in re.split(r"(\{[^}]+\})", route.path):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                self.params += 1
                if name.endswith("+"):
                    pattern += f"(?P<{name[:-1]}>.+)"
                else:
                    pattern += f"(?P<{name}>[^/]+)"
            else:
                pattern += re.escape(part)
        self.regex = re.compile(f"^{pattern}$")
        self.greedy = route.path.endswith("+}")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method):
            return None
        m = self.regex.match(path)
        if m is None:
            return None
        return {k.rstrip("+"): unquote(v) for k, v in m.groupdict().items()}


class Router:
    """API Gateway picks the most specific route: static paths first, then fewer variables."""

    def __init__(self, routes: list[Route]):
        self.matchers = sorted((_Matcher(r) for r in routes),
                               key=lambda m: (m.greedy, m.params, m.route.method == "ANY"))

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for matcher in self.matchers:
            params = matcher.match(method, path)
            if params is not None:
                return matcher.route, params
        return None


def is_text(content_type: str | None) -> bool:
    return bool(content_type and _TEXT_TYPES.match(content_type.strip()))


class HttpApi:
    """The emulation, independent of the socket server (tests may call `handle` directly)."""

    def __init__(self, runtime: LambdaRuntime, routes: list[Route], cors: Cors | None,
                 *, cors_origins: list[str] | None = None, static_dir: Path | None = None):
        self.runtime = runtime
        self.router = Router(routes)
        self.cors = cors
        self.origins = cors_origins if cors_origins is not None else (cors.allow_origins if cors else [])
        self.static_dir = static_dir if static_dir is not None else REPO_ROOT / "web"

    # ------------------------------------------------------------ CORS

    def _allowed_origin(self, origin: str | None) -> str | None:
        if not origin or self.cors is None:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        allowed = self._allowed_origin(origin)
        if allowed is None:
            return {}
        headers = {"access-control-allow-origin": allowed}
        assert self.cors is not None  # type narrowing: _allowed_origin answered None otherwise  # nosec B101
        if self.cors.expose_headers:
            headers["access-control-expose-headers"] = ",".join(self.cors.expose_headers)
        if self.cors.allow_credentials:
            headers["access-control-allow-credentials"] = "true"
        if allowed != "*":
            headers["vary"] = "origin"
        return headers

    def preflight(self, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        assert self.cors is not None  # type narrowing: handle() calls it only with CORS set  # nosec B101
        out = self.cors_headers(headers.get("origin"))
        if not out:
            return 204, {}, b""
        out["access-control-allow-methods"] = ",".join(self.cors.allow_methods)
        requested = headers.get("access-control-request-headers")
        if "*" in self.cors.allow_headers and requested:
            out["access-control-allow-headers"] = requested
        else:
            out["access-control-allow-headers"] = ",".join(self.cors.allow_headers)
        if self.cors.max_age is not None:
            out["access-control-max-age"] = str(self.cors.max_age)
        return 204, out, b""

    # ------------------------------------------------------------ events

    def build_event(self, method: str, raw_path: str, raw_query: str, headers: dict[str, str],
                    body: bytes, route: Route, path_params: dict[str, str], source_ip: str,
                    request_id: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        cookie_header = headers.pop("cookie", None)
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": LOCAL_API_ID,
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": route.route_key,
                "stage": STAGE,
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookie_header:
            event["cookies"] = [c.strip() for c in cookie_header.split(";") if c.strip()]
        if query:
            event["queryStringParameters"] = query
        if path_params:
            event["pathParameters"] = path_params
        if body:
            text = None
            if is_text(headers.get("content-type")):
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
            if text is None:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
            else:
                event["body"] = text
        return event

    def authorizer_event(self, event: dict[str, Any], route: Route) -> dict[str, Any]:
        method, path = route.method, event["rawPath"]
        token = event["headers"].get("authorization")
        auth_event = {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{LOCAL_API_ID}/{STAGE}/{method}{path}",
            "identitySource": [token] if token else [],
        }
        for key in ("routeKey", "rawPath", "rawQueryString", "cookies", "headers",
                    "queryStringParameters", "requestContext", "pathParameters"):
            if key in event:
                auth_event[key] = json.loads(json.dumps(event[key]))
        return auth_event

    # ------------------------------------------------------------ handling

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes,
               source_ip: str = "127.0.0.1") -> tuple[int, list[tuple[str, str]], bytes]:
        """One request in, one response out: (status, header list, body)."""
        started = time.monotonic()
        parts = urlsplit(target)
        raw_path, raw_query = parts.path or "/", parts.query
        headers = {k.lower(): v for k, v in headers.items()}
        origin = headers.get("origin")
        request_id = base64.b32encode(uuid.uuid4().bytes)[:16].decode().lower()

        def answer(status: int, out: dict[str, str] | list[tuple[str, str]], payload: bytes):
            pairs = list(out.items()) if isinstance(out, dict) else list(out)
            names = {k.lower() for k, _ in pairs}
            for key, value in self.cors_headers(origin).items():
                if key not in names or key.startswith("access-control"):
                    pairs = [(k, v) for k, v in pairs if k.lower() != key]
                    pairs.append((key, value))
            pairs.append(("apigw-requestid", request_id))
            log.info("%s %s -> %d (%.0f ms)", method, raw_path, status, (time.monotonic() - started) * 1000)
            return status, pairs, payload

        def message(status: int, text: str):
            return answer(status, {"content-type": "application/json"},
                          json.dumps({"message": text}).encode())

        if method == "OPTIONS" and self.cors is not None and "access-control-request-method" in headers:
            status, out, payload = self.preflight(headers)
            log.info("OPTIONS %s -> %d (preflight)", raw_path, status)
            return status, list(out.items()), payload

        if not raw_path.startswith("/v1/") and raw_path != "/v1" and method in ("GET", "HEAD"):
            static = self.static(raw_path)
            if static is not None:
                return answer(static[0], static[1], b"" if method == "HEAD" else static[2])

        if len(body) > MAX_PAYLOAD_BYTES:
            return message(413, "Request Entity Too Large")

        found = self.router.find(method, raw_path)
        if found is None:
            return message(404, "Not Found")
        route, path_params = found
        event = self.build_event(method, raw_path, raw_query, dict(headers), body, route, path_params,
                                 source_ip, request_id)

        if route.authorizer:
            try:
                verdict = self.runtime.invoke(route.authorizer, self.authorizer_event(event, route))
            except FunctionError:
                return message(500, "Internal Server Error")
            if not isinstance(verdict, dict) or not isinstance(verdict.get("isAuthorized"), bool):
                log.error("authorizer answered %r: not a simple response", verdict)
                return message(500, "Internal Server Error")
            if not verdict["isAuthorized"]:
                return message(403, "Forbidden")
            event["requestContext"]["authorizer"] = {"lambda": verdict.get("context") or {}}

        try:
            result = self.runtime.invoke(route.function, event)
        except FunctionError:
            return message(500, "Internal Server Error")
        status, pairs, payload = self.map_response(result)
        return answer(status, pairs, payload)

    @staticmethod
    def map_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        if not (isinstance(result, dict) and "statusCode" in result):
            # Payload 2.0 infers a 200 JSON answer from anything else.
            text = result if isinstance(result, str) else json.dumps(result)
            return 200, [("content-type", "application/json")], text.encode()
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            return 500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
        pairs: list[tuple[str, str]] = []
        for key, value in (result.get("headers") or {}).items():
            pairs.append((key.lower(), str(value)))
        for key, values in (result.get("multiValueHeaders") or {}).items():
            pairs = [(k, v) for k, v in pairs if k != key.lower()]
            pairs.extend((key.lower(), str(v)) for v in values)
        for cookie in result.get("cookies") or []:
            pairs.append(("set-cookie", cookie))
        body: Any = result.get("body")
        if body is None:
            payload = b""
        elif result.get("isBase64Encoded"):
            payload = base64.b64decode(body)
        else:
            payload = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        return status, pairs, payload

    def static(self, raw_path: str) -> tuple[int, dict[str, str], bytes] | None:
        """web/ at / and at /web/...; None when no such file (the router answers then)."""
        if not self.static_dir.is_dir():
            return None
        rel = unquote(raw_path)
        rel = rel[len("/web"):] if rel == "/web" or rel.startswith("/web/") else rel
        rel = rel.lstrip("/") or "index.html"
        root = self.static_dir.resolve()
        path = (root / rel).resolve()
        if path.is_dir():
            path = path / "index.html"
        if not path.is_relative_to(root) or not path.is_file():
            return None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        return 200, {"content-type": ctype, "cache-control": "no-cache"}, path.read_bytes()


class _Handler(LocalHandler):
    server_version = "imgdrop-local"
    log = log
    api: HttpApi  # set on the subclass made by serve()

    def _read_body(self) -> bytes | None:
        """The body, or None when it exceeds the payload limit (the rest is not read)."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_PAYLOAD_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.respond(400, [("content-type", "application/json")], b'{"message":"Bad Request"}')
            return
        if body is None:
            self.close_connection = True
            self.respond(413, [("content-type", "application/json")],
                         b'{"message":"Request Entity Too Large"}')
            return
        headers = self.request_headers()
        try:
            status, pairs, payload = self.api.handle(self.command, self.path, headers, body,
                                                     self.client_address[0])
        except Exception:
            log.exception("local API failure on %s %s", self.command, self.path)
            status, pairs, payload = 500, [("content-type", "application/json")], \
                b'{"message":"Internal Server Error"}'
        self.respond(status, pairs, payload, head=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch


def serve(api: HttpApi, host: str = "127.0.0.1", port: int = 3000) -> LocalServer:
    """A bound server; call serve_forever() in a thread and shutdown() to stop it."""
    handler = type("Handler", (_Handler,), {"api": api})
    return LocalServer((host, port), handler)
