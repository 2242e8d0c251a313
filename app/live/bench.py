"""`cowlab bench --live`: live-session fan-out (DESIGN.md §7 and §9), on this machine's loopback.

A room follows the 30-command scenario of `app.bench`; 500 students hold its event stream
open (raw sockets, `loopback.SseStream`); the teacher steps 50 times through the API. For each
step, the time from sending the teacher's request to reading the last student's event is one
sample: ``live_fanout_ms_p50`` and ``live_fanout_ms_p99``. ``live_kb_per_student`` is the
growth of the worker's resident memory while the students connected, divided by their number.
``live_cpu_ms_per_step`` is the CPU time the worker spent per step (its user + system time
over the 50 steps): on a machine shared with other jobs the latencies wait for a core, and
this figure says how much of a core the fan-out itself needs.
The same again with two workers sharing the room through a throwaway ``redis-server`` (the
teacher on one worker, the students split between both): the ``live_redis_…`` figures.

Then the README's class setup (DESIGN.md §7 "live recovery"): the nginx configuration
`cowlab deploy nginx` writes, in front of two workers and a ``redis-server`` without
persistence, every student through nginx: the fan-out again (``live_nginx_…``; the memory is
the workers', nginx's own is not counted), then ``live_recover_worker_s``: one worker is
killed (SIGKILL) and the teacher steps at once, and the figure is the time from the kill until
every student has the new step — its students reconnect as the live page does (at once after
a stream that ends, with a growing jittered pause after an error status); and
``live_recover_redis_s``: Redis is killed, comes back empty a second later, the teacher's
page retries its step, and the figure is the time from Redis's return until every student
has that step.

With one worker, worker and client are pinned to a core each (as `app.bench.web` does); with
two workers and Redis, four processes share the two cores, and the figures say so.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from app.bench.engine import THIRTY_COMMANDS
from app.live.loopback import (
    HOST,
    JsonClient,
    RedisServer,
    SseStream,
    Worker,
    free_port,
    redis_server,
    workers,
)
from app.views.links import make_link

STUDENTS = 500
STEPS = 50
CONNECT_BATCH = 50  # streams opened at once: a class does not join in the same millisecond


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Round:
    """Which step the class waits for and when each stream saw it."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.step = -1
        self.seen = 0
        self.last_at = 0.0
        self.done = asyncio.Event()

    def expect(self, step: int) -> None:
        self.step, self.seen, self.last_at = step, 0, 0.0
        self.done.clear()

    def saw(self, step: int, at: float) -> None:
        if step != self.step:
            return
        self.seen += 1
        self.last_at = max(self.last_at, at)
        if self.seen == self.streams:
            self.done.set()


async def _follow(stream: SseStream, round_: Round) -> None:
    # Each stream sees each step once: the events of one stream are read in order.
    seen = -1
    while True:
        event = await stream.next()
        if event.kind == "state" and event.data["step"] != seen:
            seen = event.data["step"]
            round_.saw(seen, event.at)


