"""A lesson on the simulator page: title, progress, the teacher's note, predict-then-reveal and
the goal of a challenge (issue 12, DESIGN.md §8).

The engine answers every question (`engine.lesson.ask`) and evaluates every goal
(`engine.lesson.evaluate_goal`); this module only decides what the page shows of it. No server
state: the learner's pick travels in the link as ``answer=``, so a reload, a shared link or Back
shows the same thing, and changing era (a link without ``answer``) asks again.

At a question's step, until it is answered, the page shows the machine *before* the read and
none of the read's outcome (value, verdicts, narration, the note that explains it); a lesson
with questions also keeps every later step's outcome out of the timeline and the verdict list,
which would otherwise answer the question from the side of the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote_plus

from app.views.links import make_link
from app.views.runs import EventView, Run, RunMemo, run
from app.views.sim import Linker, Sim, Stage, TimelineEntry, build_stage
from engine.annotations import GoalTerm
from engine.lesson import (
    MAX_REPLAYED_COMMANDS,
    Asked,
    GoalResult,
    TooCostly,
    ask,
    evaluate_goal,
    observation,
)
from engine.policies import POLICIES, get_policy
from engine.presets import PRESETS
from engine.trace import Trace

__all__ = [
    "Choice",
    "GoalView",
    "LessonView",
    "QuestionView",
    "TermView",
    "TooCostly",
    "WelcomeView",
    "answer_link",
    "build_goal",
    "build_lesson",
    "describe_term",
    "era_traces",
    "hide_future",
    "hide_outcome",
    "welcome_view",
]


@dataclass(frozen=True, slots=True)
class Choice:
    text: str
    href: str  # this step, this era, with ``answer=`` this choice
    key: int  # the digit that picks it (1-based)
    picked: bool
    right: bool


@dataclass(frozen=True, slots=True)
class QuestionView:
    text: str
    choices: tuple[Choice, ...]
    picked: str | None  # None until the learner answers; "" when revealed without a pick
    answer: str  # the right choice under the era being viewed
    why: tuple[EventView, ...]  # the engine's narration of the read
    reveal: str  # this step's link with the outcome shown and nothing picked

    @property
    def right(self) -> bool:
        return self.picked == self.answer


@dataclass(frozen=True, slots=True)
class EraLink:
    id: str
    href: str


@dataclass(frozen=True, slots=True)
class LessonView:
    title: str | None
    index: int
    last: int
    policy: str
    note: str | None  # None while a question hides it, or when the step has none
    question: QuestionView | None
    prev_era: EraLink | None
    next_era: EraLink | None
    has_questions: bool

    @property
    def hidden(self) -> bool:
        """Whether this step's outcome is hidden until the learner answers."""
        return self.question is not None and self.question.picked is None


@dataclass(frozen=True, slots=True)
class TermView:
    text: str
    says: str  # the term in words, naming its eras
    met: bool
    found: str  # what the named eras did, for a term that does not hold


@dataclass(frozen=True, slots=True)
class GoalView:
    met: bool
    terms: tuple[TermView, ...]


def era_traces(run_: Run, policies: tuple[str, ...], memo: RunMemo | None) -> dict[str, Trace]:
    """The trace of ``run_``'s scenario under each of ``policies`` (resolved ids), replaying
    through the app's memo so a class stepping through a lesson replays each era once.

    `TooCostly` when the eras the memo does not hold would replay more than
    `MAX_REPLAYED_COMMANDS` beyond the run the page has: the same bound as the API's goal.
    """
    text = run_.link_text
    traces = {run_.policy.id: run_.trace}
    missing = []
    for pid in policies:
        if pid in traces:
            continue
        held = memo.get((text, pid)) if memo is not None else None
        if held is not None:
            traces[pid] = held.trace
        else:
            missing.append(pid)
    cost = len(missing) * len(run_.scenario.commands)
    if cost > MAX_REPLAYED_COMMANDS:
        raise TooCostly(
            f"this needs {len(run_.scenario.commands)} commands replayed under {len(missing)} "
            f"more eras ({cost:,} commands); a page may replay at most "
            f"{MAX_REPLAYED_COMMANDS:,}: name fewer eras, shorten the scenario, or run it "
            "with `cowlab run`"
        )
    for pid in missing:
        traces[pid] = run(text, pid, memo).trace
    return traces


def _era_neighbours(linker: Linker, current: str, k: int) -> tuple[EraLink | None, EraLink | None]:
    ids = list(POLICIES)
    if current not in ids:
        return None, None  # a policy-lab point has no neighbours among the eras
    i = ids.index(current)
    prev = EraLink(ids[i - 1], linker.policy_link(ids[i - 1], k)) if i > 0 else None
    nxt = EraLink(ids[i + 1], linker.policy_link(ids[i + 1], k)) if i + 1 < len(ids) else None
    return prev, nxt


def answer_link(base: str, choice: str) -> str:
    """``base`` (a step's link) with the learner's pick."""
    return f"{base}&answer={quote_plus(choice)}"


