"""HEAD answers like GET without a body on every page route; every answer says how long it
may be cached: pages briefly, versioned static files for a year, errors, the API and the probe
never."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from app.http.main import create_app
from tests.app.conftest import preset_link

PAGES = [
    preset_link("cve-2020-29374"),
    preset_link("cve-2020-29374", path="/embed"),
    preset_link("cve-2020-29374", path="/export.svg"),
    preset_link("cve-2020-29374", path="/compare"),
    "/presets",
    "/docs",
    "/",
]


@pytest.mark.parametrize("path", PAGES)
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control", "content-security-policy"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_head_of_a_bad_link_is_its_error_without_a_body(client: TestClient) -> None:
    head = client.head("/?v=1&s=P+frok+C")
    assert head.status_code == 400 and head.content == b""


@pytest.mark.parametrize("path", PAGES)
def test_pages_may_be_cached_briefly(client: TestClient, path: str) -> None:
    assert client.get(path).headers["cache-control"] == "public, max-age=60"


def test_a_step_fragment_may_be_cached_briefly(client: TestClient) -> None:
    headers = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#stage"}
    r = client.get(preset_link("cve-2020-29374", step=2), headers=headers)
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=60"


def test_versioned_static_files_are_immutable_for_a_year(client: TestClient) -> None:
    page = client.get("/").text
    start = page.index("/static/vendor/")
    src = page[start : page.index('"', start)]
    r = client.get(src)
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/no-such-page", None),
        ("GET", "/?v=1&s=P+frok+C", None),
        ("GET", "/static/no-such-file.js", None),
        ("GET", "/?v=1&s=" + "x" * 54_000, None),  # 414 at the door
        ("POST", "/api/v1/simulate", {"scenario": "P frok C"}),
        ("POST", "/api/v1/simulate", {"scenario": "P mmap a"}),
        ("GET", "/api/v1/probe", None),
        ("POST", "/probe", None),
    ],
)
def test_errors_the_api_and_the_probe_are_never_stored(
    client: TestClient, method: str, path: str, body: object
) -> None:
    r = client.request(method, path, json=body)
    assert r.headers["cache-control"] == "no-store", (r.status_code, r.headers)


def test_a_server_failure_is_never_stored() -> None:
    app: FastAPI = create_app()

    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/broken")
    assert r.status_code == 500 and r.headers["cache-control"] == "no-store"
