"""The lesson pages in-process (issue 12): every lesson and challenge opens, questions hide
their outcome until answered, goals are checked, and every route is bounded."""

from __future__ import annotations

import re
from urllib.parse import quote_plus

import pytest
from starlette.testclient import TestClient

from app.http.routes.lessons import MAX_HANDOUT_STEPS
from app.views.links import make_link
from engine.lesson import MAX_REPLAYED_COMMANDS, ask
from engine.lessons import CHALLENGES, LESSONS
from engine.quiz import quiz
from engine.syntax import parse
from tests.app.conftest import first, html, hx

DIRTY = LESSONS["dirty-cow"].text


def narration(body: str) -> str:
    node = html(body).css_first("#narration")
    assert node is not None
    return node.text()


def test_lessons_page_lists_every_lesson_and_each_opens(client: TestClient) -> None:
    page = html(client.get("/lessons").text)
    cards = page.css(".cards > li")
    assert [first(c, "h2").text().split(". ", 1)[1] for c in cards] == [
        lesson.title for lesson in LESSONS.values()
    ]
    for card, lesson in zip(cards, LESSONS.values(), strict=True):
        start = first(card, "a.primary").attributes["href"]
        assert start is not None
        opened = client.get(start)
        assert opened.status_code == 200
        panel = html(opened.text).css_first(".lesson")
        assert panel is not None
        assert lesson.title in panel.text()
        assert f"Step 0 of {len(parse(lesson.text).commands)}" in panel.text()


def test_a_note_sits_above_the_engines_narration(client: TestClient) -> None:
    body = client.get(make_link("/", DIRTY, step=5)).text
    note = parse(DIRTY).annotations.note(5)
    assert note is not None
    text = narration(body)
    assert note in text
    assert text.index(note) < text.index("attacker writes its private mapping")


def test_a_question_hides_the_reads_outcome_until_answered(client: TestClient) -> None:
    link = make_link("/", DIRTY, step=7)
    asked = html(client.get(link).text)
    said = first(asked, "#narration").text()
    assert "pwned" not in said.split("?", 1)[0]  # nothing before the choices names it
    assert [a.text().split(maxsplit=1)[1] for a in asked.css("a.choice")] == [
        "0",
        "root-data",
        "pwned",
    ]
    assert asked.css_first("#narration .observed") is None
    assert asked.css_first("#narration .lesson-note") is None
    assert "Step 6 of 7" in first(asked, "#stage svg > title").text()
    # The verdicts of the step (and later ones) are not on the side either.
    assert "step 7" not in first(asked, ".verdicts").text()
    answered = html(client.get(link + "&answer=root-data").text)
    result = first(answered, ".q-result").text()
    assert "✗ Not under 4.8" in result and "pwned" in result
    assert answered.css_first("#narration .observed") is not None
    assert "step 7" in first(answered, ".verdicts").text()
    # A pick that is not a choice (a hand-edited link) is no answer.
    forged = html(client.get(link + "&answer=nonsense").text)
    assert forged.css_first(".q-result") is None and forged.css("a.choice")


def test_the_answer_is_the_engines_under_each_era(client: TestClient) -> None:
    scenario = parse(DIRTY)
    (asked,) = (a for a in ask(scenario) if a.question.step == 7)
    for era in ("4.8", "5.7"):
        right = asked.answers[era]
        link = make_link("/", DIRTY, policy=era, step=7) + "&answer=" + quote_plus(right)
        assert "✓ Right" in narration(client.get(link).text)
    assert asked.answers["4.8"] != asked.answers["5.7"]


def test_era_links_keep_the_step_and_drop_the_answer(client: TestClient) -> None:
    page = html(client.get(make_link("/", DIRTY, step=7) + "&answer=pwned").text)
    nxt = first(page, "a[data-nav=era-next]").attributes["href"]
    assert nxt is not None
    assert "policy=5.7" in nxt and "step=7" in nxt and "answer" not in nxt
    assert page.css_first("a[data-nav=era-prev]") is None  # 4.8 is the first era


