"""Hypothesis stateful tests: random command sequences under every policy keep the kernel's
accounting laws, and replaying a prefix gives exactly the first steps of the full trace."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from engine import commands as c
from engine.machine import apply
from engine.policies import POLICIES, Policy
from engine.state import State, empty_state
from engine.syntax import format_scenario, parse, reference_names
from engine.trace import Step, extend, replay
from tests.engine.invariants import check_state

PROCS = ("P", "C", "D", "E")
PAGES = ("a", "b")
HUGE = "h"  # a huge page (DESIGN §10), mapped by P beside the base pages
REFS = ("r1", "r2", "r3", "r4")
VALUES = ("x", "y", "z")
REFUSALS = ("error", "efault", "segv")

procs = st.sampled_from(PROCS)
pages = st.sampled_from((*PAGES, HUGE))
refs = st.sampled_from(REFS)
values = st.sampled_from(VALUES)


class Kernel(RuleBasedStateMachine):
    """Rules are engine commands; invariants are the kernel's accounting laws."""

    policy: Policy
    state: State

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[c.Command] = []
        self.states: list[State] = []

    @initialize(
        policy_id=st.sampled_from(list(POLICIES)),
        with_file=st.booleans(),
        backing=st.sampled_from(["thp", "hugetlb"]),
    )
    def start(self, policy_id: str, with_file: bool, backing: c.Backing = "thp") -> None:
        self.policy = POLICIES[policy_id]
        self.state = empty_state()
        self.states = [self.state]
        self.run(c.Mmap("P", PAGES))
        self.run(c.Mmap("P", (HUGE,), backing=backing))
        if with_file:
            self.run(c.FileDecl("F", "f0"))
            self.run(c.Mmap("D", ("a",), file="F"))
            self.run(c.Mmap("D", ("b",), file="F", shared=True))

    def run(self, command: c.Command) -> None:
        ref_name = reference_names([*self.commands, command])[-1]
        result = apply(self.state, command, self.policy, len(self.commands) + 1, ref_name)
        if result.events and result.events[0].kind in REFUSALS:
            # Refused before its first change: the command must leave no trace (issue 9).
            assert result.state == self.state, f"refused {command} changed the state"
        self.commands.append(command)
        self.state = result.state
        self.states.append(self.state)

    @rule(proc=procs, page=pages)
    def read(self, proc: str, page: str) -> None:
        self.run(c.Read(proc, page))

    @rule(proc=procs, page=pages, value=st.none() | values)
    def write(self, proc: str, page: str, value: str | None) -> None:
        self.run(c.Write(proc, page, value))

    @rule(proc=procs, child=procs)
    def fork(self, proc: str, child: str) -> None:
        self.run(c.Fork(proc, child))

    @precondition(lambda self: len(self.state.procs) > 1)
    @rule(proc=procs)
    def exit(self, proc: str) -> None:
        self.run(c.Exit(proc))

    @rule(proc=procs, page=pages, how=st.sampled_from(["munmap", "dontneed", "swapout"]))
    def drop(self, proc: str, page: str, how: str) -> None:
        kinds: dict[str, Callable[[str, str], c.Command]] = {
            "munmap": c.Munmap,
            "dontneed": c.Dontneed,
            "swapout": c.Swapout,
        }
        command = kinds[how]
        self.run(command(proc, page))

    @rule(proc=procs, page=pages, dofork=st.booleans())
    def dontfork(self, proc: str, page: str, dofork: bool) -> None:
        self.run(c.Dontfork(proc, page, dofork))

    @rule(proc=procs, page=pages, writable=st.booleans())
    def mprotect(self, proc: str, page: str, writable: bool) -> None:
        self.run(c.Mprotect(proc, page, writable))

    @rule(proc=procs, page=pages)
    def pte_map(self, proc: str, page: str) -> None:
        self.run(c.PteMap(proc, page))

    @rule(proc=procs)
    def clear_softdirty(self, proc: str) -> None:
        self.run(c.ClearSoftdirty(proc))

    @rule(proc=procs, page=pages, on=st.booleans())
    def uffd_wp(self, proc: str, page: str, on: bool) -> None:
        self.run(c.UffdWp(proc, page, on))

    @rule(
        proc=procs,
        page=pages,
        kind=st.sampled_from(["vmsplice", "get", "pin", "iouring"]),
        write=st.booleans(),
        longterm=st.booleans(),
        fast=st.booleans(),
        name=st.none() | refs,
        wrong_side_ok=st.booleans(),
    )
    def take_ref(
        self,
        proc: str,
        page: str,
        kind: c.RefKind,
        write: bool,
        longterm: bool,
        fast: bool,
        name: str | None,
        wrong_side_ok: bool,
    ) -> None:
        self.run(
            c.TakeRef(
                proc,
                page,
                kind,
                write=(write and kind in ("get", "pin")) or kind == "iouring",
                longterm=(longterm and kind == "pin") or kind == "iouring",
                fast=fast and kind == "pin",
                name=name,
                wrong_side_ok=wrong_side_ok and kind in ("get", "pin"),
            )
        )

    @rule(proc=procs, page=pages, value=values, race=st.booleans())
    def forcewrite(self, proc: str, page: str, value: str, race: bool) -> None:
        self.run(c.ForceWrite(proc, page, value, race))

    def known_refs(self) -> list[str]:
        """Names the text form knows as references (the only ones a reference verb can take)."""
        return sorted({n for n in reference_names(self.commands) if n is not None})

    @precondition(lambda self: bool(self.known_refs()))
    @rule(data=st.data(), verb=st.sampled_from(["read", "write", "release"]), value=values)
    def use_ref(self, data: st.DataObject, verb: str, value: str) -> None:
        target = data.draw(st.sampled_from(self.known_refs()))
        commands: dict[str, c.Command] = {
            "read": c.RefRead(target),
            "write": c.RefWrite(target, value),
            "release": c.RefRelease(target),
        }
        command = commands[verb]
        self.run(command)

    @invariant()
    def accounting_laws_hold(self) -> None:
        if self.states:
            check_state(self.state, self.policy)

    def teardown(self) -> None:
        if not self.commands:
            return
        scenario = parse(format_scenario(c.Scenario(tuple(self.commands))))
        trace = replay(scenario, self.policy)
        # The trace of the whole scenario is the stepwise states, step for step.
        assert [s.state for s in trace.steps] == self.states
        # And a prefix replays to the first steps of the full trace.
        cut = len(self.commands) // 2
        prefix = replay(c.Scenario(scenario.commands[:cut]), self.policy)
        assert [_essence(s) for s in prefix.steps] == [_essence(s) for s in trace.steps[: cut + 1]]
        # Extending the prefix's trace by the rest gives the full trace, verdicts included.
        extended = extend(prefix, scenario.commands[cut:])
        assert [_essence(s) for s in extended.steps] == [_essence(s) for s in trace.steps]
        assert extended.verdicts == trace.verdicts


