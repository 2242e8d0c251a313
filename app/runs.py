"""Replaying a link's scenario: parse, replay under a policy, and lay the trace out once.

Every request carries its whole scenario, so stepping through a 30-command scenario would replay
it on every →. A small memo keyed by (text, policy) avoids that. It is not per-user state: the
engine is deterministic, so an entry is a pure function of its key, is the same in every worker,
and can be dropped at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from app.diagram import Layout, compute_layout
from engine.commands import Scenario
from engine.policies import POLICIES, Policy, get_policy
from engine.syntax import parse
from engine.trace import Trace, replay

CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class Run:
    """A replayed scenario and the diagram layout shared by all its steps."""

    scenario: Scenario
    trace: Trace
    layout: Layout

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
    return Run(scenario, trace, compute_layout([step.state for step in trace.steps]))


def policy_ids() -> tuple[str, ...]:
    return tuple(POLICIES)
