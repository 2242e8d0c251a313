"""A stand-alone ASGI upstream for the proxy tests (the app must not grow test endpoints).

- ``/…/echo``: the request headers as the upstream received them, as JSON;
- any other path: a server-sent event stream, ``?events=N&gap=S`` sending N events ``S``
  seconds apart — a stream that stays quiet between its heartbeats, as live sessions' do.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/echo"):
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        body = json.dumps({"headers": headers}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    query = parse_qs(scope["query_string"].decode())
    events = int(query.get("events", ["3"])[0])
    gap = float(query.get("gap", ["1"])[0])
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")],
    }
    await send(start)
    for n in range(events):
        if n:
            await asyncio.sleep(gap)
        event = f"data: {n}\n\n".encode()
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