async def _class(
    teacher_port: int, student_ports: list[int], server: list[Worker], steps: int, students: int
) -> dict[str, float]:
    teacher = await JsonClient.open(teacher_port)
    link = make_link("/", THIRTY_COMMANDS.strip(), policy="5.7", step=0)
    status, started = await teacher.request("POST", "/api/v1/live", {"link": link})
    assert status == 201, started
    code, key = started["code"], started["teacher_key"]
    before = sum(worker.rss_kb() for worker in server)
    streams: list[SseStream] = []
    for first in range(0, students, CONNECT_BATCH):
        batch = range(first, min(students, first + CONNECT_BATCH))
        streams += await asyncio.gather(
            *(
                SseStream.open(student_ports[i % len(student_ports)], f"/live/{code}/events")
                for i in batch
            )
        )
    await asyncio.gather(*(stream.until(lambda e: e.kind == "state", 30) for stream in streams))
    await asyncio.sleep(1.5)  # the presence updates of the joining class have gone out
    kb_per_student = (sum(worker.rss_kb() for worker in server) - before) / students
    # Connecting the class takes longer than uvicorn keeps an idle connection (5 s).
    teacher.close()
    teacher = await JsonClient.open(teacher_port)
    cpu_before = sum(worker.cpu_s() for worker in server)
    round_ = Round(len(streams))
    readers = [asyncio.create_task(_follow(stream, round_)) for stream in streams]
    samples = []
    try:
        for i in range(steps):
            step = 1 + i % 30
            round_.expect(step)
            start = time.perf_counter()
            status, state = await teacher.request(
                "POST", f"/api/v1/live/{code}/state", {"step": step}, key
            )
            assert status == 200, state
            await asyncio.wait_for(round_.done.wait(), 30)
            samples.append((round_.last_at - start) * 1000)
        cpu_ms = (sum(worker.cpu_s() for worker in server) - cpu_before) * 1000 / steps
    finally:
        for reader in readers:
            reader.cancel()
        for stream in streams:
            stream.close()
        teacher.close()
    return {
        "fanout_ms_p50": round(statistics.median(samples), 1),
        "fanout_ms_p99": round(percentile(samples, 0.99), 1),
        "kb_per_student": round(kb_per_student, 1),
        "cpu_ms_per_step": round(cpu_ms, 1),
    }


class Follower:
    """A student's page through the proxy, reconnecting as static/live.js does."""

    def __init__(self, port: int, code: str, cookie: str) -> None:
        self.port = port
        self.code = code
        self.cookie = cookie
        self.step = -1
        self.seen_at: dict[int, float] = {}
        self.refusals = 0
        self.task: asyncio.Task[None] | None = None

    async def follow(self) -> None:
        failures = 0
        while True:
            try:
                stream = await SseStream.open(
                    self.port, f"/live/{self.code}/events", {"Cookie": self.cookie}
                )
            except OSError:  # an error status (ConnectionRefusedError) or no answer at all
                self.refusals += 1
                await asyncio.sleep(min(15.0, 2.0**failures) * (0.5 + random.random()))
                failures += 1
                continue
            failures = 0
            try:
                while True:
                    event = await stream.next()
                    if event.kind == "state" and event.data["step"] != self.step:
                        self.step = event.data["step"]
                        self.seen_at.setdefault(self.step, event.at)
            except (EOFError, OSError):
                # EventSource's own retry after a stream that ended (`retry:` of the stream).
                await asyncio.sleep(1.5)
            finally:
                stream.close()


async def _join(port: int, code: str) -> Follower:
    page = await JsonClient.open(port)
    status, _ = await page.request("GET", f"/live/{code}")
    assert status == 200, status
    page.close()
    cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
    return Follower(port, code, cookie)


async def _post(port: int, path: str, body: Any, key: str) -> tuple[int, Any]:
    client = await JsonClient.open(port)
    try:
        return await client.request("POST", path, body, key)
    finally:
        client.close()


async def _all_have(followers: list[Follower], step: int, limit_s: float = 60.0) -> float:
    """perf_counter() when the last follower saw ``step``."""
    async with asyncio.timeout(limit_s):
        while not all(step in f.seen_at for f in followers):
            await asyncio.sleep(0.02)
    return max(f.seen_at[step] for f in followers)


