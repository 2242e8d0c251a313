"""Fixtures for the web layer: an in-process client and helpers to build and read pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selectolax.lexbor import LexborHTMLParser
from starlette.testclient import TestClient

from app.http.main import app
from app.views.links import make_link
from app.views.runs import run
from engine.presets import PRESETS

HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def preset_text(name: str) -> str:
    """The canonical `;` form of a preset, as links carry it."""
    return run(PRESETS[name].text, "latest").link_text


def preset_link(name: str, policy: str = "5.7", step: int | None = None, path: str = "/") -> str:
    return make_link(path, preset_text(name), policy=policy, step=step)


def html(text: str) -> LexborHTMLParser:
    return LexborHTMLParser(text)


def hx(target: str) -> dict[str, str]:
    """Headers of an htmx 4 partial request aimed at ``#target``."""
    return {**HTMX, "HX-Target": f"div#{target}"}
