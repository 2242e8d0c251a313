"""Steps without a round trip (issue 23): the step deck a page holds (`/steps`), the offline
file (`/export.html`, `cowlab export html`), and their bounds. What a browser does with them is
in tests/e2e/test_offline_browser.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode
from starlette.testclient import TestClient

from app.cli.main import main as cli_main
from app.views.deck import (
    DECK_MAX_BYTES,
    OFFLINE_MAX_STEPS,
    STEP_WINDOW,
    deck_span,
    seal,
    unseal,
)
from app.views.links import make_link
from engine.lesson import ask
from engine.lessons import LESSONS
from engine.presets import PRESETS
from engine.syntax import parse
from engine.trace import replay
from tests.app.conftest import attr, first, html, hx, preset_link

LEAK = "cve-2020-29374"
LEAK_STEPS = len(parse(PRESETS[LEAK].text).commands)


def inner(template: LexborNode) -> str:
    """A ``<template>``'s content as the parser serializes it."""
    whole = template.html or ""
    return whole[whole.index(">") + 1 : -len("</template>")]


def as_parsed(body: str) -> str:
    """``body`` serialized as a template's content, to compare with a deck entry."""
    return inner(first(LexborHTMLParser(f"<template>{body}</template>"), "template"))


def templates(page: LexborHTMLParser | LexborNode) -> list[LexborNode]:
    return list(page.css("template[data-push]"))


# ---- which steps a deck holds


def test_a_deck_holds_the_window_around_the_step_nearest_first() -> None:
    span = deck_span(20, 100, (), revealed=False, window=3)
    assert (span.lo, span.hi, span.more_before, span.more_after) == (17, 23, True, True)
    assert list(span.nearest_first()) == [20, 21, 19, 22, 18, 23, 17]


def test_a_deck_at_the_ends_says_there_is_nothing_more() -> None:
    span = deck_span(1, 4, (), revealed=False, window=STEP_WINDOW)
    assert (span.lo, span.hi, span.more_before, span.more_after) == (0, 4, False, False)


def test_a_deck_stops_at_the_next_unanswered_question() -> None:
    span = deck_span(2, 30, (5, 9), revealed=False, window=12)
    assert (span.hi, span.more_after) == (5, False)
    at_question = deck_span(5, 30, (5, 9), revealed=False, window=12)
    assert at_question.hi == 5
    answered = deck_span(5, 30, (5, 9), revealed=True, window=12)
    assert answered.hi == 9


def test_seal_is_not_markup_and_unseals_to_the_same_text() -> None:
    markup = '<p class="q-result">Under 5.7 the read shows <strong>THIS-IS-SECRET</strong>.</p>'
    sealed = seal(markup)
    assert "<" not in sealed and "SECRET" not in sealed
    assert unseal(sealed) == markup


# ---- /steps


def test_each_step_of_the_deck_is_what_a_step_request_answers(client: TestClient) -> None:
    link = preset_link(LEAK, "5.7", 3)
    deck = html(client.get(link.replace("/?", "/steps?", 1)).text)
    held = templates(deck)
    steps = [int(attr(t, "data-step")) for t in held]
    assert steps == list(range(LEAK_STEPS + 1))  # the whole preset, within the window
    for t in held:
        k = int(attr(t, "data-step"))
        answer = client.get(preset_link(LEAK, "5.7", k), headers=hx("stage"))
        assert attr(t, "data-push") == answer.headers["HX-Push-Url"]
        assert attr(t, "data-target") == "stage"
        assert inner(t) == as_parsed(answer.text)


def test_a_long_scenario_s_deck_is_a_window_and_says_more_follows(client: TestClient) -> None:
    text = "\n".join(["P mmap a"] + [f"P write a v{i}" for i in range(60)])
    link = make_link("/steps", text, policy="6.2", step=30)
    box = first(html(client.get(link).text), ".step-deck")
    assert (attr(box, "data-lo"), attr(box, "data-hi")) == (
        str(30 - STEP_WINDOW),
        str(30 + STEP_WINDOW),
    )
    assert "data-more-before" in box.attributes and "data-more-after" in box.attributes
    assert len(client.get(link).content) <= DECK_MAX_BYTES + 4096


