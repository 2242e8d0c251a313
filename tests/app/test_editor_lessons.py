"""The editor's Run of a teacher's own lesson or a challenge: its `#policy`, step 0, the goal
and the editor at the top; a lesson's step answer keeps the page's scroll."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from app.http.routes.lessons import challenge_cards
from app.views.links import make_link
from engine.lessons import CHALLENGES, LESSONS
from tests.app.conftest import attr, first, html, hx

OWN_LESSON = (
    "#title My own lesson\n#policy 5.7\n#: The parent maps a page.\n"
    "P mmap a\nP write a x\nP fork C\n#? What does C read?\nC read a"
)
PLAIN = "P mmap a\nP write a x\nP read a"


def run_from_editor(client: TestClient, text: str, policy: str) -> str:
    """What the editor's form sends (the era the page showed rides along), as htmx does."""
    query = {"v": "1", "src": "editor", "policy": policy, "s": text}
    response = client.get("/", params=query, headers=hx("sim"))
    assert response.status_code == 200, response.text
    return response.headers["HX-Push-Url"]


def test_the_editors_run_opens_a_lesson_in_its_own_policy_at_step_0(client: TestClient) -> None:
    pushed = run_from_editor(client, OWN_LESSON, "6.15")
    query = parse_qs(urlsplit(pushed).query)
    assert query["policy"] == ["5.7"] and query["step"] == ["0"]
    page = html(client.get(pushed).text)
    assert first(page, ".lesson-era").text() == "5.7"
    assert attr(first(page, "#stepbar .stepbar"), "data-step") == "0"


def test_the_editors_run_of_a_plain_scenario_keeps_the_era_shown_and_the_last_step(
    client: TestClient,
) -> None:
    query = parse_qs(urlsplit(run_from_editor(client, PLAIN, "5.9")).query)
    assert query["policy"] == ["5.9"] and query["step"] == ["3"]


def test_a_challenge_opens_at_step_0_with_its_editor_beside_the_goal(client: TestClient) -> None:
    challenge = next(iter(CHALLENGES.values()))
    card = challenge_cards()[0]
    assert parse_qs(urlsplit(card.start).query)["step"] == ["0"]
    page = html(client.get(card.start).text)
    row = first(page, ".goal-row")
    assert row.css_first("section.goal") is not None
    assert first(row, "#scenario-text").text().strip() == challenge.start.strip()
    # One editor on the page, beside the goal rather than at the foot of the side column.
    assert len(page.css("#scenario-text")) == 1
    pushed = run_from_editor(client, challenge.start, "6.15")
    assert parse_qs(urlsplit(pushed).query)["step"] == ["0"]


def test_a_lesson_step_answered_for_the_whole_region_does_not_scroll_the_page(
    client: TestClient,
) -> None:
    response = client.get(make_link("/", LESSONS["dirty-cow"].text, step=2), headers=hx("stage"))
    assert response.headers["HX-Retarget"] == "#sim"
    assert response.headers["HX-Reswap"] == "innerHTML show:none"
