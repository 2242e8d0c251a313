"""Web figures for `cowlab bench` (DESIGN.md §7): measured here, judged by `app.bench.engine`.

- ``cold_step_ms_p50`` / ``cold_step_ms_p99``: a step request (what ← → and the timeline send,
  ``#stage``) for every step of every preset, in-process through the whole ASGI app — decode
  the link, parse, replay, build the view, render — with every memo the app owns emptied before
  each request: a server that has never seen the link. ``cold_step_cpu_ms_p50`` / ``_p99``
  are the same requests' CPU time (on a shared machine the wall time's tail is mostly other
  jobs' time slices). ``warm_step_ms_p50`` is the same walk with the run memo kept (stepping
  through a scenario already replayed).
- ``class_ratio``: a class on one link — one uvicorn worker answering the steps of one lesson,
  each rendered once before — over the same worker serving a constant body of the same size.
  The load comes from a few lines of asyncio over keep-alive sockets rather than an HTTP
  library, so the client costs far less than the server; worker and client are pinned to two
  cores.
- ``first_load_kb``: ``/`` as a browser fetches it (gzip) plus every script, stylesheet, icon
  and image it loads; ``first_load_kb_max`` the same for the heaviest preset link.

Each figure is a median over repeated runs in one process; ``quick`` repeats less.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.main import create_app
from app.views.links import make_link
from engine.commands import Mmap
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import canonical_text, parse

STATIC_PATH = "/__bench_static"
HX = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#sim"}
STAGE = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#stage"}
GZIP = {"Accept-Encoding": "gzip"}


@dataclass(frozen=True)
class Lesson:
    """One preset, ready to be stepped through (by the bench and by the load test): its
    canonical text, as links carry it, and an action to press."""

    text: str  # canonical: `;`-separated, or by newlines when it holds `#` lines
    steps: int
    action: str  # a command a student might add at the end


def lessons() -> list[Lesson]:
    out = []
    for preset in PRESETS.values():
        scenario = parse(preset.text)
        mmap = next(c for c in scenario.commands if isinstance(c, Mmap))
        out.append(
            Lesson(
                canonical_text(scenario),
                len(scenario.commands),
                f"{mmap.proc} read {mmap.pages[0]}",
            )
        )
    return out


def step_paths(policy: str) -> list[str]:
    return [
        make_link("/", lesson.text, policy=policy, step=k)
        for lesson in lessons()
        for k in range(lesson.steps + 1)
    ]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def call(
    app: Any, path: str, headers: dict[str, str], gzip: bool = True
) -> tuple[int, bytes]:
    """One GET straight through the ASGI app: no client library, no socket."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"bench")]
        + ([(b"accept-encoding", b"gzip")] if gzip else []),
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    status = 0
    body: list[bytes] = []
    asked = False
    finished = asyncio.Event()

    async def receive() -> dict[str, Any]:
        # The (empty) body once; after that, as a client would, stay connected until the
        # response is complete (file responses listen for a disconnect meanwhile).
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    return status, b"".join(body)


# ---- in-process steps


def empty_memos(app: Any) -> None:
    """Forget everything ``app`` remembers of earlier requests: every memo it owns."""
    for memo in app.state.memos:
        memo.clear()


