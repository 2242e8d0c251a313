"""Issue 9, "Slow clients exhaust the server": 1,100 slow sockets against a real worker.

A bare uvicorn worker under the usual `ulimit -n 1024` holds every half-sent request forever and
then cannot accept another connection: real requests wait unanswered. Behind the shipped nginx
configuration the same sockets cost nginx a little memory each, never a worker's descriptor,
and nginx drops them after its header and body timeouts.
"""

from __future__ import annotations

import time

from app.deploy.nginx import NginxSettings
from tests.deploy.clients import let_go_within, slow_sockets, timed
from tests.deploy.conftest import SLOW_SOCKETS

# A page, a step of a preset (htmx) and the API: what a class sends while the sockets hang.
HTMX_STEP = {"HX-Request": "true", "HX-Target": "div#stage"}
REAL_REQUESTS: list[tuple[str, str, object, dict[str, str] | None]] = [
    ("GET", "/", None, None),
    ("GET", "/?v=1&s=P+mmap+a;P+write+a+v1;P+fork+C;C+read+a&policy=5.7&step=3", None, HTMX_STEP),
    ("POST", "/api/v1/simulate", {"scenario": "P mmap a; P fork C", "policy": "latest"}, None),
    ("GET", "/static/app.css", None, None),
]
# Promptly, on a machine shared with other jobs: a starved server never answers at all.
PROMPT_S = 3.0
STARVED_WAIT_S = 5.0


def test_1100_slow_sockets_through_nginx_leave_real_requests_answered(proxy_port: int) -> None:
    with slow_sockets(proxy_port, SLOW_SOCKETS) as sockets:
        for _ in range(3):
            for method, path, body, headers in REAL_REQUESTS:
                status, seconds = timed(proxy_port, method, path, 10, body, headers)
                assert status == 200, (method, path, status)
                assert seconds < PROMPT_S, (method, path, seconds)
        # nginx gives a header at most client_header_timeout in all, a body as long between
        # two reads: every slow socket is let go soon after, not held forever.
        settings = NginxSettings()
        limit = max(settings.header_timeout_s, settings.body_timeout_s) + 5
        assert let_go_within(sockets, limit) == SLOW_SOCKETS


def test_the_same_sockets_starve_a_bare_uvicorn_worker(worker_port: int) -> None:
    """The control: without nginx, the worker under `ulimit -n 1024` stops answering."""
    status, _ = timed(worker_port, "GET", "/", timeout=10)
    assert status == 200
    with slow_sockets(worker_port, SLOW_SOCKETS):
        time.sleep(1)
        status, seconds = timed(worker_port, "GET", "/", timeout=STARVED_WAIT_S)
        assert status == 0, f"answered {status} after {seconds:.1f} s despite the slow sockets"
    # The sockets gone, the worker answers again: they, not anything else, starved it.
    status, _ = timed(worker_port, "GET", "/", timeout=10)
    assert status == 200
