"""The scenario language: every command form, every error, limits, round trip and fuzzing."""

from __future__ import annotations

import pickle
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import limits
from engine.commands import (
    ClearSoftdirty,
    Command,
    Dontfork,
    Dontneed,
    Exit,
    FileDecl,
    ForceWrite,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    Read,
    RefRead,
    RefRelease,
    RefWrite,
    Scenario,
    Swapout,
    TakeRef,
    UffdWp,
    Write,
)
from engine.syntax import (
    ScenarioError,
    ScenarioLimitError,
    auto_ref_name,
    format_command,
    format_scenario,
    parse,
    reference_names,
)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one(text: str) -> Command:
    """The last command of ``text`` (earlier ones set up names)."""
    return parse(text).commands[-1]


# ---------------------------------------------------------------------------------------------
# Every command form


FORMS: list[tuple[str, Command]] = [
    ("file F hello", FileDecl("F", "hello")),
    ("P mmap a", Mmap("P", ("a",))),
    ("P mmap a b c", Mmap("P", ("a", "b", "c"))),
    ("P mmap a file=F", Mmap("P", ("a",), "F")),
    ("P mmap a file=F shared", Mmap("P", ("a",), "F", shared=True)),
    ("P mmap a file=F ro", Mmap("P", ("a",), "F", readonly=True)),
    ("P mmap a file=F ro shared", Mmap("P", ("a",), "F", shared=True, readonly=True)),
    ("P read a", Read("P", "a")),
    ("P write a", Write("P", "a")),
    ("P write a 0x1F:v+2.5_-", Write("P", "a", "0x1F:v+2.5_-")),
    ("P fork C", Fork("P", "C")),
    ("P exit", Exit("P")),
    ("P munmap a", Munmap("P", "a")),
    ("P dontneed a", Dontneed("P", "a")),
    ("P dontfork a", Dontfork("P", "a")),
    ("P dofork a", Dontfork("P", "a", dofork=True)),
    ("P mprotect a ro", Mprotect("P", "a", writable=False)),
    ("P mprotect a rw", Mprotect("P", "a", writable=True)),
    ("P clear-softdirty", ClearSoftdirty("P")),
    ("P swapout a", Swapout("P", "a")),
    ("P uffd-wp a on", UffdWp("P", "a", on=True)),
    ("P uffd-wp a off", UffdWp("P", "a", on=False)),
    ("P vmsplice a", TakeRef("P", "a", "vmsplice")),
    ("P vmsplice a as R", TakeRef("P", "a", "vmsplice", name="R")),
    ("P get a ro", TakeRef("P", "a", "get")),
    ("P get a rw", TakeRef("P", "a", "get", write=True)),
    ("P get a rw wrong-side-ok as R", TakeRef("P", "a", "get", True, name="R", wrong_side_ok=True)),
    ("P pin a ro", TakeRef("P", "a", "pin")),
    (
        "P pin a rw wrong-side-ok as R fast longterm",
        TakeRef("P", "a", "pin", True, True, True, "R", True),
    ),
    ("P pin a ro fast", TakeRef("P", "a", "pin", fast=True)),
    ("P iouring a", TakeRef("P", "a", "iouring", write=True, longterm=True)),
    ("P iouring a as R", TakeRef("P", "a", "iouring", write=True, longterm=True, name="R")),
    ("P forcewrite a v", ForceWrite("P", "a", "v")),
    ("P forcewrite a v race", ForceWrite("P", "a", "v", race=True)),
    ("P vmsplice a as R; R read", RefRead("R")),
    ("P vmsplice a as R; R write 7", RefWrite("R", "7")),
    ("P vmsplice a as R; R release", RefRelease("R")),
]


@pytest.mark.parametrize(("text", "command"), FORMS, ids=[t for t, _ in FORMS])
def test_every_command_form_parses_to_its_ast(text: str, command: Command) -> None:
    assert one(text) == command