def test_a_step_request_of_a_lesson_with_questions_answers_the_whole_region(
    client: TestClient,
) -> None:
    response = client.get(make_link("/", DIRTY, step=6), headers=hx("stage"))
    assert response.headers["HX-Retarget"] == "#sim"
    assert 'hx-target="#narration"' in response.text
    # A preset has a title but no question: its steps stay stage-sized.
    plain = client.get(
        make_link("/", CHALLENGES["pipe-leak"].solution, step=3), headers=hx("stage")
    )
    assert "HX-Retarget" not in plain.headers


@pytest.mark.parametrize("name", list(CHALLENGES))
def test_every_challenge_starts_unmet_and_its_solution_meets_it(
    client: TestClient, name: str
) -> None:
    challenge = CHALLENGES[name]
    start = html(client.get(make_link("/", challenge.start)).text).css_first("section.goal")
    assert start is not None and "Goal not met yet" in start.text()
    done = html(client.get(make_link("/", challenge.solution)).text).css_first("section.goal")
    assert done is not None and "✓ Goal met" in done.text()
    assert not done.css("li.unmet")


def test_challenges_page_rises_and_hides_what_it_should(client: TestClient) -> None:
    page = html(client.get("/challenges").text)
    cards = page.css(".cards > li.card")
    assert len(cards) >= 10 and len(cards) == len(CHALLENGES)
    for card, challenge in zip(cards, CHALLENGES.values(), strict=True):
        assert challenge.brief in card.text()
        hints = card.css("details.hint")
        assert len(hints) == len(challenge.hints)
        # Each hint is nested in the one before it, and none is open.
        assert len(card.css("details.hint details.hint")) == len(hints) - 1
        assert all("open" not in h.attributes for h in hints)
        solution = card.css_first("details.solution")
        assert solution is not None and "open" not in solution.attributes


def test_a_goal_too_costly_for_a_page_is_refused_with_413(client: TestClient) -> None:
    commands = "\n".join(f"P mmap p{i}\nP write p{i}" for i in range(65))  # 130 commands
    eras = ["4.8", "5.7", "5.8", "5.9", "5.18", "5.19", "6.2", "6.15", "5.8-break-cow"]
    goal = "#goal " + " ".join(f"ok@{e}" for e in eras)
    # The page replays the era it shows anyway: the goal asks for eight more.
    assert 130 * (len(eras) - 1) > MAX_REPLAYED_COMMANDS
    response = client.get(make_link("/", f"{goal}\n{commands}"))
    assert response.status_code == 413
    assert "1,000" in response.text
    # Naming fewer eras fits.
    fits = client.get(make_link("/", f"#goal ok@6.2 ok@5.7\n{commands}"))
    assert fits.status_code == 200


def test_a_question_on_a_long_scenario_is_refused_with_413(client: TestClient) -> None:
    commands = "\n".join(f"P mmap p{i}\nP write p{i}" for i in range(65))
    text = f"{commands}\n#? what?\nP read p0"
    # Its choices and answers need every era: eight more replays of 131 commands.
    assert client.get(make_link("/", text, step=131)).status_code == 413
    # The steps without the question cost one replay.
    assert client.get(make_link("/", text, step=130)).status_code == 200


def test_quiz_is_the_same_for_everyone_and_scores(client: TestClient) -> None:
    once = client.get("/quiz?seed=41")
    assert once.status_code == 200
    assert once.text == client.get("/quiz?seed=41").text
    questions = quiz(41)
    picks = "&".join(f"q{q.number}={era}" for q in questions for era in q.answer)
    checked = html(client.get(f"/quiz?seed=41&check=1&{picks}").text)
    assert first(checked, ".score").text() == "Score: 10 / 10"
    one_wrong = "&".join(f"q{q.number}={era}" for q in questions[1:] for era in q.answer)
    checked = html(client.get(f"/quiz?seed=41&check=1&{one_wrong}").text)
    assert first(checked, ".score").text() == "Score: 9 / 10"


