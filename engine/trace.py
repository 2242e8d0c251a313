"""Replay a scenario under a policy into a trace: one step per command, each with its state.

`replay` is deterministic and pure: the same text and policy give the same trace in any process.
`traces_json_bytes` is the JSON contract of DESIGN.md §4 (CLI `--json` and
`POST /api/v1/simulate`); `trace_to_json` is the whole trace, for in-process checks only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

import orjson

from engine.commands import Command, Scenario
from engine.events import Event
from engine.frame_table import FrameTable
from engine.gc_pause import collector_paused
from engine.machine import apply
from engine.policies import Policy, get_policy
from engine.state import File, Frame, Proc, Pte, Ref, State, SwapSlot, Value, Vma, empty_state
from engine.syntax import format_command, parse, reference_names
from engine.verdicts import VERDICT_KINDS, Verdict, VerdictKind, derive_verdicts

__all__ = [
    "answer_to_json",
    "DEFAULT_STATES",
    "MAX_JSON_BYTES",
    "MAX_STATE_STEPS",
    "MAX_STEP_EVENTS",
    "VERDICT_KINDS",
    "OutputTooLarge",
    "StatesChoice",
    "Step",
    "Trace",
    "Verdict",
    "VerdictKind",
    "extend",
    "replay",
    "check_states",
    "state_changes",
    "state_to_json",
    "trace_to_json",
    "traces_json_bytes",
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


def replay(
    scenario: Scenario | str,
    policy: Policy | str,
    *,
    between: Callable[[], None] | None = None,
) -> Trace:
    """The trace of ``scenario`` under ``policy``. ``between`` is called before each command and
    after the last: a caller's way to stop a long replay (the web app checks a request's deadline
    and its client's disconnect there, raising to stop); the engine itself keeps no clock."""
    if isinstance(scenario, str):
        scenario = parse(scenario)
    if isinstance(policy, str):
        policy = get_policy(policy)
    with collector_paused():
        state = empty_state()
        steps = [Step(0, None, None, state, ())]
        lines = scenario.lines or (None,) * len(scenario.commands)
        names = reference_names(scenario.commands)
        for index, (command, line, ref_name) in enumerate(
            zip(scenario.commands, lines, names, strict=True), 1
        ):
            if between is not None:
                between()
            result = apply(
                state, command, policy, index, ref_name, swap_device=scenario.annotations.swap
            )
            state = result.state
            steps.append(Step(index, command, line, state, result.events, result.observed))
        if between is not None:
            between()
        return Trace(policy, scenario, tuple(steps), derive_verdicts(steps))


def extend(trace: Trace, commands: Sequence[Command]) -> Trace:
    """The trace of ``trace.scenario`` followed by ``commands``, without replaying the prefix.

    Equal to ``replay`` of the longer scenario (a test holds it to that): every step depends
    only on the state before it, and verdicts are derived again over the whole trace.
    """
    all_commands = trace.scenario.commands + tuple(commands)
    names = reference_names(all_commands)
    with collector_paused():
        steps = list(trace.steps)
        state = steps[-1].state
        for index in range(len(steps), len(all_commands) + 1):
            command = all_commands[index - 1]
            result = apply(
                state,
                command,
                trace.policy,
                index,
                names[index - 1],
                swap_device=trace.scenario.annotations.swap,
            )
            state = result.state
            steps.append(Step(index, command, None, state, result.events, result.observed))
        scenario = Scenario(
            all_commands, remarks=trace.scenario.remarks, annotations=trace.scenario.annotations
        )
        return Trace(trace.policy, scenario, tuple(steps), derive_verdicts(steps))


# ---- the JSON contract (DESIGN.md §4)
#
# A full state at the limits (64 processes × 256 pages, their frames) is about 5 MB of JSON, so
# repeating it at each of 1,000 steps gave gigabytes. An answer carries every step's command,
# observed value and events, and states only as asked (`StatesChoice`): none, the last step's,
# the changes from the step before (from the empty machine for step 1, so that applying them in
# order rebuilds every state), or the full states of a few chosen steps. Whatever is asked,
# the encoded answer is held to `MAX_JSON_BYTES`; past it the serialiser stops and raises
# `OutputTooLarge`, which names the limit (the API answers 413, the CLI exits 2).

