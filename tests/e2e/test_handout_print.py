"""A handout printed right after it loads: what changed at each step is drawn at rest (the
page's step-change animation started at 15 % opacity and caught the print mid-flight)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.e2e


def test_a_handout_draws_its_changes_at_rest_on_screen_and_in_print(
    page: Page, base_url: str
) -> None:
    page.goto(base_url + "/handout?lesson=dirty-cow")
    changed = page.locator("svg.diagram g.changed:not(.gone)")
    assert changed.count() > 0
    for media in ("screen", "print"):
        page.emulate_media(media=media, reduced_motion="no-preference")
        # The first frame after load, as a print dialog opened at once would capture it.
        state = changed.first.evaluate(
            """g => { const s = getComputedStyle(g);
                      return [s.animationName, s.opacity, g.getAnimations().length]; }"""
        )
        assert state == ["none", "1", 0], (media, state)
