"""Load test: many simulated students stepping through scenarios, against a real server.

    cowlab bench --load [--duration 30] [--clients 32] [--workers 2] [--think SECONDS]
                        [--mix] [--proxy] [--kill-worker-at SECONDS] [--slow-sockets N]
                        [--json]
    cowlab bench --load --deploy      # the run of docs/deploy.md

Starts ``cowlab serve --workers N`` itself on a free 127.0.0.1 port, runs ``--clients``
concurrent clients for ``--duration`` seconds, stops the server, and reports requests per
second, latency percentiles, errors, and the resident memory (RSS) of every worker process
before the load, after a warm-up, and at the end. Everything stays on the loopback interface,
and a hard time limit (``--duration`` plus start and stop allowances) ends the run whatever
happens; the server is always stopped, by the process id this script started.

Each client plays one student's session, over and over: open a preset under some policy (the
whole page, gzip, as a browser), step through every step with htmx requests (``#stage``), press
an action button (``add=…``, the ``#sim`` region), look at the comparison of all eras, and
move on to another preset. A session is drawn from a seeded generator, so two runs send the
same requests in the same order per client. Without ``--think`` a client sends its next
request as soon as it has the answer (the server's saturation: latency is mostly queueing);
with it, each client pauses a random 0–2×THINK seconds between requests, as a class does.

The deployment of docs/deploy.md adds:

- ``--mix``: a third of the clients step through presets as above, a third each through
  scenarios of their own drawn at random (a new one every pass: nothing two clients share),
  and a third is a whole class on the teacher's one link;
- ``--proxy``: nginx, with the configuration of ``cowlab deploy nginx``, in front of the
  workers (in a temporary directory of its own); the clients talk to nginx;
- ``--kill-worker-at S``: SIGKILL one worker S seconds into the run (uvicorn's supervisor
  starts another; nginx passes a GET whose worker died to the next);
- ``--slow-sockets N``: after the run, N connections that send half a request and wait
  (slowloris) while the clients run again for ``--slow-phase`` seconds: its own figures, next
  to those of the same clients for as long just before, without the sockets.

``--deploy`` is all of these: 60 s, two workers, ``--mix --proxy``, a worker killed at 30 s,
then 1,100 slow sockets for 15 s.

Exit status: 0 when no request failed and worker memory did not grow by more than
``--max-growth-mb`` between the warm-up and the end; 1 otherwise; 2 for bad arguments.
A run that kills a worker is allowed the errors of the requests that worker held when it died
(``--allowed-errors``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from app.bench.web import Lesson, lessons
from app.deploy import run as nginx_run
from app.deploy.nginx import NginxSettings
from app.views.links import make_link
from engine.policies import POLICIES

# The directory that holds this `app` package (a checkout, or site-packages): the server
# started here imports the same cowlab as the load test.
ROOT = Path(__file__).resolve().parents[2]

LOOPBACK = "127.0.0.1"
# What a browser sends: gzip for every request, htmx headers for the swaps.
GZIP = {"Accept-Encoding": "gzip"}
STAGE = {**GZIP, "HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#stage"}
SIM = {**GZIP, "HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#sim"}
BROWSER = {**GZIP, "Accept": "text/html"}
START_ALLOWANCE_S = 30.0  # the server must answer within this
STOP_ALLOWANCE_S = 15.0


# ------------------------------------------------------------------------------------------
# What the clients ask for


def session(lesson: Lesson, policy: str) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, path, headers) of one student's pass over ``lesson`` under ``policy``."""
    requests = [("page", make_link("/", lesson.text, policy=policy, step=0), BROWSER)]
    for k in range(1, lesson.steps + 1):
        requests.append(("step", make_link("/", lesson.text, policy=policy, step=k), STAGE))
    query = urlencode({"v": "1", "s": lesson.text, "policy": policy, "add": lesson.action})
    requests.append(("action", "/?" + query, SIM))
    requests.append(("compare", make_link("/compare", lesson.text, step=lesson.steps), BROWSER))
    return requests


