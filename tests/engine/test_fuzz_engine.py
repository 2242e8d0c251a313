"""Fuzzing the engine with valid text over the whole language (tests/strategies.py).

Any text the parser accepts is a scenario the engine must replay under every era, keeping the
kernel's accounting laws at every step: a command the kernel would refuse is an error step
(DESIGN.md §2), never an exception. Known crashes stay covered as explicit examples here and as
regression tests in test_crash_regressions.py.
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.lesson import ask, evaluate_goal
from engine.policies import POLICIES
from engine.syntax import parse
from engine.trace import replay
from tests.engine.invariants import check_state
from tests.strategies import fuzz_examples, large_scenarios, lessons, scenarios, swap_scenarios


@settings(
    max_examples=fuzz_examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=st.one_of(scenarios(), swap_scenarios()))
@example(text="P mmap b file=F; P fork D")
@example(text="#swap zram\nP mmap a; P write a v1; P uffd-wp a on; P swapout a; P fork C; C read a")
@example(text="P mmap a; P write a v1; P swapout a; P fork C; P read a; P swapout a; C read a")
def test_every_valid_scenario_replays_under_every_policy_keeping_the_laws(text: str) -> None:
    scenario = parse(text)
    for policy in POLICIES.values():
        trace = replay(scenario, policy)
        assert len(trace.steps) == len(scenario.commands) + 1
        for step in trace.steps:
            check_state(step.state, policy)


@settings(max_examples=fuzz_examples(2), deadline=None, suppress_health_check=list(HealthCheck))
@given(text=large_scenarios())
def test_scenarios_at_the_limits_replay_under_every_policy(text: str) -> None:
    scenario = parse(text)
    for policy in POLICIES.values():
        trace = replay(scenario, policy)
        # Checking every step of a thousand would cost minutes; a sample still catches a law
        # broken for good, and the small scenarios above check every step.
        for step in trace.steps[::97] + trace.steps[-1:]:
            check_state(step.state, policy)


@settings(
    max_examples=fuzz_examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=lessons())
def test_every_valid_lesson_asks_its_questions_and_checks_its_goal_under_every_era(
    text: str,
) -> None:
    """DESIGN.md §8 over random lessons: every `#?` gets the same choices under every era, the
    right answer among them; a `#goal` is evaluated under the eras it names."""
    scenario = parse(text)
    traces = {policy.id: replay(scenario, policy) for policy in POLICIES.values()}
    for asked in ask(scenario, traces):
        assert len(asked.choices) >= 1
        assert set(asked.answers) == set(POLICIES)
        assert set(asked.answers.values()) <= set(asked.choices)
    result = evaluate_goal(scenario, traces)
    goal = scenario.annotations.goal
    assert (result is None) == (goal is None)
    if result is not None:
        assert result.met == all(term.met for term in result.terms)