StatesChoice = Literal["none", "last", "changes"] | tuple[int, ...]
DEFAULT_STATES: StatesChoice = "last"
# Full states of at most this many chosen steps (a full state is under 6 MB at the limits: the
# cap on the whole answer, not this count, is what refuses the largest of them).
MAX_STATE_STEPS = 8
# A fork or an exit tells one event per page (257 for a 256-page process; an event's JSON is
# under 1.5 KB): a step lists its first `MAX_STEP_EVENTS` and counts the rest in
# ``events_omitted``, so 1,000 steps' events stay under 24 MB.
MAX_STEP_EVENTS = 16
MAX_JSON_BYTES = 48 * 1024 * 1024  # under the 50 MB worst-request budget of DESIGN.md §7


class OutputTooLarge(Exception):
    """The JSON of a trace would be larger than `MAX_JSON_BYTES`."""

    def __init__(self, limit: int, states: StatesChoice) -> None:
        asked = states if isinstance(states, str) else f"{len(states)} full states"
        super().__init__(
            f"the JSON of this trace (states: {asked}) is larger than cowlab answers "
            f'({limit:,} bytes); ask for fewer states (states: "none" or a few steps) or '
            "replay a shorter scenario"
        )
        self.limit = limit


def value_to_json(value: Value) -> dict[str, Any]:
    return {"text": value.text, "writer": value.writer, "via": value.via, "step": value.step}


def _page_json(page: str, vma: Vma, pte: Pte | None) -> dict[str, Any]:
    return {
        "page": page,
        # How the page is mapped: "pmd" (one PMD maps a whole huge page), "pte", or null.
        "level": None if pte is None or pte.pfn is None else pte.level,
        "vma": {
            "file": vma.file,
            "shared": vma.shared,
            "write": vma.write,
            "maywrite": vma.maywrite,
            "dontcopy": vma.dontcopy,
            "uffd_wp": vma.uffd_wp,
            "softdirty_tracking": vma.softdirty_tracking,
            "backing": vma.backing,
        },
        "pte": None
        if pte is None
        else {
            "pfn": pte.pfn,
            "swap_slot": pte.swap_slot,
            "writable": pte.writable,
            "dirty": pte.dirty,
            "softdirty": pte.softdirty,
            "uffd_wp": pte.uffd_wp,
            "swap_exclusive": pte.swap_exclusive,
            "rest_pfn": pte.rest_pfn,
        },
    }