def random_lesson(rng: random.Random) -> Lesson:
    """A scenario no other client sends: random pages, writes, forks and references.

    Only anonymous memory and the commands a class meets first: the run measures the
    deployment, not the engine's corners (swap and files are another issue's).
    """
    pages = rng.sample(["a", "b", "c", "d"], rng.randint(1, 3))
    procs = ["P"]
    refs: list[str] = []
    commands = [f"P mmap {' '.join(pages)}"]
    for n in range(rng.randint(3, 18)):
        proc, page = rng.choice(procs), rng.choice(pages)
        verb = rng.choice(["write", "write", "read", "fork", "vmsplice", "pin", "ref", "dontneed"])
        if verb == "write":
            commands.append(f"{proc} write {page} v{n}")
        elif verb == "fork" and len(procs) < 4:
            child = f"C{len(procs)}"
            procs.append(child)
            commands.append(f"{proc} fork {child}")
        elif verb == "vmsplice":
            refs.append(f"R{n}")
            commands.append(f"{proc} vmsplice {page} as R{n}")
        elif verb == "pin":
            refs.append(f"R{n}")
            commands.append(f"{proc} pin {page} ro longterm as R{n}")
        elif verb == "ref" and refs:
            commands.append(f"{rng.choice(refs)} read")
        elif verb == "dontneed":
            commands.append(f"{proc} dontneed {page}")
        else:
            commands.append(f"{proc} read {page}")
    return Lesson(";".join(commands), len(commands), f"P read {pages[0]}")


SessionSource = Callable[[random.Random], list[tuple[str, str, dict[str, str]]]]


def sources(mix: bool, seed: int) -> list[SessionSource]:
    """What each kind of client plays; the clients take them in turn."""
    plan = lessons()
    policies = list(POLICIES)

    def presets(rng: random.Random) -> list[tuple[str, str, dict[str, str]]]:
        return session(rng.choice(plan), rng.choice(policies))

    if not mix:
        return [presets]
    teacher = random.Random(seed)
    lesson, policy = teacher.choice(plan), teacher.choice(policies)

    def own(rng: random.Random) -> list[tuple[str, str, dict[str, str]]]:
        return session(random_lesson(rng), rng.choice(policies))

    def whole_class(rng: random.Random) -> list[tuple[str, str, dict[str, str]]]:
        return session(lesson, policy)

    return [presets, own, whole_class]


# ------------------------------------------------------------------------------------------
# The server and its processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "app.cli", "serve", "--host", LOOPBACK]
    command += ["--port", str(port), "--workers", str(workers)]
    # A session of its own: the server and its workers can be stopped as one group, by the id
    # of the process started here, without touching anything else on the machine.
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=STOP_ALLOWANCE_S)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)


