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

With one worker, worker and client are pinned to a core each (as `app.bench.web` does); with
two workers and Redis, four processes share the two cores, and the figures say so.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from typing import Any

from app.bench.engine import THIRTY_COMMANDS
from app.live.loopback import JsonClient, SseStream, Worker, free_port, redis_server, workers
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


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def measure_live(quick: bool, students: int = STUDENTS, steps: int = STEPS) -> dict[str, Any]:
    if quick:
        steps = min(steps, 20)
    _raise_file_limit(students + 256)
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
    return figures
