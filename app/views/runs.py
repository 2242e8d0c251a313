"""Replaying a link's scenario: parse, replay under a policy, and lay the trace out once.

Every request carries its whole scenario, so stepping through a 30-command scenario would replay
it on every →, and comparing it would replay it under every era again. A memo of runs keyed by
the *canonical* scenario (its commands, however the text spelled them) and the *resolved*
policy id (``latest`` is the newest id) means a scenario is replayed once per policy whatever
the link looks like; an action that appends one command to a scenario in the memo replays only
that command (`engine.trace.extend`). The memo is bounded by entries and by an estimate of the
memory its traces hold, so no sequence of requests makes a worker grow without bound.

It is not per-user state: the engine is deterministic, so an entry is a pure function of its
key, is the same in every worker, and can be dropped at any time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar, overload

from app.picture.layout import Layout, compute_layout, layout_fits
from engine.commands import Scenario
from engine.events import Event
from engine.frame_table import FrameTable
from engine.policies import POLICIES, Policy, get_policy
from engine.syntax import ScenarioError, canonical_text, parse
from engine.trace import Step, Trace, extend
from engine.trace import replay as engine_replay

RUNS_MAX_ENTRIES = 512
# A run's weight counts the distinct page tables, frame-table buckets and steps its trace holds
# (the engine shares what a step does not change). Measured with tracemalloc: a unit is 64–72
# bytes for the references and processes worst cases, but ~245 bytes for 1,000 forks and exits
# of a 256-page process, whose 190,000 events the weight does not count; so this is 50–190 MB,
# room for any one worst-case run of DESIGN.md §7 (the largest weighs ~520,000) or hundreds of
# lessons.
RUNS_MAX_WEIGHT = 768_000

T = TypeVar("T")


class Stopped(Exception):
    """A request's work was stopped between two commands: its deadline passed (``gone``
    False) or its client disconnected (``gone`` True)."""

    def __init__(self, gone: bool, seconds: float) -> None:
        super().__init__(
            "the client disconnected"
            if gone
            else f"this request needs more than the {seconds:g} s cowlab gives one request"
        )
        self.gone = gone
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class Budget:
    """What a request may still spend: a deadline (`time.monotonic`) and a flag its client's
    disconnect sets. The engine stays free of clocks; the app replays command by command and
    checks this between commands (`check`)."""

    seconds: float
    deadline: float
    gone: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def starting_now(cls, seconds: float) -> Budget:
        return cls(seconds, time.monotonic() + seconds)

    def check(self) -> None:
        if self.gone.is_set():
            raise Stopped(True, self.seconds)
        if time.monotonic() > self.deadline:
            raise Stopped(False, self.seconds)


# The budget of the request this thread works for (set by `app.http.heavy`); None: no limit (the
# CLI, tests, small requests on the event loop, which are bounded by what they are).
BUDGET: ContextVar[Budget | None] = ContextVar("BUDGET", default=None)


def check_budget() -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.check()


@dataclass(frozen=True, slots=True)
class EventView:
    kind: str
    text: str
    source: str  # "rule · kernel function · commit", empty when the event has none


def _event_view(e: Event) -> EventView:
    # A rule named after its kernel function is said once.
    return EventView(
        e.kind,
        e.text,
        " · ".join(dict.fromkeys(part for part in (e.rule, e.kernel, e.commit) if part)),
    )


class EventViews(Sequence[tuple[EventView, ...]]):
    """Each step's events as the views show them, made when a view first asks for a step.

    A trace at the limits holds ~200,000 events (a fork or an exit tells one per page); making
    them all up front took longer than the replay, for a page that shows a few steps' events.
    A step's tuple, once made, is the same object whenever it is asked for again.
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        self._steps = steps
        self._made: dict[int, tuple[EventView, ...]] = {}

    def __len__(self) -> int:
        return len(self._steps)

    @overload
    def __getitem__(self, k: int) -> tuple[EventView, ...]: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[tuple[EventView, ...]]: ...
    def __getitem__(
        self, k: int | slice
    ) -> tuple[EventView, ...] | Sequence[tuple[EventView, ...]]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        made = self._made.get(k)
        if made is None:
            made = self._made[k] = tuple(_event_view(e) for e in self._steps[k].events)
        return made