async def _recovery(
    proxy: int, pair: tuple[Worker, ...], redis: RedisServer, students: int
) -> dict[str, float]:
    status, started = await _post(
        proxy,
        "/api/v1/live",
        {"link": make_link("/", THIRTY_COMMANDS.strip(), policy="5.7", step=0)},
        "",
    )
    assert status == 201, started
    code, key = started["code"], started["teacher_key"]
    followers: list[Follower] = []
    for first in range(0, students, CONNECT_BATCH):
        batch = range(first, min(students, first + CONNECT_BATCH))
        followers += await asyncio.gather(*(_join(proxy, code) for _ in batch))
    for follower in followers:
        follower.task = asyncio.get_running_loop().create_task(follower.follow())
    try:
        await _all_have(followers, 0)
        await asyncio.sleep(2.0)  # every worker has written its count
        # A worker killed mid-lecture; the teacher steps at once (nginx passes the request on).
        killed_at = time.perf_counter()
        pair[1].kill()
        status, state = await _post(proxy, f"/api/v1/live/{code}/state", {"step": 1}, key)
        assert status == 200, state
        worker_s = await _all_have(followers, 1) - killed_at
        await asyncio.sleep(1.0)
        # Redis crashes and comes back empty; the teacher's page retries its step.
        redis.kill()
        await asyncio.sleep(1.0)
        redis.start()
        back_at = time.perf_counter()
        async with asyncio.timeout(60):
            while True:
                status, state = await _post(proxy, f"/api/v1/live/{code}/state", {"step": 2}, key)
                if status == 200:
                    break
                assert status == 503, (status, state)
                await asyncio.sleep(0.25)
        redis_s = await _all_have(followers, 2) - back_at
    finally:
        for follower in followers:
            if follower.task is not None:
                follower.task.cancel()
    return {"recover_worker_s": round(worker_s, 2), "recover_redis_s": round(redis_s, 2)}


def _through_nginx(steps: int, students: int) -> dict[str, Any]:
    from app.deploy import run
    from app.deploy.nginx import NginxSettings

    try:
        run.binary()
    except run.NginxMissing as missing:
        return {"live_nginx_skipped": str(missing)}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cowlab-bench-live-") as folder:
        redis = RedisServer(folder).start()
        try:
            # Phase one: the fan-out through nginx.
            with workers(Worker(free_port(), redis.url), Worker(free_port(), redis.url)) as pair:
                settings = NginxSettings(upstreams=tuple(f"{HOST}:{w.port}" for w in pair))
                with run.running(settings, Path(folder) / "nginx") as nginx:
                    shared = asyncio.run(
                        _class(nginx.port, [nginx.port], list(pair), steps, students)
                    )
            figures.update({f"live_nginx_{name}": value for name, value in shared.items()})
            # Phase two, fresh workers: a worker killed, then Redis.
            with workers(Worker(free_port(), redis.url), Worker(free_port(), redis.url)) as pair:
                settings = NginxSettings(upstreams=tuple(f"{HOST}:{w.port}" for w in pair))
                with run.running(settings, Path(folder) / "nginx2") as nginx:
                    recovered = asyncio.run(_recovery(nginx.port, pair, redis, students))
            figures.update({f"live_{name}": value for name, value in recovered.items()})
        finally:
            redis.stop()
    return figures


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def measure_live(quick: bool, students: int = STUDENTS, steps: int = STEPS) -> dict[str, Any]:
    if quick:
        steps = min(steps, 20)
    _raise_file_limit(2 * students + 512)
    cpus = sorted(os.sched_getaffinity(0))
    own = set(cpus)
    figures: dict[str, Any] = {"live_students": students, "live_steps": steps}
    pin = len(cpus) >= 2
    with workers(Worker(free_port(), None, cpu=cpus[-1] if pin else None)) as (one,):
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        try:
            single = asyncio.run(_class(one.port, [one.port], [one], steps, students))
        finally:
            os.sched_setaffinity(0, own)
    figures.update({f"live_{name}": value for name, value in single.items()})
    with redis_server() as url, workers(Worker(free_port(), url), Worker(free_port(), url)) as ab:
        ports = [worker.port for worker in ab]
        shared = asyncio.run(_class(ports[0], ports, list(ab), steps, students))
    figures.update({f"live_redis_{name}": value for name, value in shared.items()})
    figures.update(_through_nginx(steps, students))
    return figures
