"""Delivery as a browser sees it: the uploader page's <picture> picks AVIF from the local CDN,
the auto-format URL negotiates from Chromium's own Accept, private images load only signed; and
the CDN's answers to plain HTTP clients (negotiation, cache and CORS headers, stable URLs)."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from api_client import Api, jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TIMEOUT = 10
LOAD_MS = 30_000
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def tenant() -> str:
    return "deliv-" + uuid.uuid4().hex[:8]


@pytest.fixture
def api(local_stack, tenant) -> Api:
    return Api(local_stack.api_url, local_stack.token(tenant=tenant))


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()


def ready_image(local_stack, api: Api, **fields: Any) -> dict[str, Any]:
    """A new JPEG (its own colour, so no dedupe), uploaded through the API and processed."""
    color = tuple(uuid.uuid4().bytes[:3])
    answer = api.upload(jpeg(1280, 960, color=color), **fields)
    image = api.wait(answer["id"])
    assert image["status"] == "ready", (image.get("errors"), local_stack.logs()[-3000:])
    return image


def load_in_page(page, url: str) -> dict[str, Any]:
    """Load `url` as an <img> in the page; what the element ended with."""
    return page.evaluate(
        """(url) => new Promise((resolve) => {
             const img = new Image();
             img.onload = () => resolve({ok: true, width: img.naturalWidth, src: img.currentSrc});
             img.onerror = () => resolve({ok: false, width: img.naturalWidth, src: img.currentSrc});
             img.src = url;
             document.body.append(img);
           })""",
        url,
    )


def test_the_page_card_loads_avif_through_its_picture(local_stack, api, page, tenant):
    image = ready_image(local_stack, api)
    assert {"avif", "webp", "jpeg"} <= set(image["srcset"]), image["srcset"]
    assert all(u.startswith(local_stack.cdn_url + "/") for u in image["srcset"]["avif"].split(" ")[::2])

    page.goto(local_stack.api_url + "/")
    page.fill("#token", local_stack.token(tenant=tenant))
    page.evaluate("(id) => window.imgdrop.show(id)", image["id"])
    card = f"#gallery #image-{image['id']}"
    page.wait_for_function(
        "(sel) => { const i = document.querySelector(sel + ' picture img.thumb');"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=card,
        timeout=LOAD_MS,
    )
    got = page.eval_on_selector(
        card,
        """c => {
          const img = c.querySelector('picture img.thumb');
          return {
            sources: [...c.querySelectorAll('picture source')].map(s => ({type: s.type, srcset: s.srcset,
                                                                           sizes: s.sizes})),
            current: img.currentSrc, width: img.naturalWidth, srcset: img.srcset, src: img.src,
            sizes: img.sizes, loading: img.loading, loaded: c.classList.contains('loaded'),
            blur: c.querySelector('canvas.blur').dataset.painted || '',
          };
        }""",
    )
    assert [s["type"] for s in got["sources"]] == ["image/avif", "image/webp"], got
    assert [s["srcset"] for s in got["sources"]] == [image["srcset"]["avif"], image["srcset"]["webp"]]
    assert all(s["sizes"] and s["sizes"] == got["sizes"] for s in got["sources"]), got
    assert got["srcset"] == image["srcset"]["jpeg"] and got["src"] == image["variants"]["thumb"]["url"]
    assert got["current"].endswith(".avif") and got["current"] in image["srcset"]["avif"], got
    assert got["width"] > 0 and got["loaded"] and got["loading"] == "lazy"
    assert got["blur"] == "1"
    assert page.errors == []


@pytest.mark.parametrize(("refused", "shown"), [(("avif",), ".webp"), (("avif", "webp"), ".jpg")])
def test_a_format_that_fails_to_load_falls_back_to_the_next(local_stack, api, page, tenant, refused, shown):
    image = ready_image(local_stack, api)
    pattern = re.compile(r"\.(" + "|".join(refused) + r")(\?|$)")
    page.route(pattern, lambda route: route.fulfill(status=403, body="refused"))
    page.goto(local_stack.api_url + "/")
    page.fill("#token", local_stack.token(tenant=tenant))
    page.evaluate("(id) => window.imgdrop.show(id)", image["id"])
    img = f"#gallery #image-{image['id']} img.thumb"
    page.wait_for_function(
        "(sel) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg=img,
        timeout=LOAD_MS,
    )
    got = page.eval_on_selector(img, "i => ({current: i.currentSrc, hidden: i.hidden, "
                                     "sources: [...i.parentNode.querySelectorAll('source')].map(s => s.type)})")
    assert got["current"].endswith(shown) and not got["hidden"], got
    assert not any(f"image/{f}" in got["sources"] for f in refused), got


def test_the_auto_url_answers_avif_to_chromium_with_vary_accept(local_stack, api, page):
    image = ready_image(local_stack, api)
    auto_url = image["variants"]["medium"]["auto_url"]
    assert ".auto." in auto_url

    page.goto(local_stack.api_url + "/")
    with page.expect_response(lambda r: r.url == auto_url, timeout=LOAD_MS) as answer:
        loaded = load_in_page(page, auto_url)
    response = answer.value
    assert loaded["ok"] and loaded["width"] == image["variants"]["medium"]["width"], loaded
    assert "image/avif" in response.request.all_headers()["accept"]  # Chromium's own Accept
    headers = response.all_headers()
    assert response.status == 200 and headers["content-type"] == "image/avif", headers
    assert "accept" in headers["vary"].lower()

    # fetch() from the page sends Accept: */*: the fallback (CORS lets the page read it)
    fetched = page.evaluate(
        "async (url) => { const r = await fetch(url); return {status: r.status, type: r.headers.get('content-type')}; }",
        auto_url,
    )
    assert fetched == {"status": 200, "type": "image/jpeg"}


def test_a_private_image_loads_signed_and_its_unsigned_url_answers_403(local_stack, api, page):
    image = ready_image(local_stack, api, privacy="private")
    medium = image["variants"]["medium"]
    signed = medium["url"]
    assert {"Expires", "Signature", "Key-Pair-Id"} <= set(parse_qs(urlsplit(signed).query)), signed
    unsigned = signed.split("?", 1)[0]

    page.goto(local_stack.api_url + "/")
    loaded = load_in_page(page, signed)
    assert loaded["ok"] and loaded["width"] == medium["width"], loaded
    assert not load_in_page(page, unsigned)["ok"]

    got = requests.get(signed, timeout=TIMEOUT)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
    assert got.headers["Cache-Control"].split(",")[0] == "private"
    assert requests.get(unsigned, timeout=TIMEOUT).status_code == 403
    assert requests.get(medium["auto_url"].split("?", 1)[0], timeout=TIMEOUT).status_code == 403
    assert requests.get(image["original"]["url"].split("?", 1)[0], timeout=TIMEOUT).status_code == 403


def test_negotiation_cache_and_cors_headers_for_plain_clients(local_stack, api):
    image = ready_image(local_stack, api)
    medium = image["variants"]["medium"]
    auto_url = medium["auto_url"]

    webp = requests.get(auto_url, headers={"Accept": "image/webp"}, timeout=TIMEOUT)
    assert webp.status_code == 200 and webp.headers["Content-Type"] == "image/webp"
    assert webp.content == requests.get(medium["formats"]["webp"]["url"], timeout=TIMEOUT).content
    assert "Accept" in webp.headers["Vary"]
    wildcard = requests.get(auto_url, headers={"Accept": "*/*"}, timeout=TIMEOUT)
    assert wildcard.status_code == 200 and wildcard.headers["Content-Type"] == "image/jpeg"
    assert len(wildcard.content) == medium["bytes"]

    public = requests.get(medium["url"], timeout=TIMEOUT)
    assert public.status_code == 200 and public.headers["Content-Type"] == "image/jpeg"
    assert public.headers["Cache-Control"] == IMMUTABLE
    assert public.headers["Access-Control-Allow-Origin"] == "*"
    assert public.headers["ETag"]
    assert "?" not in medium["url"] and medium["url"].startswith(local_stack.cdn_url + "/")

    again = api.image(image["id"])
    assert (again["variants"], again["srcset"]) == (image["variants"], image["srcset"])