@dataclass(frozen=True, slots=True)
class Run:
    """A replayed scenario, with what every view of it needs computed once.

    ``texts[k]`` is step k's command text ("" for step 0); ``link_text`` is the canonical text
    (`canonical_text`) and ``editor_text`` the same, one command or `#` line a line; ``names``
    holds every process, reference and file name the trace uses and ``pages`` each process's
    page names, in order.
    """

    scenario: Scenario
    trace: Trace
    layout: Layout
    texts: tuple[str, ...]
    events: EventViews = field(compare=False)
    names: frozenset[str]
    pages: Mapping[str, tuple[str, ...]]
    # Held, not a property: a step's links, its actions and the memo key all read it, and
    # printing the canonical text each time cost a tenth of a cold step (issue 23's profile).
    link_text: str
    # The distinct page-table, frame and reference entries and steps its trace holds (see
    # `RUNS_MAX_WEIGHT`): a measure of the memory it holds and of the work its replay did.
    weight: int = field(default=0, compare=False)

    @property
    def fits(self) -> bool:
        """Whether the whole trace can be drawn at once (else each step draws its focus)."""
        return layout_fits(self.layout)

    @property
    def editor_text(self) -> str:
        if self.scenario.remarks:
            return self.link_text  # already one command or `#` line a line
        return "\n".join(self.texts[1:])

    @property
    def policy(self) -> Policy:
        return self.trace.policy

    @property
    def last(self) -> int:
        return len(self.trace.steps) - 1


def _parsed(text: str) -> tuple[Scenario, str]:
    """The scenario and its canonical text (`engine.syntax.canonical_text`: commands joined by
    `;`, or by newlines with comments and annotations kept)."""
    scenario = parse(text)
    return scenario, canonical_text(scenario)


def lesson_policy(text: str) -> str | None:
    """The `#policy` of a lesson's text: the era its link opens in when it names none
    (DESIGN.md §8). None for a text without one, or one that does not parse (the page then
    reports the syntax error under the default era)."""
    if "#policy" not in text:
        return None
    try:
        return parse(text).annotations.policy
    except ScenarioError:
        return None


# (canonical text, policy id): the canonical printer is one-to-one on commands (parse(print(x))
# == x), and a string keeps its hash, where a tuple of commands is hashed command by command
# at every lookup.
RunKey = tuple[str, str]


class RunMemo:
    """Least recently used runs, bounded by entries and by total weight; thread-safe (long
    scenarios are replayed on the thread pool). Owned by the app (``app.state.runs``).

    Measured (docs/benchmarks.md): a step of a scenario replayed before costs 0.8 ms
    (``warm_step_ms_p50``) against 1.2 ms without it (``cold_step_ms_p50``), and an action
    button replays one command on top of the run it extends. No budget of DESIGN.md §7 fails
    without it (``class_ratio`` is the page memo's); it is kept for a class whose steps the page
    memo no longer holds (0.21 × a constant body with it, 0.17 × without).
    """

    def __init__(
        self, max_entries: int = RUNS_MAX_ENTRIES, max_weight: int = RUNS_MAX_WEIGHT
    ) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.weight = 0
        self._entries: OrderedDict[RunKey, tuple[Run, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: RunKey) -> Run | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: RunKey, run: Run, weight: int) -> None:
        if weight > self.max_weight:
            return  # larger than the whole memo: kept by nobody, replayed when asked again
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.weight -= old[1]
            self._entries[key] = (run, weight)
            self.weight += weight
            while len(self._entries) > self.max_entries or self.weight > self.max_weight:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.weight -= dropped

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.weight = 0


