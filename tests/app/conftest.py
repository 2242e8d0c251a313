"""Fixtures for the web layer: an in-process client and helpers to build and read pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode
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


def attr(node: LexborNode, name: str) -> str:
    """An attribute's value; a failure names it when the element lacks it or it has no value."""
    value = node.attributes.get(name)
    assert value is not None, f"no {name}= on <{node.tag}>"
    return value


def first(node: LexborHTMLParser | LexborNode, selector: str) -> LexborNode:
    """The first element under ``node`` that ``selector`` matches; a failure names the selector
    when there is none (rather than an AttributeError on None a line later)."""
    found = node.css_first(selector)
    assert found is not None, f"nothing matches {selector!r}"
    return found


def hx(target: str) -> dict[str, str]:
    """Headers of an htmx 4 partial request aimed at ``#target``."""
    return {**HTMX, "HX-Target": f"div#{target}"}
