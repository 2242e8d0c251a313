"""Steps without a round trip (issue 23), in real chromium.

The offline file is opened from disk (file://) with every other request aborted, at the three
sizes a class uses: it steps with the keys, the buttons, the timeline and the player, asks its
question (predict, then reveal) and presents. On the server, a step from the page's deck is
painted with no request while the address bar, the share box, the era links, Back/Forward,
the timeline, the player and a lesson's question keep working. Expectations come from the
engine, not from the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from starlette.testclient import TestClient

from app.http.main import app
from app.views.links import make_link
from engine.lesson import ask
from engine.lessons import LESSONS
from engine.syntax import parse
from engine.trace import replay
from tests.app.conftest import preset_link
from tests.e2e.conftest import Watch

pytestmark = pytest.mark.e2e

AXE_JS = Path(
    os.environ.get("COWLAB_AXE_DIR", Path.home() / ".cache/cowlab/axe"),
    "node_modules/axe-core/axe.min.js",
)
SCREENSHOTS = os.environ.get("COWLAB_SCREENSHOTS")  # a directory to keep them in, if set
VIEWPORTS = {"desktop": (1920, 1080), "laptop": (1366, 768), "phone": (375, 812)}
LESSON = LESSONS["vmsplice-leak"]
LEAK = "cve-2020-29374"


def step_of(page: Page) -> int:
    return int(page.locator("#stepbar .stepbar").get_attribute("data-step") or "-1")


@pytest.fixture(scope="module")
def lesson_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with TestClient(app) as client:
        answer = client.get(make_link("/export.html", LESSON.text))
    assert answer.status_code == 200
    path = tmp_path_factory.mktemp("offline") / "lesson.html"
    path.write_bytes(answer.content)
    return path


class Offline:
    """A context whose every request but the file itself is aborted and recorded."""

    def __init__(self, browser: Browser, path: Path, size: tuple[int, int]) -> None:
        self.url = path.as_uri()
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context: BrowserContext = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, reduced_motion="reduce"
        )
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None,
        )

    def _route(self, route: Route) -> None:
        if route.request.url.split("#")[0] == self.url:
            route.continue_()
            return
        self.blocked.append(route.request.url)
        route.abort()


@pytest.fixture(params=list(VIEWPORTS))
def offline(
    request: pytest.FixtureRequest, browser: Browser, lesson_file: Path
) -> Iterator[Offline]:
    o = Offline(browser, lesson_file, VIEWPORTS[request.param])
    yield o
    o.context.close()
    assert o.blocked == [], o.blocked
    assert o.errors == [], o.errors


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def serious_violations(page: Page) -> list[Any]:
    page.add_script_tag(path=str(AXE_JS))
    results: dict[str, Any] = page.evaluate(
        """axe.run(document, {resultTypes: ['violations'], rules: {
             'target-size': {enabled: true},
             'label-content-name-mismatch': {enabled: true}}})"""
    )
    return [
        (v["id"], [n["target"] for n in v["nodes"][:3]])
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_the_offline_lesson_steps_asks_and_presents_from_disk(
    offline: Offline, request: pytest.FixtureRequest
) -> None:
    size = request.node.callspec.params["offline"]
    page = offline.page
    scenario = parse(LESSON.text)
    (question,) = scenario.annotations.questions
    asked = ask(scenario, {"5.7": replay(scenario, "5.7")})[0]
    answer = asked.answers["5.7"]
    wrong = next(c for c in asked.choices if c != answer)
    page.goto(offline.url)
    assert step_of(page) == 0
    expect(page.locator(".lesson-title")).to_have_text(LESSON.title)
    # The keys, then the buttons of the step bar.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert step_of(page) == 2
    assert page.url.endswith("#step=2")
    page.locator('#stepbar a[data-nav="next"]').click()
    assert step_of(page) == 3
    page.keyboard.press("ArrowLeft")
    assert step_of(page) == 2
    # The timeline, then Back.
    page.locator("#timeline button[name=step][value='4']").click()
    assert step_of(page) == 4
    expect(page.locator("#timeline li.current button")).to_have_attribute("value", "4")
    page.go_back()
    expect(page.locator("#stepbar .stepbar")).to_have_attribute("data-step", "2")
    # The player: one step at its fast speed, then paused.
    page.locator("#speed").select_option("700")
    page.locator("#player .play").click()
    expect(page.locator("#stepbar .stepbar")).to_have_attribute("data-step", "3")
    page.locator("#player .play").click()
    # The notes are there; the question's step shows the machine before the read.
    page.keyboard.press("End")
    assert step_of(page) == question.step == scenario.annotations.questions[-1].step
    expect(page.locator(".question .q-text")).to_contain_text(question.text)
    content = page.content()
    assert "q-answer" not in content and f"read → {answer}" not in page.inner_text("body")
    shot(page, f"offline-question-{size}")
    # Predict (a wrong pick), then the answer and the engine's why.
    key = page.locator(
        "#narration a.choice", has=page.locator(".choice-text", has_text=wrong)
    ).first.get_attribute("data-choice")
    assert key is not None
    page.keyboard.press(key)
    expect(page.locator(".q-result")).to_contain_text("Not under 5.7")
    expect(page.locator(".q-answer")).to_have_text(answer)
    expect(page.locator(".q-result")).to_be_focused()
    assert "#step=" in page.url and "answer=" in page.url
    shot(page, f"offline-answered-{size}")
    assert serious_violations(page) == []
    # Presentation mode, by its key and by its button.
    page.keyboard.press("p")
    expect(page.locator("body")).to_have_class(re.compile(r"\bpresent\b"))
    page.keyboard.press("Home")
    assert step_of(page) == 0
    shot(page, f"offline-present-{size}")
    if size != "phone":  # a phone hides the button with the rest of the header's tools
        page.locator('a[data-nav="present"]').click()
        assert "present" not in (page.locator("body").get_attribute("class") or "")
    # The page never scrolls sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_the_offline_file_opens_at_the_step_its_address_names(
    browser: Browser, lesson_file: Path
) -> None:
    o = Offline(browser, lesson_file, VIEWPORTS["laptop"])
    o.page.goto(o.url + "#step=3")
    assert step_of(o.page) == 3
    o.context.close()
    assert o.blocked == [] and o.errors == []


# ---- on the server


def requests_but_favicon(watch: Watch, since: int) -> list[str]:
    # Chromium asks for the icon again when the address changes; it is no part of the step.
    return [url for url in watch.requests[since:] if not url.endswith("/favicon.svg")]


def test_stepping_with_the_keys_paints_without_a_request(
    page: Page, base_url: str, watch: Watch
) -> None:
    page.goto(preset_link(LEAK, "5.7", 0))
    page.wait_for_load_state("networkidle")
    before = len(watch.requests)
    for k in range(1, 5):
        page.keyboard.press("ArrowRight")
        # Swapped in by the key press itself: the step is there without waiting.
        assert step_of(page) == k
    assert requests_but_favicon(watch, before) == []
    step4 = preset_link(LEAK, "5.7", 4)
    assert page.url == base_url + step4
    assert page.locator("#share-link").input_value() == base_url + step4
    era = page.locator('a.pol[data-era="6.2"]').get_attribute("href") or ""
    assert era.endswith("&policy=6.2&step=4")
    assert page.title().startswith("cowlab — step 4")
    page.go_back()
    expect(page.locator("#stepbar .stepbar")).to_have_attribute("data-step", "3")
    assert page.url.endswith("&step=3")
    page.go_forward()
    expect(page.locator("#stepbar .stepbar")).to_have_attribute("data-step", "4")
    page.locator("#timeline button[name=step][value='1']").click()
    assert step_of(page) == 1
    expect(page.locator("#timeline li.current button")).to_have_attribute("value", "1")
    page.locator("#speed").select_option("700")
    page.locator("#player .play").click()
    expect(page.locator("#stepbar .stepbar")).to_have_attribute("data-step", "2")
    page.locator("#player .play").click()
    assert page.locator("#scrub").input_value() == str(step_of(page))
    assert requests_but_favicon(watch, before) == []


def test_without_its_deck_a_page_still_steps_through_the_server(
    page: Page, base_url: str, watch: Watch
) -> None:
    page.route("**/steps?*", lambda route: route.abort())
    page.goto(preset_link(LEAK, "5.7", 2))
    page.wait_for_load_state("networkidle")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#stepbar .stepbar")).to_have_attribute("data-step", "3")
    assert page.url == base_url + preset_link(LEAK, "5.7", 3)
    # The aborted deck is the only failure: Watch would fail the test on any other.
    watch.errors[:] = [e for e in watch.errors if "ERR_FAILED" not in e]


def test_no_answer_reaches_the_page_before_the_reveal(
    page: Page, base_url: str, watch: Watch
) -> None:
    scenario = parse(LESSON.text)
    (question,) = scenario.annotations.questions
    answer = ask(scenario, {"5.7": replay(scenario, "5.7")})[0].answers["5.7"]
    page.goto(make_link("/", LESSON.text, step=question.step - 2))
    page.wait_for_load_state("networkidle")
    before = len(watch.requests)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert step_of(page) == question.step
    assert requests_but_favicon(watch, before) == []
    # Neither on screen nor held in the page's deck.
    held = page.evaluate(
        "Array.from(document.querySelectorAll('template')).map(t => t.innerHTML).join('')"
    )
    assert "q-answer" not in page.content() + held
    assert f"read → <strong>{answer}" not in page.content() + held
    # → shows the answer (from the server: the deck had none to give).
    page.keyboard.press("ArrowRight")
    expect(page.locator(".q-answer")).to_have_text(answer)
