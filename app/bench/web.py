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
- ``worst_request_s`` / ``worst_body_mb``: the slowest and the largest answer of a real worker
  to every route (``/``, a step, ``/embed``, ``/export.svg``, ``/export.c``, ``/realcode``,
  ``/compare``, the API with its default states and with ``changes``) on the worst scenario
  within each documented limit (`worst_cases`), each in ``worst_requests: [{route, limit,
  status, s, body_mb, tiny_…}]``;
  ``worst_tiny_s`` the slowest tiny page asked for meanwhile, ``worst_rss_mb`` the worker's
  memory afterwards.

Each figure is a median over repeated runs in one process; ``quick`` repeats less.
"""

from __future__ import annotations

import asyncio
import json
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
from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.main import create_app
from app.views.links import encode_scenario, make_link
from engine.commands import Mmap
from engine.limits import (
    MAX_COMMANDS,
    MAX_DECOMPRESSED_BYTES,
    MAX_LINK_SCENARIO_BYTES,
    MAX_PAGES_PER_PROC,
    MAX_PROCS,
    MAX_REFS,
)
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import canonical_text, format_scenario, parse

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
    with bench_worker(static_bytes) as (port, _):
        yield port


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return round(kb / 1024, 1)


@contextmanager
def bench_worker(static_bytes: int) -> Iterator[tuple[int, int]]:
    """`bench_server`, yielding the worker's port and process id."""
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
        yield port, server.pid
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
    figures.update(worst_figures(quick))
    return figures


# ---- worst requests: the heaviest scenario within each documented limit, on a real worker


@dataclass(frozen=True)
class WorstCase:
    """A scenario at one documented limit (DESIGN.md §7) and how a link carries it."""

    limit: str
    text: str  # `;`-separated
    compressed: bool  # the link carries it as `z:` (a plain `s` holds at most 16 KB)


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def _fork_exit(start: list[str], child: str, commands: int = MAX_COMMANDS) -> list[str]:
    """``start``, then p0 forks ``child`` and ``child`` exits, up to ``commands`` commands."""
    out = list(start)
    while len(out) < commands:
        out += [f"p0 fork {child}", f"{child} exit"]
    return out[:commands]


def worst_cases() -> list[WorstCase]:
    """The worst scenario within each limit (commands, processes, pages per process,
    references, 16 KB of ``s``, 64 KB decompressed, /compare's own limit).

    "Worst" is what costs most per command: a fork or an exit of a full 256-page process
    touches every page, and each tells one event per page.
    """
    from app.bench.engine import scale_scenario
    from app.http.routes.pages import COMPARE_MAX_WEIGHT
    from app.views.runs import run

    pages = _names("g", MAX_PAGES_PER_PROC)
    full = [f"p0 mmap {' '.join(pages)}"] + [f"p0 write {page} v" for page in pages]
    fork_exit = _fork_exit(full, "c")
    # 64 processes of 256 pages, then writes round-robin (every COW path).
    processes = format_scenario(scale_scenario(MAX_COMMANDS, MAX_PROCS, MAX_PAGES_PER_PROC), ";")
    # Every reference pins a page of p0; then every fork copies the pinned pages at once.
    refs = full + [f"p0 pin g{i} rw as r{i}" for i in range(MAX_REFS)]
    refs += [f"p0 fork q{i}" for i in range(1, MAX_PROCS)]
    i = 0
    while len(refs) < MAX_COMMANDS:
        refs.append(f"q{1 + i % (MAX_PROCS - 1)} write g{i % MAX_PAGES_PER_PROC} w")
        i += 1
    # The longest plain `s`: 1,000 commands of fork/exit rounds, the child's name as long as
    # 16 KB allows (the bytes add no work; the commands do).
    child = "c" * 20
    while len(";".join(_fork_exit(full, child))) > MAX_LINK_SCENARIO_BYTES:
        child = child[:-1]
    plain = _fork_exit(full, child)
    # 64 KB of text: processes each mapping 256 pages of their own (as many as leave room for
    # writes), then writes round-robin.
    short = " ".join(f"a{j}" for j in range(MAX_PAGES_PER_PROC))
    wide: list[str] = []
    while len(wide) < MAX_PROCS and len(";".join(wide)) < MAX_DECOMPRESSED_BYTES - 8192:
        wide.append(f"p{len(wide)} mmap {short}")
    mapped = len(wide)
    i = 0
    while len(wide) < MAX_COMMANDS and len(";".join(wide)) < MAX_DECOMPRESSED_BYTES - 64:
        wide.append(f"p{i % mapped} write a{(i * 7) % MAX_PAGES_PER_PROC} w")
        i += 1

    # The largest scenario /compare takes: a process of 64 written pages forked and exited
    # round after round up to its weight limit (each round weighs about the same).
    small = full[:1] + full[1:65]
    small[0] = f"p0 mmap {' '.join(pages[:64])}"

    def weight(rounds: int) -> int:
        return run(";".join(_fork_exit(small, "c", 65 + 2 * rounds)), "latest").weight

    one = weight(1)
    rounds = 1 + (COMPARE_MAX_WEIGHT - one) // (weight(2) - one)
    while rounds > 1 and weight(rounds) > COMPARE_MAX_WEIGHT:
        rounds -= 1
    compare = _fork_exit(small, "c", 65 + 2 * rounds)
    return [
        WorstCase("commands", ";".join(fork_exit), compressed=False),
        WorstCase("processes", processes, compressed=True),
        WorstCase("references", ";".join(refs), compressed=True),
        WorstCase("s", ";".join(plain), compressed=False),
        WorstCase("decompressed", ";".join(wide), compressed=True),
        WorstCase("compare", ";".join(compare), compressed=False),
    ]


