"""Annotations of DESIGN.md §8 in the parser: every form, every error, the canonical text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.annotations import GOAL_VERDICT_KINDS, Annotations, GoalTerm, Question, Remark
from engine.commands import Mmap, Read, RefRead
from engine.syntax import ScenarioError, canonical_text, format_scenario, parse
from engine.verdicts import VERDICT_KINDS

LESSON = """\
#title COW, from scratch
#policy 5.7
#: the empty machine
#: a second line
P mmap a  # a trailing comment; with a semicolon
   # an indented plain comment
#: shown with the write
P write a v1 ; P fork C
#? What does the child read?
C read a
#goal leak@5.7 !leak@5.9 ok@6.2 differ@5.7,latest
#swap zram
#: after the last command
"""


def test_every_annotation_form_is_parsed_into_the_lesson_data() -> None:
    s = parse(LESSON)
    assert s.commands[0] == Mmap("P", ("a",))
    assert s.annotations == Annotations(
        title="COW, from scratch",
        policy="5.7",
        notes=(
            (0, "the empty machine\na second line"),
            (2, "shown with the write"),
            (4, "after the last command"),
        ),
        questions=(Question(4, "What does the child read?"),),
        goal=(
            GoalTerm("leak@5.7", "verdict", ("5.7",), "leak"),
            GoalTerm("!leak@5.9", "no-verdict", ("5.9",), "leak"),
            GoalTerm("ok@6.2", "ok", ("6.2",)),
            GoalTerm("differ@5.7,latest", "differ", ("5.7", "latest")),
        ),
        swap="zram",
    )
    assert s.annotations.note(0) == "the empty machine\na second line"
    assert s.annotations.note(1) is None
    assert s.annotations.question(4) == Question(4, "What does the child read?")
    assert s.annotations.question(3) is None


def test_without_annotations_the_lesson_data_is_empty_and_swap_is_file() -> None:
    s = parse("P mmap a # just a comment\n#titled is a plain comment\n#:x too")
    assert s.annotations == Annotations()
    assert not s.annotations.is_lesson
    assert s.annotations.swap == "file"
    assert [r.text for r in s.remarks] == [
        "# just a comment",
        "#titled is a plain comment",
        "#:x too",
    ]


def test_an_annotation_runs_to_the_end_of_its_line_semicolon_included() -> None:
    s = parse("#title A; B\nP mmap a\n#: first; P write a x\nP read a")
    assert s.annotations.title == "A; B"
    assert s.commands == (Mmap("P", ("a",)), Read("P", "a"))
    assert s.annotations.note(2) == "first; P write a x"


def test_an_annotation_word_must_start_its_line() -> None:
    # After a command, `#title` is a plain trailing comment, not a second title.
    s = parse("#title T\nP mmap a #title U; P read a")
    assert s.annotations.title == "T"
    assert s.commands == (Mmap("P", ("a",)),)
    assert s.remarks[-1] == Remark(1, "#title U; P read a", trailing=True)


def test_empty_commands_before_an_annotation_are_skipped_like_blanks() -> None:
    s = parse("P mmap a\n ; ;#: a note\nP read a")
    assert s.annotations.note(2) == "a note"
    assert parse(canonical_text(s)) == s


def test_an_annotation_word_may_be_followed_by_a_tab_or_end_of_line() -> None:
    s = parse("#title\tTabbed\n#:\nP mmap a\n#?\tWhich?\nP read a")
    assert s.annotations.title == "Tabbed"
    assert s.annotations.note(0) == ""
    assert s.annotations.questions == (Question(2, "Which?"),)


def test_a_question_may_precede_a_reference_read() -> None:
    s = parse("P mmap a\nP vmsplice a as pipe\n#? What is in the pipe?\npipe read")
    assert s.commands[-1] == RefRead("pipe")
    assert s.annotations.questions == (Question(3, "What is in the pipe?"),)


def test_the_goal_kinds_are_the_verdict_kinds() -> None:
    assert GOAL_VERDICT_KINDS == VERDICT_KINDS


@pytest.mark.parametrize("kind", VERDICT_KINDS)
def test_every_verdict_kind_is_a_goal_term(kind: str) -> None:
    goal = parse(f"#goal {kind}@5.9 !{kind}@latest").annotations.goal
    assert goal == (
        GoalTerm(f"{kind}@5.9", "verdict", ("5.9",), kind),
        GoalTerm(f"!{kind}@latest", "no-verdict", ("latest",), kind),
    )


# ---------------------------------------------------------------------------------------------
# Errors: line, column, what was expected, what was found


ERRORS = [
    # (text, line, column, a phrase of the expectation, found)
    ("#title A\n#title B", 2, 1, "at most one `#title` line (one is on line 1)", "#title"),
    ("P mmap a\n#title late", 2, 1, "`#title` before the first command", "#title"),
    ("#title", 1, 7, "a title after `#title`", "end of line"),
    ("#policy 5.7\n#policy 5.9", 2, 1, "at most one `#policy` line", "#policy"),
    ("#policy 9.9", 1, 9, "a policy id after `#policy`", "9.9"),
    ("#policy", 1, 8, "a policy id after `#policy`", "end of line"),
    ("#goal leak@5.7\n#goal ok@5.9", 2, 1, "at most one `#goal` line", "#goal"),
    ("#goal", 1, 6, "a goal term", "end of line"),
    ("#goal leak", 1, 7, "a goal term", "leak"),
    ("#goal lick@5.7", 1, 7, "a verdict kind (one of: leak, stale", "lick"),
    ("#goal !ok@5.7", 1, 8, "a verdict kind", "ok"),
    ("#goal leak@5.7  stale@4.4", 1, 23, "a policy id after `stale@`", "4.4"),
    ("#goal differ@5.7", 1, 14, "two policy ids `A,B` after `differ@`", "5.7"),
    ("#goal differ@5.7,5.10", 1, 18, "a policy id in `differ@A,B`", "5.10"),
    ("#swap disk", 1, 7, "`zram` or `file` after `#swap`", "disk"),
    ("#swap zram\n#swap file", 2, 1, "at most one `#swap` line", "#swap"),
    ("#?", 1, 3, "a question", "end of line"),
    (
        "P mmap a\n#? Q\n  P write a",
        3,
        3,
        "a read (`P read a` or `R read`) after the `#?` question of line 2",
        "P write a",
    ),
    ("P mmap a\n#? Q\n#? R\nP read a", 3, 1, "a read (`P read a` or `R read`)", "#?"),
    (
        "P mmap a\n  #? Q",
        2,
        3,
        "a read (`P read a` or `R read`) after this `#?` question",
        "end of text",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "expected", "found"), ERRORS)
def test_a_malformed_annotation_is_a_syntax_error_with_line_column_and_expectation(
    text: str, line: int, column: int, expected: str, found: str
) -> None:
    with pytest.raises(ScenarioError) as info:
        parse(text)
    err = info.value
    assert (err.line, err.column, err.found) == (line, column, found)
    assert expected in err.expected
    assert f"line {line}" in str(err)


# ---------------------------------------------------------------------------------------------
# Canonical text


def test_canonical_text_of_a_lesson_is_one_line_each_with_comments_kept() -> None:
    assert canonical_text(parse(LESSON)) == (
        "#title COW, from scratch\n"
        "#policy 5.7\n"
        "#: the empty machine\n"
        "#: a second line\n"
        "P mmap a  # a trailing comment; with a semicolon\n"
        "# an indented plain comment\n"
        "#: shown with the write\n"
        "P write a v1\n"
        "P fork C\n"
        "#? What does the child read?\n"
        "C read a\n"
        "#goal leak@5.7 !leak@5.9 ok@6.2 differ@5.7,latest\n"
        "#swap zram\n"
        "#: after the last command"
    )


def test_canonical_text_without_any_hash_is_joined_by_semicolons_as_before() -> None:
    assert canonical_text(parse("P mmap a\n\nP  fork C ;")) == "P mmap a;P fork C"


def test_canonical_spelling_of_an_annotation_has_one_space_after_its_word() -> None:
    s = parse("#title\t  Spaced   \n#goal   leak@5.7   ok@5.9")
    assert canonical_text(s) == "#title Spaced\n#goal leak@5.7   ok@5.9"
    assert parse(canonical_text(s)) == s


def test_a_tab_inside_an_annotations_text_is_kept_as_it_is() -> None:
    # Found by fuzzing: only the blank right after the word separates it from the text.
    s = parse("#title\t#\t#")
    assert s.annotations.title == "#\t#"
    assert canonical_text(s) == "#title #\t#"
    assert parse(canonical_text(s)) == s


def test_a_scenario_with_remarks_is_printed_only_joined_by_newlines() -> None:
    with pytest.raises(ValueError, match="joined by newlines"):
        format_scenario(parse("P mmap a # c"), "; ")


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LINES = st.sampled_from(
    [
        "P mmap a",
        "P read a",
        "P write a v ; C read a",
        "P fork C",
        "C read a  # c; d",
        "#: a note; with more",
        "#? which?",
        "# plain",
        "  #\tplain\r",
        "#title T",
        "#policy 5.9",
        "#goal leak@5.7 differ@5.8,5.9",
        "#swap zram",
        "",
    ]
)


@FUZZ
@given(st.lists(LINES, max_size=12))
def test_fuzz_annotated_text_parses_to_a_scenario_its_canonical_text_gives_back(
    lines: list[str],
) -> None:
    text = "\n".join(lines)
    try:
        scenario = parse(text)
    except ScenarioError:
        return
    again = parse(canonical_text(scenario))
    assert again == scenario
    assert canonical_text(again) == canonical_text(scenario)


PIECES = st.sampled_from(
    ["#", "#:", "#?", "#title", "#goal", "#policy", "#swap", " ", "\t", ";", "\n", "\r", "P", "C"]
    + ["mmap", "read", "write", "fork", "a", "5.7", "leak@5.7", "zram", "x", "pipe", "vmsplice"]
)


@FUZZ
@given(st.lists(PIECES, max_size=40))
def test_fuzz_any_text_either_fails_to_parse_or_survives_its_canonical_text(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    try:
        scenario = parse(text)
    except ScenarioError:
        return
    canonical = canonical_text(scenario)
    assert parse(canonical) == scenario
    assert canonical_text(parse(canonical)) == canonical
