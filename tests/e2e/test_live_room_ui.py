"""The room's pages in real chromium, one behaviour each: the projector's count, one question
UI (the lesson's `#?` box yields to the poll, digits vote, the reveal shows the read's
outcome), another lesson in the same room, presentation inside a room, the phone's picture and
the room's one live region. The whole lecture through nginx is test_live_lecture.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, FloatRect, Page, expect

from app.views.links import make_link
from engine.lessons import LESSONS
from tests.app.live_support import live_app, serving
from tests.e2e.conftest import Watch

pytestmark = pytest.mark.e2e

# Dirty COW: step 3 is `reader read f` with a `#?` question; before the read the page cache
# holds nothing of file F, after it the page-cache frame of F is mapped.
DIRTY_COW = LESSONS["dirty-cow"]
QUESTION_STEP = 3
OUTCOME_FRAME = "page cache F"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app, _broker = live_app()
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1366, "height": 768}, reduced_motion="reduce")
    yield made
    made.close()


def go_live(teacher: Page, server: str, link: str) -> str:
    """The teacher's page goes live from ``link``; the room's code."""
    teacher.goto(server + link)
    teacher.locator("form.golive button").click()
    teacher.wait_for_url(re.compile(r".*/live/\w+/teach(\?view=present)?$"))
    code = teacher.url.split("/live/")[1].split("/")[0]
    expect(teacher.locator("#live-view .stepbar")).to_be_visible()
    return code


def step_shown(page: Page, step: int) -> None:
    expect(page.locator("#live-view .stepbar")).to_have_attribute("data-step", str(step))


def step_to(teacher: Page, step: int) -> None:
    """The teacher presses → (a presentation clicker's key) until the view shows ``step``."""
    bar = teacher.locator("#live-view .stepbar")
    for _ in range(40):
        now = int(bar.get_attribute("data-step") or 0)
        if now == step:
            return
        teacher.keyboard.press("ArrowRight" if now < step else "ArrowLeft")
        expect(bar).not_to_have_attribute("data-step", str(now))
    raise AssertionError(f"the teacher's view never showed step {step}")


def picture_text(page: Page) -> str:
    return page.locator("#live-view figure.picture svg").text_content() or ""


def test_the_projector_join_screen_counts_the_students_as_they_join(
    browser: Browser, server: str, context: BrowserContext
) -> None:
    teacher = context.new_page()
    code = go_live(teacher, server, make_link("/", DIRTY_COW.text, step=0))
    screen = context.new_page()
    watch = Watch(screen)
    screen.goto(f"{server}/live/{code}/screen")
    expect(screen.locator("#live-students")).to_have_text("0")
    students = [browser.new_context() for _ in range(2)]
    try:
        for n, student in enumerate(students, start=1):
            student.new_page().goto(f"{server}/live/{code}")
            expect(screen.locator("#live-students")).to_have_text(str(n))
    finally:
        for student in students:
            student.close()
    assert not watch.errors, watch.errors


def test_in_a_lesson_room_digits_vote_in_the_poll_and_the_reveal_shows_the_reads_outcome(
    browser: Browser, server: str, context: BrowserContext
) -> None:
    teacher = context.new_page()
    code = go_live(teacher, server, make_link("/", DIRTY_COW.text, step=0))
    student_context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        student = student_context.new_page()
        watch = Watch(student)
        student.goto(f"{server}/live/{code}")
        step_shown(student, 0)
        step_to(teacher, QUESTION_STEP)
        step_shown(student, QUESTION_STEP)
        say = student.locator("#live-say")
        expect(say).to_contain_text(f"Step {QUESTION_STEP} of")
        # The lesson's own question yields to the poll: not shown, and its digits do nothing.
        expect(student.locator("#live-view .question")).to_be_hidden()
        assert OUTCOME_FRAME not in picture_text(student)  # the machine before the read
        student.keyboard.press("1")
        expect(student.locator("#live-panel")).not_to_have_class(re.compile(r"\bdetached\b"))
        assert student.url == f"{server}/live/{code}"

        teacher.locator("#live-open-poll").click()
        expect(student.locator("#live-poll")).to_be_visible()
        expect(say).to_contain_text("Poll: what will reader read f see")
        choices = student.locator("#live-choices button").all_text_contents()
        assert len(choices) >= 2, choices
        student.keyboard.press("2")  # the second choice, by its number
        expect(student.locator("#live-choices button").nth(1)).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(teacher.locator("#live-answered")).to_have_text("1")
        expect(teacher.locator("#live-choices .choice-count")).to_have_text(
            ["1" if i == 1 else "0" for i in range(len(choices))]
        )
        assert student.url == f"{server}/live/{code}"  # still in the room, not answering alone

        teacher.locator("#live-reveal").click()
        expect(student.locator("#live-answer")).to_be_visible()
        answer = student.locator("#live-answer-value").text_content()
        expect(say).to_contain_text(f"The answer: {answer}")
        # The reveal shows the read's outcome everywhere, and the lesson asks no more.
        for page in (student, teacher):
            expect(page.locator("#live-view figure.picture svg")).to_contain_text(OUTCOME_FRAME)
            expect(page.locator("#live-view .q-hidden")).to_have_count(0)
        step_shown(student, QUESTION_STEP)
        assert not watch.errors, watch.errors
    finally:
        student_context.close()


def test_the_teacher_shows_another_lesson_in_the_same_room_and_the_class_follows(
    browser: Browser, server: str, context: BrowserContext
) -> None:
    teacher = context.new_page()
    code = go_live(teacher, server, make_link("/", DIRTY_COW.text, step=0))
    student_context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    try:
        student = student_context.new_page()
        student.goto(f"{server}/live/{code}")
        expect(student.locator("#live-view .lesson-title")).to_have_text(DIRTY_COW.title)
        teacher.locator(".live-more summary").click()
        second = LESSONS["vmsplice-leak"]
        number = list(LESSONS).index("vmsplice-leak") + 1
        teacher.locator("#live-load-lesson").select_option(label=f"{number}. {second.title}")
        teacher.locator("#live-load button[type=submit]").click()
        for page in (teacher, student):
            expect(page.locator("#live-view .lesson-title")).to_have_text(second.title)
            step_shown(page, 0)
        assert teacher.url.split("/live/")[1].startswith(code)  # the same room
        assert student.url == f"{server}/live/{code}"
        # A pasted link goes the same way.
        teacher.locator(".live-more summary").click()
        teacher.locator("#live-load-link").fill(make_link("/", "P mmap a\nP read a", step=2))
        teacher.locator("#live-load button[type=submit]").click()
        expect(student.locator("#live-view .stepbar .command")).to_have_text("P read a")
    finally:
        student_context.close()


def boxes_overlap(a: FloatRect, b: FloatRect) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def in_view(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (selector, box, size)


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)], ids=["1080p", "1366"])
def test_presentation_in_a_room_keeps_picture_command_and_reveal_on_one_screen(
    browser: Browser, server: str, size: tuple[int, int]
) -> None:
    width, height = size
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        teacher = context.new_page()
        watch = Watch(teacher)
        # Going live from presentation mode keeps it.
        go_live(teacher, server, make_link("/", DIRTY_COW.text, step=0, view="present"))
        expect(teacher.locator("body")).to_have_class(re.compile(r"\bpresent\b"))
        expect(teacher.locator("#live-present")).to_have_attribute("aria-pressed", "true")
        help_box = teacher.locator(".help-open").bounding_box()
        for control in ("#live-open-poll", "#live-end", "#live-present"):
            box = teacher.locator(control).bounding_box()
            assert help_box and box and not boxes_overlap(help_box, box), control
        step_to(teacher, QUESTION_STEP)
        # Stepping scrolled nothing away: the step bar, its command and the picture's top.
        assert teacher.evaluate("scrollY") == 0
        in_view(teacher, "#live-view .stepbar .command")
        picture = teacher.locator("#live-view figure.picture").bounding_box()
        assert picture is not None and picture["y"] < height / 3, picture
        teacher.locator("#live-open-poll").click()
        expect(teacher.locator("#live-poll")).to_be_visible()
        teacher.locator("#live-reveal").click()
        expect(teacher.locator("#live-answer")).to_be_visible()
        expect(teacher.locator("#live-view figure.picture svg")).to_contain_text(OUTCOME_FRAME)
        for selector in ("#live-answer", "#live-poll-title", "#live-view .stepbar .command"):
            in_view(teacher, selector)
        svg = teacher.locator("#live-view figure.picture svg").bounding_box()
        assert svg is not None and svg["y"] + svg["height"] <= height + 1, svg
        assert not watch.errors, watch.errors
    finally:
        context.close()


