"""Web figures for `cowlab bench` (DESIGN.md §7): measured here, judged by `app.bench`.

- ``action_ms_p50`` / ``action_ms_p99``: one htmx action in-process — decode the link, parse,
  replay, build the view, render the fragment — through the ASGI app with the replay memo
  emptied first, because an action is by definition a scenario the server has not seen.
- ``throughput_ratio``: requests per second of actions on one uvicorn worker, divided by the
  same worker serving a static body of the same size. The load comes from a few lines of
  asyncio over keep-alive sockets rather than an HTTP library, so the client costs far less
  than the server and does not flatten the ratio.
- ``first_load_kb``: the first page load as sent (gzip), with its CSS and scripts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.types import Receive, Scope, Send

from app.main import create_app
from app.memo import clear_all
from app.runs import clear_caches
from engine.syntax import parse

STATIC_PATH = "/__bench_static"
HX = {"HX-Request": "true", "HX-Request-Type": "partial", "HX-Target": "div#sim"}


def _thirty_commands() -> list[str]:
    from app.bench import THIRTY_COMMANDS  # the engine figures' scenario: one lesson's worth

    return [line.strip() for line in THIRTY_COMMANDS.strip().splitlines()]


def action_paths() -> list[str]:
    """Distinct actions on the 30-command scenario: its first 29 commands plus one more."""
    commands = _thirty_commands()
    base = ";".join(commands[:-1])
    extra = [
        "P read a",
        "P write b x",
        "C read b",
        "P fork D",
        "dev read",
        "C write a y",
        "P munmap c",
        "P vmsplice b as p2",
        "C exit",
        "P pin a ro as p3",
    ]
    paths = []
    for k, command in enumerate(extra * 6):
        # A different value each time keeps every action a new scenario.
        add = f"{command}{k}" if command.endswith(("x", "y")) else command
        paths.append("/?" + urlencode({"v": "1", "s": base, "policy": "6.2", "add": add}))
    return paths


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def call(app: Any, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
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
        + [(b"host", b"bench"), (b"accept-encoding", b"gzip")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    status = 0
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(body)


async def _actions_in_process(repeat: int) -> tuple[float, float, int]:
    app = create_app()
    paths = action_paths()
    samples: list[float] = []
    size = 0
    for i in range(repeat):
        clear_caches()
        clear_all()  # the page memo would answer a repeated action without any work
        start = time.perf_counter()
        status, body = await call(app, paths[i % len(paths)], HX)
        samples.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"action failed: {status}")
        size = len(body)
    return statistics.median(samples) * 1000, _percentile(samples, 0.99) * 1000, size


def first_load_kb() -> float:
    async def measure() -> float:
        transport = httpx.ASGITransport(app=create_app())
        gzip = {"Accept-Encoding": "gzip"}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            text = ";".join(_thirty_commands())
            page = await client.get("/?" + urlencode({"v": "1", "s": text}), headers=gzip)
            total = page.num_bytes_downloaded
            for asset in ("/static/app.css", "/static/app.js"):
                total += (await client.get(asset, headers=gzip)).num_bytes_downloaded
            from app.paths import HTMX_FILE

            total += (await client.get(f"/static/{HTMX_FILE}", headers=gzip)).num_bytes_downloaded
            return total / 1024

    return asyncio.run(measure())


# ---- throughput: a real uvicorn worker in a subprocess


def bench_app() -> Any:
    """`uvicorn --factory app.webbench:bench_app`: cowlab plus a static body of a given size."""
    inner = create_app()
    body = b"x" * int(os.environ.get("COWLAB_BENCH_STATIC_BYTES", "30000"))
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STATIC_PATH:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await inner(scope, receive, send)

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _hammer(port: int, paths: list[str], seconds: float, concurrency: int) -> float:
    """Requests per second over ``concurrency`` keep-alive connections for ``seconds``."""
    head = "".join(f"{k}: {v}\r\n" for k, v in HX.items())
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() for p in paths]
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < deadline:
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
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done / (time.perf_counter() - start)


def throughput_ratio(static_bytes: int, seconds: float) -> tuple[float, float]:
    port = _free_port()
    env = {**os.environ, "COWLAB_BENCH_STATIC_BYTES": str(static_bytes)}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.webbench:bench_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the benchmark server did not start") from None
                time.sleep(0.05)
        paths = action_paths()
        asyncio.run(_hammer(port, paths, min(1.0, seconds), 4))  # warm the memo
        actions = asyncio.run(_hammer(port, paths, seconds, 16))
        static = asyncio.run(_hammer(port, [STATIC_PATH], seconds, 16))
        return actions / static, actions
    finally:
        server.terminate()
        server.wait(timeout=10)


def measure_web(quick: bool) -> dict[str, Any]:
    parse(";".join(_thirty_commands()))  # fail early if the scenario stops parsing
    p50, p99, size = asyncio.run(_actions_in_process(60 if quick else 400))
    ratio, actions_rps = throughput_ratio(size, 2.0 if quick else 8.0)
    return {
        "action_ms_p50": round(p50, 3),
        "action_ms_p99": round(p99, 3),
        "action_bytes": size,
        "actions_per_s": round(actions_rps),
        "throughput_ratio": round(ratio, 3),
        "first_load_kb": round(first_load_kb(), 1),
    }