async def _timed(
    app: Any, requests: list[tuple[str, dict[str, str]]], cold: bool
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each request. The CPU time of this process is beside the wall
    time because on a shared machine the wall time's tail is other jobs' time slices."""
    samples = []
    for path, headers in requests:
        if cold:
            empty_memos(app)
        else:
            app.state.pages.clear()  # it would answer a repeated request without any work
        start, cpu = time.perf_counter(), time.process_time()
        status, _ = await call(app, path, headers)
        samples.append((time.perf_counter() - start, time.process_time() - cpu))
        if status != 200:
            raise RuntimeError(f"{path}: status {status}")
    return samples


def measure_cold_steps(quick: bool) -> dict[str, float]:
    """A step request (what ← → send) for every step of every preset, each truly cold."""
    app = create_app()
    policies = ["6.2"] if quick else list(POLICIES)
    requests = [(path, STAGE) for policy in policies for path in step_paths(policy)]
    rounds = 1 if quick else 3
    asyncio.run(_timed(app, requests[:50], cold=True))  # imports, template compilation
    cold = [s for _ in range(rounds) for s in asyncio.run(_timed(app, requests, cold=True))]
    # The same walk with the run memo kept: what the run memo saves a step.
    warm = [s for _ in range(rounds) for s in asyncio.run(_timed(app, requests, cold=False))]
    wall, cpu = [w for w, _ in cold], [c for _, c in cold]
    return {
        "cold_step_ms_p50": round(statistics.median(wall) * 1000, 3),
        "cold_step_ms_p99": round(percentile(wall, 0.99) * 1000, 3),
        "cold_step_cpu_ms_p50": round(statistics.median(cpu) * 1000, 3),
        "cold_step_cpu_ms_p99": round(percentile(cpu, 0.99) * 1000, 3),
        "cold_step_requests": len(cold),
        "warm_step_ms_p50": round(statistics.median(w for w, _ in warm) * 1000, 3),
    }


# ---- first load


class _Assets(HTMLParser):
    """Every URL a browser fetches to show a page: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.urls.append(a["src"] or "")
        elif tag == "link" and a.get("href") and a.get("rel") in ("stylesheet", "icon"):
            self.urls.append(a["href"] or "")


async def first_load_bytes(app: Any, path: str) -> int:
    """Bytes of ``path`` and of every asset it loads, as sent to a browser (gzip, no headers)."""
    status, page = await call(app, path, {})
    if status != 200:
        raise RuntimeError(f"{path}: status {status}")
    parser = _Assets()
    parser.feed(
        zlib.decompress(page, 16 + zlib.MAX_WBITS).decode()
        if page[:2] == b"\x1f\x8b"
        else page.decode()
    )
    total = len(page)
    for url in dict.fromkeys(parser.urls):
        if not url.startswith("/"):
            raise RuntimeError(f"{path} loads {url} from another host")
        status, asset = await call(app, url, {})
        if status != 200:
            raise RuntimeError(f"{url}: status {status}")
        total += len(asset)
    return total


def measure_first_load() -> dict[str, float]:
    async def measure() -> tuple[int, int]:
        app = create_app()
        home = await first_load_bytes(app, "/")
        heaviest = 0
        for lesson in lessons():
            link = make_link("/", lesson.text, policy="6.2")
            heaviest = max(heaviest, await first_load_bytes(app, link))
        return home, heaviest

    home, heaviest = asyncio.run(measure())
    return {"first_load_kb": round(home / 1024, 1), "first_load_kb_max": round(heaviest / 1024, 1)}


# ---- throughput: a real uvicorn worker in a subprocess


def bench_app() -> Any:
    """`uvicorn --factory app.bench.web:bench_app`: cowlab, plus a route that answers a constant
    body of ``COWLAB_BENCH_STATIC_BYTES`` through the same application and middleware."""
    inner: FastAPI = create_app()
    body = b"x" * int(os.environ.get("COWLAB_BENCH_STATIC_BYTES", "30000"))

    async def static() -> Response:
        return Response(body, media_type="text/html; charset=utf-8")

    inner.add_api_route(STATIC_PATH, static, methods=["GET"], include_in_schema=False)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _hammer(
    port: int, paths: list[list[str]], headers: dict[str, str], seconds: float | None
) -> tuple[float, int]:
    """(requests per second, mean body bytes): one keep-alive connection per path list, each
    walking its own list in order for ``seconds`` — or, when ``seconds`` is None, once.

    The requests are encoded and the connections opened before the clock starts: for a list
    of 2,000 steps that takes the client tens of milliseconds, during which the server would
    idle and a short phase would count it against the server.
    """
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    encoded = [
        [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() for p in own]
        for own in paths
    ]
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in paths]
    done = 0
    received = 0
    start = time.perf_counter()
    deadline = start + (seconds if seconds is not None else 1e9)

    async def worker(requests: list[bytes], reader: asyncio.StreamReader, writer: Any) -> None:
        nonlocal done, received
        i = 0
        while time.perf_counter() < deadline and (seconds is not None or i < len(requests)):
            writer.write(requests[i % len(requests)])
            i += 1
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(status.decode(errors="replace"))
            done += 1
            received += length
        writer.close()

    await asyncio.gather(
        *(worker(requests, *stream) for requests, stream in zip(encoded, streams, strict=True))
    )
    return done / (time.perf_counter() - start), received // max(1, done)