@pytest.mark.parametrize(("text", "command"), FORMS, ids=[t for t, _ in FORMS])
def test_every_command_form_prints_back_to_text_that_parses_the_same(
    text: str, command: Command
) -> None:
    scenario = parse(text)
    assert parse(format_scenario(scenario)) == scenario
    assert parse(format_scenario(scenario, "; ")) == scenario


def test_canonical_text_uses_single_spaces_and_the_order_of_the_design() -> None:
    text = "P  pin\ta rw   wrong-side-ok as R fast longterm"
    assert format_command(one(text)) == "P pin a rw longterm fast as R wrong-side-ok"
    assert format_command(one("P mmap a file=F ro shared")) == "P mmap a file=F shared ro"


def test_layout_comments_and_separators_are_not_commands() -> None:
    text = "# setup\r\n\nP mmap a ;; P write a 1 # P write a 2; P read a\n\t;\nP read a;\n"
    scenario = parse(text)
    assert scenario.commands == (Mmap("P", ("a",)), Write("P", "a", "1"), Read("P", "a"))
    assert scenario.lines == (3, 3, 5)


def test_scenarios_differing_only_in_layout_are_equal() -> None:
    assert parse("P mmap a\nP read a") == parse("  P mmap a ; P read a ")


def test_a_comment_is_kept_so_scenarios_differing_in_comments_differ() -> None:
    plain, commented = parse("P mmap a\nP read a"), parse("  P mmap a ; P read a # x")
    assert plain.commands == commented.commands
    assert plain != commented


# ---------------------------------------------------------------------------------------------
# Which verbs a name takes


def test_a_reference_may_be_named_like_a_verb() -> None:
    scenario = parse("P mmap a; P pin a ro as pin; pin read; pin write 5; pin release")
    assert scenario.commands[1:] == (
        TakeRef("P", "a", "pin", name="pin"),
        RefRead("pin"),
        RefWrite("pin", "5"),
        RefRelease("pin"),
    )


def test_known_reference_takes_reference_verbs_where_a_process_would_take_a_page() -> None:
    # `R write a` is a device write of value `a` once R is a reference …
    assert one("P vmsplice a as R; R write a") == RefWrite("R", "a")
    # … and a process write of page `a` otherwise.
    assert one("R write a") == Write("R", "a")


def test_unknown_name_reads_as_a_reference_only_in_forms_no_process_has() -> None:
    assert one("X read") == RefRead("X")
    assert one("X release") == RefRelease("X")
    assert one("X read a") == Read("X", "a")


def test_known_process_never_takes_reference_verbs() -> None:
    with pytest.raises(ScenarioError) as e:
        parse("P mmap a\nP read")
    assert (e.value.line, e.value.column, e.value.expected) == (2, 7, "a page name")
    assert e.value.found == "end of line"


def test_automatic_reference_names_are_known_to_the_parser() -> None:
    scenario = parse(
        "P mmap a; P vmsplice a; P vmsplice a; P get a ro; P pin a ro; P iouring a\n"
        "pipe read; pipe2 read; gup read; pin read; io read"
    )
    assert scenario.commands[6:] == tuple(RefRead(n) for n in ("pipe", "pipe2", "gup", "pin", "io"))
    assert all(c.name is None for c in scenario.commands[1:6] if isinstance(c, TakeRef))


def test_automatic_names_skip_names_already_taken_by_processes_and_files() -> None:
    scenario = parse("pipe mmap a; file pipe2 v; pipe vmsplice a; pipe3 read; pipe read a")
    assert scenario.commands[3:] == (RefRead("pipe3"), Read("pipe", "a"))
    assert reference_names(scenario.commands) == (None, None, "pipe3", None, None)


