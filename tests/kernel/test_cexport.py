"""The C program of a scenario (`cowlab export c`) on this machine's kernel, against the probe.

Every preset's program is compiled once (`cc -O2 -Wall -Werror`, in parallel) and run; what it
observed must equal what `cowlab probe` observed on every step the probe ran, and where the
probe skips, the program skips too, with a reason. A hypothesis sample of random scenarios
does the same (the probe's differential test, C leg).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from app.cexport import program, step_code
from app.probe.compare import ProbeResult, probe_scenario
from app.probe.executor import KernelRun
from app.probe.isolate import run_isolated
from engine import commands as c
from engine.presets import PRESETS
from engine.syntax import parse
from tests.strategies import PROCESS_VERBS, fuzz_examples, scenarios

pytestmark = pytest.mark.kernel

CC = ("cc", "-O2", "-Wall", "-Werror")
# Verbs a random scenario may use: `get` and short-term pins skip on every kernel (no program
# can hold them), so a sample with them would mostly test skipping; huge pages have tests of
# their own below.
RANDOM_VERBS = tuple(v for v in PROCESS_VERBS if v not in ("get", "pin", "pte-map"))


@dataclass(frozen=True)
class Output:
    observed: list[tuple[int, str]]
    tap: list[str]
    skipped_from: int | None
    skip_reason: str
    behaves_like: list[str]


def parse_output(text: str) -> Output:
    observed = []
    for line in text.splitlines():
        if line.startswith("observed "):
            _, step, value = line.split(" ", 2)
            # What a store did to its frame: compared with the probe's --frames on its own.
            if not value.startswith("frame "):
                observed.append((int(step), value))
    tap = [line for line in text.splitlines() if re.match(r"(not )?ok \d+ ", line)]
    skip = re.search(r"^# skipped from step (\d+): (.*)$", text, re.MULTILINE)
    assert re.search(r"^# behaves like", text, re.MULTILINE), text
    behaves = re.search(r"^# behaves like(?: \(on the steps that ran\))?:(.*)$", text, re.MULTILINE)
    return Output(
        observed,
        tap,
        int(skip.group(1)) if skip else None,
        skip.group(2) if skip else "",
        behaves.group(1).split() if behaves else [],
    )


def build(source: str, where: Path, name: str, flags: tuple[str, ...] = CC) -> Path:
    path = where / f"{name}.c"
    path.write_text(source)
    binary = where / name
    result = subprocess.run(
        [*flags, "-o", str(binary), str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{name}: {result.stderr[:4000]}"
    return binary


def run_program(binary: Path) -> Output:
    result = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    # 1: the kernel contradicted its era (check_against_probe says where); the TAP shows it.
    assert result.returncode == (1 if "\nnot ok " in result.stdout else 0), result.stderr
    return parse_output(result.stdout)


def probe(scenario: c.Scenario, name: str) -> tuple[ProbeResult, KernelRun]:
    runs: list[KernelRun] = []

    def runner(s: c.Scenario, timeout: float) -> KernelRun:
        runs.append(run_isolated(s, timeout))
        return runs[-1]

    result = probe_scenario(scenario, name=name, runner=runner)
    return result, runs[0] if runs else KernelRun("", (), result.skipped)


PAGEOUT_ADVICE = {"swapped out", "stays resident"}
HUGE_REFUSALS = (
    "no free 2 MiB hugetlb page",
    "the kernel did not map a PMD-mapped THP",
    "the kernel could not map the huge page",
    "THP not available",
)


def advice_taken_apart(mine: list[tuple[int, str]], kernel: list[tuple[int, str]]) -> int | None:
    """The first step where one run paged a page out and the other kept it resident.

    MADV_PAGEOUT is advice: the kernel may keep a page for reasons neither run controls (a
    per-CPU LRU batch, memory pressure), so two runs of one scenario may differ there; what
    follows is then a different experiment, not a disagreement."""
    theirs = dict(kernel)
    for step, value in mine:
        other = theirs.get(step)
        if value != other and {value, other} <= PAGEOUT_ADVICE:
            return step
    return None


def check_against_probe(scenario: c.Scenario, out: Output, name: str) -> None:
    """What the program observed equals what the probe observed, on every step both ran; where
    one stopped early, the other did too, or the program says why no program can go on."""
    result, kernel_run = probe(scenario, name)
    ran = len(kernel_run.steps)
    stopped = len(scenario.commands) if out.skipped_from is None else out.skipped_from - 1
    upto = min(ran, stopped)
    apart = advice_taken_apart(
        sorted(o for o in out.observed if o[0] <= upto),
        sorted((o.step, o.value) for o in result.kernel_observed),
    )
    declined = "kept the page resident" in out.skip_reason or "resident" in (result.skipped or "")
    if apart is not None:
        # Compared up to where MADV_PAGEOUT's advice was taken in one run and not the other.
        upto = apart - 1
    mine = sorted(o for o in out.observed if o[0] <= upto)
    kernel = sorted((o.step, o.value) for o in result.kernel_observed if o.step <= upto)
    assert mine == kernel, f"{name}: program {mine} vs probe {kernel} (both ran {upto} steps)"
    if apart is not None or declined:
        return
    if out.skipped_from is None:
        assert result.skipped is None, f"{name}: only the probe skipped ({result.skipped})"
        if result.agree:
            # The probe agreed with the engine, the program with the probe: every test is ok.
            assert all(line.startswith("ok ") for line in out.tap), out.tap
        return
    assert out.skip_reason.strip()
    for line in out.tap:
        step = re.search(r" - step (\d+) ", line)
        if step is not None:
            assert ("# SKIP " in line) == (int(step.group(1)) >= out.skipped_from), line
    impossible = step_code(scenario, out.skipped_from).impossible
    if impossible is not None:
        # No program performs this step (the generator says so): the probe may still have.
        assert out.skip_reason == impossible
    elif out.skip_reason.startswith(HUGE_REFUSALS):
        # The kernel gave this run no huge page (the probe reserves hugetlb pages of its own as
        # root; the program never changes the machine's settings): another experiment.
        pass
    elif ran > 0 and result.skipped is not None:
        # The probe stopped at the same step, for the same missing facility or refusal.
        assert out.skipped_from == ran + 1, (out.skipped_from, ran, out.skip_reason)
    else:
        # The probe runs nothing when the scenario needs what this kernel lacks; the program
        # runs the steps before the first that needs it.
        assert result.skipped is not None, f"{name}: the program skipped ({out.skip_reason})"


@pytest.fixture(scope="module")
def binaries() -> Iterator[dict[str, Path]]:
    """Every preset's program, compiled once, as many at a time as there are CPUs."""
    with tempfile.TemporaryDirectory(prefix="cowlab-c-") as tmp:
        where = Path(tmp)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            jobs = {
                name: pool.submit(build, program(parse(preset.text)), where, name)
                for name, preset in PRESETS.items()
            }
            yield {name: job.result() for name, job in jobs.items()}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_presets_program_observes_what_the_probe_observes(
    binaries: dict[str, Path], name: str
) -> None:
    out = run_program(binaries[name])
    check_against_probe(parse(PRESETS[name].text), out, name)


