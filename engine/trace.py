"""Replay a scenario under a policy into a trace: one step per command, each with its state.

`replay` is deterministic and pure: the same text and policy give the same trace in any process.
`trace_to_json` is the JSON contract of DESIGN.md §4 (CLI `--json` and `POST /api/v1/simulate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from engine.commands import Command, Scenario
from engine.events import Event
from engine.machine import apply
from engine.policies import Policy, get_policy
from engine.state import State, Value, empty_state
from engine.syntax import format_command, parse, reference_names
from engine.verdicts import VERDICT_KINDS, Verdict, VerdictKind, derive_verdicts

__all__ = [
    "VERDICT_KINDS",
    "Step",
    "Trace",
    "Verdict",
    "VerdictKind",
    "extend",
    "replay",
    "state_to_json",
    "trace_to_json",
]


class Step(NamedTuple):
    """Step 0 is the empty machine (``command`` None); step k is the state after command k."""

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: a step number
    command: Command | None
    line: int | None
    state: State
    events: tuple[Event, ...]
    observed: Value | None = None

    @property
    def text(self) -> str:
        """The command's canonical text ("" for step 0); computed when asked, since most
        consumers of a trace show a handful of steps."""
        return "" if self.command is None else format_command(self.command)


@dataclass(frozen=True, slots=True)
class Trace:
    policy: Policy
    scenario: Scenario
    steps: tuple[Step, ...]
    verdicts: tuple[Verdict, ...]

    def verdict_kinds(self) -> tuple[VerdictKind, ...]:
        """The kinds that occur, in the fixed order of VERDICT_KINDS."""
        present = {v.kind for v in self.verdicts}
        return tuple(k for k in VERDICT_KINDS if k in present)


def replay(scenario: Scenario | str, policy: Policy | str) -> Trace:
    if isinstance(scenario, str):
        scenario = parse(scenario)
    if isinstance(policy, str):
        policy = get_policy(policy)
    state = empty_state()
    steps = [Step(0, None, None, state, ())]
    lines = scenario.lines or (None,) * len(scenario.commands)
    names = reference_names(scenario.commands)
    for index, (command, line, ref_name) in enumerate(
        zip(scenario.commands, lines, names, strict=True), 1
    ):
        result = apply(state, command, policy, index, ref_name)
        state = result.state
        steps.append(Step(index, command, line, state, result.events, result.observed))
    return Trace(policy, scenario, tuple(steps), derive_verdicts(steps))


def extend(trace: Trace, commands: Sequence[Command]) -> Trace:
    """The trace of ``trace.scenario`` followed by ``commands``, without replaying the prefix.

    Equal to ``replay`` of the longer scenario (a test holds it to that): every step depends
    only on the state before it, and verdicts are derived again over the whole trace.
    """
    all_commands = trace.scenario.commands + tuple(commands)
    names = reference_names(all_commands)
    steps = list(trace.steps)
    state = steps[-1].state
    for index in range(len(steps), len(all_commands) + 1):
        command = all_commands[index - 1]
        result = apply(state, command, trace.policy, index, names[index - 1])
        state = result.state
        steps.append(Step(index, command, None, state, result.events, result.observed))
    scenario = Scenario(all_commands)
    return Trace(trace.policy, scenario, tuple(steps), derive_verdicts(steps))


def value_to_json(value: Value) -> dict[str, Any]:
    return {"text": value.text, "writer": value.writer, "via": value.via, "step": value.step}


def state_to_json(state: State) -> dict[str, Any]:
    return {
        "processes": [
            {
                "name": proc.name,
                "parent": proc.parent,
                "has_pinned": proc.has_pinned,
                "pages": [
                    {
                        "page": page,
                        "vma": {
                            "file": vma.file,
                            "shared": vma.shared,
                            "write": vma.write,
                            "maywrite": vma.maywrite,
                            "dontcopy": vma.dontcopy,
                            "uffd_wp": vma.uffd_wp,
                            "softdirty_tracking": vma.softdirty_tracking,
                        },
                        "pte": None
                        if (pte := proc.ptes.get(page)) is None
                        else {
                            "pfn": pte.pfn,
                            "swap_slot": pte.swap_slot,
                            "writable": pte.writable,
                            "dirty": pte.dirty,
                            "softdirty": pte.softdirty,
                            "uffd_wp": pte.uffd_wp,
                            "swap_exclusive": pte.swap_exclusive,
                        },
                    }
                    for page, vma in proc.vmas.items()
                ],
            }
            for proc in state.procs.values()
        ],
        "frames": [
            {
                "pfn": f.pfn,
                "kind": f.kind,
                "value": value_to_json(f.value),
                "refcount": f.refcount,
                "mapcount": f.mapcount,
                "pins": f.pins,
                "gets": f.gets,
                "swapcache": f.swapcache,
                "file": f.file,
                "anon_exclusive": f.anon_exclusive,
            }
            for f in sorted(state.frames.values(), key=lambda f: f.pfn)
        ],
        "references": [
            {
                "name": r.name,
                "kind": r.kind,
                "owner": r.owner,
                "page": r.page,
                "pfn": r.pfn,
                "foll": list(r.foll),
                "wrong_side_ok": r.wrong_side_ok,
                "step": r.step,
            }
            for r in state.refs.values()
        ],
        "swap": [
            {
                "slot": s.slot,
                "value": value_to_json(s.value),
                "swapcount": s.swapcount,
                "cache_pfn": s.cache_pfn,
            }
            for s in sorted(state.swap.values(), key=lambda s: s.slot)
        ],
        "files": [
            {"name": f.name, "value": value_to_json(f.value), "cache_pfn": f.cache_pfn}
            for f in state.files.values()
        ],
    }


def event_to_json(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "text": event.text,
        "rule": event.rule,
        "kernel": event.kernel,
        "commit": event.commit,
        "proc": event.proc,
        "page": event.page,
        "ref": event.ref,
        "pfn": event.pfn,
        "new_pfn": event.new_pfn,
        "inputs": dict(event.inputs),
    }


def trace_to_json(trace: Trace) -> dict[str, Any]:
    return {
        "policy": trace.policy.id,
        "steps": [
            {
                "index": step.index,
                "command": step.text,
                "line": step.line,
                "observed": None if step.observed is None else step.observed.text,
                "observed_value": None if step.observed is None else value_to_json(step.observed),
                "events": [event_to_json(e) for e in step.events],
                "state": state_to_json(step.state),
            }
            for step in trace.steps[1:]
        ],
        "verdicts": [
            {"kind": v.kind, "step": v.step, "text": v.text, "subject": v.subject}
            for v in trace.verdicts
        ],
    }