def wait_until_serving(server: subprocess.Popen[bytes], base: str, workers: int) -> None:
    deadline = time.monotonic() + START_ALLOWANCE_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            err = server.stderr.read().decode(errors="replace") if server.stderr else ""
            raise RuntimeError(f"the server exited with status {server.returncode}:\n{err}")
        try:
            if httpx.get(base + "/", timeout=2).status_code == 200 and (
                len(worker_pids(server.pid)) >= workers
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {START_ALLOWANCE_S:.0f} s")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def worker_pids(server_pid: int) -> list[int]:
    """uvicorn's worker processes: the supervisor's children that run the app (spawned by
    multiprocessing), not its resource tracker. With one worker uvicorn serves in-process."""
    workers = []
    for pid in _children(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(pid)
    return sorted(workers) or [server_pid]


# uvicorn's supervisor looks for dead workers every half second and a spawned worker imports
# the whole app before it serves; on a loaded 2-core machine that took over 3 s once (a CI run
# saw one worker left at the end of a 5 s run), so the report waits for the replacement.
REPLACEMENT_WAIT_S = 20.0


async def replaced_workers(server_pid: int, killed: dict[str, Any], wait_s: float) -> list[int]:
    """The workers once the supervisor has replaced the killed one, or as they are after
    ``wait_s`` seconds (the report then shows the missing worker)."""
    began = time.monotonic()
    while True:
        workers = worker_pids(server_pid)
        replaced = len(workers) >= len(killed["workers_before"]) and killed["pid"] not in workers
        waited = time.monotonic() - began
        if replaced or waited >= wait_s:
            killed["waited_after_run_s"] = round(waited, 1)
            return workers
        await asyncio.sleep(0.1)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(server_pid: int) -> dict[str, Any]:
    per_worker = {pid: round(rss_mb(pid), 1) for pid in worker_pids(server_pid)}
    return {"workers_mb": per_worker, "total_mb": round(sum(per_worker.values()), 1)}


# ------------------------------------------------------------------------------------------
# The clients


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    bytes: int = 0

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.latencies.values())


class Connection:
    """A keep-alive HTTP/1.1 connection speaking just enough of the protocol for this test.

    A load generator in Python competes with the server for the same two cores; a client
    library costs several times more per request than these few lines over asyncio streams,
    and would measure itself rather than the server.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> tuple[int, int]:
        """(status, body bytes) of one GET; reconnects when the server closed the connection."""
        if self.writer is None or self.reader is None or self.reader.at_eof():
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(LOOPBACK, self.port)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n{head}\r\n".encode())
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        size = 0
        if chunked:
            while True:
                chunk = int((await self.reader.readline()).split(b";")[0], 16)
                await self.reader.readexactly(chunk + 2)
                size += chunk
                if chunk == 0:
                    break
        else:
            await self.reader.readexactly(length)
            size = length
        if close:
            await self.close()
        return status, size

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def student(
    n: int,
    port: int,
    source: SessionSource,
    deadline: float,
    tally: Tally,
    seed: int,
    think: float,
) -> None:
    rng = random.Random(seed * 1000 + n)
    connection = Connection(port)
    try:
        while time.monotonic() < deadline:
            for kind, path, headers in source(rng):
                if time.monotonic() >= deadline:
                    return
                start = time.perf_counter()
                try:
                    status, size = await asyncio.wait_for(connection.get(path, headers), 30)
                except (TimeoutError, OSError, EOFError, ValueError, IndexError) as exc:
                    tally.errors[f"{kind}: {type(exc).__name__}"] += 1
                    await connection.close()
                    continue
                elapsed = time.perf_counter() - start
                if status != 200:
                    tally.errors[f"{kind}: HTTP {status}"] += 1
                    continue
                tally.bytes += size
                tally.add(kind, elapsed)
                if think:
                    await asyncio.sleep(rng.uniform(0, 2 * think))
    finally:
        await connection.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(
    port: int,
    clients: int,
    seconds: float,
    seed: int,
    server_pid: int,
    think: float = 0.0,
    mix: bool = False,
    kill_at: float | None = None,
) -> dict[str, Any]:
    kinds = sources(mix, seed)
    tally = Tally()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    deadline = start + seconds
    samples: list[tuple[float, float]] = []

    async def sample_memory() -> None:
        while time.monotonic() < deadline:
            samples.append((round(time.monotonic() - start, 1), memory(server_pid)["total_mb"]))
            await asyncio.sleep(max(0.5, seconds / 20))

    killed: dict[str, Any] = {}

    async def kill_a_worker(after: float) -> None:
        await asyncio.sleep(after)
        before = worker_pids(server_pid)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        killed.update(pid=victim, at_s=round(time.monotonic() - start, 1), workers_before=before)

    await asyncio.gather(
        sample_memory(),
        *([kill_a_worker(kill_at)] if kill_at is not None else []),
        *(
            student(n, port, kinds[n % len(kinds)], deadline, tally, seed, think)
            for n in range(clients)
        ),
    )
    if killed:
        killed["workers_after"] = await replaced_workers(server_pid, killed, REPLACEMENT_WAIT_S)
    elapsed = time.monotonic() - start
    used = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    everything = [s for v in tally.latencies.values() for s in v]
    by_kind = {
        kind: {
            "requests": len(v),
            "p50_ms": round(statistics.median(v) * 1000, 2),
            "p99_ms": round(percentile(v, 0.99) * 1000, 2),
        }
        for kind, v in sorted(tally.latencies.items())
    }
    return {
        "requests": tally.count,
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "requests_per_s": round(tally.count / elapsed, 1),
        "p50_ms": round(statistics.median(everything) * 1000, 2) if everything else None,
        "p99_ms": round(percentile(everything, 0.99) * 1000, 2) if everything else None,
        "max_ms": round(max(everything) * 1000, 2) if everything else None,
        "by_kind": by_kind,
        "mb_received": round(tally.bytes / 1e6, 1),
        # The clients run on the same cores as the server: what they took is not the server's.
        "client_cpu_share": round(client_cpu / elapsed, 2),
        "memory_samples": samples,
        **({"killed_worker": killed} if killed else {}),
    }


# ------------------------------------------------------------------------------------------
# Entry point


# Half of the slow sockets stop in the middle of their headers, half in the middle of a body.
HALF_HEADER = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\nX-Half: "
HALF_BODY = (
    b"POST /api/v1/simulate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 4096\r\n\r\n{"scenario": "P mmap a'
)


@dataclass
class SlowSockets:
    """What the slowloris side did: sockets held at once, and how many the server let go (each
    replaced at once by a new one, as a patient attacker would)."""

    held: int = 0
    let_go: int = 0


def _half_request(port: int, n: int) -> socket.socket:
    s = socket.create_connection((LOOPBACK, port), timeout=5)
    s.sendall(HALF_BODY if n % 2 else HALF_HEADER)
    s.setblocking(False)
    return s


@contextlib.contextmanager
def slow_sockets(port: int, count: int) -> Iterator[SlowSockets]:
    """``count`` connections that each send half a request and wait, kept at ``count`` for the
    whole block: one the server closes (or answers) is replaced by a thread of its own."""
    tally = SlowSockets()
    waiting = selectors.DefaultSelector()
    stop = threading.Event()
    try:
        for n in range(count):
            try:
                waiting.register(_half_request(port, n), selectors.EVENT_READ, n)
            except OSError:
                break
        tally.held = len(waiting.get_map())

        def replace_let_go() -> None:
            while not stop.is_set():
                for key, _ in waiting.select(timeout=0.2):
                    waiting.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
                    tally.let_go += 1
                    with contextlib.suppress(OSError):
                        waiting.register(
                            _half_request(port, key.data), selectors.EVENT_READ, key.data
                        )

        keeper = threading.Thread(target=replace_let_go, daemon=True)
        keeper.start()
        try:
            yield tally
        finally:
            stop.set()
            keeper.join(timeout=10)
    finally:
        for key in list(waiting.get_map().values()):
            _close(key.fileobj)
        waiting.close()


def _close(fileobj: object) -> None:
    if isinstance(fileobj, socket.socket):
        fileobj.close()


@contextlib.contextmanager
def front(args: argparse.Namespace, port: int) -> Iterator[tuple[int, int | None]]:
    """(port the clients use, nginx's pid or None): nginx in front of ``port`` with --proxy."""
    if not args.proxy:
        yield port, None
        return
    with tempfile.TemporaryDirectory(prefix="cowlab-loadtest-") as directory:
        settings = NginxSettings(upstreams=(f"{LOOPBACK}:{port}",))
        with nginx_run.running(settings, Path(directory)) as nginx:
            yield nginx.port, nginx.process.pid


def tree_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    return round(rss_mb(pid) + sum(rss_mb(child) for child in _children(pid)), 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    server = start_server(port, args.workers)
    slow: dict[str, Any] | None = None
    try:
        wait_until_serving(server, base, args.workers)
        with front(args, port) as (client_port, nginx_pid):
            before = memory(server.pid)
            warm = min(5.0, args.duration / 4)
            asyncio.run(
                load(client_port, args.clients, warm, args.seed + 1, server.pid, mix=args.mix)
            )
            after_warmup = memory(server.pid)
            figures = asyncio.run(
                load(
                    client_port,
                    args.clients,
                    args.duration,
                    args.seed,
                    server.pid,
                    args.think,
                    mix=args.mix,
                    kill_at=args.kill_worker_at,
                )
            )
            after = memory(server.pid)
            nginx_mb = tree_rss_mb(nginx_pid)
            if args.slow_sockets:
                # A killed worker's replacement must be serving before the next phase starts.
                wait_until_serving(server, base, args.workers)
                # The same clients for as long just before: on a shared machine only a phase
                # measured side by side says what the sockets cost.
                baseline = asyncio.run(
                    load(
                        client_port,
                        args.clients,
                        args.slow_phase,
                        args.seed + 2,
                        server.pid,
                        args.think,
                        mix=args.mix,
                    )
                )
                with slow_sockets(client_port, args.slow_sockets) as slowloris:
                    phase = asyncio.run(
                        load(
                            client_port,
                            args.clients,
                            args.slow_phase,
                            args.seed + 2,
                            server.pid,
                            args.think,
                            mix=args.mix,
                        )
                    )
                    slow = {
                        "sockets": slowloris.held,
                        "let_go_and_replaced": slowloris.let_go,
                        "seconds": args.slow_phase,
                        **{k: v for k, v in phase.items() if k != "memory_samples"},
                        "memory": memory(server.pid),
                        "nginx_mb": tree_rss_mb(nginx_pid),
                        "without_sockets": {
                            k: baseline[k]
                            for k in ("requests", "errors", "requests_per_s", "p50_ms", "p99_ms")
                        },
                    }
    finally:
        stop_server(server)
    growth = after["total_mb"] - after_warmup["total_mb"]
    return {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "server": {"workers": args.workers, "port": port, "proxy": bool(args.proxy)},
        "clients": args.clients,
        "mix": args.mix,
        "think_s": args.think,
        "duration_s": args.duration,
        "warmup_s": warm,
        **figures,
        "memory_before": before,
        "memory_after_warmup": after_warmup,
        "memory_after": after,
        "memory_growth_mb": round(growth, 1),
        "memory_flat": growth <= args.max_growth_mb,
        "nginx_mb": nginx_mb,
        **({"slow_sockets": slow} if slow is not None else {}),
    }


def render_text(r: dict[str, Any]) -> str:
    pause = f", pausing {r['think_s']:g} s on average" if r["think_s"] else ""
    lines = [
        f"cowlab load test: {r['clients']} clients{pause} for {r['duration_s']:g} s against "
        f"{r['server']['workers']} worker(s) on {r['machine']['cpus']} cpu(s)",
        f"  requests   {r['requests']}  ({r['requests_per_s']} /s, {r['mb_received']} MB;"
        f" the clients took {r['client_cpu_share']} of a cpu)",
        f"  latency    p50 {r['p50_ms']} ms   p99 {r['p99_ms']} ms   max {r['max_ms']} ms",
        f"  errors     {r['errors']}" + (f"  {r['error_kinds']}" if r["errors"] else ""),
    ]
    for kind, row in r["by_kind"].items():
        lines.append(
            f"    {kind:<8} {row['requests']:>7} requests   p50 {row['p50_ms']:>7} ms"
            f"   p99 {row['p99_ms']:>7} ms"
        )
    lines.append(
        f"  worker RSS before {r['memory_before']['total_mb']} MB, after warm-up "
        f"{r['memory_after_warmup']['total_mb']} MB, at the end {r['memory_after']['total_mb']} MB"
        f" (growth {r['memory_growth_mb']} MB: {'flat' if r['memory_flat'] else 'GROWING'})"
    )
    lines.append(f"  per worker at the end: {r['memory_after']['workers_mb']}")
    if r["nginx_mb"] is not None:
        lines.append(f"  nginx (master and workers) {r['nginx_mb']} MB")
    if "killed_worker" in r:
        k = r["killed_worker"]
        lines.append(
            f"  worker {k['pid']} killed (SIGKILL) at {k['at_s']} s; workers at the end of the"
            f" run: {k['workers_after']}"
        )
    if "slow_sockets" in r:
        slow = r["slow_sockets"]
        lines += [
            f"then {slow['sockets']} slow sockets held open for {slow['seconds']:g} s while the"
            f" clients ran again ({slow['let_go_and_replaced']} let go by the server, each"
            " replaced at once):",
            f"  requests   {slow['requests']}  ({slow['requests_per_s']} /s)",
            f"  latency    p50 {slow['p50_ms']} ms   p99 {slow['p99_ms']} ms   max"
            f" {slow['max_ms']} ms",
            f"  errors     {slow['errors']}"
            + (f"  {slow['error_kinds']}" if slow["errors"] else ""),
            f"  per worker {slow['memory']['workers_mb']}; nginx {slow['nginx_mb']} MB",
            "  the same clients just before, without the sockets: "
            + "{requests_per_s} /s, p50 {p50_ms} ms, p99 {p99_ms} ms, {errors} errors".format(
                **slow["without_sockets"]
            ),
        ]
    return "\n".join(lines)


def settle(args: argparse.Namespace) -> str | None:
    """Fill in ``--deploy`` and check the options; the reason they cannot run, or None.

    Raises this process's descriptor limit when slow sockets need more than the usual 1024.
    """
    if args.deploy:
        args.duration, args.workers, args.mix, args.proxy = 60.0, 2, True, True
        args.kill_worker_at, args.slow_sockets = 30.0, 1100
        args.allowed_errors = max(args.allowed_errors, args.clients)
    if not (0 < args.duration <= 3600 and 0 < args.clients <= 1000 and 0 < args.workers <= 64):
        return "--duration must be in (0, 3600], --clients in 1..1000, --workers in 1..64"
    if args.kill_worker_at is not None and not (
        0 < args.kill_worker_at < args.duration and args.workers > 1
    ):
        return "--kill-worker-at needs two workers or more and a time within --duration"
    if not (0 <= args.slow_sockets <= 5000 and 0 < args.slow_phase <= 600):
        return "--slow-sockets must be in 0..5000, --slow-phase in (0, 600]"
    if args.slow_sockets:
        # The slow sockets are this process's own descriptors, beyond the usual 1024.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = args.slow_sockets + args.clients + 256
        if hard != resource.RLIM_INFINITY and hard < wanted:
            return f"--slow-sockets needs {wanted} descriptors; the hard limit is {hard}"
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return None


def main(args: argparse.Namespace) -> int:
    """Run the load test of settled ``args`` and print its report; the exit status."""
    # The hard limit: whatever hangs, the run ends (and `finally` stops the server).
    slow = 2 * args.slow_phase + START_ALLOWANCE_S if args.slow_sockets else 0
    limit = int(args.duration + min(5.0, args.duration / 4) + START_ALLOWANCE_S + 30 + slow)

    def out_of_time(signum: int, frame: object) -> None:
        raise TimeoutError(f"the load test passed its hard limit of {limit} s")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(limit)
    try:
        result = run(args)
    finally:
        signal.alarm(0)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_text(result))
    # Slow sockets must cost no request at all: the allowance is for the killed worker only.
    slow_errors = result.get("slow_sockets", {}).get("errors", 0)
    ok = result["errors"] <= args.allowed_errors and slow_errors == 0 and result["memory_flat"]
    return 0 if ok else 1
