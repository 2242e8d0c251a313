"""A 50-minute lecture, end to end, as a class server runs it: the nginx `cowlab deploy nginx`
writes, two workers and Redis (DESIGN.md §9), a teacher presenting at 1920×1080 and three
students (a phone at 375×812, a laptop at 1366×768, one who uses only the keyboard).

Go live from a lesson, join by code, follow, a poll answered with digits under a countdown, the
reveal, a second lesson in the same room, a worker killed mid-class (the class follows again),
the poll results as CSV, the session ended; axe on every live page at each stage. Every wait
is for a condition on the page, with room for a loaded two-core machine."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.deploy import run
from app.deploy.nginx import NginxSettings
from app.http.routes.lessons import lesson_cards
from app.live.loopback import RedisServer, Worker, free_port, restartable_redis, workers
from engine.lessons import LESSONS
from tests.e2e.test_axe import AXE_JS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is missing"),
    pytest.mark.skipif(not AXE_JS.exists(), reason=f"axe-core is not installed at {AXE_JS}"),
]

# Events cross nginx, a worker, Redis and another worker: generous on a loaded machine.
FOLLOW_MS = 20_000
FIRST, SECOND = LESSONS["dirty-cow"], LESSONS["vmsplice-leak"]
QUESTION_STEP = 3  # `reader read f`, a `#?` question of the first lesson
OUTCOME_FRAME = "page cache F"  # drawn once the read has happened


@dataclass
class Hall:
    base: str
    workers: tuple[Worker, ...]
    redis: RedisServer


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[Hall]:
    """A class server of its own for each test: each one kills a part of it."""
    try:
        run.binary()
    except run.NginxMissing as err:
        pytest.skip(f"{err}; scripts/test installs it")
    with (
        restartable_redis() as redis,
        workers(Worker(free_port(), redis.url), Worker(free_port(), redis.url)) as pair,
    ):
        settings = NginxSettings(upstreams=tuple(f"127.0.0.1:{w.port}" for w in pair))
        with run.running(settings, tmp_path / "nginx") as nginx:
            yield Hall(nginx.base, pair, redis)


@dataclass
class Person:
    name: str
    page: Page
    errors: list[str]


def person(browser: Browser, name: str, **options: Any) -> tuple[BrowserContext, Person]:
    # bypass_csp: axe goes in as a script tag, which the pages' CSP rightly refuses.
    context = browser.new_context(reduced_motion="reduce", bypass_csp=True, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{name}: {exc}"))
    return context, Person(name, page, errors)


def serious_violations(page: Page) -> list[Any]:
    page.add_script_tag(path=str(AXE_JS))
    results: dict[str, Any] = page.evaluate(
        """axe.run(document, {resultTypes: ['violations'], rules: {
             'target-size': {enabled: true},
             'label-content-name-mismatch': {enabled: true}}})"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def axe_clean(*pages: Page) -> None:
    for page in pages:
        assert serious_violations(page) == [], page.url


def step_shown(page: Page, step: int) -> None:
    expect(page.locator("#live-view .stepbar")).to_have_attribute(
        "data-step", str(step), timeout=FOLLOW_MS
    )


def step_to(teacher: Page, step: int) -> None:
    """The teacher presses → (what a presentation clicker sends) until the view shows ``step``."""
    bar = teacher.locator("#live-view .stepbar")
    for _ in range(40):
        now = int(bar.get_attribute("data-step") or 0)
        if now == step:
            return
        teacher.keyboard.press("ArrowRight" if now < step else "ArrowLeft")
        expect(bar).not_to_have_attribute("data-step", str(now), timeout=FOLLOW_MS)
    raise AssertionError(f"the teacher's view never showed step {step}")


