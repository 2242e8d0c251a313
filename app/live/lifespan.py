"""The live broker's life: configured from the environment `cowlab serve` sets, started with
the application's event loop and closed with it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.types import ASGIApp

from app.live import broker
from app.live.control import LiveConfig


def configure() -> LiveConfig:
    found = broker.configured()
    public_url = os.environ.get(broker.ENV_PUBLIC_URL) or None
    if isinstance(found, str):
        return LiveConfig(broker=None, refusal=found, public_url=public_url)
    return LiveConfig(broker=found, public_url=public_url)


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    config: LiveConfig = app.state.live  # type: ignore[attr-defined]
    if config.broker is not None:
        await config.broker.start()
    try:
        yield
    finally:
        if config.broker is not None:
            await config.broker.close()
