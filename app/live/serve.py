"""`cowlab serve`'s part in live sessions: the broker and public URL every worker inherits.

uvicorn starts its workers by importing the application, so the choice travels in the
environment, set before uvicorn starts.
"""

from __future__ import annotations

import os

from app.live.broker import (
    ENV_BROKER,
    ENV_PUBLIC_URL,
    ENV_WORKERS,
    REDIS_SCHEMES,
    REFUSED_WORKERS,
)


def prepare(broker_url: str | None, workers: int, public_url: str | None) -> str:
    """Set the workers' environment; returns the line `serve` prints about live sessions, or
    ``"error: …"`` when the broker cannot be used."""
    os.environ[ENV_WORKERS] = str(workers)
    if public_url:
        os.environ[ENV_PUBLIC_URL] = public_url.rstrip("/")
    if not broker_url:
        os.environ.pop(ENV_BROKER, None)
        if workers > 1:
            return "live sessions are OFF: " + REFUSED_WORKERS
        return "live sessions: rooms in this worker's memory (they end with it)"
    if not broker_url.startswith(REDIS_SCHEMES):
        return f"error: --broker takes a redis:// URL, not {broker_url!r}"
    import redis

    try:
        redis.Redis.from_url(broker_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"error: the live broker {broker_url} does not answer: {exc}"
    os.environ[ENV_BROKER] = broker_url
    return f"live sessions: rooms shared through Redis at {broker_url}"