def test_no_outcome_of_an_unanswered_question_reaches_the_deck(client: TestClient) -> None:
    lesson = LESSONS["vmsplice-leak"]
    scenario = parse(lesson.text)
    (question,) = scenario.annotations.questions
    before = make_link("/steps", lesson.text, step=question.step - 2)
    held = templates(html(client.get(before).text))
    assert max(int(attr(t, "data-step")) for t in held) == question.step
    # The question's own step is the machine before the read: its answer appears nowhere.
    answer = ask(scenario, {"5.7": replay(scenario, "5.7")})[0].answers["5.7"]
    at_question = next(t for t in held if attr(t, "data-step") == str(question.step))
    assert "q-answer" not in inner(at_question)
    assert f"read → <strong>{answer}" not in inner(at_question)
    # Answered, the link's deck goes on past it (here to the end of the lesson).
    revealed = make_link("/steps", lesson.text, step=question.step) + "&answer="
    assert question.step - 1 in {
        int(attr(t, "data-step")) for t in templates(html(client.get(revealed).text))
    }
    made_up = make_link("/steps", lesson.text, step=question.step) + "&answer=nonsense"
    steps = {int(attr(t, "data-step")) for t in templates(html(client.get(made_up).text))}
    assert max(steps) == question.step


def test_a_bad_link_s_deck_is_a_page_that_says_why(client: TestClient) -> None:
    answer = client.get("/steps?v=1&s=P+rd+a")
    assert answer.status_code == 400
    assert "rd" in answer.text


# ---- the offline file


def test_the_page_offers_its_offline_file_at_its_step(client: TestClient) -> None:
    page = html(client.get(preset_link(LEAK, "5.7", 4)).text)
    link = first(page, "a.offline-link")
    assert attr(link, "href") == preset_link(LEAK, "5.7", 4, "/export.html")
    assert "download" in link.attributes


def test_the_offline_file_asks_no_server(client: TestClient) -> None:
    answer = client.get(preset_link(LEAK, "5.7", None, "/export.html"))
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    page = html(answer.text)
    assert page.css("[src]") == []  # every script inline
    assert page.css("link[rel=stylesheet]") == []
    assert all(attr(link, "href").startswith("data:") for link in page.css("link"))
    # No form or link in it goes to the server: the timeline's buttons are steps of the deck,
    # the help closes itself, and no link but step links (`/?…`) names a path.
    forms = page.css("form")
    timeline = page.css("#timeline form")
    assert len(timeline) == 1
    assert [f.attributes.get("method") for f in forms if f not in timeline] == ["dialog"]
    server_links = [
        attr(a, "href")
        for a in page.css("a[href]")
        if attr(a, "href").startswith("/") and not attr(a, "href").startswith("/?")
    ]
    assert server_links == []
    for absent in ("section.actions", "section.editor", "ul.policies", ".realcode", "form.golive"):
        assert page.css(absent) == [], absent
    held = templates(first(page, "#step-deck"))
    assert sorted(int(attr(t, "data-step")) for t in held) == list(range(LEAK_STEPS + 1))
    assert first(page, ".stepbar").attributes["data-step"] == "0"  # a download starts at 0


def test_the_offline_file_carries_a_lesson_s_answers_sealed(client: TestClient) -> None:
    lesson = LESSONS["vmsplice-leak"]
    scenario = parse(lesson.text)
    (question,) = scenario.annotations.questions
    text = client.get(make_link("/export.html", lesson.text)).text
    page = html(text)
    assert "q-answer" not in text  # no answer as markup anywhere, sealed or shown
    held = templates(first(page, "#step-deck"))
    answers = [t for t in held if "data-plain" not in t.attributes]
    asked = ask(scenario, {"5.7": replay(scenario, "5.7")})[0]
    assert {attr(t, "data-hash") for t in answers} == {
        f"step={question.step}&answer={pick}" for pick in ("", *asked.choices)
    }
    shown = unseal(
        attr(next(t for t in answers if attr(t, "data-hash").endswith("=")), "data-sealed")
    )
    result = first(LexborHTMLParser(shown), ".q-answer")
    assert result.text() == asked.answers["5.7"]


def test_a_scenario_over_the_offline_step_limit_is_refused_with_a_reason(
    client: TestClient,
) -> None:
    text = "\n".join(["P mmap a"] + [f"P write a v{i}" for i in range(OFFLINE_MAX_STEPS)])
    answer = client.get(make_link("/export.html", text, policy="6.2"))
    assert answer.status_code == 413
    assert f"at most {OFFLINE_MAX_STEPS}" in answer.text


def test_the_cli_writes_the_file_the_server_downloads(
    client: TestClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["export", "html", "--preset", LEAK, "--policy", "5.7"]) == 0
    written = capsys.readouterr().out
    downloaded = client.get(preset_link(LEAK, "5.7", 0, "/export.html")).text
    # The same steps; only the header's link back to the server differs (the CLI has none).
    assert [inner(t) for t in templates(html(written))] == [
        inner(t) for t in templates(html(downloaded))
    ]
    assert html(written).css(".offline-note a") == []
    path = tmp_path / "bad.txt"
    path.write_text("P mmap a\nP rd a\n")
    assert cli_main(["export", "html", str(path)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert cli_main(["export", "html", "--preset", LEAK, "--step", "99"]) == 2
    assert "--step" in capsys.readouterr().err
