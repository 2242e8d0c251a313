"""Huge pages in real chromium (DESIGN.md §10, issue 14): a THP scenario read on a projector, a
laptop and a phone, and the presets grid filtered by backing from the keyboard."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app.views.links import make_link
from tests.app.folio_states import THP
from tests.e2e.conftest import Watch
from tests.e2e.test_axe import AXE_JS, serious_violations

pytestmark = pytest.mark.e2e

VIEWPORTS = {"projector": (1920, 1080), "laptop": (1366, 768), "phone": (375, 812)}
# Screenshots to look at by hand: COWLAB_SHOTS=/some/dir pytest tests/e2e/test_huge_browser.py
SHOTS = os.environ.get("COWLAB_SHOTS")


def thp_link(step: int, policy: str = "6.2", path: str = "/") -> str:
    return make_link(path, THP, policy=policy, step=step)


def _smallest_folio_text(page: Page) -> float:
    smallest: float = page.evaluate(
        """() => { const svg = document.querySelector('#stage svg.diagram');
                   const m = svg.getScreenCTM();
                   return Math.min(...[...svg.querySelectorAll('g.folio text')].map(
                     t => parseFloat(getComputedStyle(t).fontSize) * m.a)); }"""
    )
    return smallest


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_thp_step_reads_on_every_screen(browser: Browser, base_url: str, viewport: str) -> None:
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(
        base_url=base_url, viewport={"width": width, "height": height}, reduced_motion="reduce"
    )
    watch = Watch(page)
    page.goto(thp_link(3))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    folio = page.locator("#stage svg.diagram g.folio")
    expect(folio).to_have_count(1)
    expect(folio).to_contain_text("THP · pfn")
    expect(folio).to_contain_text("entire mapcount 2")
    expect(page.locator("#stage svg.diagram g.map-arrow.pmd")).to_have_count(2)
    # Phones scroll the picture in its box at a readable size, as for base pages.
    assert _smallest_folio_text(page) >= (10 if viewport == "phone" else 11)
    # The text twin says the same in words.
    expect(page.locator(".state-text")).to_contain_text("THP folio")
    expect(page.locator(".state-text")).to_contain_text("by one PMD")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"thp-{viewport}.png"), full_page=True)
    assert not watch.errors, watch.errors
    page.close()


def test_a_thp_step_is_readable_from_the_back_of_the_room(browser: Browser, base_url: str) -> None:
    page = browser.new_page(
        base_url=base_url, viewport={"width": 1920, "height": 1080}, reduced_motion="reduce"
    )
    page.goto(thp_link(5) + "&view=present")
    counters: float = page.evaluate(
        """() => { const svg = document.querySelector('#stage svg.diagram');
                   const m = svg.getScreenCTM();
                   return Math.min(...[...svg.querySelectorAll('g.folio text.counters')].map(
                     t => parseFloat(getComputedStyle(t).fontSize) * m.a)); }"""
    )
    assert counters >= 28, counters
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "thp-present.png"))
    page.close()


@pytest.mark.skipif(not AXE_JS.exists(), reason=f"axe-core is not installed at {AXE_JS}")
@pytest.mark.parametrize("width", [1366, 375])
@pytest.mark.parametrize("link", [thp_link(3), "/presets?backing=thp"])
def test_no_serious_accessibility_violation_with_huge_pages(
    browser: Browser, base_url: str, link: str, width: int
) -> None:
    assert serious_violations(browser, base_url, link, width) == []


def test_the_backing_filter_works_from_the_keyboard(page: Page, watch: Watch) -> None:
    page.goto("/presets")
    total = page.locator("table.presets tbody tr").count()
    groups = page.locator(".backing-group").count()
    assert groups > 1
    link = page.locator('.backing-filter a[data-backing="other"]')
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/presets\?backing=other$"))
    expect(page.locator(".backing-group")).to_have_count(1)
    expect(page.locator('.backing-filter a[aria-current="true"]')).to_have_attribute(
        "data-backing", "other"
    )
    assert page.locator("table.presets tbody tr").count() < total
    # The swap replaced the link that had the focus: its replacement has it, not the body.
    assert page.evaluate("document.activeElement.dataset.backing") == "other"
    # Back to every backing, then Back through the history to the filtered grid.
    page.locator('.backing-filter a[data-backing="all"]').focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/presets$"))
    expect(page.locator(".backing-group")).to_have_count(groups)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/presets\?backing=other$"))
    expect(page.locator(".backing-group")).to_have_count(1)


def lefts_of(page: Page) -> list[float]:
    """The left edge of the third column (the second era) of each backing's table."""
    lefts: list[float] = page.evaluate(
        """() => [...document.querySelectorAll('table.presets')].map(
             t => t.querySelector('thead th:nth-child(3)').getBoundingClientRect().left)"""
    )
    return lefts


@pytest.mark.parametrize("viewport", ["laptop", "phone"])
def test_the_presets_grid_by_backing_fits_the_screen(
    browser: Browser, base_url: str, viewport: str
) -> None:
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(base_url=base_url, viewport={"width": width, "height": height})
    page.goto("/presets")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # An era's column lines up from one backing's table to the next.
    lefts = lefts_of(page)
    assert len(lefts) > 1 and len(set(lefts)) == 1, lefts
    if viewport == "laptop":
        # Every era's column, the newest too, is on the screen without scrolling the table.
        right = page.evaluate(
            "Math.max(...[...document.querySelectorAll('table.presets thead th:last-child')]"
            ".map(th => th.getBoundingClientRect().right))"
        )
        assert right <= width, right
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"presets-{viewport}.png"))
    page.close()
