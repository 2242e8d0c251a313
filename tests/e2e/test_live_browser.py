"""A live class in real chromium: a teacher, three students (one on a 375 px phone), a poll."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.live.broker import MemoryBroker
from tests.app.live_support import LINK, live_app, serving
from tests.e2e.conftest import Watch

pytestmark = pytest.mark.e2e

# Set to a folder (docs/) to keep the screenshots the docs show.
SCREENSHOTS = os.environ.get("COWLAB_LIVE_SCREENSHOTS")


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, MemoryBroker]]:
    """A server of its own: rooms other tests made in the shared app do not count here."""
    app, broker = live_app()
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}", broker


@pytest.fixture(scope="module")
def live_url(live: tuple[str, MemoryBroker]) -> str:
    return live[0]


def step_shown(page: Page, step: int) -> None:
    expect(page.locator("#live-view .stepbar")).to_have_attribute("data-step", str(step))


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    made = [
        # Reduced motion: the bars are drawn at their size, not caught growing.
        browser.new_context(viewport={"width": 1280, "height": 860}, reduced_motion="reduce"),
        browser.new_context(viewport={"width": 1024, "height": 768}, reduced_motion="reduce"),
        browser.new_context(viewport={"width": 1024, "height": 768}, reduced_motion="reduce"),
        browser.new_context(
            viewport={"width": 375, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            reduced_motion="reduce",
        ),
    ]
    yield made
    for context in made:
        context.close()


def test_a_class_follows_the_teacher_answers_a_poll_and_sees_the_reveal(
    contexts: list[BrowserContext], live_url: str
) -> None:
    server = live_url
    pages = [context.new_page() for context in contexts]
    watches = [Watch(page) for page in pages]
    teacher, ann, bob, phone = pages

    teacher.goto(server + LINK)
    teacher.locator("form.golive button").click()
    teacher.wait_for_url(f"{server}/live/*/teach")
    code = teacher.url.split("/")[-2]
    step_shown(teacher, 2)

    ann.goto(f"{server}/live")
    ann.locator("#live-code-input").fill(code.lower())
    ann.locator("#live-code-input").press("Enter")
    ann.wait_for_url(f"{server}/live/{code}")
    for student in (bob, phone):
        student.goto(f"{server}/live/{code}")
    for student in (ann, bob, phone):
        step_shown(student, 2)
        expect(student.locator("#live-mode")).to_have_text("Following the teacher")
        expect(student.locator("#live-detach")).to_be_visible()
        expect(student.locator("#live-rejoin")).to_be_hidden()
    expect(teacher.locator("#live-students")).to_have_text("3")

    # The teacher steps with the keyboard; the class follows, the address bar stays the room's.
    teacher.keyboard.press("ArrowRight")
    for page in pages:
        step_shown(page, 3)
    expect(teacher.locator("#live-open-poll")).to_be_disabled()  # step 3 forks: no read
    assert teacher.url.endswith(f"/live/{code}/teach")

    # Bob explores on his own: he steps back, the teacher goes on without him.
    bob.locator("#live-detach").click()
    expect(bob.locator("#live-mode")).to_have_text("Exploring on my own")
    expect(bob.locator("#live-detach")).to_be_hidden()
    bob.locator("#live-view a[data-nav=prev]").click()
    step_shown(bob, 2)
    teacher.locator("#live-view a[data-nav=next]").click()
    for page in (teacher, ann, phone):
        step_shown(page, 4)
    step_shown(bob, 2)
    bob.locator("#live-rejoin").click()
    step_shown(bob, 4)
    expect(bob.locator("#live-mode")).to_have_text("Following the teacher")

    # Step 4 is `C read a`: the teacher asks, three students answer, one changes her mind.
    expect(teacher.locator("#live-open-poll")).to_be_enabled()
    teacher.locator("#live-open-poll").click()
    for student in (ann, bob, phone):
        expect(student.locator("#live-poll-command")).to_have_text("C read a")
    ann.locator("#live-choices button", has_text="0").click()
    ann.locator("#live-choices button", has_text="x").click()
    bob.locator("#live-choices button", has_text="0").click()
    phone.locator("#live-choices button", has_text="x").click()
    expect(phone.locator("#live-choices button", has_text="x")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(teacher.locator("#live-answered")).to_have_text("3")
    counts = teacher.locator("#live-choices .choice-count")
    expect(counts).to_have_text(["1", "2"])
    # Students do not see the class's answers before the reveal.
    expect(phone.locator("#live-choices .bar").first).to_be_hidden()
    if SCREENSHOTS:
        teacher.screenshot(path=str(Path(SCREENSHOTS) / "live-poll.png"))

    teacher.locator("#live-reveal").click()
    for page in pages:
        expect(page.locator("#live-answer-value")).to_have_text("x")
        expect(page.locator("#live-choices .live-choice.answer")).to_have_attribute(
            "data-choice", "x"
        )
    expect(phone.locator("#live-why")).to_contain_text("C reads a")
    expect(teacher.locator("#live-reveal")).to_be_hidden()
    expect(phone.locator("#live-my-choice")).to_have_text(" · your answer: x")
    expect(phone.locator("#live-choices button").first).to_be_disabled()
    if SCREENSHOTS:
        phone.screenshot(path=str(Path(SCREENSHOTS) / "live-phone.png"))
    for watch in watches:
        assert not watch.errors, watch.errors
        assert all(url.startswith(server + "/") for url in watch.requests)


def test_the_projector_qr_code_decodes_to_the_join_link(page: Page, live_url: str) -> None:
    server = live_url
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(server + LINK)
    page.locator("form.golive button").click()
    page.wait_for_url(f"{server}/live/*/teach")
    code = page.url.split("/")[-2]
    page.goto(f"{server}/live/{code}/screen")
    expect(page.locator(".live-big-code")).to_have_text(code)
    png = page.locator("figure.live-qr svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [barcode.text for barcode in found] == [f"{server}/live/{code}"]
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "live-screen.png"))


def test_a_student_follows_the_teachers_view_era_and_edits(
    contexts: list[BrowserContext], live_url: str
) -> None:
    server = live_url
    teacher, student = contexts[0].new_page(), contexts[1].new_page()
    watches = [Watch(teacher), Watch(student)]
    teacher.goto(server + LINK)
    teacher.locator("form.golive button").click()
    teacher.wait_for_url(f"{server}/live/*/teach")
    student.goto(f"{server}/live/{teacher.url.split('/')[-2]}")
    step_shown(student, 2)

    teacher.keyboard.press("p")  # presentation mode, for the teacher's screen only
    expect(teacher.locator("body")).to_have_class(re.compile(r"\bpresent\b"))
    expect(student.locator("body")).not_to_have_class(re.compile(r"\bpresent\b"))
    teacher.keyboard.press("p")
    expect(teacher.locator("#live-present")).to_have_attribute("aria-pressed", "false")
    teacher.locator("[data-live-view=compare]").click()
    expect(student.locator("#live-view #compare")).to_be_visible()
    teacher.locator("[data-live-view=simulator]").click()
    step_shown(student, 2)
    # The era links and the scenario editor are the simulator's own; the room follows them.
    teacher.locator("#live-view a.pol", has_text="6.2").click()
    expect(student.locator("#live-view .now-policy")).to_have_text("6.2")
    teacher.locator("#live-view #scenario-text").fill("P mmap a\nP write a q\nP read a")
    teacher.locator("#live-view .editor button[type=submit]").click()
    step_shown(student, 3)
    expect(student.locator("#live-view .stepbar .command")).to_have_text("P read a")
    for watch in watches:
        assert not watch.errors, watch.errors


def test_when_the_room_ends_the_student_keeps_the_view_to_explore(
    page: Page, live: tuple[str, MemoryBroker], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.live import stream

    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.2)  # the stream checks the room this often
    server, broker = live
    answer = page.request.post(f"{server}/api/v1/live", data={"link": LINK})
    code = answer.json()["code"]
    page.goto(f"{server}/live/{code}")
    step_shown(page, 2)
    del broker.rooms[code]  # expired
    expect(page.locator("#live-mode")).to_contain_text("has ended")
    expect(page.locator("#live-detach")).to_be_hidden()
    page.locator("#live-view a[data-nav=next]").click()
    step_shown(page, 3)
