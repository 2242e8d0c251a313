"""The page memo: a repeated request is answered from memory, and only with the same bytes."""

from __future__ import annotations

import asyncio

from starlette.testclient import TestClient
from starlette.types import Scope

from app.bench.web import HX, call
from app.http.main import create_app
from app.http.memo import request_key
from tests.app.conftest import hx, preset_link


def test_repeated_request_is_served_from_the_memo_with_identical_bytes() -> None:
    app = create_app()
    link = preset_link("cow-basic", "5.7", 3)
    with TestClient(app) as client:
        first = client.get(link, headers=hx("stage"))
        memo = app.state.pages
        assert len(memo.entries) == 1
        second = client.get(link, headers=hx("stage"))
        assert second.content == first.content
        assert second.headers["HX-Push-Url"] == first.headers["HX-Push-Url"]
        assert second.headers["content-security-policy"]  # still added outside the memo


def test_the_key_tells_fragments_pages_hosts_and_encodings_apart() -> None:
    def scope(headers: dict[str, str], path: str = "/", query: str = "s=P+mmap+a") -> Scope:
        return {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }

    base = {"host": "a"}
    keys = {
        request_key(scope(base)),
        request_key(scope({**base, "accept-encoding": "gzip"})),
        request_key(scope({"host": "b"})),
        request_key(scope({**base, **HX})),
        request_key(scope({**base, **HX, "HX-Target": "div#stage"})),
        request_key(scope(base, query="s=P+mmap+b")),
    }
    assert len(keys) == 6 and None not in keys
    assert request_key(scope(base, path="/static/app.css")) is None
    assert request_key({**scope(base), "method": "POST"}) is None


def test_errors_are_not_kept() -> None:
    app = create_app()
    with TestClient(app) as client:
        assert client.get("/?s=P+frok").status_code == 400
        assert len(app.state.pages.entries) == 0


def test_memo_is_bounded_by_entries_and_bytes() -> None:
    app = create_app()
    memo = app.state.pages
    memo.max_entries = 3
    for step in range(6):
        status, _ = asyncio.run(call(app, preset_link("cow-basic", "5.7", step), {}))
        assert status == 200
    assert len(memo.entries) == 3
    assert memo.bytes == sum(len(s.body) for s in memo.entries.values())
    # A byte bound that holds one page: the next new page pushes the older ones out.
    memo.max_bytes = max(len(s.body) for s in memo.entries.values()) + 1
    asyncio.run(call(app, preset_link("cow-basic", "5.9", 0), {}))
    assert len(memo.entries) == 1 and memo.bytes <= memo.max_bytes


def test_each_app_owns_its_memos() -> None:
    """No memo is a module global: what one app instance answered, another has not seen."""
    first, second = create_app(), create_app()
    link = preset_link("cow-basic", "5.7", 2)
    assert asyncio.run(call(first, link, {}))[0] == 200
    assert len(first.state.pages.entries) == 1 and len(first.state.runs) == 1
    assert len(second.state.pages.entries) == 0 and len(second.state.runs) == 0
    assert set(map(id, first.state.memos)) == {id(first.state.runs), id(first.state.pages)}
