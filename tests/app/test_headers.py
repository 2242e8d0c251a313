"""Security headers on every kind of response, not only on the pages' happy path.

tests/app/test_safety.py checks the pages; here every other kind of answer — fragments,
refusals, errors, JSON, static files, the SVG download — carries the same protections, and only
``/embed`` (page or fragment) may be framed by another site.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app.http.guard import MAX_QUERY_BYTES
from app.http.main import create_app
from app.paths import HTMX_FILE
from tests.app import asgi
from tests.app.conftest import HTMX, hx, preset_link

APP = create_app()


def check(headers: dict[str, str], frameable: bool) -> None:
    headers = {k.lower(): v for k, v in headers.items()}
    csp = headers["content-security-policy"]
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in csp, "no unsafe-inline / unsafe-eval anywhere"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    if frameable:
        assert directives["frame-ancestors"] == "*"
        assert "x-frame-options" not in headers
    else:
        assert directives["frame-ancestors"] == "'none'"
        assert headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        (preset_link("cve-2020-29374", "5.7", 3), hx("stage"), 200),
        (preset_link("cve-2020-29374", "5.7", 3), HTMX, 200),
        (preset_link("cve-2020-29374", "5.7", 3, "/compare"), hx("cmp-stage"), 200),
        (preset_link("cve-2020-29374", "5.7", 3, "/export.svg"), {}, 200),
        ("/?s=P+frok+C", hx("stage"), 400),
        ("/?s=P+mmap+a&policy=9.9", {}, 400),
        ("/nowhere", {}, 404),
        ("/api/v1/probe", {}, 200),
        ("/openapi.json", {}, 200),
        ("/static/app.css", {}, 200),
        (f"/static/{HTMX_FILE}", {}, 200),
        ("/static/nothing.js", {}, 404),
    ],
)
def test_every_kind_of_answer_carries_the_headers(
    client: TestClient, path: str, headers: dict[str, str], status: int
) -> None:
    r = client.get(path, headers=headers)
    assert r.status_code == status
    check(dict(r.headers), frameable=False)


def test_a_wrong_method_and_a_refused_body_carry_them_too(client: TestClient) -> None:
    r = client.delete("/")
    assert r.status_code == 405
    check(dict(r.headers), frameable=False)
    r = client.post("/api/v1/simulate", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422
    check(dict(r.headers), frameable=False)


def test_a_refusal_at_the_door_carries_them() -> None:
    answer = asgi.send(APP, "GET", "/embed", query="s=" + "x" * MAX_QUERY_BYTES)
    assert answer.status == 414
    check(answer.headers, frameable=True)


@pytest.mark.parametrize("headers", [{}, hx("embed"), HTMX])
def test_the_embed_view_may_be_framed_page_and_fragment(
    client: TestClient, headers: dict[str, str]
) -> None:
    r = client.get(preset_link("cve-2020-29374", "5.7", 3, "/embed"), headers=headers)
    assert r.status_code == 200
    check(dict(r.headers), frameable=True)


@pytest.mark.parametrize("path", ["/embedded", "/embed.svg", "/x/embed", "/static/embed"])
def test_only_the_embed_view_may_be_framed(client: TestClient, path: str) -> None:
    check(dict(client.get(path).headers), frameable=False)


def test_the_svg_download_is_an_attachment_and_not_sniffed(client: TestClient) -> None:
    r = client.get(preset_link("cve-2020-29374", "5.7", 3, "/export.svg"))
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "frameable", "kind"),
    [
        ("/boom", False, "text/html"),
        ("/embed/boom", True, "text/html"),
        ("/api/v1/boom", False, "application/json"),
    ],
)
def test_a_server_failure_is_a_page_with_the_headers_not_a_traceback(
    path: str, frameable: bool, kind: str
) -> None:
    # Starlette answers an unhandled exception outside every middleware: the answer must still
    # carry the protections, and say what happened without showing the traceback.
    app = create_app()

    async def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.add_api_route(path, boom, methods=["GET"])
    r = TestClient(app, raise_server_exceptions=False).get(path)
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(kind)
    check(dict(r.headers), frameable)
    assert "secret internals" not in r.text and "Traceback" not in r.text
    if kind == "text/html":
        assert "Something went wrong on the server" in r.text
    else:
        assert r.json()["detail"]["error"] == "server"
