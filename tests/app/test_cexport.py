"""The C program generator (DESIGN.md §12) without running anything on the kernel: the text it
writes, the code it shows for a step, the CLI and the two web routes. The programs are compiled
(never run) here; tests/kernel/test_cexport.py runs them against the probe."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from app.cexport import ExportRefused, program, step_code
from app.cexport.ctext import c_comment, c_string
from app.cexport.steps import NEED, NEEDS, plan
from app.cli.main import main as cli_main
from app.probe.capabilities import Capabilities
from app.probe.compare import sim_observations
from app.probe.executor import static_skip
from app.views.links import make_link
from engine import commands as c
from engine.policies import POLICIES
from engine.presets import PRESETS
from engine.syntax import canonical_text, format_command, parse
from engine.trace import replay
from tests.app.conftest import HTMX, html
from tests.strategies import (
    PROCESS_VERBS,
    Broken,
    fuzz_examples,
    invalid_scenarios,
    random_scenario,
    scenarios,
)

# One scenario with every verb of the language (and every kind of reference command).
EVERY_VERB = """\
file F f0
P mmap a b
P mmap f file=F shared
P read a
P write a v1
P write b
P fork C
C munmap b
C dontneed a
P dontfork b
P dofork b
P mprotect a ro
P mprotect a rw
P clear-softdirty
P swapout a
P uffd-wp a on
P vmsplice a as p
p read
p write x
p release
P iouring a as io
io write dev
io read
io release
P pin a ro longterm fast as gp
gp read
gp release
P forcewrite f f1
P get a ro as dio
P mmap h backing=thp
P pte-map h
P mmap g backing=hugetlb
C exit
"""

# verb -> what its step's code must do (a system call, an ioctl, a file it writes).
SYSTEM_CALLS = {
    "mmap": "mmap(",
    "read": "vma_perms(",
    "write": "dst[i] = bytes[i]",
    "fork": "fork()",
    "exit": "_exit(0)",
    "munmap": "munmap(",
    "dontneed": "MADV_DONTNEED",
    "dontfork": "MADV_DONTFORK",
    "dofork": "MADV_DOFORK",
    "mprotect": "mprotect(",
    "clear-softdirty": '"/proc/self/clear_refs"',
    "swapout": "MADV_PAGEOUT",
    "uffd-wp": "COW_UFFDIO_WRITEPROTECT",
    "vmsplice": "vmsplice(",
    "pin": "COW_PIN_LONGTERM_TEST_START",
    "iouring": "COW_IORING_REGISTER_BUFFERS",
    "forcewrite": '"/proc/self/mem"',
    "get": "FOLL_GET reference other than vmsplice cannot be held",
    "pte-map": "mprotect(second, page_size, other)",
}
# reference command -> what the code reading or writing through it does
REFERENCE_CALLS = {
    "p read": "tee(",
    "p write x": "read-only",
    "io write dev": "COW_IORING_OP_READ_FIXED",
    "io read": "COW_IORING_OP_WRITE_FIXED",
    "io release": "COW_IORING_UNREGISTER_BUFFERS",
    "gp read": "COW_PIN_LONGTERM_TEST_READ",
    "gp release": "COW_PIN_LONGTERM_TEST_STOP",
}


def compile_c(source: str, tmp_path: Path) -> None:
    path = tmp_path / "scenario.c"
    path.write_text(source)
    cc = ["cc", "-std=gnu11", "-O2", "-Wall", "-Werror", "-c", "-o", os.devnull, str(path)]
    result = subprocess.run(cc, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[:4000]


# ---- the program's text


def test_every_verb_of_the_language_is_covered_here() -> None:
    # A verb added to the language must be added to the generator and to this test.
    assert set(SYSTEM_CALLS) == set(PROCESS_VERBS)
    used = {line.split()[1] for line in EVERY_VERB.splitlines() if not line.startswith("file")}
    assert used >= set(PROCESS_VERBS)


@pytest.mark.parametrize("verb", sorted(SYSTEM_CALLS))
def test_each_verbs_step_shows_the_system_call_it_makes(verb: str) -> None:
    scenario = parse(EVERY_VERB)
    k = next(
        i
        for i, cmd in enumerate(scenario.commands, 1)
        if format_command(cmd).split()[1:2] == [verb]
    )
    code = step_code(scenario, k)
    assert SYSTEM_CALLS[verb] in code.text + (code.impossible or "")


@pytest.mark.parametrize("command", sorted(REFERENCE_CALLS))
def test_each_reference_command_shows_what_reads_or_writes_through_the_reference(
    command: str,
) -> None:
    scenario = parse(EVERY_VERB)
    k = [format_command(cmd) for cmd in scenario.commands].index(command) + 1
    code = step_code(scenario, k)
    assert REFERENCE_CALLS[command] in code.text


def test_the_io_uring_ring_is_used_by_the_process_that_owns_it() -> None:
    scenario = parse(EVERY_VERB)
    texts = [format_command(cmd) for cmd in scenario.commands]
    assert step_code(scenario, texts.index("io read") + 1).where.startswith("process P")
    assert step_code(scenario, texts.index("p read") + 1).where == "the coordinator"


@pytest.mark.parametrize(
    ("backing", "calls"),
    [
        ("thp", ("MADV_HUGEPAGE", "MADV_POPULATE_WRITE", "AnonHugePages")),
        ("hugetlb", ("MAP_HUGETLB | MAP_HUGE_2MB", "no free 2 MiB hugetlb page")),
    ],
)
def test_a_huge_page_is_mapped_as_the_selftest_maps_it(
    backing: str, calls: tuple[str, ...]
) -> None:
    code = step_code(parse(f"P mmap a backing={backing}"), 1)
    for call in calls:
        assert call in code.text


def test_huge_pages_take_2_mib_slots_of_their_own() -> None:
    source = program(parse("P mmap a\nP mmap h backing=thp\nP mmap b\nP mmap g backing=hugetlb"))
    assert "map_anon(r, 0 /* a */, 0);" in source
    assert "map_thp(r, 1 /* h */, 0);" in source
    assert "map_anon(r, 2 /* b */, 1);" in source
    assert "map_hugetlb(r, 3 /* g */, 1);" in source


def test_a_step_no_program_can_perform_says_why() -> None:
    scenario = parse("P mmap a\nP get a ro as dio\nP pin a ro as short\nP forcewrite a x race")
    reasons = [step_code(scenario, k).impossible for k in (2, 3, 4)]
    assert all(reason and "needed by" in reason for reason in reasons), reasons
    assert step_code(scenario, 1).impossible is None


def test_the_program_is_the_same_text_for_the_same_scenario_in_any_process() -> None:
    text = PRESETS["cve-2020-29374"].text
    script = (
        "import sys; from app.cexport import program; from engine.syntax import parse; "
        "sys.stdout.write(program(parse(sys.stdin.read())))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=text,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {program(parse(text))}
    # Layout is not the scenario: the same commands in another layout give the same program.
    assert program(parse("P mmap a;P read a")) == program(parse("P mmap a\n\n  P read a  \n"))


def test_the_program_carries_the_scenario_and_its_share_link_at_the_top() -> None:
    scenario = parse(PRESETS["cow-basic"].text)
    source = program(scenario)
    header = source[: source.index("*/") + 2]
    for cmd in scenario.commands:
        assert format_command(cmd) in header
    assert c_comment(make_link("/", canonical_text(scenario))) in header


def test_the_program_embeds_what_every_era_expects() -> None:
    text = PRESETS["cve-2020-29374"].text
    source = program(parse(text))
    expected_values = {
        obs.value for era in POLICIES for obs in sim_observations(replay(parse(text), era))
    }
    assert expected_values  # the eras do observe something here
    for value in expected_values:
        assert f"\t{c_string(value)},\n" in source
    for era in POLICIES:
        assert f"{{ {c_string(era)}, " in source


def test_a_scenario_that_pages_out_carries_both_swap_devices_unless_it_names_one() -> None:
    unnamed = program(parse("P mmap a\nP write a v1\nP swapout a\nP read a"))
    assert 'variant_devices[NVARIANTS] = { "file", "zram" }' in unnamed
    named = program(parse("#swap zram\nP mmap a\nP write a v1\nP swapout a\nP read a"))
    assert 'variant_devices[NVARIANTS] = { "zram" }' in named
    assert 'NAMED_SWAP[] = "zram"' in named


def test_an_empty_scenario_is_refused() -> None:
    with pytest.raises(ExportRefused, match="no command"):
        program(parse("# only a comment"))


def test_step_code_refuses_a_step_the_scenario_does_not_have() -> None:
    with pytest.raises(IndexError):
        step_code(parse("P mmap a"), 2)


# ---- escaping into C


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("v1", '"v1"'),
        ('a"b', '"a\\"b"'),
        ("back\\slash", '"back\\\\slash"'),
        ("??/", '"\\?\\?/"'),  # no trigraph can form
        ("☃1", '"\\342\\230\\2031"'),  # octal escapes stop at three digits: the 1 stays a 1
        ("tab\tnew\nline", '"tab\\011new\\012line"'),
    ],
)
def test_strings_are_escaped_into_c_literals(text: str, literal: str) -> None:
    assert c_string(text) == literal


def test_comments_cannot_end_or_nest_or_carry_control_characters() -> None:
    escaped = c_comment("a */ b /* c \x00 d")
    assert "*/" not in escaped and "/*" not in escaped and "\x00" not in escaped


def test_hostile_comments_and_names_compile_with_werror(tmp_path: Path) -> None:
    text = (
        "#title */ int x; /* ??/ naïve ☃ \\\n"
        "P mmap a # */ trailing /* comment\n"
        "x_Y-9 mmap A234567890123456\n"
        "x_Y-9 write A234567890123456 A:b+c-d_e\n"
        "x_Y-9 read A234567890123456\n"
        "# ??= \\"
    )
    source = program(parse(text))
    assert "int x;" not in source.split("*/", 1)[1][:200]  # the title stayed in the comment
    compile_c(source, tmp_path)


def test_a_program_with_every_verb_compiles_with_werror(tmp_path: Path) -> None:
    compile_c(program(parse(EVERY_VERB)), tmp_path)


# ---- the command line


def test_the_cli_prints_the_program(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.txt"
    path.write_text(PRESETS["cow-basic"].text)
    assert cli_main(["export", "c", str(path)]) == 0
    assert capsys.readouterr().out == program(parse(PRESETS["cow-basic"].text))
    assert cli_main(["export", "c", "--preset", "cow-basic"]) == 0
    assert capsys.readouterr().out == program(parse(PRESETS["cow-basic"].text))


def test_the_cli_answers_bad_input_with_exit_2_and_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.txt"
    path.write_text("P mmap a\nP reed a\n")
    assert cli_main(["export", "c", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 2, column 3" in captured.err
    path.write_text("# nothing\n")
    assert cli_main(["export", "c", str(path)]) == 2
    assert "no command" in capsys.readouterr().err


CLI_FUZZ = settings(
    max_examples=fuzz_examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@CLI_FUZZ
@given(text=scenarios())
def test_the_cli_exports_every_valid_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = tmp_path / "s.txt"
    path.write_text(text, encoding="utf-8", newline="")
    status = cli_main(["export", "c", str(path)])
    captured = capsys.readouterr()
    if not parse(text).commands:
        assert status == 2 and "no command" in captured.err
        return
    assert status == 0, captured.err
    assert captured.out.startswith("/* cowlab export c") and captured.err == ""


@CLI_FUZZ
@given(broken=invalid_scenarios())
def test_the_cli_refuses_every_broken_scenario_naming_the_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: Broken
) -> None:
    path = tmp_path / "s.txt"
    path.write_text(broken.text, encoding="utf-8", newline="")
    assert cli_main(["export", "c", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    first = captured.err.splitlines()[0]
    assert first.startswith(f"cowlab: {path}: line {broken.line}, column ")
    column = int(first.split(", column ")[1].split(":")[0])
    assert broken.first_column <= column <= broken.last_column


# ---- the web


def test_export_c_is_a_download_of_the_same_program(client: TestClient) -> None:
    text = PRESETS["cve-2020-29374"].text
    link = make_link("/export.c", canonical_text(parse(text)), policy="5.7", step=3)
    r = client.get(link)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/x-csrc")
    assert r.headers["content-disposition"].startswith("attachment")
    assert r.text == program(parse(text))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("v=1&s=P+mmap", 400),  # a syntax error
        ("v=1&s=P+mmap+a&policy=bogus", 400),
        ("v=1&s=%23+only+a+comment", 400),  # nothing to export
        ("v=1&s=z:!!!", 400),
        ("v=1&s=" + "P+mmap+a;" * 2000, 414),
    ],
)
def test_export_c_answers_a_bad_link_with_a_page_that_says_why(
    client: TestClient, query: str, status: int
) -> None:
    r = client.get(f"/export.c?{query}")
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")


def test_export_c_refuses_a_scenario_too_heavy_to_replay_under_every_era(
    client: TestClient,
) -> None:
    # Within every limit of DESIGN.md §7, but its trace holds some 170,000 entries.
    pages = [f"p{j}" for j in range(250)]
    lines = ["P mmap " + " ".join(pages), *(f"P write {p}" for p in pages)]
    lines += [f"P fork C{i}" for i in range(63)]
    link = make_link("/export.c", "\n".join(lines))
    r = client.get(link)
    assert r.status_code == 413
    assert "too large to export" in r.text


def test_the_step_view_links_to_the_real_code_and_the_program(client: TestClient) -> None:
    text = canonical_text(parse(PRESETS["cow-vmsplice-unmap-child"].text))
    page = html(client.get(make_link("/", text, step=3)).text)
    section = page.css_first("section.realcode")
    assert section is not None
    links = {a.text(): a.attributes.get("href") or "" for a in section.css("a")}
    assert links["The system calls of this step"].startswith("/realcode?")
    assert "step=3" in links["The system calls of this step"]
    assert links["the whole program (C)"].startswith("/export.c?")


def test_the_real_code_of_a_step_is_a_fragment_for_htmx_and_a_page_without(
    client: TestClient,
) -> None:
    text = canonical_text(parse("P mmap a;P write a v1;P vmsplice a as p;p read"))
    link = make_link("/realcode", text, step=3)
    fragment = client.get(link, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<h1" not in fragment.text
    code = html(fragment.text).css_first("pre.code")
    assert code is not None and "vmsplice(" in code.text()
    page = client.get(link)
    assert page.status_code == 200
    doc = html(page.text)
    h1 = doc.css_first("h1")
    assert h1 is not None and h1.text() == "Real code of step 3"
    pre = doc.css_first("pre.code")
    assert pre is not None and pre.text() == code.text()


def test_step_0_has_no_system_call(client: TestClient) -> None:
    r = client.get(make_link("/realcode", "P mmap a", step=0))
    assert r.status_code == 200
    assert "empty machine" in r.text


# ---- where the program stops: as the probe decides


def _first_blocked(scenario: c.Scenario, missing: str | None) -> tuple[int, str] | None:
    """The first step the program cannot run when the kernel lacks ``missing``, and why."""
    steps, _ = plan(scenario)
    for step in steps:
        if step.code.impossible is not None:
            return step.code.index, step.code.impossible
        if missing is not None and step.needs & NEED[missing]:
            return step.code.index, ""
    return None


@pytest.mark.parametrize("missing", [None, *NEEDS])
def test_the_program_stops_where_the_probe_would_skip(missing: str | None) -> None:
    texts = [p.text for p in PRESETS.values()] + [random_scenario(s, 30) for s in range(150)]
    # Every other facility is there (whatever facilities the probe checks).
    caps = Capabilities(
        **{f.name: "missing" if f.name == missing else None for f in fields(Capabilities)}
    )
    for text in texts:
        scenario = parse(text)
        # The probe does not run huge pages yet (it skips them); the program does: compare
        # the commands before the first huge page.
        huge = [
            k
            for k, cmd in enumerate(scenario.commands)
            if isinstance(cmd, c.PteMap) or (isinstance(cmd, c.Mmap) and cmd.backing != "base")
        ]
        scenario = replace(scenario, commands=scenario.commands[: huge[0] if huge else None])
        reason = static_skip(scenario, caps)
        blocked = _first_blocked(scenario, missing)
        if reason is None:
            assert blocked is None or blocked[1], (text, blocked)
            continue
        assert blocked is not None, (text, reason)
        k, impossible = blocked
        needed_by = f"(needed by `{format_command(scenario.commands[k - 1])}`)"
        assert reason.endswith(needed_by), (text, reason, k)
        if impossible:
            assert reason == impossible


def test_a_comment_carries_no_trigraph() -> None:
    for text in ("what??/", "???/", "??=??(??)", "a ?? b"):
        assert "??" not in c_comment(text)
    assert c_comment("what??/") == "what?\\?/"


@pytest.mark.parametrize(
    ("take", "helper"), [("vmsplice a as p", "pipe_read"), ("pin a ro longterm as p", "gup_read")]
)
def test_a_pipe_or_pin_reads_step_calls_its_own_helper(take: str, helper: str) -> None:
    scenario = parse(f"P mmap a\nP write a v1\nP {take}\np read")
    code = step_code(scenario, 4)
    assert code.where == "the coordinator"
    assert f"{helper}(r, in_fd);" in code.function and "ring_read" not in code.text
    assert code.helpers == (helper,)
    assert f"{helper}(r, in_fd);" in program(scenario)


def test_a_name_a_ring_held_before_keeps_the_rings_step() -> None:
    # The vmsplice may find the name still held by the ring at run time: step_K stays the
    # ring's, and the coordinator reads a pipe itself.
    scenario = parse("P mmap a\nP iouring a as p\nP vmsplice a as p\np read")
    step_4 = program(scenario).split("static void step_4(", 1)[1].split("}", 1)[0]
    assert "ring_read(r, " in step_4 and "in_fd" not in step_4


def test_the_program_carries_the_engines_words_and_frames_for_every_era() -> None:
    source = program(parse(PRESETS["cve-2020-29374"].text))
    # 4.8 and 5.7 leak the child's write through the pipe; the program can say so in words.
    assert '"leak: ' in source
    assert "static const unsigned short said[NVARIANTS][NERAS][NSTEPS + 1]" in source
    assert "static const unsigned short expected_frame[NVARIANTS][NERAS][NSTEPS + 1]" in source
    assert '"frame replaced"' in source


def test_a_program_carries_only_the_runtime_its_scenario_uses() -> None:
    leak = program(parse(PRESETS["cve-2020-29374"].text))  # vmsplice, fork, munmap: 7 steps
    assert "@if" not in leak and "@endif" not in leak
    for absent in (
        "io_uring_setup",
        "ring_open",
        "uffd_open",
        "GUP_TEST_PATH",
        "map_thp",
        "clear_refs",
    ):
        assert absent not in leak, absent
    assert "do_vmsplice(" in leak and "pipe_read(" in leak
    assert leak.count("\n") < 1300  # it was 1,770 lines with every feature's code
    every = program(parse(EVERY_VERB))
    for present in ("io_uring_setup", "ring_open", "uffd_open", "GUP_TEST_PATH", "map_thp"):
        assert present in every, present


def test_the_page_shows_helpers_without_the_feature_markers() -> None:
    scenario = parse(EVERY_VERB)
    for k in range(1, len(scenario.commands) + 1):
        assert "@if" not in step_code(scenario, k).text


def test_trim_refuses_a_feature_no_table_knows() -> None:
    from app.cexport.runtime import trim

    assert trim("a\n/* @if huge */\nb\n/* @endif huge */\nc\n", set()) == "a\nc\n"
    assert trim("a\n\t/* @if huge */\nb\n\t/* @endif huge */\n", {"huge"}) == "a\nb\n"
    with pytest.raises(ValueError, match="mthp"):
        trim("/* @if mthp */\nx\n/* @endif mthp */\n", set())
