"""Webhook trust fixes caught without AWS: a URL with characters HTTP cannot carry as they are is
percent-encoded, whatever the HTTP client raises is a failed attempt, and an event told twice
gets one `webhook-id`."""

from __future__ import annotations

import pytest

from imgdrop.webhooks import delivery, events, urls


@pytest.mark.parametrize(("given", "normalized"), [
    ("http://127.0.0.1/h\u00e9", "http://127.0.0.1/h%C3%A9"),
    ("https://hooks.example.com/\u00e9v\u00e9nements?q=\u00fc&x=\u00c5#\u00e0",
     "https://hooks.example.com/%C3%A9v%C3%A9nements?q=%C3%BC&x=%C3%85#%C3%A0"),
    # already encoded, or nothing to encode: as it was (escapes are not encoded twice)
    ("https://hooks.example.com/h%C3%A9?next=%2Fa&b=c;d", "https://hooks.example.com/h%C3%A9?next=%2Fa&b=c;d"),
    ("https://hooks.example.com:8443/a/b/?q=1", "https://hooks.example.com:8443/a/b/?q=1"),
    # not a URL: left for check() to refuse with webhook_url_invalid
    ("https://hooks.example.com/a b", "https://hooks.example.com/a b"),
])
def test_a_url_is_percent_encoded_as_a_browser_sends_it(given, normalized):
    assert urls.normalize(given) == normalized
    assert urls.normalize(normalized) == normalized


def test_a_url_stored_before_normalizing_is_encoded_at_delivery():
    """Given an endpoint registered with a raw non-ASCII path, the target it is called at is ASCII."""
    target = urls.check("http://127.0.0.1:8080/h\u00e9?q=\u00fc", allow_local=True)
    assert (target.path, target.addresses) == ("/h%C3%A9?q=%C3%BC", ("127.0.0.1",))


def test_an_error_the_http_client_raises_is_a_failed_attempt_not_an_escape():
    """http.client encodes the request line as ASCII and raises UnicodeEncodeError before it
    connects; post() must answer a failed attempt, which handle_message records and retries."""
    target = urls.Target("http", "127.0.0.1", 9, "/h\u00e9", ("127.0.0.1",))
    result = delivery.post(target, b"{}", {"content-type": "application/json"}, timeout=2)
    assert (result.status_code, result.delivered) == (None, False)
    assert result.error is not None and result.error.startswith("UnicodeEncodeError"), result


def test_the_same_event_for_the_same_endpoint_always_gets_the_same_delivery_id():
    first = events._delivery("acme", "wh1", "image.deleted", "01m8r1237e8fvvdp2sqhtkz09p", '{"a":1}')
    again = events._delivery("acme", "wh1", "image.deleted", "01m8r1237e8fvvdp2sqhtkz09p", '{"a":2}')
    assert (first.id, first.pk, first.sk) == (again.id, again.pk, again.sk)
    assert first.id.startswith("msg_01m8r1237e8fvvdp2sqhtkz09p_")
    others = {
        events.delivery_id("rival", "wh1", "image.deleted", "01m8r1237e8fvvdp2sqhtkz09p"),
        events.delivery_id("acme", "wh2", "image.deleted", "01m8r1237e8fvvdp2sqhtkz09p"),
        events.delivery_id("acme", "wh1", "image.ready", "01m8r1237e8fvvdp2sqhtkz09p"),
        events.delivery_id("acme", "wh1", "image.deleted", "01m8r1237e8fvvdp2sqhtkz09q"),
    }
    assert first.id not in others and len(others) == 4


def test_a_tls_handshake_that_trickles_ends_at_the_attempts_deadline():
    """A server that answers the TLS ClientHello a byte at a time, each before the socket's read
    timeout: abort() cannot reach a socket still in wrap_socket's handshake, so the deadline
    rests on CPython bounding the whole handshake by the socket's timeout (the time left). A
    review suspected otherwise; this guards it. The trickle lasts 6 s, the attempt 1 s: the
    client must hang up while the server still trickles."""
    import socket
    import threading

    from imgdrop.webhooks import delivery, urls

    listener = socket.create_server(("127.0.0.1", 0))
    hung_up = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)  # the ClientHello
            for byte in b"\x16\x03\x03\x40\x00" + b"\x00" * 55:  # a handshake record of 16 KB, slowly
                try:
                    conn.send(bytes([byte]))
                except OSError:
                    hung_up.set()
                    return
                threading.Event().wait(0.1)

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    try:
        target = urls.Target("https", "localhost", listener.getsockname()[1], "/", ("127.0.0.1",))
        result = delivery.post(target, b"{}", {}, timeout=1.0)
        assert result.error is not None and result.error.startswith("timeout"), result
        server.join(10)
        assert hung_up.is_set(), "the attempt outlived the trickle: its deadline did not end the handshake"
    finally:
        listener.close()
