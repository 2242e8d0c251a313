"""axe-core (Deque's accessibility engine, from npm) in real chromium: no serious or critical
violation on any page a class uses. scripts/test installs the pinned axe-core into a cache
directory (``COWLAB_AXE_DIR``); the test is skipped, saying so, where it is not installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.app.conftest import preset_link

pytestmark = pytest.mark.e2e

AXE_VERSION = "4.14.1"  # scripts/test installs this one
AXE_DIR = Path(os.environ.get("COWLAB_AXE_DIR", Path.home() / ".cache/cowlab/axe"))
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
LEAK = "cve-2020-29374"

PAGES = {
    "home": "/",
    "stepped": preset_link(LEAK, "5.7", 6),
    "compare": preset_link(LEAK, "5.7", 6, "/compare"),
    "presets": "/presets",
    "embed": preset_link(LEAK, "5.7", 6, "/embed"),
    "present": preset_link(LEAK, "5.7", 6) + "&view=present",
    "reference": "/reference",
    "realcode": preset_link(LEAK, "5.7", 4, "/realcode"),
}


def serious_violations(browser: Browser, base_url: str, link: str, width: int) -> list[Any]:
    # bypass_csp: axe is injected as an inline script, which the page's CSP rightly refuses.
    page = browser.new_page(
        base_url=base_url,
        viewport={"width": width, "height": 900},
        reduced_motion="reduce",
        bypass_csp=True,
    )
    page.goto(link)
    page.add_script_tag(path=str(AXE_JS))
    # Two rules axe leaves off by default, which a class on phones and with voice control
    # needs: targets of at least 24 × 24 px, and visible labels inside accessible names.
    results: dict[str, Any] = page.evaluate(
        """axe.run(document, {resultTypes: ['violations'], rules: {
             'target-size': {enabled: true},
             'label-content-name-mismatch': {enabled: true}}})"""
    )
    page.close()
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "nodes": [n["target"] for n in v["nodes"][:5]],
            "count": len(v["nodes"]),
        }
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.skipif(not AXE_JS.exists(), reason=f"axe-core is not installed at {AXE_JS}")
@pytest.mark.parametrize("width", [1366, 375])
@pytest.mark.parametrize("name", list(PAGES))
def test_no_serious_accessibility_violation(
    browser: Browser, base_url: str, name: str, width: int
) -> None:
    assert serious_violations(browser, base_url, PAGES[name], width) == []


@pytest.mark.skipif(not AXE_JS.exists(), reason=f"axe-core is not installed at {AXE_JS}")
def test_the_real_code_of_a_step_opens_beside_it_and_reads_on_a_phone(
    browser: Browser, base_url: str
) -> None:
    page = browser.new_page(
        base_url=base_url,
        viewport={"width": 375, "height": 812},
        reduced_motion="reduce",
        bypass_csp=True,
    )
    link = preset_link(LEAK, "5.7", 4)
    page.goto(link)
    page.get_by_role("link", name="The system calls of this step").click()
    code = page.locator("#realcode-body pre.code")
    code.wait_for()
    assert "vmsplice(" in code.inner_text()
    # The fragment came in beside the step: the simulator is still the page, at step 4.
    assert page.url == base_url + link
    # The code scrolls inside its box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.add_script_tag(path=str(AXE_JS))
    results: dict[str, Any] = page.evaluate(
        "axe.run({include: [['section.realcode']]}, {resultTypes: ['violations']})"
    )
    serious = [v["id"] for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
    # Without JavaScript the link opens the same code as a page of its own, as readable.
    page.goto(PAGES["realcode"])
    assert "vmsplice(" in page.locator("pre.code").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.close()
