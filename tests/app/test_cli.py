"""`cowlab run` and `cowlab presets`: narrated text, JSON, exit statuses and error messages."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from app.cli import main as cli
from app.cli import narrate
from engine import limits
from engine.events import Event
from engine.policies import POLICIES, get_policy
from engine.presets import PRESETS
from engine.trace import answer_to_json, replay

# Jann Horn's CVE-2020-29374 reproducer: the child's pipe sees the parent's later write under
# the classic mapcount rule (≤ 5.7), and its own data from 5.8 on.
CVE = """\
P mmap data
P write data BORING
P fork C
C vmsplice data as pipe   # read-only FOLL_GET held by the pipe
C munmap data
P write data SECRET
pipe read
"""


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | bytes | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    try:
        status = cli.main(list(argv))
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def cve_file(tmp_path: Path) -> Path:
    path = tmp_path / "cve.cow"
    path.write_text(CVE)
    return path


# ---------------------------------------------------------------------------------------------
# run: text


def test_run_narrates_header_steps_events_observed_value_and_verdicts(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    status, out, err = run(capsys, "run", str(cve_file), "--policy", "5.7")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    policy = get_policy("5.7")
    assert lines[0] == f"policy 5.7: {policy.label} (kernels: {policy.kernels})"
    trace = replay(CVE, "5.7")
    step_heads = [line for line in lines if line.startswith("[")]
    assert step_heads == [f"[{s.index}] {s.text}" for s in trace.steps[1:]]
    # The reuse decision of step 6 shows its kernel function and commit on one compact line.
    reuse = next(e for e in trace.steps[6].events if e.kind == "reuse")
    assert f"      {reuse.kernel}: reuse — {reuse.rule} [{reuse.commit}]" in lines
    assert "    => observed: SECRET (written by P at step 6)" in lines
    verdicts = lines[lines.index("verdicts:") :]
    assert verdicts[1].startswith("  [7] leak (pipe): ")


def test_run_without_policy_uses_latest(capsys: pytest.CaptureFixture[str], cve_file: Path) -> None:
    status, out, _ = run(capsys, "run", str(cve_file))
    latest = get_policy("latest")
    assert status == 0
    assert out.startswith(f"policy {latest.id}: {latest.label}")
    assert out.rstrip().endswith("verdicts: none")


def test_run_reads_stdin_for_dash(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "run", "-", "--policy", "4.8", stdin=CVE)
    assert status == 0
    assert out.startswith("policy 4.8: ")
    assert "=> observed: SECRET" in out


def test_run_preset_is_the_run_of_its_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    preset = next(iter(PRESETS.values()))
    path = tmp_path / "preset.cow"
    path.write_text(preset.text)
    by_name = run(capsys, "run", "--preset", preset.name, "--policy", "5.9")
    by_file = run(capsys, "run", str(path), "--policy", "5.9")
    assert by_name == by_file
    assert by_name[0] == 0


def test_run_all_policies_narrates_each_then_summarises_reads_and_verdicts(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    status, out, _ = run(capsys, "run", str(cve_file), "--policy", "all")
    assert status == 0
    runs, summary_text = out.split("\nsummary:")
    headers = [line.split(":")[0] for line in runs.splitlines() if line.startswith("policy ")]
    assert headers == [f"policy {p}" for p in POLICIES]
    summary = summary_text.splitlines()
    assert summary[2].split() == ["policy", "[7]", "pipe", "read", "verdicts"]
    rows = {row.split()[0]: row.split()[1:] for row in summary[4:]}
    assert list(rows) == list(POLICIES)
    for policy_id, cells in rows.items():
        trace = replay(CVE, policy_id)
        observed = trace.steps[7].observed
        assert observed is not None
        assert cells[0] == observed.text
        assert " ".join(cells[1:]) == narrate.kinds_text(trace.verdict_kinds())
    # The point of the table: the classic rule leaks the parent's secret, 5.8 on does not.
    assert rows["5.7"] == ["SECRET", "leak"]
    assert rows["6.2"] == ["BORING", "none"]


def test_summary_shows_a_refused_read_by_what_the_kernel_did(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "run", "-", "--policy", "all", stdin="P mmap a\nP read b\n")
    assert status == 0
    rows = out[out.index("summary:") :].splitlines()[4:]
    assert rows and all(row.split()[1] == "(segv)" for row in rows)


# ---------------------------------------------------------------------------------------------
# run: JSON


def test_run_json_is_the_trace_json_of_the_engine(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    status, out, _ = run(capsys, "run", str(cve_file), "--policy", "5.8", "--json")
    assert status == 0
    document = json.loads(out)
    assert document == json.loads(json.dumps(answer_to_json(replay(CVE, "5.8"))))
    assert document["policy"] == "5.8"
    assert [s["command"] for s in document["steps"]][-1] == "pipe read"


def test_run_json_all_policies_is_a_list_of_runs_in_policy_order(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    status, out, _ = run(capsys, "run", str(cve_file), "--policy", "all", "--json")
    assert status == 0
    document = json.loads(out)
    assert list(document) == ["runs"]
    assert [r["policy"] for r in document["runs"]] == list(POLICIES)
    assert document["runs"][1] == json.loads(json.dumps(answer_to_json(replay(CVE, "5.7"))))


def test_run_json_latest_names_the_resolved_policy(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    _, out, _ = run(capsys, "run", str(cve_file), "--policy", "latest", "--json")
    assert json.loads(out)["policy"] == get_policy("latest").id


# ---------------------------------------------------------------------------------------------
# Input errors: exit 2, one message on stderr, no traceback


def test_syntax_error_names_line_column_expected_and_shows_a_caret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.cow"
    path.write_text("P mmap a\nP fork C\nC get a rx\n")
    status, out, err = run(capsys, "run", str(path))
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f'cowlab: {path}: line 3, column 9: expected `ro` or `rw`, found "rx"',
        "    C get a rx",
        "            ^",
    ]


def test_syntax_error_excerpt_stays_aligned_and_printable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "run", "-", stdin="P\tmmap\x07 a\n")
    assert status == 2
    message, shown, caret = err.splitlines()
    assert message.startswith("cowlab: <stdin>: line 1, column 3: expected a command verb")
    assert shown == "    P mmap? a"
    assert caret == "      ^"


def test_syntax_error_on_a_long_line_shows_the_part_around_the_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = "P mmap " + " ".join(f"p{i}" for i in range(100)) + " ro"
    status, _, err = run(capsys, "run", "-", stdin=text)
    assert status == 2
    _, shown, caret = err.splitlines()
    assert len(shown) <= 104
    assert shown[caret.index("^") :].startswith("ro")


def test_limit_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    text = "P mmap a\n" * (limits.MAX_COMMANDS + 1)
    status, out, err = run(capsys, "run", "-", stdin=text)
    assert (status, out) == (2, "")
    assert err.startswith(f"cowlab: <stdin>: line {limits.MAX_COMMANDS + 1}, column 1: more than")


def test_oversized_input_is_refused_without_reading_it_all(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "big.cow"
    # Multi-byte characters straddle the read cap: they must not be mistaken for bad UTF-8.
    path.write_text("#" + "é" * limits.MAX_DECOMPRESSED_BYTES)
    status, _, err = run(capsys, "run", str(path))
    assert status == 2
    assert f"longer than the limit of {limits.MAX_DECOMPRESSED_BYTES} bytes" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "5.10"], "cowlab: unknown policy '5.10'; expected one of: 4.8, 5.7,"),
        (["--preset", "cow-basik"], "cowlab: unknown preset 'cow-basik'; did you mean cow-basic"),
        (["--preset", "zzzzzz"], "cowlab: unknown preset 'zzzzzz'; see `cowlab presets`"),
    ],
)
def test_unknown_policy_or_preset_exits_2(
    capsys: pytest.CaptureFixture[str], cve_file: Path, argv: list[str], message: str
) -> None:
    if "--preset" not in argv:
        argv = [str(cve_file), *argv]
    status, out, err = run(capsys, "run", *argv)
    assert (status, out) == (2, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_unknown_policy_message_lists_every_policy(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    _, _, err = run(capsys, "run", str(cve_file), "--policy", "nope")
    assert all(p in err for p in POLICIES)
    assert "latest" in err and "all" in err


def test_unreadable_files_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.cow"
    binary = tmp_path / "binary.cow"
    binary.write_bytes(b"P mmap a\n\xff\xfe")
    assert run(capsys, "run", str(missing)) == (
        2,
        "",
        f"cowlab: cannot read {missing}: No such file or directory\n",
    )
    assert run(capsys, "run", str(tmp_path))[0] == 2
    assert run(capsys, "run", str(binary)) == (
        2,
        "",
        f"cowlab: {binary}: not UTF-8 text (byte 10)\n",
    )


def test_bad_command_lines_exit_2_through_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["run"], ["run", "x", "--preset", "cow-basic"], ["frob"], []):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_console_entry_point_has_no_traceback_on_bad_input() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "run", "-"],
        input="P get a rx\n",
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("cowlab: <stdin>: line 1, column 9: expected `ro` or `rw`")
    assert "Traceback" not in result.stderr


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    # Three full states of 512 pages under every policy: megabytes, far more than a pipe
    # buffer, so the writer meets EPIPE.
    big = "P mmap " + " ".join(f"g{i}" for i in range(256)) + "\nP fork C\nC write g1 x\n"
    command = ["run", "-", "--policy", "all", "--json", "--states", "1,2,3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(big.encode())
    proc.stdin.close()
    assert proc.stdout.read(9) == b'{"runs":['
    proc.stdout.close()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    assert b"Traceback" not in proc.stderr.read()
    proc.stderr.close()


# ---------------------------------------------------------------------------------------------
# presets


def test_presets_table_has_every_preset_with_its_verdicts_under_every_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "presets")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[: len(POLICIES) + 2] == ["preset", *POLICIES, "title"]
    rows = {line.split()[0]: line.split() for line in lines[2 : 2 + len(PRESETS)]}
    assert list(rows) == list(PRESETS)
    for name in ("cve-2020-29374", "cow-basic"):
        if name not in PRESETS:
            continue
        for policy_id, cell in zip(POLICIES, rows[name][1:], strict=False):
            kinds = replay(PRESETS[name].text, policy_id).verdict_kinds()
            assert cell == ("".join(narrate.VERDICT_LETTERS[k] for k in kinds) or ".")
    assert lines[-1].startswith("L leak · S stale · U userfault")


def test_presets_json_has_the_preset_fields_and_verdict_kinds_by_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "presets", "--json")
    assert status == 0
    document = json.loads(out)
    assert document["policies"] == list(POLICIES)
    assert [p["name"] for p in document["presets"]] == list(PRESETS)
    first = document["presets"][0]
    preset = PRESETS[first["name"]]
    assert (first["title"], first["story"], first["source"], first["text"]) == (
        preset.title,
        preset.story,
        preset.source,
        preset.text,
    )
    assert first["verdicts"] == {p: list(replay(preset.text, p).verdict_kinds()) for p in POLICIES}
    # The backing lets a script group the library as the presets grid does.
    assert {p["name"]: p["backing"] for p in document["presets"]} == {
        name: preset.backing for name, preset in PRESETS.items()
    }


# ---------------------------------------------------------------------------------------------
# Narration details and the subcommand hook


def test_event_lines_put_kernel_kind_rule_commit_on_one_line_and_inputs_after() -> None:
    event = Event(
        "copy",
        "P copies frame #1",
        rule="mapcount 2 > 1",
        kernel="do_wp_page",
        commit="09854ba94c6a",
        inputs={"mapcount": 2, "anon_exclusive": False},
    )
    assert narrate.event_lines(event) == [
        "    P copies frame #1",
        "      do_wp_page: copy — mapcount 2 > 1 [09854ba94c6a]",
        "      inputs: mapcount=2 anon_exclusive=no",
    ]
    assert narrate.event_lines(Event("info", "process P starts")) == ["    process P starts"]


def test_table_aligns_columns_and_underlines_the_header() -> None:
    assert narrate.table([["a", "bb"], ["ccc", "d"]]) == "a    bb\n---  --\nccc  d\n"


def test_a_module_with_register_adds_a_subcommand(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("cowlab_test_extra")

    def register(subparsers: cli.Subparsers[argparse.ArgumentParser]) -> None:
        extra = subparsers.add_parser("extra")
        extra.add_argument("--n", type=int, default=1)
        extra.set_defaults(func=lambda args: print("extra", args.n) or 0)

    vars(module)["register"] = register
    monkeypatch.setitem(sys.modules, "cowlab_test_extra", module)
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", ("cowlab_test_extra",))
    assert run(capsys, "extra", "--n", "3") == (0, "extra 3\n", "")


def test_every_subcommand_of_the_readme_is_there(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("run", "presets", "serve", "bench", "probe"):
        assert name in out


# ---------------------------------------------------------------------------------------------
# run: a #goal (DESIGN.md §8)

GOAL = CVE + "#goal leak@5.7 !leak@5.9 ok@5.7\n"


def test_run_prints_a_goals_result_under_the_policies_its_terms_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "goal.cow"
    path.write_text(GOAL)
    # --policy 6.2 replays 6.2, but the terms are evaluated under 5.7 and 5.9.
    status, out, _ = run(capsys, "run", str(path), "--policy", "6.2")
    assert status == cli.EXIT_OK
    assert out.endswith("goal: not met\n  yes  leak@5.7\n  yes  !leak@5.9\n  no   ok@5.7\n")


@pytest.mark.parametrize("policy", ["5.9", "all"])
def test_run_json_puts_the_goal_beside_steps_or_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, policy: str
) -> None:
    path = tmp_path / "goal.cow"
    path.write_text(GOAL)
    status, out, _ = run(capsys, "run", str(path), "--policy", policy, "--json")
    assert status == cli.EXIT_OK  # a goal not met is not an error
    document = json.loads(out)
    assert ("runs" if policy == "all" else "steps") in document
    assert document["goal"] == {
        "met": False,
        "terms": [
            {"term": "leak@5.7", "met": True},
            {"term": "!leak@5.9", "met": True},
            {"term": "ok@5.7", "met": False},
        ],
    }


def test_run_without_a_goal_prints_no_goal(
    capsys: pytest.CaptureFixture[str], cve_file: Path
) -> None:
    _, out, _ = run(capsys, "run", str(cve_file), "--json")
    assert "goal" not in json.loads(out)
    _, out, _ = run(capsys, "run", str(cve_file))
    assert "goal:" not in out


def test_run_reports_a_malformed_annotation_as_a_syntax_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.cow"
    path.write_text("P mmap a\n#goal lick@5.7\n")
    status, out, err = run(capsys, "run", str(path))
    assert status == cli.EXIT_INPUT and out == ""
    assert "line 2, column 7: expected a verdict kind" in err
    assert err.rstrip().endswith("#goal lick@5.7\n          ^")
