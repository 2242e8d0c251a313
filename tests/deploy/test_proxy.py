"""The shipped nginx configuration, started for real: event streams, a lecture hall's burst of
connections from one address, forwarded addresses, and cowlab's size limits at the proxy."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.deploy import run
from app.deploy.nginx import NginxSettings
from app.http.guard import MAX_BODY_BYTES, MAX_QUERY_BYTES
from app.http.security import DENY_HEADERS
from tests.deploy.clients import HOST, burst
from tests.deploy.conftest import started

PROXY_ERROR = "cowlab: the proxy could not pass this request on"
# The test stream: events this far apart, longer than the page read timeout set below.
GAP_S = 1.5
EVENTS = 3
PAGE_READ_TIMEOUT_S = 1
LATE_S = 0.8  # an event may arrive this much after it was sent, on a busy shared machine


@pytest.fixture
def stream_proxy(nginx_binary: str, tmp_path: Path) -> Iterator[int]:
    """nginx with a short page read timeout in front of `tests/deploy/upstream.py`."""
    port = run.free_port()
    command = [sys.executable, "-m", "uvicorn", "tests.deploy.upstream:app"]
    command += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    with started(command, port):
        settings = NginxSettings(upstreams=(f"{HOST}:{port}",), read_timeout_s=PAGE_READ_TIMEOUT_S)
        with run.running(settings, tmp_path / "nginx") as nginx:
            yield nginx.port


def event_arrivals(port: int, path: str, limit_s: float = 8.0) -> list[float]:
    """Seconds after the request at which each event of the stream at ``path`` arrived."""
    arrivals: list[float] = []
    with socket.create_connection((HOST, port), timeout=limit_s) as s:
        start = time.monotonic()
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        while len(arrivals) < EVENTS and time.monotonic() - start < limit_s:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            arrivals += [time.monotonic() - start] * data.count(b"data: ")
    return arrivals


@pytest.mark.parametrize("path", ["/live/ROOM42/events", "/api/v1/live/ROOM42/events"])
def test_live_event_streams_pass_each_event_at_once_and_outlive_the_page_timeout(
    stream_proxy: int, path: str
) -> None:
    arrivals = event_arrivals(stream_proxy, f"{path}?events={EVENTS}&gap={GAP_S}")
    assert len(arrivals) == EVENTS, arrivals
    for n, seconds in enumerate(arrivals):
        assert seconds < n * GAP_S + LATE_S, (n, arrivals)


def test_a_quiet_stream_outside_the_live_paths_is_cut_by_the_page_read_timeout(
    stream_proxy: int,
) -> None:
    """The control: the live locations' own read timeout is what keeps their streams open."""
    arrivals = event_arrivals(stream_proxy, f"/somewhere/events?events={EVENTS}&gap={GAP_S}")
    assert len(arrivals) < EVENTS, arrivals


def test_the_upstream_sees_the_clients_address_not_the_one_it_claims(stream_proxy: int) -> None:
    answer = httpx.get(
        f"http://{HOST}:{stream_proxy}/echo",
        headers={"X-Forwarded-For": "203.0.113.9", "Host": "class.example.org"},
        timeout=10,
    )
    headers = answer.json()["headers"]
    assert headers["x-forwarded-for"] == HOST
    assert headers["host"] == "class.example.org"
    assert headers["x-forwarded-proto"] == "http"


def test_a_burst_of_600_connections_from_one_address_is_admitted(proxy_port: int) -> None:
    """A lecture hall behind one NAT address: 600 connections open at once, all answered."""
    answers = burst(proxy_port, 600, "/static/favicon.svg", timeout=45)
    failed = [head for status, head in answers if status != 200]
    assert not failed, f"{len(failed)} of 600 not answered 200; first: {failed[0]}"


def security_headers_of(response: httpx.Response) -> dict[str, str]:
    return {name.decode(): response.headers.get(name.decode(), "") for name, _ in DENY_HEADERS}


def test_nginx_refuses_a_body_over_the_apps_limit_with_the_security_headers(
    proxy_port: int,
) -> None:
    answer = httpx.post(
        f"http://{HOST}:{proxy_port}/api/v1/simulate",
        content=b"x" * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
        timeout=20,
    )
    assert answer.status_code == 413
    assert PROXY_ERROR in answer.text
    assert security_headers_of(answer) == {n.decode(): v.decode() for n, v in DENY_HEADERS}
    assert answer.headers["cache-control"] == "no-store"


def test_the_longest_link_the_app_reads_reaches_the_app_and_a_longer_one_is_refused(
    proxy_port: int,
) -> None:
    base = f"http://{HOST}:{proxy_port}"
    query = "v=1&s="
    longest = httpx.get(f"{base}/?{query}{'a' * (MAX_QUERY_BYTES - len(query))}", timeout=20)
    # The app's own answer (it reads the link and says what is wrong with it), not nginx's.
    assert PROXY_ERROR not in longest.text
    assert longest.headers["content-type"].startswith("text/html")
    beyond = httpx.get(f"{base}/?{query}{'a' * (MAX_QUERY_BYTES + 8192)}", timeout=20)
    assert beyond.status_code == 414
    assert PROXY_ERROR in beyond.text
    assert security_headers_of(beyond)["x-frame-options"] == "DENY"