@pytest.mark.parametrize(
    ("kind", "taken", "name"),
    [
        ("vmsplice", set(), "pipe"),
        ("vmsplice", {"pipe"}, "pipe2"),
        ("vmsplice", {"pipe", "pipe2", "pipe4"}, "pipe3"),
        ("get", {"pipe"}, "gup"),
        ("pin", {"pin", "pin2"}, "pin3"),
        ("iouring", {"gup"}, "io"),
    ],
)
def test_auto_ref_name_is_the_first_free_name_of_its_kind(
    kind: str, taken: set[str], name: str
) -> None:
    assert auto_ref_name(kind, taken) == name


def test_a_failed_take_still_uses_up_its_automatic_name() -> None:
    # The parser cannot know whether Q exists; the engine names the same way via this function.
    names = reference_names(parse("Q vmsplice a; P mmap a; P vmsplice a").commands)
    assert names == ("pipe", None, "pipe2")


def test_engine_names_references_as_the_parser_does() -> None:
    # The live state would offer `pipe` again after the release; the text already means pipe2.
    from engine.trace import replay

    trace = replay(
        "P mmap a; P write a 1; P vmsplice a; pipe release; P vmsplice a; pipe2 read", "6.2"
    )
    assert trace.steps[-1].command == RefRead("pipe2")
    assert trace.steps[-1].observed is not None and trace.steps[-1].observed.text == "1"


def test_retaking_a_reference_under_its_own_name_is_allowed() -> None:
    scenario = parse("P mmap a; P pin a ro as R; R release; P pin a rw as R; R read")
    assert scenario.commands[-1] == RefRead("R")


# ---------------------------------------------------------------------------------------------
# Errors: line, column, expected, found


