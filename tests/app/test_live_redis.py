"""Live sessions across workers through a real ``redis-server`` the suite starts (temporary
directory, free port, nothing saved) and stops: the `--broker redis://…` setup of DESIGN.md §9."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import replace

import pytest

from app.live.broker import ClientRoomsFull, RoomsFull
from app.live.loopback import JsonClient, SseStream, Worker, free_port, redis_server, workers
from app.live.redis_broker import RedisBroker
from app.live.rooms import Room
from tests.app.live_support import LINK, Clock

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (scripts/test installs Debian's)",
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def pair(redis_url: str) -> Iterator[tuple[Worker, ...]]:
    """Two workers of one class, on two ports, sharing the Redis broker."""
    with workers(Worker(free_port(), redis_url), Worker(free_port(), redis_url)) as found:
        yield found


async def _stream(port: int, code: str) -> SseStream:
    """A student's stream, reconnecting as a browser's EventSource does while a worker is down."""
    for _ in range(100):
        try:
            return await SseStream.open(port, f"/live/{code}/events")
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the worker did not come back")


def test_two_workers_share_one_room(pair: tuple[Worker, Worker]) -> None:
    async def scenario(a: Worker, b: Worker) -> None:
        teacher = await JsonClient.open(a.port)
        status, started = await teacher.request("POST", "/api/v1/live", {"link": LINK})
        assert status == 201
        code, key = started["code"], started["teacher_key"]
        students = [await _stream(b.port, code) for _ in range(3)]
        for student in students:
            first = await student.until(lambda e: True, 5)
            assert (first.kind, first.data["step"]) == ("state", 2)
        await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 4}, key)
        for student in students:
            await student.until(lambda e: e.kind == "state" and e.data["step"] == 4, 5)
        # Worker A counts the students connected to worker B.
        for _ in range(50):
            _, state = await teacher.request("GET", f"/api/v1/live/{code}")
            if state["students"] == 3:
                break
            await asyncio.sleep(0.1)
        assert state["students"] == 3
        # A poll opened on A, answered on B, counted on A, revealed everywhere.
        await teacher.request("POST", f"/api/v1/live/{code}/poll", None, key)
        voter = await JsonClient.open(b.port)
        status, _ = await voter.request("GET", f"/live/{code}")  # the student's page joins
        assert status == 200
        status, _ = await voter.request("POST", f"/api/v1/live/{code}/vote", {"choice": "x"})
        assert status == 200
        _, state = await teacher.request("GET", f"/api/v1/live/{code}")
        assert state["poll"]["counts"] == [0, 1]
        _, state = await teacher.request("POST", f"/api/v1/live/{code}/reveal", None, key)
        for student in students:
            shown = await student.until(lambda e: e.kind == "state" and e.data["poll"], 5)
            poll = shown.data["poll"]
            while not poll["revealed"]:
                poll = (await student.until(lambda e: e.kind == "state", 5)).data["poll"]
            assert poll["answer"] == "x"
            student.close()
        # Without the key, worker B refuses as A would.
        status, body = await voter.request("POST", f"/api/v1/live/{code}/state", {"step": 1})
        assert (status, body["detail"]["error"]) == (403, "forbidden")
        voter.close()
        teacher.close()

    asyncio.run(scenario(*pair))


def test_students_resume_after_their_worker_is_killed_and_restarted(
    pair: tuple[Worker, Worker],
) -> None:
    async def scenario(a: Worker, b: Worker) -> None:
        teacher = await JsonClient.open(a.port)
        _, started = await teacher.request("POST", "/api/v1/live", {"link": LINK})
        code, key = started["code"], started["teacher_key"]
        students = [await _stream(b.port, code) for _ in range(3)]
        for student in students:
            await student.until(lambda e: True, 5)
        b.kill()
        for student in students:
            with pytest.raises((EOFError, ConnectionError)):
                await student.until(lambda e: False, 5)
            student.close()
        # The class goes on while the worker is down.
        status, _ = await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 5}, key)
        assert status == 200
        b.start()
        # The worker's restart outlasts uvicorn's 5 s keep-alive: the teacher's page reconnects.
        teacher.close()
        teacher = await JsonClient.open(a.port)
        students = [await _stream(b.port, code) for _ in range(3)]
        for student in students:
            back = await student.until(lambda e: True, 5)
            assert (back.kind, back.data["step"]) == ("state", 5)
        await teacher.request("POST", f"/api/v1/live/{code}/state", {"step": 6}, key)
        for student in students:
            await student.until(lambda e: e.kind == "state" and e.data["step"] == 6, 5)
            student.close()
        teacher.close()

    asyncio.run(scenario(*pair))


def test_redis_rooms_are_bounded_and_expire(redis_url: str) -> None:
    clock = Clock()

    async def scenario() -> None:
        # A database of its own: the rooms of the other tests do not count here.
        broker = RedisBroker(redis_url.rsplit("/", 1)[0] + "/3", max_rooms=1, clock=clock)
        await broker.redis.flushdb()
        room = Room(code="ACDEFG", key_digest="k", text="P mmap a", policy="5.7", step=1)
        room = room.touched(clock(), broker.idle_seconds)
        assert await broker.create(room)
        assert not await broker.create(room)  # the code is taken
        with pytest.raises(RoomsFull):
            await broker.create(replace(room, code="ACDEFH"))
        assert await broker.load("ACDEFG") == room
        clock.now += broker.idle_seconds + 1
        assert await broker.load("ACDEFG") is None
        # The expired room no longer counts against the bound.
        later = Room(code="ACDEFH", key_digest="k", text="", policy="5.7", step=0)
        assert await broker.create(later.touched(clock(), broker.idle_seconds))
        await broker.redis.flushdb()
        await broker.close()

    asyncio.run(scenario())


def test_redis_bounds_the_rooms_of_one_owner(redis_url: str) -> None:
    clock = Clock()

    async def scenario() -> None:
        broker = RedisBroker(
            redis_url.rsplit("/", 1)[0] + "/4", max_rooms_per_client=1, clock=clock
        )
        await broker.redis.flushdb()
        room = Room(code="ACDEFG", key_digest="k", text="P mmap a", policy="5.7", step=1)
        room = replace(room.touched(clock(), broker.idle_seconds), owner="o1")
        assert await broker.create(room)
        with pytest.raises(ClientRoomsFull):
            await broker.create(replace(room, code="ACDEFH"))
        assert await broker.create(replace(room, code="ACDEFJ", owner="o2"))
        # A room's owner set follows its expiry: once the room expired, the owner may start one.
        clock.now += broker.idle_seconds + 1
        assert await broker.create(replace(room, code="ACDEFK").touched(clock(), 60))
        await broker.redis.aclose()

    asyncio.run(scenario())