def run(text: str, policy_id: str, memo: RunMemo | None = None) -> Run:
    """Replay ``text`` under ``policy_id``; raises the parser's errors and `UnknownPolicy`.

    With a ``memo`` (the app's, ``app.state.runs``), a run is looked up by the canonical
    scenario and policy; when it is not known but the scenario without its last command is,
    only that command is replayed.
    """
    policy = get_policy(policy_id)
    scenario, canonical = _parsed(text)
    if memo is None:
        trace = _with_lines(replay(scenario, policy.id), scenario)
        return _prepare(scenario, trace, canonical=canonical)[0]
    key = (canonical, policy.id)
    found = memo.get(key)
    if found is None:
        # Commands never hold `;`: the canonical text without its last command. A text with
        # `#` lines is joined by newlines and its comments may hold `;`: it is replayed whole.
        shorter = canonical.rpartition(";")[0]
        prefix = (
            memo.get((shorter, policy.id)) if scenario.commands and not scenario.remarks else None
        )
        if prefix is not None:
            trace = extend(prefix.trace, scenario.commands[-1:])
        else:
            trace = replay(scenario, policy.id)
        found, weight = _prepare(scenario, _with_lines(trace, scenario), canonical=canonical)
        memo.put(key, found, weight)
    elif found.scenario.lines != scenario.lines:
        # The same commands spelled differently (newlines or `;`): the same trace, but the
        # JSON trace names each step's source line, so it carries this text's lines.
        found = _prepare(scenario, _with_lines(found.trace, scenario), found)[0]
    return found


def replay(scenario: Scenario, policy_id: str) -> Trace:
    """`engine.trace.replay`, checking the request's budget between commands: a scenario at the
    limits takes a second or more, and a request whose client has gone or whose deadline has
    passed stops there."""
    return engine_replay(scenario, policy_id, between=check_budget)


def _with_lines(trace: Trace, scenario: Scenario) -> Trace:
    """``trace`` with ``scenario``'s source lines (an extended trace has none for new steps)."""
    lines = scenario.lines or (None,) * len(scenario.commands)
    if trace.scenario.lines == scenario.lines and all(
        step.line == line for step, line in zip(trace.steps[1:], lines, strict=True)
    ):
        return trace
    relined = (s._replace(line=n) for s, n in zip(trace.steps[1:], lines, strict=True))
    steps = (trace.steps[0], *relined)
    return Trace(trace.policy, scenario, steps, trace.verdicts)


def _source(*parts: str) -> str:
    """ "rule · kernel function · commit", each said once (a rule may be named after its
    kernel function) and empty parts left out."""
    return " · ".join(dict.fromkeys(part for part in parts if part))


def _prepare(
    scenario: Scenario, trace: Trace, like: Run | None = None, canonical: str | None = None
) -> tuple[Run, int]:
    """The run of ``trace`` and its weight; ``like`` is a run of the same steps to reuse;
    ``canonical``: the scenario's canonical text, when the caller has printed it already."""
    if like is not None:
        # Lines are not in anything a view shows: the rest is shared.
        same = Run(
            scenario,
            trace,
            like.layout,
            like.texts,
            like.events,
            like.names,
            like.pages,
            like.link_text,
            like.weight,
        )
        return same, 0
    states = [step.state for step in trace.steps]
    names: set[str] = set()
    pages: dict[str, dict[str, None]] = {}
    seen: set[int] = set()  # steps share what they do not change: walk each table once
    weight = len(states)
    for state in states:
        names.update(state.procs, state.refs, state.files)
        frames = state.frames
        if id(frames) not in seen:
            seen.add(id(frames))
            if isinstance(frames, FrameTable):
                # A frame table shares its unchanged buckets with the step before: each
                # bucket is held once, and each table holds its tuple of them.
                weight += len(frames.buckets)
                for bucket in frames.buckets:
                    if id(bucket) not in seen:
                        seen.add(id(bucket))
                        weight += len(bucket)
            else:
                weight += len(frames)
        for table in (state.swap, state.refs):
            if id(table) not in seen:
                seen.add(id(table))
                weight += len(table)
        for proc in state.procs.values():
            if id(proc.ptes) not in seen:
                seen.add(id(proc.ptes))
                weight += len(proc.ptes)
            if id(proc.vmas) not in seen:
                seen.add(id(proc.vmas))
                weight += len(proc.vmas)
                pages.setdefault(proc.name, {}).update(dict.fromkeys(proc.vmas))
    run = Run(
        scenario=scenario,
        trace=trace,
        layout=compute_layout(states),
        texts=tuple(step.text for step in trace.steps),
        events=EventViews(trace.steps),
        names=frozenset(names),
        pages={proc: tuple(known) for proc, known in pages.items()},
        link_text=canonical_text(scenario) if canonical is None else canonical,
        weight=weight,
    )
    return run, weight


def policy_ids() -> tuple[str, ...]:
    return tuple(POLICIES)