ERRORS: list[tuple[str, int, int, str, str]] = [
    # (text, line, column, expected, found)
    ("P get a rx", 1, 9, "`ro` or `rw`", "rx"),
    ("P get a", 1, 8, "`ro` or `rw`", "end of line"),
    ("P mprotect a rx", 1, 14, "`ro` or `rw`", "rx"),
    ("P uffd-wp a yes", 1, 13, "`on` or `off`", "yes"),
    ("P", 1, 2, "a command verb (one of: mmap, read, write, fork, exit, munmap, "
     "dontneed, dontfork, dofork, mprotect, pte-map, clear-softdirty, swapout, uffd-wp, "
     "vmsplice, get, pin, iouring, forcewrite)", "end of line"),
    ("P mmap", 1, 7, "a page name", "end of line"),
    ("P mmap 9a", 1, 8, "a page name (a letter, then up to 15 letters, digits, `_` or `-`)", "9a"),
    ("P read abcdefghijklmnopq", 1, 8,
     "a page name (a letter, then up to 15 letters, digits, `_` or `-`)", "abcdefghijklmnopq"),
    ("P read file", 1, 8, "a page name other than the keyword `file`", "file"),
    ("P read a b", 1, 10, "end of line", "b"),
    ("P exit now", 1, 8, "end of line", "now"),
    ("P write a v w", 1, 13, "end of line", "w"),
    ("P write a v;w", 1, 14, "a command verb (one of: mmap, read, write, fork, exit, munmap, "
     "dontneed, dontfork, dofork, mprotect, pte-map, clear-softdirty, swapout, uffd-wp, "
     "vmsplice, get, pin, iouring, forcewrite)", "end of line"),
    ("P write a +-x/", 1, 11,
     "a value (1 to 32 of letters, digits, `_`, `.`, `:`, `+` or `-`)", "+-x/"),
    ("P forcewrite a", 1, 15, "a value", "end of line"),
    ("P forcewrite a v fast", 1, 18, "`race` or end of line", "fast"),
    ("P fork", 1, 7, "a child process name", "end of line"),
    ("P mmap a ro", 1, 10, "a page name (`ro` needs `file=F` before it)", "ro"),
    ("P mmap a b shared", 1, 12, "a page name (`shared` needs `file=F` before it)", "shared"),
    ("P mmap a a", 1, 10, "a page name not already in this mmap", "a"),
    ("P mmap file=F", 1, 8, "a page name", "file=F"),
    ("P mmap a b file=F", 1, 12,
     "a single page before `file=` (a file mapping is one page)", "file=F"),
    ("P mmap a file=", 1, 10, "a file name after `file=`", "file="),
    ("P mmap a file=F!", 1, 15,
     "a file name (a letter, then up to 15 letters, digits, `_` or `-`)", "F!"),
    ("P mmap a file=F ro ro", 1, 20, "`shared` or end of line", "ro"),
    ("P mmap a file=F b", 1, 17, "`shared`, `ro` or end of line", "b"),
    ("P vmsplice a wrong-side-ok", 1, 14,
     "`as R` or end of line (`wrong-side-ok` is only for get and pin, not vmsplice)",
     "wrong-side-ok"),
    ("P iouring a wrong-side-ok", 1, 13,
     "`as R` or end of line (`wrong-side-ok` is only for get and pin, not iouring)",
     "wrong-side-ok"),
    ("P get a ro fast", 1, 12,
     "`as R`, `wrong-side-ok` or end of line (`fast` is only for pin)", "fast"),
    ("P pin a ro fast longterm fast", 1, 26, "`as R`, `wrong-side-ok` or end of line", "fast"),
    ("P pin a ro as R as S", 1, 17, "`longterm`, `fast`, `wrong-side-ok` or end of line", "as"),
    ("P pin a ro as", 1, 14, "a reference name after `as`", "end of line"),
    ("P pin a ro as P", 1, 15, "a reference name (`P` is already a process)", "P"),
    ("file F v\nP pin a ro as F", 2, 15, "a reference name (`F` is already a file)", "F"),
    ("P mmap a file=P", 1, 15, "a file name (`P` is already a process)", "P"),
    ("P mmap a\nfile P v", 2, 6, "a file name (`P` is already a process)", "P"),
    ("file F v\nF mmap a", 2, 1, "a process or reference name (`F` is a file)", "F"),
    ("P vmsplice a as R\nP fork R", 2, 8, "a child process name (`R` is already a reference)", "R"),
    ("P vmsplice a as R\nR mmap a", 2, 3, "a reference verb (one of: read, write, release)",
     "mmap"),
    ("P vmsplice a as R\nR write", 2, 8, "a value", "end of line"),
    ("P vmsplice a as R\nR read x", 2, 8, "end of line", "x"),
    ("file", 1, 5, "a file name", "end of line"),
    ("file F", 1, 7, "a value", "end of line"),
    ("file file v", 1, 6, "a file name other than the keyword `file`", "file"),
    ("p\u00e9 read a", 1, 1,
     "a process or reference name (a letter, then up to 15 letters, digits, `_` or `-`)",
     "p\u00e9"),
    ("P mmap a\u00a0b", 1, 8,
     "a page name (a letter, then up to 15 letters, digits, `_` or `-`)", "a\u00a0b"),
    ("P read a\n  # fine\n\tQ  frob a", 3, 5, "a command verb (one of: mmap, read, write, fork, "
     "exit, munmap, dontneed, dontfork, dofork, mprotect, pte-map, clear-softdirty, swapout, "
     "uffd-wp, vmsplice, get, pin, iouring, forcewrite)", "frob"),
    ("P read a; P munmap", 1, 19, "a page name", "end of line"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "column", "expected", "found"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_syntax_errors_name_line_column_expected_and_found(
    text: str, line: int, column: int, expected: str, found: str
) -> None:
    with pytest.raises(ScenarioError) as e:
        parse(text)
    err = e.value
    assert not isinstance(err, ScenarioLimitError)
    assert (err.line, err.column, err.expected, err.found) == (line, column, expected, found)
    shown = found if found == "end of line" else f'"{found}"'
    if found.isprintable():  # otherwise escaped: see the test after this one
        assert str(err) == f"line {line}, column {column}: expected {expected}, found {shown}"


def test_error_message_quotes_the_example_of_the_brief() -> None:
    with pytest.raises(ScenarioError) as e:
        parse("P mmap a\nP fork C\nC get a rx")
    assert str(e.value) == 'line 3, column 9: expected `ro` or `rw`, found "rx"'


def test_error_message_shortens_and_escapes_a_long_or_odd_token() -> None:
    with pytest.raises(ScenarioError) as e:
        parse("P write a " + "\x01" * 100)
    message = str(e.value)
    assert "\\u0001" in message and "\x01" not in message and message.endswith('…"')
    assert e.value.found == "\x01" * 100


@pytest.mark.parametrize(("token", "shown"), [("a\u00a0b", '"a\\u00a0b"'), ("\ud800", '"\\ud800"')])
def test_error_message_spells_invisible_and_unencodable_characters(token: str, shown: str) -> None:
    with pytest.raises(ScenarioError) as e:
        parse(f"P read {token}")
    assert str(e.value).endswith(f"found {shown}")
    str(e.value).encode("utf-8")  # printable on any UTF-8 terminal


def test_scenario_error_is_a_value_error_and_survives_pickling() -> None:
    with pytest.raises(ValueError) as e:
        parse("P get a rx")
    err = pickle.loads(pickle.dumps(e.value))
    assert isinstance(err, ScenarioError)
    assert (err.line, err.column, err.expected, err.found, str(err)) == (
        1,
        9,
        "`ro` or `rw`",
        "rx",
        str(e.value),
    )


# ---------------------------------------------------------------------------------------------
# Limits


def limit_error(text: str) -> ScenarioLimitError:
    with pytest.raises(ScenarioLimitError) as e:
        parse(text)
    return e.value


def test_at_most_max_commands() -> None:
    body = "P mmap a\n" + "P read a\n" * (limits.MAX_COMMANDS - 1)
    assert len(parse(body).commands) == limits.MAX_COMMANDS
    err = limit_error(body + "# comment\n\n  P read a\n")
    assert (err.line, err.column) == (limits.MAX_COMMANDS + 3, 3)
    assert err.expected == f"at most {limits.MAX_COMMANDS} commands"


def test_at_most_max_commands_counts_commands_on_one_line() -> None:
    err = limit_error("P mmap a" + "; P read a" * limits.MAX_COMMANDS)
    assert (err.line, err.column) == (1, 11 + 10 * (limits.MAX_COMMANDS - 1))


def test_text_size_is_counted_in_utf8_bytes() -> None:
    cap = limits.MAX_DECOMPRESSED_BYTES
    parse("#" * cap)  # exactly at the limit: fine
    err = limit_error("#" * cap + "x")
    assert (err.line, err.column) == (1, cap + 1)
    # Two-byte characters cross the limit at half the character count, on the second line.
    err = limit_error("P read a\n#" + "é" * (cap // 2))
    assert err.line == 2
    assert err.column == (cap - len("P read a\n#")) // 2 + 2
    assert "bytes" in err.expected


def test_at_most_max_procs_counting_fork_children() -> None:
    forks = "\n".join(f"P fork C{i}" for i in range(limits.MAX_PROCS - 1))
    parse("P mmap a\n" + forks + "\nC0 read a")  # existing names do not count again
    err = limit_error("P mmap a\n" + forks + "\nC0 fork X")
    assert (err.line, err.column) == (limits.MAX_PROCS + 1, 9)
    assert err.expected == f"at most {limits.MAX_PROCS} processes"
    err = limit_error("P mmap a\n" + forks + "\nX mmap a")
    assert (err.line, err.column) == (limits.MAX_PROCS + 1, 1)


def test_unknown_references_do_not_count_as_processes() -> None:
    names = "\n".join(f"R{i} read" for i in range(limits.MAX_PROCS + 5))
    assert len(parse(names).commands) == limits.MAX_PROCS + 5


def test_at_most_max_pages_per_process_distinct_names() -> None:
    cap = limits.MAX_PAGES_PER_PROC
    pages = " ".join(f"p{i}" for i in range(cap))
    parse(f"P mmap {pages}\nP mmap p0 p1\nQ mmap {pages}")  # remapping and other procs are fine
    err = limit_error(f"P mmap {pages}\nP mmap p0 extra")
    assert (err.line, err.column) == (2, 11)
    assert err.expected == f"at most {cap} pages in P"


def test_fork_child_inherits_its_parents_page_count() -> None:
    cap = limits.MAX_PAGES_PER_PROC
    pages = " ".join(f"p{i}" for i in range(cap - 1))
    parse(f"P mmap {pages}\nP fork C\nC mmap last\nP mmap last")
    err = limit_error(f"P mmap {pages}\nP fork C\nC mmap last\nC mmap more")
    assert (err.line, err.column, err.found) == (4, 8, f"{cap + 1} pages in C")


def test_at_most_max_refs_taken_released_or_not() -> None:
    takes = "\n".join(f"P pin a ro as R{i}\nR{i} release" for i in range(limits.MAX_REFS))
    parse("P mmap a\n" + takes)
    err = limit_error("P mmap a\n" + takes + "\nP vmsplice a")
    assert (err.line, err.column) == (2 * limits.MAX_REFS + 2, 3)
    assert err.expected == f"at most {limits.MAX_REFS} references"


def test_limit_error_message_names_the_limit() -> None:
    err = limit_error("P mmap a\n" + "P fork C\n" * 0 + "P vmsplice a\n" * (limits.MAX_REFS + 1))
    assert str(err) == (
        f"line {limits.MAX_REFS + 2}, column 3: more than {limits.MAX_REFS} references, the limit"
    )


# ---------------------------------------------------------------------------------------------
# The printer refuses what no text can say


@pytest.mark.parametrize(
    "command",
    [
        Write("P", "a", "has space"),
        Write("P", "a", ""),
        Read("P", "file"),
        Read("1P", "a"),
        FileDecl("F", "x;y"),
        RefWrite("R", "a#b"),
        Mmap("P", ()),
        Mmap("P", ("a", "a")),
        Mmap("P", ("ro",)),
        Mmap("P", ("a", "b"), file="F"),
        Mmap("P", ("a",), shared=True),
        Mmap("P", ("a",), file="bad name"),
        Fork("P", "c\n"),
        TakeRef("P", "a", "vmsplice", write=True),
        TakeRef("P", "a", "iouring"),
        TakeRef("P", "a", "get", longterm=True),
        TakeRef("P", "a", "vmsplice", fast=True),
        TakeRef("P", "a", "vmsplice", wrong_side_ok=True),
        TakeRef("P", "a", "pin", name="has space"),
        ForceWrite("P", "a", ""),
    ],
)
def test_format_command_refuses_commands_no_text_can_express(command: Command) -> None:
    with pytest.raises(ValueError):
        format_command(command)


@pytest.mark.parametrize("sep", ["", " ", "\t", ",", "\r"])
def test_format_scenario_refuses_separators_that_do_not_separate(sep: str) -> None:
    with pytest.raises(ValueError):
        format_scenario(Scenario((Exit("P"), Exit("Q"))), sep)


# ---------------------------------------------------------------------------------------------
# Property tests: round trip over generated scenarios, fuzzing


# Names that collide with keywords are the interesting ones for a positional grammar.
TRICKY = [
    "read", "write", "release", "mmap", "pin", "pipe", "pipe2", "gup", "io", "as", "ro", "rw",
    "shared", "on", "off", "race", "longterm", "fast", "wrong-side-ok", "fork", "exit", "get",
    "P", "C", "a", "b", "F",
]  # fmt: skip
LETTERS = "ABCXYZabcxyz"
# Built from alphabets rather than from_regex: several times faster to generate and shrink.
NAMES = st.one_of(
    st.sampled_from(TRICKY),
    st.builds(
        str.__add__,
        st.sampled_from(LETTERS),
        st.text(LETTERS + "0189_-", max_size=15),
    ),
).filter(lambda n: n != "file")
VALUES = st.one_of(
    st.sampled_from(["0", "42", "race", "ro", "file", "x.y:z+-_", "-", "v" * 32]),
    st.text(LETTERS + "0189_.:+-", min_size=1, max_size=32),
)


class NameModel:
    """An independent model of which names are processes, references and files."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}

    def can_be(self, name: str, kind: str) -> bool:
        return self.kinds.get(name, kind) == kind

    def note(self, cmd: Command) -> str | None:
        def add(name: str, kind: str) -> None:
            self.kinds.setdefault(name, kind)

        if isinstance(cmd, FileDecl):
            add(cmd.name, "file")
        elif isinstance(cmd, RefRead | RefWrite | RefRelease):
            pass
        else:
            add(cmd.proc, "process")
            if isinstance(cmd, Fork):
                add(cmd.child, "process")
            if isinstance(cmd, Mmap) and cmd.file is not None:
                add(cmd.file, "file")
            if isinstance(cmd, TakeRef):
                name = cmd.name or auto_ref_name(cmd.kind, set(self.kinds))
                add(name, "reference")
                return name
        return None


@st.composite
def scenarios(draw: st.DrawFn, max_commands: int = 12) -> tuple[Scenario, list[str | None]]:
    """A valid scenario and the reference name each command takes."""
    model = NameModel()
    commands: list[Command] = []
    ref_names: list[str | None] = []

    def name(kind: str, also_not: str = "") -> str:
        return draw(NAMES.filter(lambda n: model.can_be(n, kind) and n != also_not))

    def pick(choices: list[Command]) -> Command:
        return draw(st.sampled_from(choices))

    for _ in range(draw(st.integers(0, max_commands))):
        shape = draw(st.integers(0, 17))
        refs = [n for n, k in model.kinds.items() if k == "reference"]
        if shape == 0:
            cmd: Command = FileDecl(name("file"), draw(VALUES))
        elif shape in (1, 2) and refs:
            ref = draw(st.sampled_from(refs))
            value = draw(VALUES)
            cmd = pick([RefRead(ref), RefWrite(ref, value), RefRelease(ref)])
        elif shape in (1, 2):
            # A name never seen: only `X read` and `X release` read as (unknown) references.
            unknown = draw(NAMES.filter(lambda n: n not in model.kinds))
            cmd = pick([RefRead(unknown), RefRelease(unknown)])
        else:
            proc = name("process")
            page = draw(NAMES)
            if shape == 3:
                pages = draw(
                    st.lists(NAMES.filter(lambda n: n not in ("ro", "shared")), min_size=1,
                             max_size=4, unique=True)
                )  # fmt: skip
                cmd = Mmap(proc, tuple(pages))
            elif shape == 4:
                pages = [draw(NAMES.filter(lambda n: n not in ("ro", "shared")))]
                cmd = Mmap(proc, tuple(pages), name("file", proc), draw(st.booleans()),
                           draw(st.booleans()))  # fmt: skip
            elif shape == 5:
                cmd = Read(proc, page)
            elif shape == 6:
                cmd = Write(proc, page, draw(st.none() | VALUES))
            elif shape == 7:
                cmd = Fork(proc, name("process"))
            elif shape == 8:
                cmd = pick([Exit(proc), ClearSoftdirty(proc)])
            elif shape == 9:
                cmd = pick(
                    [Munmap(proc, page), Dontneed(proc, page), Swapout(proc, page),
                     Dontfork(proc, page), Dontfork(proc, page, dofork=True)]
                )  # fmt: skip
            elif shape == 10:
                cmd = Mprotect(proc, page, draw(st.booleans()))
            elif shape == 11:
                cmd = UffdWp(proc, page, draw(st.booleans()))
            elif shape == 12:
                cmd = ForceWrite(proc, page, draw(VALUES), draw(st.booleans()))
            else:
                as_name = name("reference", proc) if draw(st.booleans()) else None
                kind = draw(st.sampled_from(["vmsplice", "get", "pin", "iouring"]))
                rw = draw(st.booleans())
                if kind == "vmsplice":
                    cmd = TakeRef(proc, page, "vmsplice", name=as_name)
                elif kind == "iouring":
                    cmd = TakeRef(proc, page, "iouring", True, True, name=as_name)
                elif kind == "get":
                    cmd = TakeRef(proc, page, "get", rw, name=as_name,
                                  wrong_side_ok=draw(st.booleans()))  # fmt: skip
                else:
                    cmd = TakeRef(proc, page, "pin", rw, draw(st.booleans()), draw(st.booleans()),
                                  as_name, draw(st.booleans()))  # fmt: skip
        ref_names.append(model.note(cmd))
        commands.append(cmd)
    return Scenario(tuple(commands)), ref_names


@FUZZ
@given(scenarios())
def test_round_trip_over_generated_scenarios(generated: tuple[Scenario, list[str | None]]) -> None:
    scenario, ref_names = generated
    text = format_scenario(scenario)
    parsed = parse(text)
    assert parsed == scenario
    assert parsed.lines == tuple(range(1, len(scenario.commands) + 1))
    oneline = parse(format_scenario(scenario, "; "))
    assert oneline == scenario
    assert set(oneline.lines) <= {1}
    assert list(reference_names(scenario.commands)) == ref_names


def assert_well_placed(text: str, err: ScenarioError) -> None:
    """An error points into the text, at the token it reports."""
    lines = text.split("\n")
    assert 1 <= err.line <= len(lines)
    line = lines[err.line - 1]
    assert 1 <= err.column <= len(line) + 1
    if err.found != "end of line" and not isinstance(err, ScenarioLimitError):
        assert line[err.column - 1 :].startswith(err.found)


def parse_or_error(text: str) -> None:
    """Text either parses to a scenario that round-trips or raises a well-placed ScenarioError."""
    try:
        scenario = parse(text)
    except ScenarioError as err:
        assert_well_placed(text, err)
        return
    assert parse(format_scenario(scenario)) == scenario


@FUZZ
@given(st.text(st.sampled_from("Pab C \t;\n#=-_.:+1rwxé\x00\r") | st.characters(), max_size=80))
def test_fuzz_random_text_raises_only_scenario_errors(text: str) -> None:
    parse_or_error(text)


VOCABULARY = [
    "P", "C", "R", "a", "b", "file", "file=F", "file=", "as", "ro", "rw", "on", "off", "shared",
    "longterm", "fast", "wrong-side-ok", "race", "7", "x y", ";", "\n", "#", "é", "", *re.findall(
        r"[a-z-]+", "mmap read write fork exit munmap dontneed dontfork dofork mprotect "
        "clear-softdirty swapout uffd-wp vmsplice get pin iouring forcewrite release pipe gup io",
    ),
]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(VOCABULARY), max_size=40))
def test_fuzz_token_soup_raises_only_scenario_errors(tokens: list[str]) -> None:
    parse_or_error(" ".join(tokens))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    scenario, _ = draw(scenarios(max_commands=8))
    text = format_scenario(scenario, draw(st.sampled_from(["\n", "; "])))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate"]))
        if op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 6)) :]
        elif op == "insert":
            text = text[:at] + draw(st.sampled_from(VOCABULARY + [" ", "x"])) + text[at:]
        else:
            end = draw(st.integers(at, len(text)))
            text = text[:at] + text[at:end] * 2 + text[end:]
    return text


@FUZZ
@given(mutated())
def test_fuzz_mutated_valid_scenarios_raise_only_scenario_errors(text: str) -> None:
    parse_or_error(text)
