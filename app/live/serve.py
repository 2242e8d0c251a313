"""`cowlab serve`'s part in live sessions: the broker and public URL every worker inherits.

uvicorn starts its workers by importing the application, so the choice travels in the
environment, set before uvicorn starts.
"""

from __future__ import annotations

import os
import resource

from app.live.broker import (
    ENV_BROKER,
    ENV_PUBLIC_URL,
    ENV_SEATS,
    ENV_WORKERS,
    REDIS_SCHEMES,
    REFUSED_WORKERS,
)


def raise_open_files() -> int:
    """Raise this process's open-file limit to its hard limit (the workers inherit it): each
    student's event stream holds a socket, and the usual `ulimit -n 1024` ends a hall of
    students in EMFILE. Returns the limit now in force (the hard limit is the system's or the
    systemd unit's ``LimitNOFILE``, docs/deploy.md)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass  # e.g. an infinite hard limit the kernel will not grant: keep the soft one
    return soft


def prepare(
    broker_url: str | None, workers: int, public_url: str | None, seats: int | None = None
) -> str:
    """Set the workers' environment; returns the line `serve` prints about live sessions, or
    ``"error: …"`` when the broker cannot be used."""
    raise_open_files()
    os.environ[ENV_WORKERS] = str(workers)
    if seats is not None:
        os.environ[ENV_SEATS] = str(seats)
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
