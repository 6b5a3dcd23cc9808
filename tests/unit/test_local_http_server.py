"""The local API's and CDN's HTTP servers on a loopback socket: a response is not held back by
Nagle's algorithm (headers and body go in two writes; with Nagle the body waits for a delayed
ACK, 40 ms on every request of `make dev` and the e2e suite)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from imgdrop_local import cdn, http_api
from imgdrop_local.http_server import LocalServer


class Answer:
    """Stands in for the HttpApi and the LocalCdn: every request gets 200 and a small body."""

    def handle(self, *_args, **_kwargs):
        return 200, [("content-type", "text/plain"), ("content-length", "999")], b"ok"


@contextmanager
def serving(server: LocalServer) -> Iterator[tuple[str, list[int]]]:
    """The server on a thread; the list collects each accepted connection's TCP_NODELAY."""
    nodelay: list[int] = []
    handler = server.RequestHandlerClass

    class Recording(handler):  # type: ignore[misc, valid-type]
        def setup(self):
            super().setup()
            nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server.RequestHandlerClass = Recording
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", nodelay
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)


def api_server() -> LocalServer:
    return http_api.serve(Answer(), port=0)  # type: ignore[arg-type]


def cdn_server() -> LocalServer:
    return LocalServer(("127.0.0.1", 0), type("Handler", (cdn._Handler,), {"cdn": Answer()}))


@pytest.mark.parametrize("make", [api_server, cdn_server], ids=["api", "cdn"])
def test_responses_go_out_without_nagle(make):
    with serving(make()) as (url, nodelay), requests.Session() as session:
        answers = [session.get(f"{url}/v1/health", timeout=5) for _ in range(3)]

    assert [(a.status_code, a.text, a.headers["content-length"]) for a in answers] == [(200, "ok", "2")] * 3
    assert nodelay == [1]  # one keep-alive connection, Nagle off