def test_quiz_without_a_seed_gets_one_and_a_bad_seed_is_explained(client: TestClient) -> None:
    fresh = client.get("/quiz", follow_redirects=False)
    assert fresh.status_code == 303
    assert re.fullmatch(r"/quiz\?seed=\d+", fresh.headers["location"])
    for seed in ("-3", "9" * 20, "x"):
        bad = client.get(f"/quiz?seed={seed}")
        assert bad.status_code == 400 and "seed" in bad.text


def test_handout_prints_every_step_and_answers_on_request(client: TestClient) -> None:
    scenario = parse(DIRTY)
    plain = html(client.get("/handout?lesson=dirty-cow").text)
    assert len(plain.css(".h-step")) == len(scenario.commands) + 1
    assert len(plain.css(".h-step svg")) == len(scenario.commands) + 1
    assert plain.css_first(".h-answers") is None
    worksheet = html(client.get("/handout?lesson=dirty-cow&answers=1").text)
    answers = worksheet.css_first(".h-answers")
    assert answers is not None
    assert len(answers.css(".h-q")) == len(scenario.annotations.questions)
    # A worksheet's question step shows no outcome: the answer is on the last page only.
    step7 = worksheet.css(".h-step")[7]
    assert "The read shows" not in step7.text()
    assert step7.css_first(".events") is None
    assert "The read shows <strong>pwned" in client.get("/handout?lesson=dirty-cow").text


def test_handout_of_a_link_and_its_limits(client: TestClient) -> None:
    text = CHALLENGES["pipe-leak"].solution
    response = client.get(make_link("/handout", text, policy="5.7"))
    assert response.status_code == 200 and "Under <strong>5.7</strong>" in response.text
    long = ";".join(f"P mmap p{i}" for i in range(MAX_HANDOUT_STEPS + 1))
    assert client.get(make_link("/handout", long)).status_code == 413
    assert client.get("/handout?lesson=nope").status_code == 404
    assert client.get(make_link("/handout", "P frobnicate")).status_code == 400


def test_first_visit_welcomes_and_a_link_does_not(client: TestClient) -> None:
    home = html(client.get("/").text)
    welcome = home.css_first("section.welcome")
    assert welcome is not None
    assert len(welcome.css("a.way")) == 4
    famous = [a.attributes["href"] for a in welcome.css("a.way") if "Open Dirty COW" in a.text()]
    opened = html(client.get(str(famous[0])).text)
    assert first(opened, ".policies a.current").text().strip() == "4.8"
    for link in ("/?v=1", make_link("/", "P mmap a")):
        assert html(client.get(link).text).css_first("section.welcome") is None


def test_a_teachers_text_is_escaped_everywhere_it_is_shown(client: TestClient) -> None:
    text = "#title <img src=x>\n#: <script>alert(1)</script>\nP mmap a\n#? <b>?</b>\nP read a"
    for link in (make_link("/", text, step=1), make_link("/handout", text) + "&answers=1"):
        body = client.get(link).text
        assert "<img src=x>" not in body and "<script>alert" not in body and "<b>?</b>" not in body
        assert "&lt;img src=x&gt;" in body


def test_an_empty_answer_reveals_without_judging(client: TestClient) -> None:
    link = make_link("/", DIRTY, step=7)
    asked = html(client.get(link).text)
    reveal = first(asked, "a[data-nav=reveal]").attributes["href"]
    assert reveal is not None and reveal.endswith("&policy=4.8&step=7&answer=")
    shown = html(client.get(str(reveal)).text)
    assert first(shown, ".q-result").text() == "Under 4.8 the read shows pwned."
    assert shown.css_first(".question.right, .question.wrong") is None
    assert shown.css_first("#narration .observed") is not None
    assert shown.css_first("a[data-nav=reveal]") is None