def test_a_phone_in_the_room_starts_the_picture_at_what_changed(
    browser: Browser, server: str, context: BrowserContext
) -> None:
    teacher = context.new_page()
    # A fork then a write: the changed frame is the copy, drawn right of the first frame.
    code = go_live(
        teacher, server, make_link("/", "P mmap a\nP write a x\nP fork C\nC write a y", step=4)
    )
    phone_context = browser.new_context(
        viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True
    )
    try:
        phone = phone_context.new_page()
        phone.goto(f"{server}/live/{code}")
        step_shown(phone, 4)
        picture = phone.locator("#live-view figure.picture")
        expect(picture.locator(".live-scrolls")).to_be_visible()
        # The write copied the page: the new frame, right of the first one, is the decision.
        decided = picture.locator('svg g.frame[class*="decided-"]').first
        box, mark = picture.bounding_box(), decided.bounding_box()
        assert box and mark
        assert mark["x"] >= box["x"] and mark["x"] + mark["width"] <= box["x"] + box["width"]
        assert phone.evaluate("document.querySelector('#live-view figure.picture').scrollLeft") > 0
    finally:
        phone_context.close()


def test_a_poll_countdown_runs_on_every_page_and_closes_the_poll(
    browser: Browser, server: str, context: BrowserContext
) -> None:
    teacher = context.new_page()
    code = go_live(teacher, server, make_link("/", DIRTY_COW.text, step=QUESTION_STEP))
    student_context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    try:
        student = student_context.new_page()
        student.goto(f"{server}/live/{code}")
        step_shown(student, QUESTION_STEP)
        teacher.locator("#live-open-poll").click()
        expect(student.locator("#live-poll")).to_be_visible()
        teacher.locator("#live-countdown-seconds").select_option("10")
        teacher.locator("#live-countdown-start").click()
        for page in (teacher, student):
            expect(page.locator("#live-countdown")).to_contain_text(re.compile(r"closes in \d+ s"))
        expect(teacher.locator("#live-countdown-tools")).to_be_hidden()
        for page in (teacher, student):
            expect(page.locator("#live-countdown")).to_have_text(" · closed", timeout=20_000)
        expect(student.locator("#live-say")).to_have_text("The poll is closed.")
        expect(student.locator("#live-choices button").first).to_be_disabled()
        student.keyboard.press("1")  # too late: nothing counted
        expect(teacher.locator("#live-answered")).to_have_text("0")
        # The reveal still comes, and ends the countdown's line.
        teacher.locator("#live-reveal").click()
        expect(student.locator("#live-answer")).to_be_visible()
        expect(student.locator("#live-countdown")).to_have_text("")
    finally:
        student_context.close()


def test_the_teacher_ends_the_session_and_every_students_page_says_so(
    browser: Browser, server: str, context: BrowserContext
) -> None:
    teacher = context.new_page()
    code = go_live(teacher, server, make_link("/", DIRTY_COW.text, step=1))
    students = [browser.new_context() for _ in range(2)]
    try:
        pages = [s.new_page() for s in students]
        for page in pages:
            page.goto(f"{server}/live/{code}")
            step_shown(page, 1)
        teacher.once("dialog", lambda dialog: dialog.accept())
        teacher.locator("#live-end").click()
        expect(teacher.locator("#live-mode")).to_contain_text("You ended this live session")
        expect(teacher.locator("#live-end")).to_be_hidden()
        for page in pages:
            expect(page.locator("#live-mode")).to_contain_text("ended")
            expect(page.locator("#live-say")).to_contain_text("ended")
            expect(page.locator("#live-detach")).to_be_hidden()
        # The code is gone: joining it again says so.
        pages[0].goto(f"{server}/live?code={code}")
        expect(pages[0].locator("#live-join-error")).to_be_visible()
    finally:
        for student in students:
            student.close()
