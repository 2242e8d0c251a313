"""The throughput machinery of `cowlab bench` against a real uvicorn worker (a smoke test: the
figures themselves are benchmarks, not tests)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from app.webbench import (
    STAGE,
    STATIC_FILE,
    STATIC_PATH,
    _connections,
    _free_port,
    _hammer,
    step_paths,
)

BODY_BYTES = 4321


@pytest.fixture(scope="module")
def bench_server() -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "COWLAB_BENCH_STATIC_BYTES": str(BODY_BYTES)}
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.webbench:bench_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.05)
        yield port
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def test_a_warm_up_walk_gets_a_stage_fragment_for_every_step(bench_server: int) -> None:
    steps = step_paths("6.2")[:24]
    chunks = [steps[i::4] for i in range(4)]
    rate, mean = asyncio.run(_hammer(bench_server, chunks, STAGE, None))
    assert rate > 0
    assert mean > 1000  # a stage fragment, not an error page (that would raise anyway)


def test_timed_phases_answer_the_constant_body_and_the_file(bench_server: int) -> None:
    for path in (STATIC_PATH, STATIC_FILE):
        rate, mean = asyncio.run(_hammer(bench_server, [[path]] * 2, {}, 0.3))
        assert rate > 10
        assert mean == BODY_BYTES


def test_connections_deal_every_step_to_every_connection_from_another_start() -> None:
    paths = [str(i) for i in range(10)]
    dealt = _connections(paths, 3)
    assert [sorted(own) for own in dealt] == [paths] * 3
    assert [own[0] for own in dealt] == ["0", "3", "6"]
