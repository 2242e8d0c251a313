"""Helpers of the live-session tests: an app with a broker of chosen limits and clock, a
uvicorn thread serving it, and the room a test starts from."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.testclient import TestClient

from app.http.main import create_app
from app.live.broker import MemoryBroker
from app.live.control import LiveConfig
from app.live.loopback import free_port
from app.views.links import make_link

# A fork, a write after the fork, and reads: step 4 is `C read a`, step 6 `P read a`.
LESSON = "P mmap a;P write a x;P fork C;C read a;P write a y;P read a;C read a"
LINK = make_link("/", LESSON, policy="5.7", step=2)
# A pipe that reads what the parent wrote after fork under 5.7, and what it held under 6.2.
PIPE = "P mmap a;P write a p1;P fork C;C vmsplice a as pipe;C munmap a;P write a p3;pipe read"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def live_app(**limits: Any) -> tuple[FastAPI, MemoryBroker]:
    app = create_app()
    broker = MemoryBroker(**limits)
    app.state.live = LiveConfig(broker=broker)
    return app, broker


def start(client: TestClient, link: str = LINK) -> tuple[str, dict[str, str]]:
    """A room from ``link``: (its code, the teacher's headers)."""
    answer = client.post("/api/v1/live", json={"link": link})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["code"], {"Authorization": f"Bearer {body['teacher_key']}"}


@contextmanager
def serving(app: FastAPI, log_level: str = "warning") -> Iterator[int]:
    """``app`` under uvicorn in a thread on a free loopback port (yielded)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