def test_a_program_that_ran_every_step_behaves_like_this_kernels_era(
    binaries: dict[str, Path],
) -> None:
    out = run_program(binaries["cve-2020-29374"])
    assert out.skipped_from is None
    assert out.tap and all(line.startswith("ok ") for line in out.tap), out.tap
    # 6.2 and every era since 5.8 read the old data; 4.8 and 5.7 leak the child's write.
    assert "4.8" not in out.behaves_like and "5.7" not in out.behaves_like
    assert "6.2" in out.behaves_like


@settings(
    max_examples=fuzz_examples(4),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=scenarios(max_commands=12, verbs=RANDOM_VERBS))
def test_a_random_scenarios_program_observes_what_the_probe_observes(text: str) -> None:
    scenario = parse(text)
    if not scenario.commands or any(
        isinstance(cmd, c.Mmap) and cmd.backing != "base" for cmd in scenario.commands
    ):
        return
    with tempfile.TemporaryDirectory(prefix="cowlab-c-") as tmp:
        # -O0: the sample is about behaviour; -O2 -Werror is held above for every preset.
        binary = build(program(scenario), Path(tmp), "random", ("cc", "-O0", "-Wall", "-Werror"))
        out = run_program(binary)
    check_against_probe(scenario, out, "random")


# Scenarios where the program once disagreed with the probe, kept as regressions.
REGRESSIONS = {
    # A forked child gets a userfaultfd of its own: it must register the page again, not take
    # its parent's registration for its own (the program answered ENOENT, no userfault).
    "uffd-wp-in-a-child": "P mmap a\nP write a v1\nP uffd-wp a on\nP fork C\n"
    "C uffd-wp a on\nC write a c1\nC read a",
    # `pte-map` of a 4 KiB page does nothing, as in the simulator and the probe; the program
    # did cow.c's mprotect() trick anyway and reported the kernel's ENOMEM for the gap beside.
    "pte-map-of-a-base-page": "P mmap a\nP write a v1\nP pte-map a\nP read a",
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_scenarios_the_program_once_got_wrong(name: str, tmp_path: Path) -> None:
    scenario = parse(REGRESSIONS[name])
    out = run_program(build(program(scenario), tmp_path, "regression"))
    check_against_probe(scenario, out, name)


# Run the program from a child subreaper: whatever the program leaves behind (a process it did
# not reap, an orphan of one) comes back to this script, which reports it.
ADOPT_LEFTOVERS = """
import os, subprocess, sys, time
from app.probe.libc import set_child_subreaper
set_child_subreaper()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60)
time.sleep(0.2)
try:
    pid, _ = os.waitpid(-1, os.WNOHANG)
    print(f"left behind: {'a running process' if pid == 0 else f'process {pid}'}")
except ChildProcessError:
    print("nothing left behind")
sys.stdout.write(out.stdout)
"""


@pytest.mark.parametrize(
    ("timeout", "ending"),
    [("10", "# behaves like: "), ("0.000000001", "# skipped from step 1: timed out at step 1")],
)
def test_the_program_reaps_every_process_on_every_way_out(
    tmp_path: Path, timeout: str, ending: str
) -> None:
    # Forks, an orphan (C exits before its child D), a pipe and a ring held to the end.
    text = (
        "P mmap a\nP write a v1\nP fork C\nC fork D\nP vmsplice a as p\nP iouring a as io\n"
        "C exit\nD write a d1\nD read a\np read"
    )
    binary = build(program(parse(text)), tmp_path, "reaped")
    result = subprocess.run(
        [sys.executable, "-c", ADOPT_LEFTOVERS, str(binary), timeout],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nothing left behind\n"), result.stdout
    assert ending in result.stdout


def hugetlb_pages_free() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def test_a_pte_mapped_thp_is_copied_on_write_for_a_child(tmp_path: Path) -> None:
    text = (
        "P mmap a backing=thp\nP write a v1\nP pte-map a\nP fork C\nP write a v2\n"
        "C read a\nP read a"
    )
    out = run_program(build(program(parse(text)), tmp_path, "thp"))
    if out.skipped_from is not None:
        # THP disabled, or the kernel could not find 2 MiB: the program says so, never guesses.
        assert out.skipped_from in (1, 3) and "THP" in out.skip_reason, out.skip_reason
        pytest.skip(out.skip_reason)
    assert out.observed == [(6, "v1"), (7, "v2")]


def test_a_hugetlb_page_needs_a_free_page_of_the_pool(tmp_path: Path) -> None:
    text = "P mmap a backing=hugetlb\nP write a v1\nP fork C\nP write a v2\nC read a\nP read a"
    out = run_program(build(program(parse(text)), tmp_path, "hugetlb"))
    if hugetlb_pages_free() == 0:
        # The program never changes the machine's settings: an empty pool is a skip that says so.
        assert out.skipped_from == 1
        assert out.skip_reason.startswith("no free 2 MiB hugetlb page")
        return
    if out.skipped_from is not None:  # the pool ran dry for the child's copy
        pytest.skip(out.skip_reason)
    assert out.observed == [(5, "v1"), (6, "v2")]


def test_a_program_exits_1_when_the_kernel_contradicts_its_era(tmp_path: Path) -> None:
    source = program(parse(PRESETS["cve-2020-29374"].text))
    # Every era's expectations rewritten to a value no step writes: this kernel contradicts them.
    tampered = source.replace('\t"BORING-DATA",\n', '\t"never-written",\n', 1)
    assert tampered != source
    honest = subprocess.run([str(build(source, tmp_path, "honest"))], capture_output=True)
    lying = subprocess.run(
        [str(build(tampered, tmp_path, "tampered"))], capture_output=True, text=True
    )
    assert honest.returncode == 0
    assert lying.returncode == 1 and "\nnot ok " in lying.stdout


def test_a_run_cut_short_before_any_observation_names_no_era(tmp_path: Path) -> None:
    binary = build(program(parse(PRESETS["cow-basic"].text)), tmp_path, "short")
    done = subprocess.run([str(binary), "0.000000001"], capture_output=True, text=True)
    assert "# skipped from step 1: timed out at step 1" in done.stdout
    assert "# behaves like no era in particular" in done.stdout
    assert parse_output(done.stdout).behaves_like == []
    assert done.returncode == 0


def test_a_trigraph_at_the_end_of_a_title_or_note_still_builds_under_c11(tmp_path: Path) -> None:
    # C11 replaces trigraphs even in comments: `??/` ending a comment line is a backslash that
    # splices the next line in, which -Wall (-Wtrigraphs) turns into an error under -Werror.
    text = "#title what now??/\nP mmap a\n#: really??/\nP write a v1 # why??/\nP read a"
    source = program(parse(text))
    assert "what now?\\?/" in source
    binary = build(source, tmp_path, "trigraph", ("gcc", "-std=c11", "-Wall", "-Wextra", "-Werror"))
    assert run_program(binary).observed == [(3, "v1")]


def test_a_program_run_as_root_sees_copies_as_the_probes_frames_do(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("pagemap shows frame numbers to root only")
    scenario = parse(PRESETS["cow-vmsplice-unmap-child"].text)
    binary = build(program(scenario), tmp_path, "frames")
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    frames = re.findall(r"^observed (\d+) (frame \w+)$", done.stdout, re.MULTILINE)
    result = probe_scenario(scenario, name="frames", frames=True)
    probed = [
        (str(o.step), o.value) for o in result.kernel_observed if o.value.startswith("frame ")
    ]
    # The program does not tell a first touch ("new"): only copies and reuses.
    assert frames == [p for p in probed if p[1] != "frame new"] and frames
    # The parent's store after the child unmapped copies on this kernel's era (the pipe still
    # holds the page), which 5.8's, reusing it, does not: "behaves like" tells them apart now.
    like = parse_output(done.stdout).behaves_like
    assert "6.15" in like or "6.2" in like
    assert "5.8" not in like


def test_a_program_says_in_words_what_the_engine_says_of_a_step(tmp_path: Path) -> None:
    text = "P mmap a\nP write a v1\nP uffd-wp a on\nP write a v2\nP read a"
    binary = build(program(parse(text)), tmp_path, "words")
    done = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    if "# skipped from step" in done.stdout:
        pytest.skip(f"this kernel cannot run it: {done.stdout.splitlines()[-2]}")
    assert re.search(r"^# step 4 `P write a v2`: userfault: .*\(era [\d.]+\)$", done.stdout, re.M)
