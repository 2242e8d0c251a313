"""Clients for the deployment tests: slow sockets, timed real requests, a connection burst."""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
import time
from collections.abc import Iterator

import httpx

HOST = "127.0.0.1"
# Half of the slow clients stop in the middle of their headers, half in the middle of a body.
HALF_HEADER = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\nX-Half: "
HALF_BODY = (
    b"POST /api/v1/simulate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 4096\r\n\r\n{"scenario": "P mmap a'
)


@contextlib.contextmanager
def slow_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections to ``port`` that each send part of a request and then wait."""
    opened: list[socket.socket] = []
    try:
        for n in range(count):
            s = socket.create_connection((HOST, port), timeout=10)
            s.sendall(HALF_BODY if n % 2 else HALF_HEADER)
            opened.append(s)
        yield opened
    finally:
        for s in opened:
            s.close()


def let_go_within(sockets: list[socket.socket], seconds: float) -> int:
    """How many of ``sockets`` the server closed (or answered) within ``seconds``."""
    waiting = selectors.DefaultSelector()
    for s in sockets:
        s.setblocking(False)
        waiting.register(s, selectors.EVENT_READ)
    released = 0
    deadline = time.monotonic() + seconds
    while released < len(sockets) and (left := deadline - time.monotonic()) > 0:
        for key, _ in waiting.select(timeout=left):
            # Readable means closed, reset or answered (nginx's 408): the server let it go.
            waiting.unregister(key.fileobj)
            released += 1
    waiting.close()
    return released


def timed(
    port: int,
    method: str,
    path: str,
    timeout: float,
    json: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, float]:
    """(status, seconds) of one request on a new connection; status 0 if no answer came: none in
    time, or the connection dropped (what a worker out of descriptors does)."""
    start = time.monotonic()
    try:
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=timeout) as client:
            status = client.request(method, path, json=json, headers=headers).status_code
    except httpx.TransportError:
        status = 0
    return status, time.monotonic() - start


async def _burst(port: int, count: int, path: str) -> list[tuple[int, str]]:
    connections = await asyncio.gather(*(asyncio.open_connection(HOST, port) for _ in range(count)))
    try:
        # Every connection is open at once before any request is sent: all of them admitted.
        for _, writer in connections:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())

        async def status(reader: asyncio.StreamReader) -> tuple[int, str]:
            head = await reader.readuntil(b"\r\n\r\n")
            return int(head.split()[1]), head.decode("latin-1")

        return list(await asyncio.gather(*(status(r) for r, _ in connections)))
    finally:
        for _, writer in connections:
            writer.close()


def burst(port: int, count: int, path: str, timeout: float) -> list[tuple[int, str]]:
    """The status and response head of ``count`` requests sent over ``count`` connections open
    at once (the head says who answered a failure: nginx or the worker)."""

    async def bounded() -> list[tuple[int, str]]:
        return await asyncio.wait_for(_burst(port, count, path), timeout)

    return asyncio.run(bounded())
