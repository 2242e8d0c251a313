"""The lesson pages at a projector's, a laptop's and a phone's size, and under axe-core.

axe-core comes from npm, installed by scripts/test into ``$COWLAB_AXE_DIR`` (default
``~/.cache/cowlab/axe``); it is injected with ``add_script_tag`` into a context that bypasses
the CSP, which (rightly) refuses the inline script that injection makes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from app.views.links import make_link
from engine.lessons import CHALLENGES, LESSONS

pytestmark = pytest.mark.e2e

AXE = (
    Path(os.environ.get("COWLAB_AXE_DIR", Path.home() / ".cache" / "cowlab" / "axe"))
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)

DIRTY = LESSONS["dirty-cow"].text

PAGES = {
    "welcome": "/",
    "lessons": "/lessons",
    "challenges": "/challenges",
    "quiz": "/quiz?seed=3",
    "quiz-checked": "/quiz?seed=3&check=1&q1=5.7&q2=4.8",
    "handout": "/handout?lesson=dirty-cow&answers=1",
    "question": make_link("/", DIRTY, step=7),
    "answered": make_link("/", DIRTY, step=7) + "&answer=pwned",
    "present": make_link("/", DIRTY, step=7, view="present"),
    "goal": make_link("/", CHALLENGES["pipe-leak"].start),
}

# The simulator page around the lesson panels is the page work's (issue 11): on the pages that
# are the simulator, only what the lessons add is held to the viewport here.
OWN = {
    "welcome": ".welcome",
    "question": ".lesson",
    "answered": ".lesson",
    "present": ".lesson",
    "goal": ".goal",
}

SIZES = ((1920, 1080), (1366, 768), (375, 812))

# Every element of ``scope`` whose right edge passes the viewport's.
OVERFLOW = """(scope) => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll(scope + ", " + scope + " *")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1) out.push(el.tagName + "." + el.className);
  }
  return out;
}"""


@pytest.fixture
def bypass_csp_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(bypass_csp=True, viewport={"width": 1366, "height": 768})
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("name", list(PAGES))
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_no_sideways_scrolling(
    page: Page, base_url: str, name: str, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(base_url + PAGES[name])
    scope = OWN.get(name, "main")
    assert page.locator(scope).count() >= 1
    assert page.evaluate(OVERFLOW, scope) == []


@pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is not installed at {AXE}")
@pytest.mark.parametrize("name", list(PAGES))
def test_axe_finds_nothing_serious(bypass_csp_page: Page, base_url: str, name: str) -> None:
    page = bypass_csp_page
    page.goto(base_url + PAGES[name])
    page.add_script_tag(path=str(AXE))
    # On the simulator, the lessons' own regions (the rest is the page work's, tested there).
    scope = OWN.get(name)
    result: dict[str, Any] = page.evaluate(
        "(scope) => axe.run(scope ? { include: [[scope]] } : document)", scope
    )
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