def _question(asked: Asked, run_: Run, k: int, linker: Linker, picked: str | None) -> QuestionView:
    # A policy-lab point is not among the eras the choices were computed under: its answer is
    # what its own trace observed (a written value, the zero page's 0 or SIGSEGV, as for eras).
    right = asked.answers.get(run_.policy.id) or observation(run_.trace, asked.question.step)
    base = linker.step(k)
    # A pick that is not among the choices (a hand-edited link) is no pick at all. An empty
    # one is a class's "show us" (a presentation clicker has no digits): no choice is empty.
    if picked != "" and picked not in asked.choices:
        picked = None
    choices = tuple(
        Choice(text, answer_link(base, text), i, text == picked, text == right)
        for i, text in enumerate(asked.choices, start=1)
    )
    return QuestionView(
        asked.question.text, choices, picked, right, run_.events[k], answer_link(base, "")
    )


def build_lesson(
    run_: Run, k: int, linker: Linker, picked: str | None, memo: RunMemo | None
) -> LessonView | None:
    """What the lesson panel shows at step ``k``; None for a scenario without annotations.

    Raises `TooCostly` when answering the step's question would replay too much.
    """
    annotations = run_.scenario.annotations
    if not annotations.is_lesson or (
        annotations.title is None and not annotations.notes and not annotations.questions
    ):
        return None
    question = None
    q = annotations.question(k)
    if q is not None:
        traces = era_traces(run_, tuple(POLICIES), memo)
        asked = next(a for a in ask(run_.scenario, traces) if a.question == q)
        question = _question(asked, run_, k, linker, picked)
    note = annotations.note(k)
    if question is not None and question.picked is None:
        note = None  # a question step's note explains the answer
    prev_era, next_era = _era_neighbours(linker, run_.policy.id, k)
    return LessonView(
        title=annotations.title,
        index=k,
        last=run_.last,
        policy=run_.policy.id,
        note=note,
        question=question,
        prev_era=prev_era,
        next_era=next_era,
        has_questions=bool(annotations.questions),
    )


def hide_outcome(stage: Stage, run_: Run, k: int, linker: Linker) -> Stage:
    """``stage`` with step ``k``'s outcome hidden: the picture and table of the step before,
    no observed value, no verdict, no narration."""
    before = build_stage(run_, k - 1, linker, timeline=False)
    return stage._replace(
        scene=before.scene,
        table=before.table,
        focus_note=before.focus_note,
        observed="",
        verdicts=(),
        events=(),
    )


def _blank(entry: TimelineEntry) -> TimelineEntry:
    return replace(entry, observed="", verdicts=(), events=())


def hide_future(stage: Stage, sim: Sim | None, lesson: LessonView) -> tuple[Stage, Sim | None]:
    """A lesson with questions shows the past, not what is to come: later steps' outcomes
    (and this step's, while hidden) leave the timeline and the verdict list."""
    if not lesson.has_questions:
        return stage, sim
    k = lesson.index

    def future(step: int) -> bool:
        return step > k or (step == k and lesson.hidden)

    timeline = tuple(_blank(e) if future(e.index) else e for e in stage.timeline)
    stage = stage._replace(timeline=timeline)
    if sim is not None:
        sim = replace(
            sim, stage=stage, verdicts=tuple(v for v in sim.verdicts if not future(v.step))
        )
    return stage, sim


def describe_term(term: GoalTerm) -> str:
    """A `#goal` term in words, naming the eras it is evaluated under."""
    eras = " and ".join(term.policies)
    if term.kind == "verdict":
        return f"a {term.verdict} verdict under {eras}"
    if term.kind == "no-verdict":
        return f"no {term.verdict} verdict under {eras}"
    if term.kind == "ok":
        return f"no verdict at all under {eras}"
    return (
        f"some read observes a different value under {term.policies[0]} than under "
        + (term.policies[1])
    )


def _found(term: GoalTerm, traces: Mapping[str, Trace]) -> str:
    if term.kind == "differ":
        return f"every read observes the same under {' and '.join(term.policies)}"
    pid = get_policy(term.policies[0]).id
    kinds = traces[pid].verdict_kinds()
    return f"under {pid}: " + (", ".join(kinds) if kinds else "no verdict")


def build_goal(run_: Run, memo: RunMemo | None) -> GoalView | None:
    """The goal's result, term by term (None without a `#goal`); `TooCostly` as above."""
    goal = run_.scenario.annotations.goal
    if goal is None:
        return None
    named = tuple(dict.fromkeys(get_policy(p).id for term in goal for p in term.policies))
    traces = era_traces(run_, named, memo)
    result: GoalResult | None = evaluate_goal(run_.scenario, traces)
    assert result is not None  # the scenario has a goal
    terms = tuple(
        TermView(
            term.text,
            describe_term(term),
            r.met,
            "" if r.met else _found(term, traces),
        )
        for term, r in zip(goal, result.terms, strict=True)
    )
    return GoalView(result.met, terms)


@dataclass(frozen=True, slots=True)
class WelcomeView:
    famous: str  # the Dirty COW preset under the era that had it (its `#policy`)
    empty: str  # the simulator with nothing in it


def welcome_view() -> WelcomeView:
    return WelcomeView(make_link("/", PRESETS["dirty-cow"].text), make_link("/", ""))
