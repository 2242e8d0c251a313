"""Questions, goals and the quiz, computed by the engine (DESIGN.md §8, issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.lesson import (
    SIGSEGV,
    GoalResult,
    TermResult,
    answer,
    ask,
    evaluate_goal,
    goal_to_json,
)
from engine.policies import POLICIES
from engine.quiz import QUIZ_LENGTH, quiz
from engine.syntax import parse
from engine.trace import replay

ROOT = Path(__file__).resolve().parents[2]

CVE = """\
P mmap a
P write a old
P fork C
C vmsplice a as pipe
C munmap a
P write a secret
#? What does the pipe show?
pipe read
"""


def test_choices_are_the_values_written_to_the_page_and_zero_the_same_for_every_era() -> None:
    (asked,) = ask(parse(CVE))
    assert asked.choices == ("0", "old", "secret")
    # CVE-2020-29374: the parent's write reuses the page the pipe holds up to 5.7 (mapcount 1);
    # 5.8 breaks COW at vmsplice time (17839856fd58), 5.9 never reuses a referenced page.
    assert asked.answers == {p: ("secret" if p in ("4.8", "5.7") else "old") for p in POLICIES}


def test_the_answer_is_what_the_read_observes_under_the_era_viewed() -> None:
    scenario = parse(CVE)
    (question,) = scenario.annotations.questions
    assert answer(replay(scenario, "5.7"), question) == "secret"
    assert answer(replay(scenario, "5.9"), question) == "old"


def test_a_write_without_a_value_offers_the_name_the_engine_gives_it() -> None:
    (asked,) = ask(parse("P mmap a\nP write a\nP fork C\nC write a\n#? q\nP read a"))
    assert asked.choices == ("0", "P:2", "C:4")
    assert set(asked.answers.values()) == {"P:2"}


def test_a_read_that_faults_offers_sigsegv() -> None:
    (asked,) = ask(parse("P mmap a\nP write a v\nP munmap a\n#? q\nP read a"))
    assert asked.choices == ("0", "v", SIGSEGV)
    assert set(asked.answers.values()) == {SIGSEGV}


def test_a_read_that_cannot_fault_does_not_offer_sigsegv() -> None:
    (asked,) = ask(parse("P mmap a\nP write a v\n#? q\nP read a"))
    assert SIGSEGV not in asked.choices


def test_a_device_write_and_a_file_value_are_choices_of_a_reference_read() -> None:
    text = (
        "file F data\nP mmap f file=F\nP read f\nP pin f rw longterm as dma\n"
        "dma write from-device\n#? q\ndma read"
    )
    (asked,) = ask(parse(text))
    assert asked.choices[:3] == ("0", "data", "from-device")


def test_writes_to_other_pages_are_not_choices() -> None:
    (asked,) = ask(parse("P mmap a b\nP write b other\nP write a mine\n#? q\nP read a"))
    assert asked.choices == ("0", "mine")


def test_given_traces_are_used_and_missing_eras_replayed() -> None:
    scenario = parse(CVE)
    given = {"5.7": replay(scenario, "5.7")}
    assert ask(scenario, given) == ask(scenario)


def test_no_questions_no_work() -> None:
    assert ask(parse("P mmap a\nP read a")) == ()


# ---------------------------------------------------------------------------------------------
# Goals


def test_every_goal_term_form_is_evaluated_under_the_policy_it_names() -> None:
    text = CVE + "#goal leak@5.7 !leak@5.9 ok@5.9 differ@5.7,5.9 leak@5.9 ok@5.7 differ@5.9,6.2"
    result = evaluate_goal(parse(text))
    assert result == GoalResult(
        False,
        (
            TermResult("leak@5.7", True),
            TermResult("!leak@5.9", True),
            TermResult("ok@5.9", True),
            TermResult("differ@5.7,5.9", True),
            TermResult("leak@5.9", False),
            TermResult("ok@5.7", False),
            TermResult("differ@5.9,6.2", False),
        ),
    )
    assert goal_to_json(result)["terms"][0] == {"term": "leak@5.7", "met": True}


def test_a_goal_is_met_when_every_term_holds() -> None:
    result = evaluate_goal(parse(CVE + "#goal leak@5.7 !leak@latest"))
    assert result is not None
    assert goal_to_json(result) == {
        "met": True,
        "terms": [{"term": "leak@5.7", "met": True}, {"term": "!leak@latest", "met": True}],
    }


def test_differ_counts_a_fault_as_an_observation() -> None:
    # The read faults nowhere and sees the same everywhere; without reads nothing differs.
    goal = evaluate_goal(parse("#goal differ@4.8,6.2\nP mmap a"))
    assert goal is not None and not goal.met


def test_a_scenario_without_a_goal_has_no_result() -> None:
    assert evaluate_goal(parse(CVE)) is None


# ---------------------------------------------------------------------------------------------
# The quiz


def test_a_quiz_is_ten_questions_each_answered_by_every_era_with_those_observations() -> None:
    questions = quiz(7)
    assert len(questions) == QUIZ_LENGTH
    assert [q.number for q in questions] == list(range(1, QUIZ_LENGTH + 1))
    assert len({q.text for q in questions}) == QUIZ_LENGTH
    for q in questions:
        scenario = parse(q.text)
        seen = {
            p: tuple(
                (
                    o.step,
                    "SIGSEGV"
                    if (v := replay(scenario, p).steps[o.step].observed) is None
                    else v.text,
                )
                for o in q.observations
            )
            for p in POLICIES
        }
        shown = tuple((o.step, o.value) for o in q.observations)
        assert q.answer == tuple(p for p in POLICIES if seen[p] == shown)
        assert 0 < len(q.answer) < len(POLICIES)  # the eras differ on every question asked
        assert q.check(reversed(q.answer))
        assert not q.check(q.answer[:-1] + ("nope",))


def test_the_same_seed_gives_the_same_quiz_and_another_seed_another() -> None:
    assert quiz(3) == quiz(3)
    assert quiz(3) != quiz(4)


@pytest.mark.parametrize("hashseed", ["0", "99"])
def test_the_quiz_is_the_same_in_another_process(hashseed: str) -> None:
    code = "from engine.quiz import quiz; print(repr(quiz(11)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONHASHSEED": hashseed, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(quiz(11))


def test_a_goal_that_would_replay_too_much_is_refused_before_any_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import engine.lesson

    text = "#goal ok@5.7 ok@5.9 ok@6.2\nP mmap a\n" + "P write a v\n" * 400
    scenario = parse(text)
    replays: list[str] = []
    monkeypatch.setattr(engine.lesson, "replay", lambda s, p: replays.append(p))
    given = {"6.2": replay(scenario, "6.2")}
    # Two eras are missing: 802 commands > 800.
    with pytest.raises(engine.lesson.TooCostly, match="802 commands"):
        evaluate_goal(scenario, given, max_replayed=800)
    with pytest.raises(engine.lesson.TooCostly):
        ask(parse(text + "#? q\nP read a"), max_replayed=800)
    assert replays == []


def test_a_goal_within_the_bound_is_evaluated() -> None:
    scenario = parse("#goal ok@5.7 ok@5.9\nP mmap a\nP write a v")
    result = evaluate_goal(scenario, {"5.9": replay(scenario, "5.9")}, max_replayed=2)
    assert result is not None and result.met
