"""Fuzzing `cowlab run` with valid and broken scenario text (tests/strategies.py).

Valid text exits 0 under every policy, as JSON and as narration; broken text exits 2 with one
message naming the line and the column of the broken token; nothing ever prints a traceback.
Most examples call `app.cli.main` in-process; a few run the real command in a subprocess.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.cli import main as cli
from engine.policies import POLICIES
from engine.syntax import ScenarioError, parse
from tests.strategies import (
    Broken,
    fuzz_examples,
    invalid_scenarios,
    lessons,
    mutated_scenarios,
    scenarios,
)

FUZZ = settings(
    max_examples=fuzz_examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_cli")


def cowlab(path: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli.main(["run", str(path), *argv])
    return status, out.getvalue(), err.getvalue()


@FUZZ
@given(text=st.one_of(scenarios(), lessons()))
@example(text="P mmap b file=F; P fork D")
@example(text="P mmap a; P write a v1; P swapout a; P fork C; P read a; P swapout a; C read a")
def test_valid_text_runs_under_every_policy_as_json_and_as_text(workdir: Path, text: str) -> None:
    path = workdir / "valid.cow"
    path.write_text(text, encoding="utf-8", newline="")
    commands = len(parse(text).commands)

    status, out, err = cowlab(path, "--policy", "all", "--json")
    assert (status, err) == (0, "")
    runs = json.loads(out)["runs"]
    assert [run["policy"] for run in runs] == list(POLICIES)
    # JSON steps start at 1: step 0, the empty machine, has no command.
    indexes = list(range(1, commands + 1))
    assert all([step["index"] for step in run["steps"]] == indexes for run in runs)
    # A `#goal` is evaluated whatever --policy says (DESIGN.md §8).
    assert ("goal" in json.loads(out)) == (parse(text).annotations.goal is not None)

    status, out, err = cowlab(path, "--policy", "all")
    assert (status, err) == (0, "")
    assert "summary: what each read observed, by policy" in out


@FUZZ
@given(broken=invalid_scenarios(), as_json=st.booleans())
def test_broken_text_exits_2_naming_the_line_and_column(
    workdir: Path, broken: Broken, as_json: bool
) -> None:
    path = workdir / "broken.cow"
    path.write_text(broken.text, encoding="utf-8", newline="")
    status, out, err = cowlab(path, "--policy", "all", *(["--json"] if as_json else []))
    assert (status, out) == (2, "")
    first = err.splitlines()[0]
    assert first.startswith(f"cowlab: {path}: line {broken.line}, column ")
    column = int(first.split(", column ")[1].split(":")[0])
    assert broken.first_column <= column <= broken.last_column
    # The caret sits under the reported column of the quoted line.
    excerpt, caret = err.splitlines()[1:3]
    assert excerpt.strip() and caret.strip() == "^"
    assert "Traceback" not in err


@FUZZ
@given(text=mutated_scenarios())
def test_mutated_text_runs_or_exits_2_where_the_parser_says(workdir: Path, text: str) -> None:
    path = workdir / "mutated.cow"
    path.write_text(text, encoding="utf-8", newline="")
    status, out, err = cowlab(path, "--json")
    try:
        scenario = parse(text)
    except ScenarioError as error:
        assert (status, out) == (2, "")
        assert err.startswith(f"cowlab: {path}: line {error.line}, column {error.column}: ")
    else:
        assert (status, err) == (0, "")
        assert len(json.loads(out)["steps"]) == len(scenario.commands)


@settings(max_examples=fuzz_examples(4), deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.one_of(scenarios(max_commands=8), mutated_scenarios()))
def test_the_installed_command_never_prints_a_traceback(workdir: Path, text: str) -> None:
    try:
        parse(text)
        valid = True
    except ValueError:
        valid = False
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "run", "-", "--policy", "all", "--json"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == (0 if valid else 2)
    assert b"Traceback" not in done.stderr
    if valid:
        assert len(json.loads(done.stdout)["runs"]) == len(POLICIES)
    else:
        assert done.stderr.startswith(b"cowlab: <stdin>: line ")


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_byte_order_mark_before_the_first_command_is_not_a_syntax_error(
    workdir: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"\xef\xbb\xbfP mmap a\nP read a\n"
    path = workdir / "bom.cow"
    path.write_bytes(data)
    if source == "stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        path = Path("-")
    status, out, err = cowlab(path, "--json")
    assert (status, err) == (0, "")
    assert [step["command"] for step in json.loads(out)["steps"]] == ["P mmap a", "P read a"]
