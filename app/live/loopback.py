"""Processes and clients on this machine's loopback, for `cowlab bench --live` and the tests:
a throwaway ``redis-server``, uvicorn workers of the app, and a small server-sent-event
reader over a raw socket (hundreds of them cost the client little, unlike an HTTP library)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.live.broker import ENV_BROKER, ENV_WORKERS

HOST = "127.0.0.1"
# A worker imports the whole app before it listens: seconds on a quiet machine, far more on
# one whose cores several test processes share.
START_ALLOWANCE_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{what} did not start on port {port}") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], sig: int | None = signal.SIGINT) -> None:
    """Stop ``process`` with ``sig`` (None: it was sent already), killing it after 10 s.

    uvicorn takes a second SIGINT as "exit now, skip the shutdown": send one."""
    if process.poll() is not None:
        return
    if sig is not None:
        process.send_signal(sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class RedisServer:
    """Debian's ``redis-server`` on a loopback port with nothing saved (no RDB, no AOF), in
    ``folder``: killed, it comes back empty, as a crashed Redis without persistence does."""

    def __init__(self, folder: str, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not installed (Debian: apt install redis-server)"
            )
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.binary, "--port", str(self.port), "--bind", HOST, "--save", ""]
        command += ["--appendonly", "no", "--dir", self.folder, "--logfile", ""]
        command += ["--loglevel", "warning"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, "redis-server", 10)
        return self

    def kill(self) -> None:
        """Gone at once, with everything it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, signal.SIGTERM)


@contextmanager
def redis_server() -> Iterator[str]:
    """Debian's ``redis-server`` on a free loopback port, nothing saved, in a temporary
    directory; yields its ``redis://`` URL and stops it on leaving."""
    with restartable_redis() as server:
        yield server.url


@contextmanager
def restartable_redis() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="cowlab-redis-") as folder:
        server = RedisServer(folder)
        try:
            yield server.start()
        finally:
            server.stop()


class Worker:
    """One uvicorn worker of ``app.http.main:app`` on a loopback port; restartable on that port."""

    def __init__(
        self,
        port: int,
        broker: str | None,
        cpu: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.broker = broker
        self.cpu = cpu
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        # Where the worker's output goes (None: this process's own stdout and stderr).
        self.log: Path | None = None

    def start(self) -> Worker:
        self.launch()
        self.ready()
        return self

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in (ENV_BROKER, ENV_WORKERS)}
        if self.broker:
            env[ENV_BROKER] = self.broker
        env.update(self.env)
        command = [sys.executable, "-m", "uvicorn", "app.http.main:app", "--host", HOST]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        if self.log is None:
            self.process = subprocess.Popen(command, env=env)
        else:
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        if self.cpu is not None:
            os.sched_setaffinity(self.process.pid, {self.cpu})

    def ready(self) -> None:
        assert self.process is not None
        wait_for_port(self.port, self.process, "the uvicorn worker", START_ALLOWANCE_S)

    def kill(self) -> None:
        """Gone at once, as a crashed or OOM-killed worker goes: no goodbye to anyone."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=5)

    def stop(self, signalled: bool = False) -> None:
        if self.process is not None:
            stop(self.process, None if signalled else signal.SIGINT)

    def rss_kb(self) -> int:
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        """CPU time (user + system) the worker has used so far."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextmanager
def workers(*found: Worker) -> Iterator[tuple[Worker, ...]]:
    """The workers, started side by side (each takes a second or two to import the app)."""
    try:
        for worker in found:
            worker.launch()
        for worker in found:
            worker.ready()
        yield found
    finally:
        signalled = []
        for worker in found:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGINT)
                signalled.append(worker)
        for worker in signalled:
            worker.stop(signalled=True)


@dataclass
class Event:
    kind: str
    data: Any
    at: float  # perf_counter() when its last byte was read


@dataclass
class SseStream:
    """One ``GET …/events`` over a raw socket, its chunked body parsed into events."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    buffer: bytes = b""
    comments: int = 0
    events: list[Event] = field(default_factory=list)

    @classmethod
    async def open(cls, port: int, path: str, headers: dict[str, str] | None = None) -> SseStream:
        reader, writer = await asyncio.open_connection(HOST, port)
        head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{head}\r\n".encode())
        status = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        if not status.startswith(b"HTTP/1.1 200"):
            writer.close()
            raise ConnectionRefusedError(status.decode(errors="replace").strip())
        return cls(reader, writer)

    async def next(self) -> Event:
        """The next event (comments are counted, not returned); EOFError when the stream ends."""
        while True:
            end = self.buffer.find(b"\n\n")
            if end >= 0:
                block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                event = self._parse(block)
                if event is not None:
                    self.events.append(event)
                    return event
                continue
            size_line = await self.reader.readline()
            if not size_line:
                raise EOFError("the stream ended")
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                raise EOFError("the stream ended")
            chunk = await self.reader.readexactly(size + 2)
            self.buffer += chunk[:-2].replace(b"\r\n", b"\n")

    def _parse(self, block: bytes) -> Event | None:
        kind, data = "message", []
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                self.comments += 1
            elif line.startswith(b"event:"):
                kind = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" ").decode())
        if not data:
            return None
        return Event(kind, json.loads("\n".join(data)), time.perf_counter())

    async def until(self, test: Any, timeout: float) -> Event:
        """The first event (from now) for which ``test(event)`` holds."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                if test(event):
                    return event

    def close(self) -> None:
        self.writer.close()


class JsonClient:
    """Requests with JSON bodies over one keep-alive loopback connection; JSON answers are
    decoded, others returned as text."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        # Cookies the server set (a student's id), sent back as a browser would.
        self.cookies: dict[str, str] = {}

    @classmethod
    async def open(cls, port: int) -> JsonClient:
        return cls(*await asyncio.open_connection(HOST, port))

    async def request(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {len(payload)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if key is not None:
            head += f"Authorization: Bearer {key}\r\n"
        if self.cookies:
            head += "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        is_json = False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"content-type":
                is_json = b"json" in value
            elif name.lower() == b"set-cookie":
                cookie, _, _ = value.decode().strip().partition(";")
                cookie_name, _, cookie_value = cookie.partition("=")
                self.cookies[cookie_name] = cookie_value
        raw = await self.reader.readexactly(length)
        if not raw:
            return status, None
        return status, json.loads(raw) if is_json else raw.decode()

    def close(self) -> None:
        self.writer.close()
