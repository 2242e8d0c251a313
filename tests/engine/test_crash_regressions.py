"""Crashes the fuzzer found (tests/engine/test_fuzz_engine.py), each as its minimal scenario.

Each must replay under every era, keep the kernel's accounting laws at every step, and mean what
the kernel would do. They are also explicit examples of the fuzz test, so a change to the
strategy cannot lose them.
"""

from __future__ import annotations

import pytest

from engine.policies import POLICIES, Policy
from engine.syntax import parse
from engine.trace import Trace, replay
from tests.engine.invariants import check_state

EVERY_POLICY = pytest.mark.parametrize("policy", list(POLICIES.values()), ids=list(POLICIES))


def replay_checked(text: str, policy: Policy) -> Trace:
    trace = replay(parse(text), policy)
    for step in trace.steps:
        check_state(step.state, policy)
    return trace


# A refused mmap of an undeclared file used to start the process anyway; the verdicts' model of
# what each process should see skips refused steps, so the next command on that process raised
# KeyError in engine/verdicts.py (a 500 on every route, a traceback in `cowlab run`).
UNDECLARED_FILE = (
    "P mmap b file=F; P fork D",
    "P mmap b file=F; P exit",
    "P mmap b file=F; P munmap b",
    "P mmap b file=F shared ro; P mmap a; P fork C; C read a",
)


@EVERY_POLICY
@pytest.mark.parametrize("text", UNDECLARED_FILE)
def test_a_refused_mmap_of_an_undeclared_file_starts_no_process(text: str, policy: Policy) -> None:
    trace = replay_checked(text, policy)
    first = trace.steps[1]
    assert [e.kind for e in first.events] == ["efault"]
    assert "P" not in first.state.procs


@EVERY_POLICY
def test_the_process_a_refused_mmap_named_can_start_with_a_later_mmap(policy: Policy) -> None:
    trace = replay_checked("P mmap b file=F; P mmap a; P write a v1; P fork C; C read a", policy)
    assert trace.steps[-1].observed is not None
    assert trace.steps[-1].observed.text == "v1"
    assert trace.verdicts == ()


# Paging out a page still in the swap cache used to give it a second swap slot; dropping the
# cache for the new slot freed the frame the old slot still named, and the child's swap-in
# through the old slot raised KeyError in swap_in.
SWAP_TWICE = "P mmap a; P write a v1; P swapout a; P fork C; P read a; P swapout a; C read a"


@EVERY_POLICY
def test_paging_out_a_page_in_the_swap_cache_reuses_its_swap_entry(policy: Policy) -> None:
    trace = replay_checked(SWAP_TWICE, policy)
    second_pageout = trace.steps[6].state
    slots = {proc.ptes["a"].swap_slot for proc in second_pageout.procs.values()}
    assert len(slots) == 1 and None not in slots
    (slot,) = second_pageout.swap.values()
    assert slot.swapcount == 2
    last = trace.steps[-1]
    assert last.observed is not None and last.observed.text == "v1"
    assert trace.verdicts == ()


@EVERY_POLICY
def test_a_page_paged_out_again_is_written_back_to_its_swap_slot(policy: Policy) -> None:
    # The pipe keeps the page in the swap cache after the first pageout, P's write lands in it
    # (or in a copy), and the second pageout writes the page back: the slot holds v2.
    trace = replay_checked(
        "P mmap a; P write a v1; P vmsplice a as pipe; P swapout a; P write a v2; P swapout a",
        policy,
    )
    state = trace.steps[-1].state
    (pte_slot,) = (proc.ptes["a"].swap_slot for proc in state.procs.values())
    assert pte_slot is not None
    assert state.swap[pte_slot].value.text == "v2"