def _proc_json(proc: Proc, pages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": proc.name, "parent": proc.parent, "has_pinned": proc.has_pinned, "pages": pages}


def _frame_json(f: Frame) -> dict[str, Any]:
    return {
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
        "folio": None if f.folio is None else _folio_json(f),
    }


def _folio_json(f: Frame) -> dict[str, Any]:
    """A large folio without 512 entries: the subpages that differ from the rest, and the rest.

    ``rest`` is the state most subpages share (``count`` of them); ``subpages`` lists every
    other one by index. A subpage's ``mapcount`` is page_mapcount(): its PTE mappings plus the
    folio's PMD mappings (``entire_mapcount``); ``anon_exclusive`` its PG_anon_exclusive bit.
    ``pincount`` is the exact folio->_pincount (a large folio's pins add 1 to the refcount
    each, not 1024).
    """
    assert f.folio is not None
    states = [(f.subpage_mapcount(i), f.subpage_anon_exclusive(i)) for i in range(f.nr_pages)]
    common = max(set(states), key=lambda s: (states.count(s), s))
    return {
        "kind": f.folio.kind,
        "order": f.folio.order,
        "nr_pages": f.nr_pages,
        "entire_mapcount": f.folio.entire_mapcount,
        "pincount": f.pins,
        "subpages": [
            {"index": i, "mapcount": m, "anon_exclusive": x}
            for i, (m, x) in enumerate(states)
            if (m, x) != common
        ],
        "rest": {
            "count": states.count(common),
            "mapcount": common[0],
            "anon_exclusive": common[1],
        },
    }


def _ref_json(r: Ref) -> dict[str, Any]:
    return {
        "name": r.name,
        "kind": r.kind,
        "owner": r.owner,
        "page": r.page,
        "pfn": r.pfn,
        "foll": list(r.foll),
        "wrong_side_ok": r.wrong_side_ok,
        "step": r.step,
    }


def _swap_json(s: SwapSlot) -> dict[str, Any]:
    return {
        "slot": s.slot,
        "value": value_to_json(s.value),
        "swapcount": s.swapcount,
        "cache_pfn": s.cache_pfn,
    }


def _file_json(f: File) -> dict[str, Any]:
    return {"name": f.name, "value": value_to_json(f.value), "cache_pfn": f.cache_pfn}


def state_to_json(state: State) -> dict[str, Any]:
    return {
        "processes": [
            _proc_json(
                proc,
                [_page_json(page, vma, proc.ptes.get(page)) for page, vma in proc.vmas.items()],
            )
            for proc in state.procs.values()
        ],
        "frames": [_frame_json(f) for f in sorted(state.frames.values(), key=lambda f: f.pfn)],
        "references": [_ref_json(r) for r in state.refs.values()],
        "swap": [_swap_json(s) for s in sorted(state.swap.values(), key=lambda s: s.slot)],
        "files": [_file_json(f) for f in state.files.values()],
    }


K = TypeVar("K")
V = TypeVar("V")


def _changed(before: Mapping[K, V], after: Mapping[K, V]) -> tuple[list[V], list[K]]:
    """(entries of ``after`` that are new or differ from ``before``, keys that are gone).

    Steps share every table they do not change, so an unchanged table costs one comparison.
    """
    if before is after:
        return [], []
    if isinstance(before, FrameTable) and isinstance(after, FrameTable):
        # Only the buckets a step wrote differ (`engine.frame_table`).
        return after.changed_since(before)  # type: ignore[return-value]
    changed = [v for k, v in after.items() if (old := before.get(k)) is not v and old != v]
    return changed, [k for k in before if k not in after]


def state_changes(before: State, after: State) -> dict[str, Any]:
    """What ``after`` changes from ``before``, in the entry shapes of `state_to_json`.

    ``processes`` lists each new or changed process with only its new or changed pages
    (``unmapped``: pages it no longer maps); the other tables list new or changed entries in
    full, and the keys of removed ones (``exited``, ``freed``, ``released``, ``swap_freed``).
    """
    procs: list[dict[str, Any]] = []
    for name, proc in after.procs.items():
        old = before.procs.get(name)
        if old is proc:
            continue
        if old is None:
            old = Proc(name, None, {}, {})
        pages = [
            _page_json(page, vma, proc.ptes.get(page))
            for page, vma in proc.vmas.items()
            if (old_vma := old.vmas.get(page)) is None
            or old_vma != vma
            or old.ptes.get(page) != proc.ptes.get(page)
        ]
        unmapped = [page for page in old.vmas if page not in proc.vmas]
        if pages or unmapped or (old.parent, old.has_pinned) != (proc.parent, proc.has_pinned):
            procs.append({**_proc_json(proc, pages), "unmapped": unmapped})
    frames, freed = _changed(before.frames, after.frames)
    refs, released = _changed(before.refs, after.refs)
    swap, swap_freed = _changed(before.swap, after.swap)
    files, _ = _changed(before.files, after.files)
    return {
        "processes": procs,
        "exited": [name for name in before.procs if name not in after.procs],
        "frames": [_frame_json(f) for f in sorted(frames, key=lambda f: f.pfn)],
        "freed": sorted(freed),
        "references": [_ref_json(r) for r in refs],
        "released": released,
        "swap": [_swap_json(s) for s in sorted(swap, key=lambda s: s.slot)],
        "swap_freed": sorted(swap_freed),
        "files": [_file_json(f) for f in files],
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


def check_states(states: StatesChoice, last: int) -> None:
    """Raise ValueError when ``states`` names a step the trace lacks or too many steps."""
    if isinstance(states, str):
        return
    if len(states) > MAX_STATE_STEPS:
        raise ValueError(f"states: at most {MAX_STATE_STEPS} steps, not {len(states)}")
    wrong = [k for k in states if not 1 <= k <= last]
    if wrong:
        raise ValueError(f"states: step {wrong[0]} is not a step of this trace (1–{last})")


def _step_json(trace: Trace, k: int, states: StatesChoice) -> dict[str, Any]:
    step = trace.steps[k]
    out: dict[str, Any] = {
        "index": step.index,
        "command": step.text,
        "line": step.line,
        "observed": None if step.observed is None else step.observed.text,
        "observed_value": None if step.observed is None else value_to_json(step.observed),
        "events": [event_to_json(e) for e in step.events[:MAX_STEP_EVENTS]],
        "events_omitted": max(0, len(step.events) - MAX_STEP_EVENTS),
    }
    last = len(trace.steps) - 1
    if states == "changes":
        out["changes"] = state_changes(trace.steps[k - 1].state, step.state)
    elif (states == "last" and k == last) or (not isinstance(states, str) and k in states):
        out["state"] = state_to_json(step.state)
    return out


def _verdicts_json(trace: Trace) -> list[dict[str, Any]]:
    return [
        {"kind": v.kind, "step": v.step, "text": v.text, "subject": v.subject}
        for v in trace.verdicts
    ]


def trace_to_json(trace: Trace) -> dict[str, Any]:
    """The whole trace: every step's full state and every event, without any size limit.

    For in-process uses only (the v=1 links' digests, determinism checks): a trace at the
    limits gives gigabytes of it. Answers to clients are `answer_to_json` / `traces_json_bytes`.
    """
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
        "verdicts": _verdicts_json(trace),
    }


def answer_to_json(trace: Trace, states: StatesChoice = DEFAULT_STATES) -> dict[str, Any]:
    """The answer's JSON object as `traces_json_bytes` encodes it, without its size limit
    (for small traces and tests)."""
    check_states(states, len(trace.steps) - 1)
    return {
        "policy": trace.policy.id,
        "states": states if isinstance(states, str) else list(states),
        "steps": [_step_json(trace, k, states) for k in range(1, len(trace.steps))],
        "verdicts": _verdicts_json(trace),
    }


def _dumps(value: object) -> bytes:
    # orjson writes the same bytes as json's compact, non-ASCII-escaping form (a test holds the
    # two equal) three times faster: at the limits, the changes of 1,000 fork/exit steps are
    # 48 MB before the answer is refused, 1.3 s of json against 0.4 s. Whatever orjson will
    # not encode (a lone surrogate, an integer past 64 bits) goes to json, which decides.
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _trace_chunks(trace: Trace, states: StatesChoice, check: Callable[[], None]) -> Iterator[bytes]:
    check_states(states, len(trace.steps) - 1)
    asked = states if isinstance(states, str) else list(states)
    yield b'{"policy":' + _dumps(trace.policy.id) + b',"states":' + _dumps(asked)
    yield b',"steps":['
    for k in range(1, len(trace.steps)):
        check()
        yield (b"," if k > 1 else b"") + _dumps(_step_json(trace, k, states))
    yield b'],"verdicts":' + _dumps(_verdicts_json(trace)) + b"}"


def traces_json_bytes(
    traces: Sequence[Trace],
    states: StatesChoice = DEFAULT_STATES,
    *,
    many: bool = False,
    limit: int = MAX_JSON_BYTES,
    check: Callable[[], None] = lambda: None,
    goal: Mapping[str, object] | None = None,
) -> bytes:
    """The JSON of one trace (``many`` False) or ``{"runs": [...]}``, as UTF-8 bytes.

    The one serialiser of the CLI and the API. It encodes step by step and stops as soon as
    the answer crosses ``limit`` (`OutputTooLarge`), so neither the time nor the memory spent
    on an answer too large to send grows past the limit. ``check`` is called before each step
    (the web app's deadline and cancel checks). ``goal``, a scenario's evaluated `#goal`, goes
    beside ``steps`` (or ``runs``) as DESIGN.md §8 says.
    """
    parts: list[bytes] = [b'{"runs":['] if many else []
    size = 0
    for i, trace in enumerate(traces):
        if i:
            parts.append(b",")
        for chunk in _trace_chunks(trace, states, check):
            size += len(chunk)
            if size > limit:
                raise OutputTooLarge(limit, states)
            parts.append(chunk)
    if many:
        parts.append(b"]}")
    if goal is not None:
        # The document's closing brace makes way for the goal: {..., "goal": {...}}.
        parts[-1] = parts[-1][:-1]
        parts.append(b',"goal":' + json.dumps(goal, separators=(",", ":")).encode() + b"}")
    return b"".join(parts)
