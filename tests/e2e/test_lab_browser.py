"""The policy lab in real chromium: change a knob, see the grid change, share the link, open it
in a fresh context; and the lab's pages at projector, laptop and phone sizes, checked by
axe-core for serious or critical violations."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app.http.main import app
from app.views.lab import SweepJob
from tests.e2e.conftest import Watch

pytestmark = pytest.mark.e2e

# scripts/test installs axe-core from npm here (COWLAB_AXE overrides).
AXE = Path(
    os.environ.get(
        "COWLAB_AXE",
        Path.home() / ".cache/cowlab/axe-lab/node_modules/axe-core/axe.min.js",
    )
)
VIEWPORTS = [(1920, 1080), (1366, 768), (375, 812)]
LAB_PAGES = (
    "/lab?policy=custom:base=5.8,gup_read=break-cow,fork_pinned=copy",
    "/lab?policy=custom:base=5.19,fork_pinned=share",
    "/lab/sweep",
)
# /compare is left out: its diagram panels overflow a phone with or without custom columns
# (the page layout is issue 11's work).
CUSTOM_COLUMNS = ("/presets?custom=custom:base=5.9,gup_read=break-cow",)


def design_leaks(page: Page) -> int:
    """Presets whose worst verdict under the design (the grid's last column) is a leak."""
    return page.locator("table.lab-grid tbody tr td:last-child.w-leak").count()


def test_change_a_knob_see_the_grid_change_and_share_the_link(
    page: Page, watch: Watch, browser: Browser, server: str
) -> None:
    page.goto("/lab?policy=5.8")
    # Three base-page presets, and "vmsplice() before fork()" on each huge backing
    # (tests/engine/huge_preset_expectations.py: 5.8 has nothing to break at vmsplice() time).
    assert design_leaks(page) == 3 + 3
    expect(page.locator(".point-name")).to_contain_text("5.8")
    page.focus("#knob-gup_read")
    page.select_option("#knob-gup_read", "none")
    page.wait_for_url(re.compile(r"/lab\?policy=custom:base=5\.8,gup_read=none$"))
    # Not quite 5.7 any more: 5.8 also split a shared THP on a write fault instead of copying
    # it whole (3917c80280c9, knob thp_cow), which no read tells apart. So the leaks are
    # 5.7's: ten base-page presets, and the four vmsplice() cases on each huge backing.
    expect(page.locator(".point-name")).to_have_text("5.8 + gup_read=none")
    assert design_leaks(page) == 10 + 4 * 3
    # A fragment was swapped, not a page nested in the page.
    assert page.locator("header.top").count() == 1
    expect(page.locator("#knob-gup_read")).to_have_value("none")
    # The knob just changed keeps the focus, and the tab names the design shown.
    expect(page.locator("#knob-gup_read")).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Policy lab: 5\.8 \+ gup_read=none "))

    page.select_option("#knob-gup_read", "break-cow")
    page.wait_for_url(re.compile(r"gup_read=break-cow$"))
    page.select_option("#knob-fork_pinned", "copy")
    page.wait_for_url(re.compile(r"gup_read=break-cow,fork_pinned=copy$"))
    expect(page.locator(".point-name")).to_have_text("5.8-break-cow + fork_pinned=copy")
    expect(page.locator(".effects")).to_contain_text("RDMA")
    shared = page.locator("#lab-share").input_value()
    assert shared == page.url

    fresh = browser.new_context(base_url=server)
    try:
        other = fresh.new_page()
        other.goto(shared)
        expect(other.locator(".point-name")).to_have_text("5.8-break-cow + fork_pinned=copy")
        expect(other.locator("#knob-gup_read")).to_have_value("break-cow")
        expect(other.locator("#knob-fork_pinned")).to_have_value("copy")
        assert design_leaks(other) == design_leaks(page)
    finally:
        fresh.close()


def test_back_returns_to_the_previous_point(page: Page, watch: Watch) -> None:
    page.goto("/lab?policy=5.9")
    page.select_option("#knob-wp_reuse", "anon-exclusive")
    page.wait_for_url(re.compile(r"wp_reuse=anon-exclusive$"))
    page.go_back()
    page.wait_for_url(re.compile(r"policy=5\.9$"))
    expect(page.locator("#knob-wp_reuse")).to_have_value("page-count")


def _sweep_ready() -> None:
    job: SweepJob | None = getattr(app.state, "lab_sweep", None)
    assert job is not None
    assert job.wait(300)


@pytest.mark.skipif(not AXE.exists(), reason=f"axe-core is not installed at {AXE}")
@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
# Known intermittent bug, not fixed yet: chromium sometimes reports net::ERR_ABORTED for
# /presets?custom=… (seen on a quiet machine too). One rerun until it is found; see the issue note.
@pytest.mark.flaky(reruns=1)
def test_lab_pages_fit_the_screen_and_pass_axe(
    browser: Browser, server: str, width: int, height: int
) -> None:
    # axe is injected as an inline script, which the pages' CSP rightly refuses: bypass it for
    # the audit only.
    context = browser.new_context(
        base_url=server, viewport={"width": width, "height": height}, bypass_csp=True
    )
    try:
        page = context.new_page()
        page.goto("/lab/sweep")
        _sweep_ready()
        for path in (*LAB_PAGES, *CUSTOM_COLUMNS):
            page.goto(path)
            overflow = page.evaluate(
                "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
            )
            assert overflow <= 0, (path, width, overflow)
            if path not in LAB_PAGES:
                # The presets and compare pages are the UI work's (issue 11): their own axe
                # test covers them; here they only must not scroll sideways with custom columns.
                continue
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3))"
            )
            assert result == [], (path, width, result)
    finally:
        context.close()


def test_a_refused_knob_says_why_in_place_and_can_be_undone(page: Page) -> None:
    # No `watch`: chromium logs the 400 answer as a failed resource load, which is the point.
    page.goto("/lab?policy=5.19")
    page.select_option("#knob-fork_pinned", "share")
    page.wait_for_url(re.compile(r"policy=custom:base=5\.19,fork_pinned=share$"))
    alert = page.locator(".lab-point [role=alert]")
    expect(alert).to_contain_text("fork_pinned=share conflicts with wp_reuse=anon-exclusive")
    page.select_option("#knob-fork_pinned", "copy")
    page.wait_for_url(re.compile(r"policy=custom:base=5\.19,fork_pinned=copy$"))
    expect(alert).to_have_count(0)
    expect(page.locator(".point-name")).to_have_text("5.19 + fork_pinned=copy")
