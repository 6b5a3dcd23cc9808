"""What the local API and the local CDN share as HTTP servers: one way to write a response, on
sockets without Nagle's algorithm, and a threaded server that queues a burst of connections."""

from __future__ import annotations

import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Framing headers the server writes itself, whatever the handler answered.
_FRAMING = ("content-length", "connection", "transfer-encoding")


class LocalHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response goes out in two writes, headers then body. With Nagle's algorithm the body
    # waits for the client's ACK of the headers, which a delayed ACK holds back 40 ms: every
    # request would take 40 ms more than its work.
    disable_nagle_algorithm = True
    log: logging.Logger

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        self.log.debug("%s " + format, self.address_string(), *args)

    def request_headers(self) -> dict[str, str]:
        """The request's headers by lower-case name, repeated ones joined with commas."""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        return headers

    def respond(self, status: int, pairs: list[tuple[str, str]], body: bytes, *, head: bool = False) -> None:
        """Status, the answer's headers (less framing), content-length (but for a 304), body."""
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        self.send_response(status, reason)
        for name, value in pairs:
            if name.lower() not in _FRAMING:
                self.send_header(name, value)
        if status != 304:
            self.send_header("content-length", str(len(body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if not head and status != 304 and body:
            self.wfile.write(body)


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 resets connections under a 20-client load
