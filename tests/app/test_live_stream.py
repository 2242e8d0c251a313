"""The event stream students listen to, against uvicorn on loopback (one worker, in memory)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.testclient import TestClient

from app.live import stream
from app.live.loopback import JsonClient, SseStream
from tests.app.live_support import LINK, Clock, live_app, serving


async def _start(port: int) -> tuple[JsonClient, str, str]:
    teacher = await JsonClient.open(port)
    status, body = await teacher.request("POST", "/api/v1/live", {"link": LINK})
    assert status == 201
    return teacher, body["code"], body["teacher_key"]


def test_students_follow_the_teacher_and_a_reconnect_lands_on_the_current_step() -> None:
    app, _ = live_app()

    async def scenario(port: int) -> None:
        teacher, code, key = await _start(port)
        student = await SseStream.open(port, f"/live/{code}/events")
        first = await student.until(lambda e: True, 5)
        assert (first.kind, first.data["step"], first.data["link"]) == ("state", 2, LINK)
        # The class's size reaches every screen (once the joining settles).
        counted = await student.until(lambda e: e.data["students"] == 1, 5)
        assert counted.kind == "state"
        status, _ = await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 3}, key)
        assert status == 200
        stepped = await student.until(lambda e: e.kind == "state" and e.data["step"] == 3, 5)
        assert stepped.data["link"].endswith("&step=3")
        student.close()  # the phone sleeps; the teacher goes on
        await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 4}, key)
        again = await SseStream.open(port, f"/live/{code}/events")
        woke = await again.until(lambda e: True, 5)
        assert (woke.kind, woke.data["step"]) == ("state", 4)
        again.close()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_votes_reach_the_teacher_as_counts() -> None:
    app, _ = live_app()

    async def scenario(port: int) -> None:
        teacher, code, key = await _start(port)
        watch = await SseStream.open(port, f"/live/{code}/events?role=teacher")
        await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 4}, key)
        await teacher.request("POST", f"/api/v1/live/{code}/poll", None, key)
        voters = [await JsonClient.open(port) for _ in range(3)]
        for voter, choice in zip(voters, ("x", "x", "0"), strict=True):
            status, _ = await voter.request("GET", f"/live/{code}")  # the page joins the room
            assert status == 200
            status, _ = await voter.request("POST", f"/api/v1/live/{code}/vote", {"choice": choice})
            assert status == 200
        tally = await watch.until(lambda e: e.kind == "poll" and e.data["answered"] == 3, 5)
        assert tally.data["counts"] == [1, 2]
        # The teacher's page is not a student.
        assert all(e.data["students"] == 0 for e in watch.events if e.kind == "state")
        watch.close()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_a_full_room_refuses_one_more_student() -> None:
    app, _ = live_app(max_students=1)

    async def scenario(port: int) -> None:
        teacher, code, _ = await _start(port)
        first = await SseStream.open(port, f"/live/{code}/events")
        await first.until(lambda e: True, 5)
        with pytest.raises(ConnectionRefusedError, match="429"):
            await SseStream.open(port, f"/live/{code}/events")
        # The page says so before its script would open a stream.
        page = await JsonClient.open(port)
        status, _ = await page.request("GET", f"/live/{code}")
        assert status == 429
        page.close()
        first.close()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_heartbeats_keep_the_stream_open_until_the_room_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.1)
    clock = Clock()
    app, broker = live_app(clock=clock)

    async def scenario(port: int) -> None:
        teacher, code, _ = await _start(port)
        student = await SseStream.open(port, f"/live/{code}/events")
        await student.until(lambda e: True, 5)
        await asyncio.sleep(0.5)
        clock.now += broker.idle_seconds + 1
        ended = await student.until(lambda e: e.kind == "ended", 5)
        assert ended.data is None
        # Heartbeats went out while the room lived, as events a page's script sees.
        assert sum(1 for e in student.events if e.kind == "heartbeat") >= 2
        with pytest.raises(EOFError):
            await student.next()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_the_broker_counts_students_again_after_the_app_restarts() -> None:
    """A test client (or a server) may run the same application's lifespan again."""
    app, broker = live_app()
    with TestClient(app):
        pass  # startup, then shutdown: the broker closed

    async def scenario(port: int) -> None:
        teacher, code, _ = await _start(port)
        watch = await SseStream.open(port, f"/live/{code}/events?role=teacher")
        await watch.until(lambda e: e.kind == "state" and e.data["students"] == 0, 5)
        student = await SseStream.open(port, f"/live/{code}/events")
        await watch.until(lambda e: e.kind == "state" and e.data["students"] == 1, 5)
        student.close()
        watch.close()
        teacher.close()

    with serving(app) as port:
        asyncio.run(scenario(port))


def test_the_teachers_key_never_reaches_the_server_log(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = live_app()

    async def scenario(port: int) -> str:
        teacher, code, key = await _start(port)
        await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 4}, key)
        await teacher.request("POST", f"/api/v1/live/{code}/poll", None, key)
        await teacher.request("POST", f"/api/v1/live/{code}/reveal", None, key)
        await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 1}, "wrong")
        teacher.close()
        return key

    with serving(app, log_level="info") as port:
        # uvicorn's loggers do not propagate to the root logger, where caplog listens.
        loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
        for logger in loggers:
            logger.addHandler(caplog.handler)
        try:
            key = asyncio.run(scenario(port))
        finally:
            for logger in loggers:
                logger.removeHandler(caplog.handler)
    assert "POST /api/v1/live/" in caplog.text  # the access log did record the requests
    assert key not in caplog.text