def in_view(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (selector, box)


def join_with_the_keyboard(page: Page, base: str, code: str) -> None:
    page.goto(base + "/live")
    for _ in range(40):
        if page.evaluate("document.activeElement.id") == "live-code-input":
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the room code's box")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/live/{code}")


def test_a_lecture_through_nginx_with_two_workers_redis_a_killed_worker_and_an_end(
    browser: Browser, hall: Hall
) -> None:
    base = hall.base
    contexts: list[BrowserContext] = []
    try:
        made, teacher = person(browser, "teacher", viewport={"width": 1920, "height": 1080})
        contexts.append(made)
        made, phone = person(
            browser,
            "phone",
            viewport={"width": 375, "height": 812},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
        )
        contexts.append(made)
        made, laptop = person(browser, "laptop", viewport={"width": 1366, "height": 768})
        contexts.append(made)
        made, keys = person(browser, "keyboard", viewport={"width": 1366, "height": 768})
        contexts.append(made)
        students = (phone, laptop, keys)
        everyone = (teacher, *students)
        t = teacher.page

        # --- go live from the lesson, presenting, under the lesson's own era ----------------
        start = next(c.present for c in lesson_cards() if c.title == FIRST.title)
        t.goto(base + start)
        t.locator("form.golive button").click()
        t.wait_for_url(re.compile(re.escape(base) + r"/live/\w+/teach\?view=present$"))
        code = t.url.split("/live/")[1].split("/")[0]
        expect(t.locator("body")).to_have_class(re.compile(r"\bpresent\b"))
        expect(t.locator("#live-view .lesson-era")).to_have_text(FIRST.policy)
        join_link = t.locator(".live-join a").get_attribute("href")
        assert join_link == f"{base}/live/{code}", join_link  # host and port kept through nginx

        # --- the projector's join screen counts the class as it comes in --------------------
        screen = t.context.new_page()
        screen.on("pageerror", lambda exc: teacher.errors.append(f"screen: {exc}"))
        screen.goto(f"{base}/live/{code}/screen")
        expect(screen.locator("#live-students")).to_have_text("0")
        phone.page.goto(base + "/live")
        phone.page.locator("#live-code-input").fill(code.lower())
        phone.page.locator("#live-code-input").press("Enter")
        phone.page.wait_for_url(f"{base}/live/{code}")
        laptop.page.goto(join_link)
        join_with_the_keyboard(keys.page, base, code)
        expect(screen.locator("#live-students")).to_have_text("3", timeout=FOLLOW_MS)
        expect(t.locator("#live-students")).to_have_text("3", timeout=FOLLOW_MS)
        for student in students:
            step_shown(student.page, 0)
            expect(student.page.locator("#live-view .lesson-era")).to_have_text(FIRST.policy)
        axe_clean(screen, t, *(s.page for s in students))

        # --- follow to the question; the lesson's own question yields to the poll -----------
        step_to(t, QUESTION_STEP)
        assert t.evaluate("scrollY") == 0
        in_view(t, "#live-view .stepbar .command")
        for student in students:
            step_shown(student.page, QUESTION_STEP)
            expect(student.page.locator("#live-view .question")).to_be_hidden()
        assert OUTCOME_FRAME not in (phone.page.locator("#live-view svg").text_content() or "")

        # --- the poll: a tap, a click, a digit; a countdown the teacher starts --------------
        t.locator("#live-open-poll").click()
        for student in students:
            expect(student.page.locator("#live-poll")).to_be_visible(timeout=FOLLOW_MS)
        choices = keys.page.locator("#live-choices button").all_text_contents()
        answer = "root-data"
        assert answer in choices and "0" in choices, choices
        phone.page.locator("#live-choices button", has_text="0").tap()
        laptop.page.locator("#live-choices button", has_text=answer).click()
        keys.page.keyboard.press(str(choices.index(answer) + 1))
        expect(keys.page.locator("#live-my-choice")).to_contain_text(f"your answer: {answer}")
        assert keys.page.url == f"{base}/live/{code}"  # the digit voted; it did not leave
        expect(t.locator("#live-answered")).to_have_text("3", timeout=FOLLOW_MS)
        t.locator("#live-countdown-seconds").select_option("60")
        t.locator("#live-countdown-start").click()
        for someone in everyone:
            expect(someone.page.locator("#live-countdown")).to_contain_text(
                "closes in", timeout=FOLLOW_MS
            )
        in_view(t, "#live-poll-title")
        axe_clean(t, *(s.page for s in students))

        # --- the reveal: the engine's answer, and the picture after the read ----------------
        t.locator("#live-reveal").click()
        for someone in everyone:
            page = someone.page
            expect(page.locator("#live-answer-value")).to_have_text(answer, timeout=FOLLOW_MS)
            expect(page.locator("#live-view figure.picture svg")).to_contain_text(
                OUTCOME_FRAME, timeout=FOLLOW_MS
            )
        expect(keys.page.locator("#live-say")).to_contain_text(f"The answer: {answer}")
        in_view(t, "#live-answer")
        in_view(t, "#live-view .stepbar .command")
        axe_clean(t, *(s.page for s in students))
        results = t.request.get(base + (t.locator("#live-csv").get_attribute("href") or ""))
        assert results.status == 200 and "text/csv" in results.headers["content-type"]
        rows = [line.split(",") for line in results.text().splitlines()]
        votes = {row[4]: row[5] for row in rows[1:] if row[0] == "1"}
        assert votes["0"] == "1" and votes[answer] == "2", rows

        # --- a second lesson in the same room ------------------------------------------------
        t.locator(".live-more summary").click()
        number = list(LESSONS).index("vmsplice-leak") + 1
        t.locator("#live-load-lesson").select_option(label=f"{number}. {SECOND.title}")
        t.locator("#live-load button[type=submit]").click()
        for someone in everyone:
            page = someone.page
            expect(page.locator("#live-view .lesson-title")).to_have_text(
                SECOND.title, timeout=FOLLOW_MS
            )
            expect(page.locator("#live-view .lesson-era")).to_have_text(SECOND.policy)
        assert all(s.page.url == f"{base}/live/{code}" for s in students)

        # --- a worker is killed mid-class: the class follows the next step ------------------
        hall.workers[0].kill()
        step_to(t, 2)
        for student in students:
            step_shown(student.page, 2)
        # The dead worker's seats stop counting; the teacher's page re-reads the count.
        expect(t.locator("#live-students")).to_have_text("3", timeout=2 * FOLLOW_MS)

        # --- the end ---------------------------------------------------------------------------
        t.once("dialog", lambda dialog: dialog.accept())
        t.locator("#live-end").click()
        expect(t.locator("#live-mode")).to_contain_text("You ended this live session")
        for student in students:
            expect(student.page.locator("#live-mode")).to_contain_text("ended", timeout=FOLLOW_MS)
        axe_clean(t, *(s.page for s in students))
        errors = [e for p in everyone for e in p.errors]
        assert errors == [], errors
    finally:
        for context in contexts:
            context.close()


def test_redis_crashing_mid_lecture_loses_nothing_the_teacher_did(
    browser: Browser, hall: Hall
) -> None:
    base = hall.base
    contexts: list[BrowserContext] = []
    try:
        made, teacher = person(browser, "teacher", viewport={"width": 1366, "height": 768})
        contexts.append(made)
        made, phone = person(
            browser, "phone", viewport={"width": 375, "height": 812}, is_mobile=True
        )
        contexts.append(made)
        t = teacher.page
        t.goto(base + next(c.start for c in lesson_cards() if c.title == FIRST.title))
        t.locator("form.golive button").click()
        t.wait_for_url(re.compile(re.escape(base) + r"/live/\w+/teach$"))
        code = t.url.split("/live/")[1].split("/")[0]
        phone.page.goto(f"{base}/live/{code}")
        step_shown(phone.page, 0)
        step_to(t, QUESTION_STEP)
        step_shown(phone.page, QUESTION_STEP)

        hall.redis.kill()
        # The teacher steps on while the store is down: refused for now, and said so.
        t.keyboard.press("ArrowRight")
        expect(t.locator("#live-error")).to_be_visible(timeout=FOLLOW_MS)
        step_shown(phone.page, QUESTION_STEP)
        hall.redis.start()  # the same port, empty: nothing was saved

        # The room comes back, and the step the teacher took reaches the class by itself.
        step_shown(phone.page, QUESTION_STEP + 1)
        expect(t.locator("#live-error")).to_be_hidden(timeout=FOLLOW_MS)
        expect(phone.page.locator("#live-mode")).to_have_text(
            "Following the teacher", timeout=FOLLOW_MS
        )
        # And the lecture goes on: a poll, a digit, a reveal.
        step_to(t, QUESTION_STEP)
        step_shown(phone.page, QUESTION_STEP)
        t.locator("#live-open-poll").click()
        expect(phone.page.locator("#live-poll")).to_be_visible(timeout=FOLLOW_MS)
        phone.page.keyboard.press("2")
        expect(t.locator("#live-answered")).to_have_text("1", timeout=FOLLOW_MS)
        t.locator("#live-reveal").click()
        expect(phone.page.locator("#live-view figure.picture svg")).to_contain_text(
            OUTCOME_FRAME, timeout=FOLLOW_MS
        )
        errors = [e for p in (teacher, phone) for e in p.errors]
        assert errors == [], errors
    finally:
        for context in contexts:
            context.close()