def _essence(step: Step) -> tuple[object, ...]:
    """A step without its source line (a prefix built from commands has no text lines)."""
    return (step.index, step.command, step.text, step.state, step.events, step.observed)


Kernel.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestKernelInvariants = Kernel.TestCase


two_procs = st.sampled_from(PROCS[:2])


class SwapKernel(RuleBasedStateMachine):
    """Swap-heavy scenarios: paging out, faulting back and forking around the swap cache, the
    paths where a page can be in the swap cache and mapped at once. Without the fix for issue
    14's crash (a second swap slot for a swap-cache page) this finds it."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = Kernel()

    @initialize(policy_id=st.sampled_from(list(POLICIES)))
    def start(self, policy_id: str) -> None:
        self.kernel.start(policy_id, with_file=False)

    @rule(proc=two_procs, verb=st.sampled_from(["read", "write", "swapout", "dontneed"]))
    def touch(self, proc: str, verb: str) -> None:
        page = "a"  # one page, so that swap-outs, faults and forks meet on it
        commands: dict[str, c.Command] = {
            "read": c.Read(proc, page),
            "write": c.Write(proc, page, None),
            "swapout": c.Swapout(proc, page),
            "dontneed": c.Dontneed(proc, page),
        }
        command = commands[verb]
        self.kernel.run(command)

    @rule(proc=two_procs, child=two_procs)
    def fork(self, proc: str, child: str) -> None:
        self.kernel.run(c.Fork(proc, child))

    @rule(proc=two_procs)
    def exit(self, proc: str) -> None:
        self.kernel.run(c.Exit(proc))

    @rule(proc=two_procs, kind=st.sampled_from(["vmsplice", "pin"]))
    def take_ref(self, proc: str, kind: c.RefKind) -> None:
        self.kernel.run(c.TakeRef(proc, "a", kind))

    @invariant()
    def accounting_laws_hold(self) -> None:
        if self.kernel.states:
            check_state(self.kernel.state, self.kernel.policy)

    def teardown(self) -> None:
        self.kernel.teardown()


SwapKernel.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestSwapInvariants = SwapKernel.TestCase


class HugeKernel(RuleBasedStateMachine):
    """Huge-page-heavy scenarios: one THP or hugetlb page that forks, pins, PTE-mapping, COW,
    swap-out and exits all meet on, so the folio's counters (entire mapcount, per-subpage
    mapcounts and exclusive bits, exact pincount, the rest of the folio) are stressed."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = Kernel()

    @initialize(
        policy_id=st.sampled_from(list(POLICIES)), backing=st.sampled_from(["thp", "hugetlb"])
    )
    def start(self, policy_id: str, backing: c.Backing) -> None:
        self.kernel.start(policy_id, with_file=False, backing=backing)

    @rule(
        proc=two_procs,
        verb=st.sampled_from(
            ["read", "write", "swapout", "dontneed", "pte-map", "mprotect ro", "mprotect rw"]
        ),
    )
    def touch(self, proc: str, verb: str) -> None:
        commands: dict[str, c.Command] = {
            "read": c.Read(proc, HUGE),
            "write": c.Write(proc, HUGE, None),
            "swapout": c.Swapout(proc, HUGE),
            "dontneed": c.Dontneed(proc, HUGE),
            "pte-map": c.PteMap(proc, HUGE),
            "mprotect ro": c.Mprotect(proc, HUGE, False),
            "mprotect rw": c.Mprotect(proc, HUGE, True),
        }
        self.kernel.run(commands[verb])

    @rule(proc=two_procs, child=two_procs)
    def fork(self, proc: str, child: str) -> None:
        self.kernel.run(c.Fork(proc, child))

    @rule(proc=two_procs)
    def exit(self, proc: str) -> None:
        self.kernel.run(c.Exit(proc))

    @rule(proc=two_procs, kind=st.sampled_from(["vmsplice", "pin", "iouring", "get"]))
    def take_ref(self, proc: str, kind: c.RefKind) -> None:
        iouring = kind == "iouring"
        self.kernel.run(c.TakeRef(proc, HUGE, kind, write=iouring, longterm=iouring))

    @precondition(lambda self: bool(self.kernel.known_refs()))
    @rule(data=st.data(), verb=st.sampled_from(["read", "write", "release"]))
    def use_ref(self, data: st.DataObject, verb: str) -> None:
        target = data.draw(st.sampled_from(self.kernel.known_refs()))
        commands: dict[str, c.Command] = {
            "read": c.RefRead(target),
            "write": c.RefWrite(target, "dma"),
            "release": c.RefRelease(target),
        }
        self.kernel.run(commands[verb])

    @invariant()
    def accounting_laws_hold(self) -> None:
        if self.kernel.states:
            check_state(self.kernel.state, self.kernel.policy)

    def teardown(self) -> None:
        self.kernel.teardown()


HugeKernel.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestHugeInvariants = HugeKernel.TestCase
