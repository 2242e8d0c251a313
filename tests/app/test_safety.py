"""Security headers, CSP-clean markup, escaping of user text, and the vendored htmx."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app.paths import HTMX_FILE, STATIC_DIR
from tests.app.conftest import first, html, preset_link

HTMX_SHA256 = "a0abb04f2f45a1f89d1d4844023245537e5e6014c87b144553e0607b4cc32130"
PAGES = [
    preset_link("cve-2020-29374", "5.7", 4),
    preset_link("cve-2020-29374", "5.7", 4, "/compare"),
    preset_link("cve-2020-29374", "5.7", 4, "/embed"),
    "/presets",
    "/docs",
    "/?s=P+frok+C",
]


def test_vendored_htmx_is_the_pinned_4_0_1_build() -> None:
    data = (STATIC_DIR / HTMX_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256


@pytest.mark.parametrize("link", PAGES)
def test_pages_carry_the_security_headers(client: TestClient, link: str) -> None:
    r = client.get(link)
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe" not in csp
    assert "style-src 'self'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    if link.startswith("/embed"):
        assert "frame-ancestors *" in csp
        assert "x-frame-options" not in r.headers
    else:
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("link", PAGES)
def test_markup_needs_no_inline_script_style_or_handler(client: TestClient, link: str) -> None:
    doc = html(client.get(link).text)
    for script in doc.css("script"):
        assert script.attributes.get("src"), "inline <script> would break script-src 'self'"
        assert not (script.text() or "").strip()
    assert not doc.css("style"), "inline <style> would break style-src 'self'"
    for node in doc.css("*"):
        for name in node.attributes:
            assert name != "style", node.tag
            assert not name.startswith("on"), (node.tag, name)
            assert not name.startswith("hx-on"), (node.tag, name)


@pytest.mark.parametrize("link", PAGES)
def test_every_script_and_stylesheet_is_same_origin(client: TestClient, link: str) -> None:
    doc = html(client.get(link).text)
    urls = [n.attributes.get("src") for n in doc.css("script")]
    urls += [n.attributes.get("href") for n in doc.css("link")]
    for url in urls:
        assert url and url.startswith("/static/"), url
        assert client.get(url).status_code == 200


def test_user_text_cannot_inject_markup(client: TestClient) -> None:
    evil = 'P mmap a\n<script>alert(1)</script>\n"><img src=x onerror=alert(2)>'
    r = client.get("/", params={"s": evil})
    assert r.status_code == 400
    doc = html(r.text)
    assert all(s.attributes.get("src") for s in doc.css("script"))
    assert not doc.css("img")
    assert first(doc, "textarea[name=s]").text() == evil
    assert "<script>alert(1)</script>" not in r.text


def test_names_and_values_reach_the_picture_only_as_text(client: TestClient) -> None:
    # The language keeps names and values to safe characters; the policy id is free text and
    # is echoed by the error page, so it must be escaped there.
    r = client.get("/", params={"s": "P mmap a", "policy": "<b>x</b>"})
    assert r.status_code == 400
    assert "<b>x</b>" not in r.text
    assert "&lt;b&gt;x&lt;/b&gt;" in r.text


def test_static_files_are_cached_and_vendored_ones_forever(client: TestClient) -> None:
    r = client.get(f"/static/{HTMX_FILE}")
    assert "immutable" in r.headers["cache-control"]
    assert "max-age" in client.get("/static/app.css").headers["cache-control"]


def test_first_page_load_is_under_100_kb_compressed(client: TestClient) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    page = client.get(preset_link("cve-2020-29374", "5.7"), headers=gzip)
    assert page.headers.get("content-encoding") == "gzip"
    doc = html(page.text)
    urls = [n.attributes.get("src") for n in doc.css("script")]
    urls += [n.attributes.get("href") for n in doc.css("link")]
    # num_bytes_downloaded counts the body as sent (compressed), not as decoded.
    sent = [page.num_bytes_downloaded]
    sent += [client.get(url or "", headers=gzip).num_bytes_downloaded for url in urls]
    assert sum(sent) <= 100 * 1024, sent


def test_templates_and_static_are_found_from_the_package() -> None:
    assert (STATIC_DIR / "app.css").is_file()
    assert Path(STATIC_DIR).name == "static"