def worst_link(case: WorstCase, path: str, **params: str) -> str:
    s = encode_scenario(case.text) if case.compressed else case.text
    return f"{path}?" + urlencode({"v": "1", "s": s, **params})


WORST_ROUTES = (
    "/",
    "/ step",
    "/embed",
    "/export.svg",
    "/export.c",
    "/realcode",
    "/steps",
    "/export.html",
    "/compare",
    "api",
    "api changes",
)


def worst_request(case: WorstCase, route: str) -> tuple[str, str, dict[str, str], bytes]:
    """(method, target, headers, body) of ``route`` on ``case``'s scenario."""
    middle = str(case.text.count(";") // 2)
    if route == "api" or route == "api changes":
        states = "changes" if route == "api changes" else "last"
        body = json.dumps({"scenario": case.text, "states": states}).encode()
        return "POST", "/api/v1/simulate", {"Content-Type": "application/json"}, body
    if route == "/ step":
        return "GET", worst_link(case, "/", policy="latest", step=middle), STAGE, b""
    if route == "/compare":
        return "GET", worst_link(case, "/compare", step=middle), {}, b""
    return "GET", worst_link(case, route, policy="latest", step=middle), {}, b""


async def _exchange(
    port: int, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, int]:
    """(status, body bytes) of one request on its own connection (no gzip: the body as big
    as it gets)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    received = 0
    while received < length:
        chunk = await reader.read(min(1 << 20, length - received))
        if not chunk:
            break
        received += len(chunk)
    writer.close()
    return status, received


async def _worst_one(port: int, case: WorstCase, route: str) -> dict[str, Any]:
    """One worst request, while a tiny page (a new one each time, so it is rendered) is asked
    for every 50 ms on other connections: the slowest tiny answer is the worker's liveness."""
    method, target, headers, body = worst_request(case, route)
    done = asyncio.Event()
    tiny: list[float] = []

    async def ping() -> None:
        k = 0
        while not done.is_set():
            k += 1
            start = time.perf_counter()
            path = f"/?v=1&s=P+mmap+a%3BP+write+a+t{k}&policy=6.2"
            status, _ = await _exchange(port, "GET", path, {}, b"")
            tiny.append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"tiny request: status {status}")
            await asyncio.sleep(0.05)

    pinger = asyncio.create_task(ping())
    start = time.perf_counter()
    status, size = await _exchange(port, method, target, headers, body)
    seconds = time.perf_counter() - start
    done.set()
    await pinger
    return {
        "route": route,
        "limit": case.limit,
        "status": status,
        "s": round(seconds, 3),
        "body_mb": round(size / 1e6, 3),
        "tiny_n": len(tiny),
        "tiny_p50_s": round(statistics.median(tiny), 3),
        "tiny_max_s": round(max(tiny), 3),
    }


def measure_worst(port: int, cases: list[WorstCase] | None = None) -> list[dict[str, Any]]:
    """Every route on the worst scenario at every limit, against the worker on ``port``."""
    rows = []
    for case in cases if cases is not None else worst_cases():
        for route in WORST_ROUTES:
            rows.append(asyncio.run(_worst_one(port, case, route)))
    return rows


def worst_figures(quick: bool) -> dict[str, Any]:
    """The worst requests, and the worker's memory after them: ``worst_rss_mb`` once it has
    served every route at every limit (its memos full of the largest runs and pages)."""
    with bench_worker(100) as (port, pid):
        rows = measure_worst(port)
        rss = rss_mb(pid)
    return {
        "worst_request_s": max(row["s"] for row in rows),
        "worst_body_mb": max(row["body_mb"] for row in rows),
        "worst_tiny_s": max(row["tiny_max_s"] for row in rows),
        "worst_rss_mb": rss,
        "worst_requests": rows,
    }
