"""The API's resolver keeps the request it answers per thread: two copies of the API function in
one process (the local stack) each read their own event and context, never the other's.

powertools keeps both on a class attribute shared by every resolver of the process; the local
stack once had to take API requests one at a time because of it (a direct upload stored another
request's bytes)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from imgdrop.rest import ImgdropResolver

EVENTS = Path(__file__).resolve().parents[2] / "events"


def echo_event(n: int) -> dict[str, Any]:
    event = json.loads((EVENTS / "api_health.json").read_text())
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /v1/echo"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/echo"
    event["requestContext"]["http"]["method"] = "POST"
    event["body"] = json.dumps({"n": n})
    return event


def copy_of_the_function(inside: threading.Event, release: threading.Event) -> ImgdropResolver:
    app = ImgdropResolver()

    @app.post("/v1/echo")
    def echo() -> dict[str, Any]:
        n = app.current_event.json_body["n"]
        if n == 1:  # the first request waits, inside its route, while the second one is answered
            inside.set()
            assert release.wait(5)
        return {"n": app.current_event.json_body["n"], "request": app.lambda_context.aws_request_id}

    return app


def test_two_requests_at_once_each_read_their_own_event_and_context():
    inside, release = threading.Event(), threading.Event()
    first_copy = copy_of_the_function(inside, release)
    second_copy = copy_of_the_function(inside, release)
    answers: dict[int, Any] = {}

    first = threading.Thread(target=lambda: answers.setdefault(
        1, first_copy.resolve(echo_event(1), SimpleNamespace(aws_request_id="first"))))
    first.start()
    assert inside.wait(5)
    answers[2] = second_copy.resolve(echo_event(2), SimpleNamespace(aws_request_id="second"))
    release.set()
    first.join(10)

    assert {n: (a["statusCode"], json.loads(a["body"])) for n, a in answers.items()} == {
        1: (200, {"n": 1, "request": "first"}),
        2: (200, {"n": 2, "request": "second"}),
    }
