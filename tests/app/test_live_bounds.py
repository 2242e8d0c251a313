"""What a public class server bounds (issue 20): streams that stop reading, the open-file
limit, and the Redis pool sized from it."""

from __future__ import annotations

import asyncio
import random
import resource
import socket
import time

import pytest

from app.live import serve, stream
from app.live.broker import max_streams
from app.live.loopback import HOST, JsonClient, SseStream
from app.live.redis_broker import pool_size
from app.views.links import make_link
from tests.app.live_support import live_app, serving

# A scenario whose link is large even compressed (notes of random letters): each state event
# carries ~20 KB, so a reader that stops fills its socket's buffers within a few hundred steps.
_NOISE = random.Random(20)
BIG = "\n".join([*(f"#: {_NOISE.randbytes(240).hex()}" for _ in range(30)), "P mmap a", "P read a"])


def test_a_stream_that_stops_reading_is_dropped_and_frees_its_seat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream, "SEND_TIMEOUT_S", 0.5)
    app, broker = live_app()

    async def scenario(port: int) -> None:
        teacher = await JsonClient.open(port)
        status, started = await teacher.request(
            "POST", "/api/v1/live", {"link": make_link("/", BIG, policy="5.7", step=0)}
        )
        assert status == 201, started
        code, key = started["code"], started["teacher_key"]
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((HOST, port))
        stuck.sendall(f"GET /live/{code}/events HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        reader = await SseStream.open(port, f"/live/{code}/events")
        await reader.until(lambda e: e.kind == "state", 5)
        assert broker.hub.students(code) == 2
        # The teacher steps back and forth; the stuck reader never reads a byte.
        deadline = time.monotonic() + 60
        step = 0
        while broker.hub.students(code) == 2 and time.monotonic() < deadline:
            step = 1 - step
            status, _ = await teacher.request(
                "POST", f"/api/v1/live/{code}/state", {"step": step}, key
            )
            assert status == 200
            await reader.until(lambda e, s=step: e.kind == "state" and e.data["step"] == s, 5)
            await asyncio.sleep(0.02)
        # The stuck stream was dropped; the one that reads is still served.
        assert broker.hub.students(code) == 1
        status, _ = await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 2}, key)
        await reader.until(lambda e: e.kind == "state" and e.data["step"] == 2, 5)
        stuck.close()
        reader.close()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_serve_raises_the_open_file_limit_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 1024:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert serve.raise_open_files() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        # The worker's stream bound and its Redis pool follow the limit.
        assert max_streams() == hard - 256
        assert pool_size(max_streams()) > pool_size(1024 - 256)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_redis_pool_grows_with_the_streams_and_stays_bounded() -> None:
    sizes = [pool_size(streams) for streams in (64, 768, 2048, 16_384, 1_000_000)]
    assert sizes == sorted(sizes)
    assert sizes[0] >= 16 and sizes[-1] == 256


def test_a_full_room_takes_back_its_own_students_up_to_twice_its_size() -> None:
    """The count of a room may still hold, for a few seconds, the seats of a worker that
    died under its students: those students (their page joined) are taken back, a stranger
    is not, and nobody past twice the size."""
    app, _ = live_app(max_students=2)

    async def scenario(port: int) -> None:
        teacher = await JsonClient.open(port)
        _, started = await teacher.request(
            "POST", "/api/v1/live", {"link": make_link("/", "P mmap a;P read a")}
        )
        code = started["code"]
        page = await JsonClient.open(port)
        status, _ = await page.request("GET", f"/live/{code}")
        assert status == 200
        joined = {"Cookie": "; ".join(f"{k}={v}" for k, v in page.cookies.items())}
        streams = [await SseStream.open(port, f"/live/{code}/events", joined) for _ in range(2)]
        for opened in streams:
            await opened.until(lambda e: e.kind == "state", 5)
        await asyncio.sleep(0.8)  # the count has caught up (presence is sent every 0.5 s)
        with pytest.raises(ConnectionRefusedError, match="429"):
            await SseStream.open(port, f"/live/{code}/events")  # a stranger: full
        streams += [await SseStream.open(port, f"/live/{code}/events", joined) for _ in range(2)]
        await asyncio.sleep(0.8)
        with pytest.raises(ConnectionRefusedError, match="429"):
            await SseStream.open(port, f"/live/{code}/events", joined)  # twice the size
        status, _ = await page.request("GET", f"/live/{code}")
        assert status == 429
        for opened in streams:
            opened.close()
        page.close()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_live_seats_reach_every_workers_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.live.broker import ENV_BROKER, ENV_SEATS, ENV_WORKERS, configured

    for name in (ENV_BROKER, ENV_SEATS, ENV_WORKERS):  # restored as they were afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    serve.prepare(None, 1, None, seats=40)
    broker = configured()
    assert not isinstance(broker, str)
    assert (broker.max_students, broker.max_joined) == (40, 160)
    monkeypatch.delenv(ENV_SEATS)
    default = configured()
    assert not isinstance(default, str) and default.max_students == 500
