"""The room's pages as HTML: the teacher's controls for a lecture (another lesson in the same
room, the poll's countdown, its results as CSV, End session), none of them on a student's page,
and presentation mode kept from the page that went live."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from app.http.routes.lessons import lesson_cards
from tests.app.conftest import attr, first, html
from tests.app.live_support import LINK, live_app


@pytest.fixture
def client() -> TestClient:
    app, _broker = live_app()
    return TestClient(app)


def go_live(client: TestClient, link: str) -> str:
    """The page's Go live form; the teacher page's address."""
    answer = client.post("/live", data={"link": link}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_the_teachers_page_loads_another_lesson_counts_down_downloads_and_ends(
    client: TestClient,
) -> None:
    teach = go_live(client, LINK)
    code = teach.split("/")[2]
    page = html(client.get(teach).text)
    options = page.css("#live-load-lesson option")
    starts = [attr(o, "value") for o in options if o.attributes.get("value")]
    assert starts == [card.start for card in lesson_cards()]
    assert first(page, "#live-load-link").attributes.get("name") == "link"
    assert attr(first(page, "#live-csv"), "href") == f"/api/v1/live/{code}/poll.csv"
    seconds = [attr(o, "value") for o in page.css("#live-countdown-seconds option")]
    assert seconds == ["10", "20", "30", "60", "120"]
    assert first(page, "#live-countdown-start").text() == "Start the countdown"
    assert first(page, "#live-end").text() == "End session"
    # One live region in the room.
    assert [attr(n, "id") for n in page.css("[aria-live]")] == ["live-say"]


def test_a_students_page_has_none_of_the_teachers_controls(client: TestClient) -> None:
    code = go_live(client, LINK).split("/")[2]
    student = TestClient(client.app)
    page = html(student.get(f"/live/{code}").text)
    for control in ("#live-load", "#live-csv", "#live-end", "#live-countdown-start"):
        assert page.css_first(control) is None, control
    assert page.css_first("#live-choices") is not None
    assert page.css_first("#live-say") is not None


def test_going_live_from_presentation_mode_keeps_it(client: TestClient) -> None:
    teach = go_live(client, LINK + "&view=present")
    assert parse_qs(urlsplit(teach).query)["view"] == ["present"]
    page = html(client.get(teach).text)
    assert "present" in attr(first(page, "body"), "class").split()
    assert attr(first(page, "#live-present"), "aria-pressed") == "true"
    plain = html(client.get(go_live(client, LINK)).text)
    assert "present" not in attr(first(plain, "body"), "class").split()
