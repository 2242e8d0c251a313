"""What a lesson's annotations ask, answered by the engine (DESIGN.md §8).

- A `#?` question before a read offers the same choices under every era, so switching era gives
  nothing away: every value written to that page or reference before the read (under any era),
  the zero page's `0`, and `SIGSEGV` where the read faults under some era. The answer is what
  the read observes in the trace of the era being viewed.
- A `#goal` holds when every term holds, each evaluated under the policies it names, whatever
  era the learner is looking at.

Pure functions of a scenario and its traces; callers that already hold traces pass them in so
no era is replayed twice. Both may replay the scenario under up to every era, which multiplies
the cost of a request (DESIGN.md §7): a server passes ``max_replayed`` and gets `TooCostly`
rather than a request that replays a scenario at the limits eleven times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.annotations import GoalTerm, Question
from engine.commands import (
    FileDecl,
    ForceWrite,
    Mmap,
    Read,
    RefRead,
    RefWrite,
    Scenario,
    TakeRef,
    Write,
)
from engine.machine import written_value
from engine.policies import POLICIES, get_policy
from engine.state import ZERO_VALUE
from engine.syntax import reference_names
from engine.trace import Trace, replay

__all__ = [
    "MAX_REPLAYED_COMMANDS",
    "SIGSEGV",
    "Asked",
    "GoalResult",
    "TermResult",
    "TooCostly",
    "answer",
    "ask",
    "evaluate_goal",
    "goal_to_json",
    "observation",
    "read_steps",
]

# What a learner picks for a read the kernel refuses (the process gets SIGSEGV, a reference
# read fails): the read observes no value.
SIGSEGV = "SIGSEGV"

Traces = Mapping[str, Trace]

# What a request may spend on a goal or on questions beyond the trace it replays anyway:
# commands replayed under eras it does not have yet, at most one more replay of a scenario at
# the 1,000-command limit. A challenge of up to 111 commands may name every era.
MAX_REPLAYED_COMMANDS = 1_000


class TooCostly(ValueError):
    """Answering would replay more commands than the caller allows (``max_replayed``)."""


def observation(trace: Trace, step: int) -> str:
    """What the read of ``step`` shows under ``trace``'s era: a value's text, or `SIGSEGV`."""
    observed = trace.steps[step].observed
    return SIGSEGV if observed is None else observed.text


def answer(trace: Trace, question: Question) -> str:
    """The right answer to ``question`` under the era of ``trace``."""
    return observation(trace, question.step)


def read_steps(scenario: Scenario) -> tuple[int, ...]:
    """The steps whose command is a read (`P read a` or `R read`)."""
    return tuple(
        i for i, cmd in enumerate(scenario.commands, start=1) if isinstance(cmd, Read | RefRead)
    )


def _traces(
    scenario: Scenario, policies: Iterable[str], given: Traces | None, max_replayed: int | None
) -> dict[str, Trace]:
    """A trace per resolved policy id, taken from ``given`` where it has one."""
    wanted = dict.fromkeys(get_policy(p).id for p in policies)
    given = given or {}
    missing = [p for p in wanted if p not in given]
    cost = len(missing) * len(scenario.commands)
    if max_replayed is not None and cost > max_replayed:
        raise TooCostly(
            f"this needs {len(scenario.commands)} commands replayed under {len(missing)} more "
            f"eras ({cost:,} commands); a request may replay at most {max_replayed:,}: name "
            "fewer eras, shorten the scenario, or run it with `cowlab run`"
        )
    return {p: given[p] if p in given else replay(scenario, p) for p in wanted}


def _written_before(scenario: Scenario, step: int) -> list[str]:
    """Every value written, before ``step``, to the page the read of ``step`` reads.

    The page is named the same in every process (a fork child inherits its parent's names),
    so a write by any process to a page of that name counts: that is the value a missed COW
    would show. A reference reads the page it was taken on; a device write through any
    reference to that page counts too, and so does the contents of a file mapped there.
    """
    commands = scenario.commands[: step - 1]
    ref_names = reference_names(commands)
    # A reference name may be taken again: the latest take before the read is the one read.
    ref_pages = {
        name: cmd.page
        for cmd, name in zip(commands, ref_names, strict=True)
        if isinstance(cmd, TakeRef) and name is not None
    }
    target = scenario.commands[step - 1]
    if isinstance(target, Read):
        page = target.page
    elif isinstance(target, RefRead):
        page = ref_pages.get(target.ref, "")
    else:
        raise ValueError(f"step {step} is not a read")
    files = {cmd.file for cmd in commands if isinstance(cmd, Mmap) and page in cmd.pages}
    values: list[str] = []
    for i, cmd in enumerate(commands, start=1):
        if isinstance(cmd, Write | ForceWrite) and cmd.page == page:
            values.append(written_value(cmd, i).text)
        elif isinstance(cmd, RefWrite):
            if ref_pages.get(cmd.ref) == page:
                values.append(cmd.value)
        elif isinstance(cmd, FileDecl) and cmd.name in files:
            values.append(cmd.value)
    return values


@dataclass(frozen=True, slots=True)
class Asked:
    """A question with its choices (the same under every era) and the answer under each era."""

    question: Question
    choices: tuple[str, ...]
    answers: Mapping[str, str]  # resolved policy id -> the right choice


def ask(
    scenario: Scenario, traces: Traces | None = None, *, max_replayed: int | None = None
) -> tuple[Asked, ...]:
    """Every `#?` question of ``scenario`` with its choices and its answer under every era.

    ``traces`` (by resolved policy id) saves replays; missing eras are replayed, unless that
    would replay more than ``max_replayed`` commands (`TooCostly`).
    """
    questions = scenario.annotations.questions
    if not questions:
        return ()
    by_era = _traces(scenario, POLICIES, traces, max_replayed)
    asked = []
    for question in questions:
        seen = {policy_id: observation(t, question.step) for policy_id, t in by_era.items()}
        # Observed values are written values too, but listing them as well guarantees that the
        # right answer is always among the choices.
        values = [ZERO_VALUE.text, *_written_before(scenario, question.step)]
        values += [v for v in seen.values() if v != SIGSEGV]
        if SIGSEGV in seen.values():
            values.append(SIGSEGV)
        asked.append(Asked(question, tuple(dict.fromkeys(values)), seen))
    return tuple(asked)


# ---------------------------------------------------------------------------------------------
# Goals


@dataclass(frozen=True, slots=True)
class TermResult:
    term: str
    met: bool


@dataclass(frozen=True, slots=True)
class GoalResult:
    met: bool
    terms: tuple[TermResult, ...]


def _term_holds(term: GoalTerm, traces: Mapping[str, Trace]) -> bool:
    first = traces[get_policy(term.policies[0]).id]
    if term.kind == "verdict":
        return term.verdict in first.verdict_kinds()
    if term.kind == "no-verdict":
        return term.verdict not in first.verdict_kinds()
    if term.kind == "ok":
        return not first.verdicts
    second = traces[get_policy(term.policies[1]).id]
    return any(
        observation(first, step) != observation(second, step) for step in read_steps(first.scenario)
    )


def evaluate_goal(
    scenario: Scenario, traces: Traces | None = None, *, max_replayed: int | None = None
) -> GoalResult | None:
    """The result of the scenario's `#goal` (None without one): each term under the policies
    it names, whatever era is being viewed. ``traces`` by resolved policy id saves replays;
    `TooCostly` if the missing ones would replay more than ``max_replayed`` commands."""
    goal = scenario.annotations.goal
    if goal is None:
        return None
    named = _traces(scenario, (p for term in goal for p in term.policies), traces, max_replayed)
    results = tuple(TermResult(term.text, _term_holds(term, named)) for term in goal)
    return GoalResult(all(r.met for r in results), results)


def goal_to_json(result: GoalResult) -> dict[str, Any]:
    """``{"met": …, "terms": [{"term": "leak@5.7", "met": …}, …]}`` (DESIGN.md §8)."""
    return {"met": result.met, "terms": [{"term": r.term, "met": r.met} for r in result.terms]}
