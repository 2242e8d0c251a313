"""The lesson pages (issue 12): `/lessons`, `/challenges`, `/quiz` and `/handout`.

Every page is a pure function of its link, like the simulator (DESIGN.md §1): the quiz's
questions come from its seed, a learner's quiz answers travel in the query, a handout is built
from the scenario in the link. Work per request is bounded as everywhere else: a handout draws
at most `MAX_HANDOUT_STEPS` pictures, and its answers replay other eras only within
`engine.lesson.MAX_REPLAYED_COMMANDS`, as the simulator page and the API do.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from app.http.render import render_error_page, render_page
from app.http.routes.pages import LINK_ERRORS
from app.picture.svg import draw
from app.views.errors import ErrorView, limit_error, link_error, policy_error, scenario_error
from app.views.lessons import TooCostly, describe_term, era_traces
from app.views.links import LinkError, make_link, parse_params
from app.views.runs import EventView, Run, lesson_policy, run
from app.views.sim import picture
from engine.annotations import Annotations
from engine.lesson import SIGSEGV, ask
from engine.lessons import CHALLENGES, LESSONS
from engine.policies import POLICIES, UnknownPolicy, get_policy
from engine.quiz import QuizQuestion, quiz
from engine.syntax import ScenarioError, ScenarioLimitError, parse

router = APIRouter(tags=["lessons"])

# A handout draws every step: a lesson is 7–23 steps. Beyond this many the page would be a
# book, and its pictures alone would take seconds to draw: the link is refused (413).
MAX_HANDOUT_STEPS = 60
# Seeds are numbers a teacher can read out to a class.
MAX_SEED = 10**9


def _page_context(request: Request, page: str) -> dict[str, Any]:
    return {
        "request": request,
        "page": page,
        "view": "normal",
        "error": None,
        "nav": {"home": "/", "compare": "/compare"},
        "policy_param": get_policy("latest").id,
        "share_url": "",
    }


def _error(request: Request, error: ErrorView) -> HTMLResponse:
    return HTMLResponse(render_error_page(request, error), status_code=error.status)


# ---------------------------------------------------------------------------------------------
# /lessons


@dataclass(frozen=True, slots=True)
class LessonCard:
    number: int
    title: str
    policy: str
    steps: int
    questions: int
    intro: str
    start: str
    present: str
    handout: str
    handout_answers: str


def lesson_cards() -> tuple[LessonCard, ...]:
    cards = []
    for number, lesson in enumerate(LESSONS.values(), start=1):
        scenario = parse(lesson.text)
        annotations = scenario.annotations
        cards.append(
            LessonCard(
                number=number,
                title=lesson.title,
                policy=lesson.policy,
                steps=len(scenario.commands),
                questions=len(annotations.questions),
                intro=annotations.note(0) or "",
                start=make_link("/", lesson.text, step=0),
                present=make_link("/", lesson.text, step=0, view="present"),
                handout=f"/handout?lesson={lesson.name}",
                handout_answers=f"/handout?lesson={lesson.name}&answers=1",
            )
        )
    return tuple(cards)


@router.get("/lessons", response_class=HTMLResponse, summary="The built-in lessons")
async def lessons(request: Request) -> Response:
    ctx = _page_context(request, "lessons")
    ctx["lessons"] = lesson_cards()
    return HTMLResponse(render_page("lessons.html", ctx))


# ---------------------------------------------------------------------------------------------
# /challenges


@dataclass(frozen=True, slots=True)
class ChallengeCard:
    number: int
    title: str
    brief: str
    goal: str  # the `#goal` line
    says: tuple[str, ...]  # each term in words
    start: str
    start_text: str
    hints: tuple[str, ...]
    solution: str
    solution_text: str


def challenge_cards() -> tuple[ChallengeCard, ...]:
    cards = []
    for number, challenge in enumerate(CHALLENGES.values(), start=1):
        goal = parse(challenge.start).annotations.goal or ()
        cards.append(
            ChallengeCard(
                number=number,
                title=challenge.title,
                brief=challenge.brief,
                goal="#goal " + " ".join(term.text for term in goal),
                says=tuple(describe_term(term) for term in goal),
                start=make_link("/", challenge.start, step=0),
                start_text=challenge.start,
                hints=challenge.hints,
                solution=make_link("/", challenge.solution),
                solution_text=challenge.solution,
            )
        )
    return tuple(cards)


# What a teacher's own challenge looks like: a `#goal` line and a link.
EXAMPLE_GOAL = "#goal differ@5.7,5.9\nP mmap a\nP write a before\nP fork C\n"


@router.get("/challenges", response_class=HTMLResponse, summary="Challenges the engine checks")
async def challenges(request: Request) -> Response:
    ctx = _page_context(request, "challenges")
    ctx.update(
        challenges=challenge_cards(),
        example_text=EXAMPLE_GOAL,
        example=make_link("/", EXAMPLE_GOAL, step=0),
    )
    return HTMLResponse(render_page("challenges.html", ctx))


# ---------------------------------------------------------------------------------------------
# /quiz


@dataclass(frozen=True, slots=True)
class QuizItem:
    question: QuizQuestion
    commands: tuple[str, ...]
    picked: tuple[str, ...]
    right: bool
    compare: str  # the scenario under every era, for after the answer


def _seed(raw: str) -> int | None:
    if not raw.isdecimal() or len(raw) > 10 or int(raw) > MAX_SEED:
        return None
    return int(raw)


@router.get(
    "/quiz",
    response_class=HTMLResponse,
    summary='The "which era?" quiz',
    description="Ten questions from `seed` (the same for everyone with the link); the "
    "learner's picks travel as `q1`…`q10` (policy ids), `check=1` scores them.",
    responses={
        303: {"description": "Without a seed: to a link with a fresh one."},
        400: {"description": "The seed is not a number.", "content": {"text/html": {}}},
    },
)
async def quiz_page(
    request: Request,
    seed: Annotated[str | None, Query()] = None,
    check: Annotated[str | None, Query()] = None,
) -> Response:
    # Ten scenarios replayed under every era: tens of milliseconds, off the event loop.
    return await run_in_threadpool(_quiz_page, request, seed, check)


def _quiz_page(request: Request, seed: str | None, check: str | None) -> Response:
    if seed is None:
        # A fresh quiz gets its own seed in the link, so it can be shared as it is.
        return RedirectResponse(f"/quiz?seed={secrets.randbelow(MAX_SEED)}", status_code=303)
    number = _seed(seed)
    if number is None:
        return _error(
            request,
            ErrorView(
                400,
                "This quiz link's “seed” cannot be read",
                f"expected a whole number from 0 to {MAX_SEED:,}, found {seed!r}",
                "",
                where=(("parameter", "seed"),),
            ),
        )
    checked = check == "1"
    items = []
    for q in quiz(number):
        picked = tuple(p for p in request.query_params.getlist(f"q{q.number}") if p in POLICIES)
        compare = make_link("/compare", q.text)
        items.append(QuizItem(q, tuple(q.text.split(";")), picked, q.check(picked), compare))
    ctx = _page_context(request, "quiz")
    ctx.update(
        seed=number,
        items=items,
        checked=checked,
        score=sum(item.right for item in items),
        policies=tuple(POLICIES.values()),
        again=f"/quiz?seed={number}",
        fresh="/quiz",
    )
    return HTMLResponse(render_page("quiz.html", ctx))


# ---------------------------------------------------------------------------------------------
# /handout


@dataclass(frozen=True, slots=True)
class Sheet:
    """One step of a handout."""

    index: int
    command: str
    picture: Markup  # the SVG, every user string in it escaped by app.picture.svg
    note: str
    events: tuple[EventView, ...]
    observed: str
    verdicts: tuple[str, ...]
    question: str
    choices: tuple[str, ...]
    qnumber: int
    hidden: bool  # a worksheet's question step: the picture before the read, no outcome


@dataclass(frozen=True, slots=True)
class AnswerSheet:
    number: int
    step: int
    text: str
    answer: str
    why: tuple[EventView, ...]
    note: str  # the step's note, which explains the answer


def _sheets(
    r: Run, annotations: Annotations, choices: dict[int, tuple[str, ...]], worksheet: bool
) -> list[Sheet]:
    """Every step's sheet. A worksheet (answers on the last page) shows a question's step as
    the simulator does before it is answered: the machine before the read, and no outcome."""
    trace = r.trace
    qnumbers = {q.step: n for n, q in enumerate(annotations.questions, start=1)}
    sheets = []
    for step in trace.steps:
        k = step.index
        question = annotations.question(k)
        hidden = worksheet and question is not None
        shown = k - 1 if hidden else k
        title = f"Step {k} of {r.last} under {r.policy.id}: " + (
            f"before {r.texts[k]}" if hidden else r.texts[k] or "empty machine"
        )
        sheets.append(
            Sheet(
                index=k,
                command=r.texts[k] or "empty machine",
                picture=draw(picture(r, shown, title).scene),
                note="" if hidden else annotations.note(k) or "",
                events=r.events[k],
                observed=step.observed.describe() if step.observed is not None else "",
                verdicts=tuple(f"{v.kind}: {v.text}" for v in trace.verdicts if v.step == k),
                question=question.text if question else "",
                choices=choices.get(k, ()),
                qnumber=qnumbers.get(k, 0),
                hidden=hidden,
            )
        )
    return sheets


@router.get(
    "/handout",
    response_class=HTMLResponse,
    summary="Every step of a scenario or lesson, for printing",
    description="`lesson` names a built-in lesson, or `s` (and `policy`) carry a scenario as "
    f"in a share link; `answers=1` adds the questions' answers on a last page. At most "
    f"{MAX_HANDOUT_STEPS} steps (413 beyond).",
    responses={
        **LINK_ERRORS,
        404: {"description": "No built-in lesson has that name.", "content": {"text/html": {}}},
    },
)
async def handout(
    request: Request,
    lesson: Annotated[str | None, Query()] = None,
    s: Annotated[str | None, Query()] = None,
    policy: Annotated[str | None, Query()] = None,
    v: Annotated[str | None, Query()] = None,
    answers: Annotated[str | None, Query()] = None,
) -> Response:
    # Up to `MAX_HANDOUT_STEPS` pictures drawn (0.6 s for the largest, measured under load):
    # off the event loop, where it would stall every other request.
    return await run_in_threadpool(_handout, request, lesson, s, policy, v, answers)


def _handout(
    request: Request,
    lesson: str | None,
    s: str | None,
    policy: str | None,
    v: str | None,
    answers: str | None,
) -> Response:
    if lesson is not None:
        if lesson not in LESSONS:
            known = ", ".join(LESSONS)
            return _error(
                request,
                ErrorView(
                    404,
                    "There is no lesson of that name",
                    f"{lesson!r} is not one of cowlab's lessons: {known}",
                    "",
                ),
            )
        text = LESSONS[lesson].text
    else:
        try:
            text = parse_params({"s": s or "", **({"v": v} if v else {})}).text
        except LinkError as exc:
            return _error(request, link_error(exc, s or ""))
    policy_param = policy or lesson_policy(text) or get_policy("latest").id
    try:
        r = run(text, policy_param, request.app.state.runs)
    except UnknownPolicy as exc:
        return _error(request, policy_error(exc, text, None, "normal", "/handout"))
    except ScenarioLimitError as exc:
        return _error(request, limit_error(exc, text))
    except ScenarioError as exc:
        return _error(request, scenario_error(exc, text, policy_param, "normal", "/handout"))
    if r.last > MAX_HANDOUT_STEPS:
        return _error(
            request,
            ErrorView(
                413,
                "This scenario is too long for a handout",
                f"it has {r.last:,} steps; a handout prints at most {MAX_HANDOUT_STEPS}. "
                "Shorten it, or step through it in the simulator.",
                text,
            ),
        )
    annotations = r.scenario.annotations
    choices: dict[int, tuple[str, ...]] = {}
    answer_sheets: list[AnswerSheet] = []
    if annotations.questions:
        try:
            traces = era_traces(r, tuple(POLICIES), request.app.state.runs)
        except TooCostly as exc:
            return _error(
                request,
                ErrorView(413, "This handout asks more than a page replays", str(exc), text),
            )
        for number, asked in enumerate(ask(r.scenario, traces), start=1):
            step = asked.question.step
            choices[step] = asked.choices
            right = asked.answers[r.policy.id]
            answer_sheets.append(
                AnswerSheet(
                    number,
                    step,
                    asked.question.text,
                    right,
                    r.events[step],
                    annotations.note(step) or "",
                )
            )
    worksheet = answers == "1" and bool(answer_sheets)
    ctx = _page_context(request, "handout")
    ctx.update(
        title=annotations.title or "A cowlab scenario",
        policy=r.policy,
        sheets=_sheets(r, annotations, choices, worksheet),
        answer_sheets=answer_sheets if worksheet else [],
        answers_hidden=bool(answer_sheets) and not worksheet,
        with_answers=make_link("/handout", text, policy=policy) + "&answers=1"
        if lesson is None
        else f"/handout?lesson={lesson}&answers=1",
        open_link=make_link("/", text, policy=policy, step=0),
        sigsegv=SIGSEGV,
    )
    return HTMLResponse(render_page("handout.html", ctx))
