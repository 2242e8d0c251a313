"""A class on one link, in real chromium: links that follow the step, the projector, phones,
the player and the focus (issue 11)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.app.conftest import preset_link
from tests.e2e.conftest import Watch

pytestmark = pytest.mark.e2e

LEAK = "cve-2020-29374"  # seven steps; the pipe leaks the parent's secret at step 7 under 5.7


def query(link: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(link).query))


def links_naming_a_step(page: Page) -> dict[str, str]:
    """Every link of the simulator page outside the stepped region, by what it is."""
    found = {
        "present": page.locator("a.present-toggle").get_attribute("href") or "",
        "compare": page.locator("a", has_text="Compare this scenario").get_attribute("href") or "",
        "share": page.locator("#share-link").input_value(),
    }
    for era in page.locator("a.pol").all():
        found[f"era {era.inner_text()}"] = era.get_attribute("href") or ""
    return found


def assert_links_name_step(page: Page, step: str) -> None:
    expect(page.locator("#stepbar .counter strong")).to_have_text(step)
    expect(page.locator("#share-link")).to_have_value(re.compile(rf"step={step}$"))
    for what, link in links_naming_a_step(page).items():
        assert query(link).get("step") == step, (what, link)


def test_every_link_names_the_step_after_stepping_and_back(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    assert_links_name_step(page, "3")
    for step in ("4", "5", "6"):
        page.keyboard.press("ArrowRight")
        page.wait_for_url(re.compile(rf"step={step}$"))
    assert_links_name_step(page, "6")
    assert query(page.locator("a.present-toggle").get_attribute("href") or "")["policy"] == "5.7"
    page.go_back()
    page.wait_for_url(re.compile(r"step=5$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("5")
    assert_links_name_step(page, "5")
    page.go_forward()
    page.wait_for_url(re.compile(r"step=6$"))
    assert_links_name_step(page, "6")
    # `p` presents the step shown, not the step the page was loaded at.
    page.keyboard.press("p")
    page.wait_for_url(re.compile(r"policy=5\.7&step=6&view=present$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("6")


def test_present_button_follows_the_era_chosen(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 6))
    page.locator("a.pol", has_text="5.19").click()
    page.wait_for_url(re.compile(r"policy=5\.19&step=6$"))
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(r"policy=5\.19&step=5$"))
    present = query(page.locator("a.present-toggle").get_attribute("href") or "")
    assert (present["policy"], present["step"], present["view"]) == ("5.19", "5", "present")


def test_brackets_switch_the_era_keeping_the_step_in_presentation(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 6) + "&view=present")
    page.keyboard.press("]")
    page.wait_for_url(re.compile(r"policy=5\.8&step=6&view=present$"))
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"policy=5\.8&step=7&view=present$"))
    page.keyboard.press("[")
    page.wait_for_url(re.compile(r"policy=5\.7&step=7&view=present$"))
    expect(page.locator("#narration")).to_contain_text("leak")


def test_focus_stays_on_the_era_chosen_and_at_the_last_step(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 6))
    page.locator("a.pol", has_text="5.9").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"policy=5\.9&step=6$"))
    expect(page.locator("a.pol", has_text="5.9")).to_be_focused()
    page.locator("a[data-nav=next]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"step=7$"))
    # ▶ is no longer a link at the last step: the focus moves to ◀, not to the body.
    assert page.evaluate("document.activeElement !== document.body")
    expect(page.locator("a[data-nav=prev]")).to_be_focused()


def test_slider_scrubs_and_autoplay_plays_to_the_end(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 0))
    scrub = page.locator("#scrub")
    expect(scrub).to_be_visible()
    scrub.fill("4")
    page.wait_for_url(re.compile(r"step=4$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("4")
    page.locator("#speed").select_option("700")
    page.locator("#player .play").click()
    page.wait_for_url(re.compile(r"step=7$"), timeout=10_000)
    expect(page.locator("#player .play")).to_have_attribute("aria-pressed", "false")
    expect(scrub).to_have_value("7")


def _picture_geometry(page: Page) -> dict[str, float]:
    geometry: dict[str, float] = page.evaluate(
        """() => {
          const svg = document.querySelector('#stage svg.diagram');
          const r = svg.getBoundingClientRect();
          const m = svg.getScreenCTM();
          const px = sel => Math.min(...[...svg.querySelectorAll(sel)].map(
            t => parseFloat(getComputedStyle(t).fontSize) * m.a));
          return {width: r.width, height: r.height, bottom: r.bottom, scale: m.a,
                  counters: px('text.counters'), refs: px('text.ref-label'),
                  vw: document.documentElement.clientWidth, vh: innerHeight};
        }"""
    )
    return geometry


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1280, 720)])
def test_presentation_scales_the_picture_to_the_screen(
    browser: Browser, base_url: str, width: int, height: int
) -> None:
    page = browser.new_page(
        base_url=base_url, viewport={"width": width, "height": height}, reduced_motion="reduce"
    )
    page.goto(preset_link(LEAK, "5.7", 6) + "&view=present")
    g = _picture_geometry(page)
    # As wide as the screen (less the page's margins), and all of it on the screen.
    assert g["width"] >= g["vw"] - 60, g
    assert g["bottom"] <= g["vh"], g
    assert g["scale"] > 0.9, g
    if height == 1080:
        # Readable from the back of a lecture hall on a 1080p projector.
        assert g["counters"] >= 28, g
        assert g["refs"] >= 28, g
    page.close()


PHONE_PAGES = {
    "home": "/",
    "stepped": preset_link(LEAK, "5.7", 6),
    "compare": preset_link(LEAK, "5.7", 6, "/compare"),
    "presets": "/presets",
    "embed": preset_link(LEAK, "5.7", 6, "/embed"),
    "present": preset_link(LEAK, "5.7", 6) + "&view=present",
}


@pytest.mark.parametrize("name", list(PHONE_PAGES))
def test_no_sideways_scroll_on_a_phone(browser: Browser, base_url: str, name: str) -> None:
    page = browser.new_page(
        base_url=base_url, viewport={"width": 375, "height": 812}, reduced_motion="reduce"
    )
    page.goto(PHONE_PAGES[name])
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    if name in ("stepped", "present"):
        # The picture keeps readable text, scrolling inside its own box instead of the page.
        smallest = page.evaluate(
            """() => { const svg = document.querySelector('#stage svg.diagram');
                       const m = svg.getScreenCTM();
                       return Math.min(...[...svg.querySelectorAll('text')].map(
                         t => parseFloat(getComputedStyle(t).fontSize) * m.a)); }"""
        )
        assert smallest >= 10, smallest
        # A teacher's presentation link opens as the ordinary page on a student's phone.
        expect(page.locator(".actions")).to_be_visible()
    page.close()


def test_compare_has_a_present_button_and_readable_panels(browser: Browser, base_url: str) -> None:
    page = browser.new_page(
        base_url=base_url, viewport={"width": 1920, "height": 1080}, reduced_motion="reduce"
    )
    page.goto(preset_link(LEAK, "5.7", 6, "/compare"))
    smallest = page.evaluate(
        """() => { const svg = document.querySelector('.panel svg.diagram');
                   const m = svg.getScreenCTM();
                   return Math.min(...[...svg.querySelectorAll('text.counters')].map(
                     t => parseFloat(getComputedStyle(t).fontSize) * m.a)); }"""
    )
    assert smallest >= 12, smallest
    page.keyboard.press("End")
    page.wait_for_url(re.compile(r"/compare\?.*step=7$"))
    page.locator("a.present-toggle").click()
    page.wait_for_url(re.compile(r"/compare\?.*step=7&view=present$"))
    expect(page.locator("a.present-toggle")).to_have_text("Exit presentation")
    page.close()


@pytest.mark.parametrize("motion", ["no-preference", "reduce"])
def test_step_changes_animate_unless_less_motion_is_asked(
    browser: Browser, base_url: str, motion: str
) -> None:
    page = browser.new_page(base_url=base_url, reduced_motion=motion)  # type: ignore[arg-type]
    page.goto(preset_link(LEAK, "5.7", 5))
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"step=6$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("6")
    running = page.evaluate(
        """() => document.querySelector('#stage svg g.frame.at-risk').getAnimations().length"""
    )
    assert (running > 0) == (motion == "no-preference")
    page.close()


def test_embed_in_a_480_by_270_frame_shows_its_narration_whole(
    browser: Browser, base_url: str
) -> None:
    page = browser.new_page(
        base_url=base_url, viewport={"width": 480, "height": 270}, reduced_motion="reduce"
    )
    # The leak step: a verdict and the longest narration of the preset.
    page.goto(preset_link(LEAK, "5.7", 7, "/embed") + "&from=3&to=7")
    box = page.evaluate(
        """() => { const say = document.querySelector('.embed-say').getBoundingClientRect();
                   const open = document.querySelector('.embed-open').getBoundingClientRect();
                   const pic = document.querySelector('.picture svg').getBoundingClientRect();
                   const root = document.documentElement;
                   return {say: say.bottom, open: open.bottom, pic: pic.height, vh: innerHeight,
                           sw: root.scrollWidth, sh: root.scrollHeight}; }"""
    )
    # Nothing is cut off by the frame: the narration (scrolling in its own box when long) and
    # the link out end inside it, the picture keeps a visible height, nothing scrolls sideways.
    assert box["open"] <= box["vh"] and box["say"] <= box["vh"], box
    assert box["sh"] <= box["vh"] and box["sw"] <= 480, box
    assert box["pic"] >= 60, box
    page.close()
