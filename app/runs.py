"""Replaying a link's scenario: parse, replay under a policy, and lay the trace out once.

Every request carries its whole scenario, so stepping through a 30-command scenario would replay
it on every →. A small memo keyed by (text, policy) avoids that. It is not per-user state: the
engine is deterministic, so an entry is a pure function of its key, is the same in every worker,
and can be dropped at any time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from app.diagram import Layout, compute_layout, layout_fits
from engine.commands import Scenario
from engine.policies import POLICIES, Policy, get_policy
from engine.syntax import parse
from engine.trace import Trace, replay

CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class EventView:
    kind: str
    text: str
    source: str  # "rule · kernel function · commit", empty when the event has none


@dataclass(frozen=True, slots=True)
class Run:
    """A replayed scenario, with what every view of it needs computed once.

    ``texts[k]`` is step k's command text ("" for step 0); ``link_text`` and ``editor_text`` are
    the canonical scenario joined by `;` and by newlines; ``names`` holds every process,
    reference and file name the trace uses and ``pages`` each process's page names, in order.
    """

    scenario: Scenario
    trace: Trace
    layout: Layout
    texts: tuple[str, ...]
    events: tuple[tuple[EventView, ...], ...]
    names: frozenset[str]
    pages: Mapping[str, tuple[str, ...]]

    @property
    def fits(self) -> bool:
        """Whether the whole trace can be drawn at once (else each step draws its focus)."""
        return layout_fits(self.layout)

    @property
    def link_text(self) -> str:
        return ";".join(self.texts[1:])

    @property
    def editor_text(self) -> str:
        return "\n".join(self.texts[1:])

    @property
    def policy(self) -> Policy:
        return self.trace.policy

    @property
    def last(self) -> int:
        return len(self.trace.steps) - 1


@lru_cache(maxsize=CACHE_SIZE)
def parse_cached(text: str) -> Scenario:
    """`engine.syntax.parse`, memoised; raises `ScenarioError` / `ScenarioLimitError`."""
    return parse(text)


@lru_cache(maxsize=CACHE_SIZE)
def run(text: str, policy_id: str) -> Run:
    """Replay ``text`` under ``policy_id``; raises the parser's errors and `UnknownPolicy`."""
    policy = get_policy(policy_id)
    scenario = parse_cached(text)
    trace = replay(scenario, policy.id)
    states = [step.state for step in trace.steps]
    names: set[str] = set()
    pages: dict[str, dict[str, None]] = {}
    seen: set[int] = set()  # steps share unchanged processes: walk each page table once
    for state in states:
        names.update(state.procs, state.refs, state.files)
        for proc in state.procs.values():
            if id(proc.vmas) not in seen:
                seen.add(id(proc.vmas))
                pages.setdefault(proc.name, {}).update(dict.fromkeys(proc.vmas))
    return Run(
        scenario=scenario,
        trace=trace,
        layout=compute_layout(states),
        texts=tuple(step.text for step in trace.steps),
        events=tuple(
            tuple(
                EventView(
                    e.kind,
                    e.text,
                    " · ".join(part for part in (e.rule, e.kernel, e.commit) if part),
                )
                for e in step.events
            )
            for step in trace.steps
        ),
        names=frozenset(names),
        pages={proc: tuple(known) for proc, known in pages.items()},
    )


def policy_ids() -> tuple[str, ...]:
    return tuple(POLICIES)