def _connections(paths: list[str], n: int) -> list[list[str]]:
    """``paths`` dealt to ``n`` connections in runs, each starting at another lesson."""
    return [paths[i * len(paths) // n :] + paths[: i * len(paths) // n] for i in range(n)]


@contextmanager
def bench_server(static_bytes: int) -> Iterator[int]:
    """A uvicorn worker running `bench_app` on a free loopback port (yielded), pinned to its
    own core when there are two, stopped (and unpinned) on leaving."""
    port = _free_port()
    env = {**os.environ, "COWLAB_BENCH_STATIC_BYTES": str(static_bytes)}
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.bench.web:bench_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env=env)
    # One core for the worker, another for the client, when there are two: the client's work
    # then never comes out of the worker's time (and the other engineers' jobs are spread).
    cpus = sorted(os.sched_getaffinity(0))
    own = set(cpus)
    if len(cpus) >= 2:
        os.sched_setaffinity(server.pid, {cpus[-1]})
        os.sched_setaffinity(0, {cpus[0]})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the benchmark server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        os.sched_setaffinity(0, own)
        # SIGINT, not SIGTERM: uvicorn re-raises the signal it stopped on, and only SIGINT
        # unwinds Python (its atexit removes the static file's folder).
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)


def class_paths() -> list[str]:
    """A class on one link: every step of one lesson, under the era its story happens in."""
    lesson = next(x for x in lessons() if x.steps >= 8)
    return [make_link("/", lesson.text, policy="5.7", step=k) for k in range(lesson.steps + 1)]


def measure_class(quick: bool) -> dict[str, float]:
    """``class_ratio``: one worker answering the steps of one lesson, every one already rendered
    once (a class of students stepping through the teacher's link), over the same worker —
    same application, same middleware — answering a constant body of the same size.

    Short phases, alternated and repeated: each round compares the class with the constant
    body measured right after it, so a change in the machine's load (it is shared) moves both,
    and the median of the rounds' ratios is reported.
    """
    seconds = 0.6 if quick else 1.0
    rounds = 7 if quick else 15
    concurrency = 8
    steps = class_paths()
    size = _fragment_size(steps)
    with bench_server(size) as port:
        asyncio.run(_hammer(port, [steps], STAGE, None))  # the teacher: every step once
        ratios = []
        for _ in range(rounds):
            shared, _ = asyncio.run(_hammer(port, _connections(steps, concurrency), STAGE, seconds))
            static, _ = asyncio.run(_hammer(port, [[STATIC_PATH]] * concurrency, {}, seconds))
            ratios.append(shared / static)
    return {"class_ratio": round(statistics.median(ratios), 3), "class_step_bytes": size}


def _fragment_size(paths: list[str]) -> int:
    """Mean body size of these step fragments as the bench client receives them (no gzip)."""

    async def sizes() -> list[int]:
        app = create_app()
        out = []
        for path in paths:
            _, body = await call(app, path, STAGE, gzip=False)
            out.append(len(body))
        return out

    return int(statistics.mean(asyncio.run(sizes())))


def measure_web(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    figures.update(measure_cold_steps(quick))
    figures.update(measure_class(quick))
    figures.update(measure_first_load())
    return figures
