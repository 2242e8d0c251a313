"""The visualizer in real chromium: links, buttons, keyboard, history, other pages, weight."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import Page, expect

from engine.policies import POLICIES
from tests.app.conftest import preset_link
from tests.e2e.conftest import Watch

pytestmark = pytest.mark.e2e

LEAK = "cve-2020-29374"  # seven steps; the last one leaks under 5.7


def step_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["step"]


def counter(page: Page) -> str:
    return page.locator("#stepbar .counter strong").inner_text()


def test_shared_link_opens_at_its_step(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    assert counter(page) == "3"
    expect(page.locator("#stage svg.diagram")).to_be_visible()
    expect(page.locator("#timeline li[aria-current=step]")).to_contain_text("P fork C")
    assert page.evaluate("htmx.version") == "4.0.1"


def test_clicking_an_action_swaps_the_region_and_pushes_the_link(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    page.locator(".actions button[value='C write data']").click()
    page.wait_for_url(re.compile(r"C\+write\+data&policy=5\.7&step=4$"))
    assert counter(page) == "4"
    expect(page.locator("#timeline form > ol > li")).to_have_count(5)
    # A fragment was swapped, not a page nested inside the page.
    assert page.locator("header.top").count() == 1
    assert page.locator("#sim #sim").count() == 0


def test_keyboard_user_keeps_the_focus_on_the_button_they_pressed(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    page.locator(".actions button[value='P read data']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"P\+read\+data&policy=5\.7&step=4$"))
    expect(page.locator(".actions button[value='P read data']")).to_be_focused()
    page.locator("a[data-nav=prev]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"step=3$"))
    expect(page.locator("a[data-nav=prev]")).to_be_focused()


def test_keyboard_steps_and_back_walks_the_history(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"step=4$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("4")
    # The step answer does not carry the timeline: the page moves its mark, to one step only.
    marked = page.locator("#timeline li[aria-current=step]")
    expect(marked).to_have_count(1)
    expect(marked.locator("button[name=step]")).to_have_attribute("value", "4")
    expect(page.locator("#timeline li.current")).to_have_count(1)
    # The tab and the history entry name the step shown, not the one the page was opened at.
    expect(page).to_have_title("cowlab — step 4 under 5.7")
    page.keyboard.press("End")
    page.wait_for_url(re.compile(r"step=7$"))
    expect(page.locator("#narration")).to_contain_text("leak")
    page.keyboard.press("Home")
    page.wait_for_url(re.compile(r"step=0$"))
    page.keyboard.press("PageDown")  # what a presentation clicker sends
    page.wait_for_url(re.compile(r"step=1$"))
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(r"step=0$"))

    page.go_back()
    page.wait_for_url(re.compile(r"step=1$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("1")
    expect(marked.locator("button[name=step]")).to_have_attribute("value", "1")
    page.go_back()
    page.wait_for_url(re.compile(r"step=0$"))
    page.go_back()
    page.wait_for_url(re.compile(r"step=7$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("7")
    page.go_forward()
    page.wait_for_url(re.compile(r"step=0$"))
    expect(page.locator("#stepbar .counter strong")).to_have_text("0")
    assert page.locator("header.top").count() == 1


def test_clicking_a_timeline_step_shows_it(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 7))
    page.locator("#timeline button[name=step][value='2']").click()
    page.wait_for_url(re.compile(r"policy=5\.7&step=2$"))
    expect(page.locator("#timeline li[aria-current=step]")).to_contain_text("P write data")
    expect(page.locator("#stepbar .counter strong")).to_have_text("2")


def test_arrow_keys_in_the_editor_edit_text_not_steps(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    page.locator("#scenario-text").click()
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(200)
    assert step_of(page.url) == "3"


def test_editing_the_scenario_runs_it_and_pushes_the_canonical_link(
    page: Page, watch: Watch
) -> None:
    page.goto("/?v=1&policy=5.7")
    page.locator("#scenario-text").fill("P mmap a\nP write a   hello\nP fork C\nC read a")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r"s=P\+mmap\+a;P\+write\+a\+hello;P\+fork\+C;C\+read\+a"))
    expect(page.locator("#narration")).to_contain_text("hello")


def test_a_syntax_error_is_shown_once_beside_the_editor_with_the_picture_kept(
    page: Page,
) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    before = page.url
    page.locator("#scenario-text").fill("P mmap a\nP frok C")
    page.locator(".editor button[type=submit]").click()
    problem = page.locator("#editor-error .problem")
    expect(problem).to_contain_text("syntax error in this scenario")
    expect(problem).to_contain_text("did you mean `fork`?")
    expect(page.locator(".problem")).to_have_count(1)
    expect(page.locator("#narration")).not_to_contain_text("syntax error")
    # The picture of the scenario that last ran stays, and so does its link.
    expect(page.locator("#stage svg.diagram")).to_be_visible()
    expect(page.locator("#stepbar .counter strong")).to_have_text("3")
    assert page.url == before
    expect(page.locator("#scenario-text")).to_have_value("P mmap a\nP frok C")
    problem.locator("a", has_text="up to the bad line").click()
    page.wait_for_url(re.compile(r"s=P\+mmap\+a&"))


def test_policy_switch_keeps_the_step(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 7))
    page.locator(".policies a", has_text="5.19").click()
    page.wait_for_url(re.compile(r"policy=5\.19&step=7$"))
    expect(page.locator(".verdicts")).to_contain_text("nothing went wrong")


def test_help_opens_with_question_mark(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 3))
    page.keyboard.press("?")
    expect(page.locator("dialog#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#help")).to_be_hidden()


def test_presentation_mode_hides_chrome_and_steps_with_a_clicker(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 2))
    page.keyboard.press("p")
    page.wait_for_url(re.compile(r"view=present$"))
    expect(page.locator(".actions")).to_be_hidden()
    expect(page.locator("#stage svg.diagram")).to_be_visible()
    page.keyboard.press("PageDown")
    page.wait_for_url(re.compile(r"step=3&view=present$"))


def test_compare_page_steps_in_place(page: Page, watch: Watch) -> None:
    first = preset_link(LEAK, path="/compare")
    page.goto(first)
    expect(page.locator(".divergence")).to_contain_text("step 4")
    expect(page.locator(".panel svg.diagram")).to_have_count(len(POLICIES))
    page.keyboard.press("Home")
    page.wait_for_url(re.compile(r"/compare\?.*step=0$"))
    expect(page.locator("#cmp-stage .counter strong")).to_have_text("0")
    expect(page).to_have_title("Compare eras — step 0 — cowlab")
    page.go_back()
    page.wait_for_url(re.compile(re.escape(first) + "$"))
    expect(page.locator("#cmp-stage .counter strong")).to_have_text("7")


def test_presets_grid_opens_a_run(page: Page, watch: Watch) -> None:
    page.goto("/presets")
    cell = page.locator("table.presets tbody tr", has_text="CVE-2020-29374").locator("td.cell a")
    expect(cell.nth(1)).to_contain_text("leak")
    cell.nth(1).click()
    page.wait_for_url(re.compile(r"policy=5\.7$"))
    expect(page.locator(".verdicts")).to_contain_text("leak")


def test_embed_steps_inside_its_frame(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7", 2, "/embed"))
    page.locator("a[data-nav=next]").click()
    page.wait_for_url(re.compile(r"/embed\?.*step=3$"))
    expect(page.locator(".stepbar .counter strong")).to_have_text("3")


def test_first_page_load_is_under_100_kb_and_stays_on_this_host(page: Page, watch: Watch) -> None:
    page.goto(preset_link(LEAK, "5.7"))
    page.wait_for_load_state("networkidle")
    sizes = page.evaluate(
        """() => [...performance.getEntriesByType('navigation'),
                  ...performance.getEntriesByType('resource')]
                 .map(e => [e.name, e.transferSize])"""
    )
    total = sum(size for _, size in sizes)
    assert 0 < total <= 100 * 1024, sizes
