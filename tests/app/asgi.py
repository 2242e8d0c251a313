"""Requests straight through an ASGI app, for what an HTTP client will not send.

httpx refuses to build some hostile requests (a query past 64 KB, a body that lies about its
length), and a test of the limits needs to see how much of the body the application read.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Scope


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    read: int  # how many times the application asked for (more of) the body

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> Answer:
    """One request; ``chunks`` is the body as the server receives it, message by message."""
    pending = list(chunks or [b""])
    read = 0
    answered = asyncio.Event()

    async def receive() -> Message:
        nonlocal read
        if not pending:
            # As a client does: connected until the answer is complete (a heavy request
            # listens for a disconnect meanwhile, and stops on one).
            await answered.wait()
            return {"type": "http.disconnect"}
        read += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    status = 0
    out_headers: dict[str, str] = {}
    body: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update((k.decode(), v.decode()) for k, v in message["headers"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }

    async def exchange() -> None:  # asyncio.run takes a coroutine; an ASGI app is any awaitable
        await app(scope, receive, capture)

    asyncio.run(exchange())
    return Answer(status, out_headers, b"".join(body), read)
