"""A lecture on the README's class setup, for real (issue 20): the nginx configuration
`cowlab deploy nginx` writes, in front of two `cowlab` workers sharing rooms through a
``redis-server`` without persistence. Every live route through the proxy; a worker killed
mid-lecture; Redis killed mid-lecture and restarted empty.

Every process is started here on free loopback ports and stopped by its id."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.deploy import run
from app.deploy.nginx import NginxSettings
from app.live.broker import ENV_SEATS
from app.live.loopback import HOST, JsonClient, RedisServer, SseStream, Worker, free_port
from tests.app.live_support import LINK

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (scripts/test installs Debian's)",
)

SEATS = 6  # a small room: seats a dead worker kept counted would refuse its students
# Generous bounds for a loaded, shared machine: the budgets (5 s, 15 s) are the benchmark's.
FOLLOW_AGAIN_S = 40.0
STALE_SEATS_BOUND_S = 20.0


@dataclass
class Hall:
    nginx: run.Nginx
    workers: tuple[Worker, Worker]
    redis: RedisServer

    @property
    def base(self) -> str:
        return self.nginx.base


@pytest.fixture
def hall(nginx_binary: str, tmp_path: Path) -> Iterator[Hall]:
    with tempfile.TemporaryDirectory(prefix="cowlab-redis-") as folder:
        redis = RedisServer(folder).start()
        env = {ENV_SEATS: str(SEATS)}
        pair = (Worker(free_port(), redis.url, env=env), Worker(free_port(), redis.url, env=env))
        for n, worker in enumerate(pair):
            worker.log = tmp_path / f"worker{n}.log"
        try:
            for worker in pair:
                worker.launch()
            for worker in pair:
                worker.ready()
            settings = NginxSettings(upstreams=tuple(f"{HOST}:{w.port}" for w in pair))
            with run.running(settings, tmp_path / "nginx") as nginx:
                yield Hall(nginx, pair, redis)
        finally:
            for worker in pair:
                worker.stop()
            redis.stop()


def _assert_stays_here(response: httpx.Response, base: str) -> None:
    """Every redirect on the way is a path or names this very host and port."""
    for hop in [*response.history, response]:
        location = hop.headers.get("location")
        if location is not None:
            assert location.startswith("/") or location.startswith(base + "/"), location


def test_every_live_route_works_through_the_generated_nginx(hall: Hall) -> None:
    base = hall.base
    with httpx.Client(base_url=base, follow_redirects=True, max_redirects=5) as teacher:
        for path in ("/live", "/live/"):
            joining = teacher.get(path)
            assert joining.status_code == 200, (path, joining.status_code)
            _assert_stays_here(joining, base)
        started = teacher.post("/api/v1/live", json={"link": LINK})
        assert started.status_code == 201, started.text
        _assert_stays_here(started, base)
        body = started.json()
        code, key = body["code"], {"Authorization": f"Bearer {body['teacher_key']}"}
        # The join link names the address the teacher used, port included.
        assert body["join_url"] == f"{base}/live/{code}"
        screen = teacher.get(f"/live/{code}/screen")
        assert screen.status_code == 200 and f"{base}/live/{code}" in screen.text
        # "Go live": the form, its redirect to the teacher's page, and that page.
        went = teacher.post("/live", data={"link": LINK})
        assert went.status_code == 200, went.status_code
        assert went.url.path.endswith("/teach") and went.url.port == hall.nginx.port
        _assert_stays_here(went, base)
        for step in (4, 5):
            stepped = teacher.post(f"/api/v1/live/{code}/state", json={"step": step}, headers=key)
            assert stepped.status_code == 200
        assert teacher.post(f"/api/v1/live/{code}/poll", headers=key).status_code == 409
        assert teacher.get(f"/api/v1/live/{code}/poll.csv", headers=key).status_code == 200
    with httpx.Client(base_url=base, follow_redirects=True, max_redirects=5) as student:
        joined = student.get("/live", params={"code": code.lower()})
        assert (joined.status_code, joined.url.path) == (200, f"/live/{code}")
        _assert_stays_here(joined, base)
        assert student.get(f"/api/v1/live/{code}").json()["step"] == 5
    # A visitor on a name and port of its own gets links to that name and port.
    named = httpx.post(
        f"{base}/api/v1/live",
        json={"link": LINK},
        headers={"Host": "class.example.org:8443"},
    )
    assert named.json()["join_url"].startswith("http://class.example.org:8443/live/")
    redirected = httpx.get(f"{base}/live/", headers={"Host": "class.example.org:8443"})
    assert redirected.headers["location"] == "/live"

    async def the_end() -> None:
        stream = await SseStream.open(hall.nginx.port, f"/live/{code}/events")
        await stream.until(lambda e: e.kind == "state", 10)
        async with httpx.AsyncClient(base_url=base) as client:
            ended = await client.delete(f"/api/v1/live/{code}", headers=key)
            assert ended.status_code == 200
        last = await stream.until(lambda e: e.kind == "ended", 10)
        assert last.data["code"] == code
        with pytest.raises(EOFError):
            await stream.next()
        stream.close()

    asyncio.run(the_end())


@dataclass
class Student:
    """A student's page through the proxy, reconnecting as static/live.js does: after an
    ended stream at once (EventSource's own retry), after an error status with a growing,
    jittered pause."""

    port: int
    code: str
    cookie: str
    step: int = -1
    poll: Any = None
    refused: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def follow(self) -> None:
        failures = 0
        while True:
            try:
                stream = await SseStream.open(
                    self.port, f"/live/{self.code}/events", {"Cookie": self.cookie}
                )
            except (ConnectionRefusedError, OSError) as refusal:
                self.refused.append(str(refusal))
                await asyncio.sleep(min(4.0, 0.25 * 2**failures) * (0.5 + random.random()))
                failures += 1
                continue
            failures = 0
            try:
                while True:
                    event = await stream.next()
                    if event.kind == "state":
                        self.step, self.poll = event.data["step"], event.data["poll"]
                    elif event.kind == "poll":
                        self.poll = event.data
            except (EOFError, ConnectionError, OSError):
                await asyncio.sleep(0.2)
            finally:
                stream.close()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.follow())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


async def _join(port: int, code: str) -> Student:
    page = await JsonClient.open(port)
    status, _ = await page.request("GET", f"/live/{code}")
    assert status == 200
    cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    page.close()
    student = Student(port, code, cookie)
    student.start()
    return student


async def _until(test: Any, limit_s: float = FOLLOW_AGAIN_S) -> None:
    async with asyncio.timeout(limit_s):
        while not test():
            await asyncio.sleep(0.1)


async def _teacher(port: int, method: str, path: str, body: Any, key: str) -> tuple[int, Any]:
    client = await JsonClient.open(port)
    try:
        return await client.request(method, path, body, key)
    finally:
        client.close()


async def _students_counted(port: int, code: str) -> int:
    status, state = await _teacher(port, "GET", f"/api/v1/live/{code}", None, "")
    assert status == 200, state
    return int(state["students"])


def test_a_worker_killed_mid_lecture_its_students_follow_again_without_full(hall: Hall) -> None:
    port = hall.nginx.port

    async def lecture() -> None:
        status, started = await _teacher(port, "POST", "/api/v1/live", {"link": LINK}, "")
        assert status == 201
        code, key = started["code"], started["teacher_key"]
        students = [await _join(port, code) for _ in range(SEATS)]
        await _until(lambda: all(s.step == 2 for s in students))
        # A full room: every seat taken, on both workers (nginx takes turns).
        counted = 0
        async with asyncio.timeout(FOLLOW_AGAIN_S):
            while counted != SEATS:
                counted = await _students_counted(port, code)
                await asyncio.sleep(0.2)
        hall.workers[1].kill()
        status, _ = await _teacher(port, "POST", f"/api/v1/live/{code}/state", {"step": 4}, key)
        assert status == 200  # the class goes on: nginx passes the teacher to the other worker
        # Those who were on the killed worker come back to the other one, into a room that
        # was full a moment ago: the dead worker's seats stop counting within seconds. (Half
        # of the 40 s they stayed counted before, on a loaded machine.)
        await _until(lambda: all(s.step == 4 for s in students), STALE_SEATS_BOUND_S)
        async with asyncio.timeout(FOLLOW_AGAIN_S):
            while await _students_counted(port, code) != SEATS:
                await asyncio.sleep(0.2)
        status, _ = await _teacher(port, "POST", f"/api/v1/live/{code}/state", {"step": 5}, key)
        await _until(lambda: all(s.step == 5 for s in students))
        for student in students:
            student.stop()

    asyncio.run(lecture())


# Known intermittent timeout (once in ~6 runs, quiet machine too): one rerun until its cause is
# found; see the issue note.
@pytest.mark.flaky(reruns=1)
def test_redis_killed_mid_lecture_comes_back_with_the_room(hall: Hall) -> None:
    port = hall.nginx.port

    async def lecture() -> None:
        status, started = await _teacher(port, "POST", "/api/v1/live", {"link": LINK}, "")
        code, key = started["code"], started["teacher_key"]
        students = [await _join(port, code) for _ in range(3)]
        await _teacher(port, "POST", f"/api/v1/live/{code}/state", {"step": 4}, key)
        status, _ = await _teacher(port, "POST", f"/api/v1/live/{code}/poll", None, key)
        assert status == 200
        await _until(lambda: all(s.poll is not None for s in students))
        for student, choice in zip(students, ("x", "x", "0"), strict=True):
            voter = await JsonClient.open(port)
            voter.cookies = dict(part.split("=", 1) for part in student.cookie.split("; "))
            status, _ = await voter.request("POST", f"/api/v1/live/{code}/vote", {"choice": choice})
            voter.close()
            assert status == 200
        await _until(lambda: all(s.poll and s.poll["answered"] == 3 for s in students))

        hall.redis.kill()
        # While Redis is down: never a 500, never a 404; a write is a 503 with a retry.
        for _ in range(3):
            status, body = await _teacher(port, "POST", f"/api/v1/live/{code}/reveal", None, key)
            assert status == 503, body
            status, _ = await _teacher(port, "GET", f"/api/v1/live/{code}", None, "")
            assert status in (200, 503)
            await asyncio.sleep(0.3)
        hall.redis.start()  # the same port, empty: nothing was saved

        # The teacher's page retries; the room is back with its step and poll.
        revealed: dict[str, Any] = {}
        async with asyncio.timeout(FOLLOW_AGAIN_S):
            while True:
                status, body = await _teacher(
                    port, "POST", f"/api/v1/live/{code}/reveal", None, key
                )
                assert status in (200, 503), (status, body)
                if status == 200:
                    revealed = body
                    break
                await asyncio.sleep(0.5)
        assert (revealed["code"], revealed["step"]) == (code, 4)
        assert revealed["poll"]["revealed"] and revealed["poll"]["answer"] == "x"
        # The votes come back with the room: each worker puts back those cast through it.
        await _until(
            lambda: all(
                s.poll and s.poll["revealed"] and s.poll["counts"] == [1, 2] for s in students
            )
        )
        status, state = await _teacher(port, "GET", f"/api/v1/live/{code}", None, "")
        assert state["poll"]["counts"] == [1, 2]
        status, _ = await _teacher(port, "POST", f"/api/v1/live/{code}/state", {"step": 6}, key)
        assert status == 200
        await _until(lambda: all(s.step == 6 for s in students))
        for student in students:
            student.stop()

    asyncio.run(lecture())
