"""Regressions of issue 9/14: a refused command leaves no trace, and paging out a page that is
already in the swap cache reuses its swap entry. Each runs through the engine and `cowlab run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main as cli
from engine import commands as c
from engine.machine import apply
from engine.policies import POLICIES, get_policy
from engine.state import empty_state
from engine.trace import replay
from tests.engine.invariants import check_state

UNDECLARED_FILE = ["P mmap b file=F", "P mmap b file=F shared", "P mmap b file=F shared ro"]
AFTER = ["P fork D", "P exit", "P munmap b", "P read b", "D fork P"]

SWAP_TWICE = """\
P mmap a
P write a v1
P swapout a
P fork C
P read a
P swapout a
C read a
P read a
"""


@pytest.mark.parametrize("mmap", UNDECLARED_FILE)
@pytest.mark.parametrize("then", AFTER)
def test_a_refused_mmap_starts_no_process(mmap: str, then: str) -> None:
    for policy in POLICIES.values():
        trace = replay(f"{mmap}\n{then}\n", policy)
        refused = trace.steps[1]
        assert [e.kind for e in refused.events] == ["efault"]
        assert refused.state == trace.steps[0].state, "the refused mmap changed the state"
        assert "P" not in trace.steps[2].state.procs
        assert trace.steps[2].events[0].kind == "error"  # there is no process P
        check_state(trace.steps[-1].state, policy)


def test_a_refused_mmap_of_an_existing_process_maps_nothing() -> None:
    trace = replay("P mmap a\nP mmap b file=F\nP mmap b\n", "latest")
    assert trace.steps[2].state == trace.steps[1].state
    assert set(trace.steps[3].state.procs["P"].vmas) == {"a", "b"}


def test_the_refusal_is_the_first_and_only_thing_a_validation_refusal_does() -> None:
    """Every refusal raised before the command's first change leaves the state untouched."""
    policy = get_policy("latest")
    state = apply(empty_state(), c.Mmap("P", ("a",)), policy, 1).state
    refused: list[c.Command] = [
        c.Mmap("R", ("a",), file="nope"),
        c.Mmap("P", ("a",)),
        c.Fork("P", "P"),
        c.Write("Q", "a", "x"),
        c.Write("P", "b", "x"),
        c.TakeRef("P", "b", "pin"),
        c.RefRelease("r9"),
        c.Swapout("P", "b"),
        c.Mprotect("P", "b", True),
        c.UffdWp("Q", "a", True),
    ]
    for step, command in enumerate(refused, start=2):
        result = apply(state, command, policy, step)
        assert result.events[0].kind in ("error", "efault", "segv"), command
        assert result.state == state, command


@pytest.mark.parametrize("policy_id", list(POLICIES))
def test_paging_out_a_swap_cache_page_again_reuses_its_entry(policy_id: str) -> None:
    trace = replay(SWAP_TWICE, policy_id)
    for step in trace.steps:
        check_state(step.state, trace.policy)
    after_second_swapout = trace.steps[6].state
    # One slot, used by both swap PTEs: try_to_unmap_one duplicated the existing entry.
    assert len(after_second_swapout.swap) == 1
    (slot,) = after_second_swapout.swap.values()
    assert slot.swapcount == 2
    assert after_second_swapout.procs["P"].ptes["a"].swap_slot == slot.slot
    assert after_second_swapout.procs["C"].ptes["a"].swap_slot == slot.slot
    (swapped,) = [e for e in trace.steps[6].events if e.kind == "swap"]
    assert "keeps its slot" in swapped.text
    assert [s.observed.text for s in trace.steps if s.observed is not None] == ["v1"] * 3


def test_cowlab_run_replays_both_crashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, text in [
        ("mmap.cow", "P mmap b file=F\nP fork D\nP exit\n"),
        ("swap.cow", SWAP_TWICE),
    ]:
        path = tmp_path / name
        path.write_text(text)
        assert cli.main(["run", str(path), "--policy", "all"]) == 0, name
        assert cli.main(["run", str(path), "--json"]) == 0, name
    out = capsys.readouterr().out
    assert "Traceback" not in out
