"""Steps without a round trip (issue 23): the step deck a page holds, and the offline file.

`/steps?<link>` answers the steps around the link's step (`app.views.deck`) as ``<template>``
elements, each holding exactly what a step request (``HX-Target: stage``) would get, with the
link it pushes: `static/steps.js` keeps them and swaps one in when a key, a button, the
timeline or the player asks for its step. The server draws every picture; the browser only
swaps markup it was given.

`/export.html?<link>` (and `cowlab export html`) is the same page with every step in it, CSS and
script inline, and nothing that needs the server: one file that steps from disk with no
network. A lesson's answers travel sealed (`app.views.deck.seal`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.http.heavy import scenario_chars
from app.http.htmx import htmx_details
from app.http.render import render_page
from app.http.routes.pages import (
    LINK_ERRORS,
    AnswerQ,
    LinkQuery,
    StepAnswer,
    _answer,
    _error_response,
    _html,
    _open_run,
    step_answer,
)
from app.paths import STATIC_DIR
from app.views.deck import (
    DECK_MAX_BYTES,
    OFFLINE_MAX_ANSWERS,
    OFFLINE_MAX_STEPS,
    OFFLINE_MAX_WEIGHT,
    STEP_WINDOW,
    deck_span,
    seal,
)
from app.views.errors import ErrorView
from app.views.lessons import TooCostly, build_lesson
from app.views.links import View
from app.views.runs import Run, RunMemo
from app.views.sim import Linker

router = APIRouter()

# A heavy scenario's steps cost more each (a trace over the offline file's weight bound, up to
# the limits of DESIGN.md §7): its deck holds fewer of them.
HEAVY_WINDOW = 2

INLINE_CSS = ("app.css", "lesson.css", "offline.css")
INLINE_JS = ("app.js", "lesson.js", "steps.js")


@dataclass(frozen=True, slots=True)
class DeckEntry:
    """One step answer as a ``<template>`` of the deck."""

    answer: StepAnswer
    plain: bool  # the step as a step link shows it (not a learner's answer)
    hash: str = ""  # the offline file's address of this entry (`#step=K`)
    sealed: str = ""  # the answer's markup, sealed (the offline file's question steps)


def _questions(r: Run) -> tuple[int, ...]:
    return tuple(q.step for q in r.scenario.annotations.questions)


def _revealed(
    request: Request, r: Run, policy: str, view: View, k: int, answer: str | None
) -> bool:
    """Whether the page at step ``k`` shows its question answered (a pick the question knows,
    or the empty "show us"): a made-up pick leaves it hidden, and so must the deck."""
    if answer is None or k not in _questions(r):
        return False
    lesson = build_lesson(r, k, Linker("/", r, policy, view), answer, request.app.state.runs)
    return lesson is not None and lesson.question is not None and lesson.question.picked is not None


@router.get(
    "/steps",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="The steps around a link's step, for the page to show without a round trip",
    description=(
        "Each step as a `<template>` holding what a step request of the simulator page gets "
        "(`data-push`: the link it shows). At most 12 steps on each side and 1.5 MB of markup; "
        "nothing after a lesson's question the link has not answered."
    ),
)
async def steps(request: Request, query: LinkQuery, answer: AnswerQ = None) -> Response:
    return await _answer(request, scenario_chars(query.get("s")), _steps, request, query, answer)


def _steps(request: Request, query: dict[str, str], answer: str | None) -> Response:
    hx = htmx_details(request)
    opened = _open_run(request, hx, query, "index.html", "home")
    if isinstance(opened, Response):
        return opened
    params, policy, r, k = opened
    try:
        revealed = _revealed(request, r, policy, params.view, k, answer)
        window = STEP_WINDOW if r.weight <= OFFLINE_MAX_WEIGHT else HEAVY_WINDOW
        span = deck_span(k, r.last, _questions(r), revealed, window)
        held: list[StepAnswer] = []
        size = 0
        for step in span.nearest_first():
            got = step_answer(request, r, policy, params.view, step, None, stage_request=True)
            size += len(got.body)
            if held and size > DECK_MAX_BYTES:
                break
            held.append(got)
    except TooCostly as exc:
        error = ErrorView(413, "This lesson asks more than a page replays", str(exc), r.link_text)
        return _error_response(request, hx, error, "index.html", "home", params.view, policy)
    held.sort(key=lambda a: a.step)
    lo, hi = held[0].step, held[-1].step
    body = render_page(
        "_deck.html",
        {
            "entries": [DeckEntry(a, plain=True) for a in held],
            "lo": lo,
            "hi": hi,
            "more_before": lo > 0,
            "more_after": span.more_after or hi < span.hi,
        },
    )
    return _html(body)


def _read_static(names: Iterable[str]) -> str:
    return "\n".join((STATIC_DIR / name).read_text(encoding="utf-8") for name in names)


class TooLarge(Exception):
    """The scenario is over a bound of the offline file (`app.views.deck`); says which."""


def _answers(request: Request, r: Run, policy: str) -> list[tuple[int, str]]:
    """(step, pick) of every answer the file holds: "show the answer" and each choice."""
    linker = Linker("/", r, policy, "normal")
    answers = []
    for q in _questions(r):
        lesson = build_lesson(r, q, linker, None, request.app.state.runs)
        assert lesson is not None and lesson.question is not None  # a step with a question
        answers += [(q, pick) for pick in ("", *(c.text for c in lesson.question.choices))]
    return answers


def check_bounds(request: Request, r: Run, policy: str) -> list[tuple[int, str]]:
    """The answers `offline_entries` will draw; `TooLarge` when the file would be over a
    bound, `TooCostly` when asking the questions replays too much."""
    if r.last > OFFLINE_MAX_STEPS:
        raise TooLarge(
            f"the scenario has {r.last} steps; the offline file holds at most "
            f"{OFFLINE_MAX_STEPS} (each step's picture is drawn into it)"
        )
    if r.weight > OFFLINE_MAX_WEIGHT:
        raise TooLarge(
            f"the scenario's trace weighs {r.weight:,} page-table, frame and reference "
            f"entries; the offline file holds at most {OFFLINE_MAX_WEIGHT:,}"
        )
    answers = _answers(request, r, policy)
    if len(answers) > OFFLINE_MAX_ANSWERS:
        raise TooLarge(
            f"its questions have {len(answers)} answers and choices to draw; the offline file "
            f"holds at most {OFFLINE_MAX_ANSWERS}"
        )
    return answers


def offline_entries(request: Request, r: Run, policy: str) -> list[DeckEntry]:
    """Every step of ``r``, and every answer to each of its questions, for the offline file.
    Raises `TooLarge` or `TooCostly` (`check_bounds`)."""
    answers = check_bounds(request, r, policy)
    sealed = bool(answers)
    entries = []

    def entry(a: StepAnswer, plain: bool, address: str) -> DeckEntry:
        if sealed:
            return DeckEntry(a, plain, address, seal(a.body))
        return DeckEntry(a, plain, address)

    for k in range(r.last + 1):
        got = step_answer(request, r, policy, "normal", k, None, stage_request=True, offline=True)
        entries.append(entry(got, True, f"step={k}"))
    for q, pick in answers:
        got = step_answer(request, r, policy, "normal", q, pick, stage_request=True, offline=True)
        entries.append(entry(got, False, f"step={q}&answer={quote(pick)}"))
    return entries


def offline_page(request: Request, r: Run, policy: str, k: int, online: str = "") -> str:
    """The whole offline file: the page at step ``k``, every step in its deck, CSS and script
    inline. ``online``: the link of the same page on the server it came from, if any."""
    entries = offline_entries(request, r, policy)
    extra = {
        "entries": entries,
        "inline_css": _read_static(INLINE_CSS),
        "inline_js": _read_static(INLINE_JS),
        "favicon": (STATIC_DIR / "favicon.svg").read_text(encoding="utf-8"),
        "online_link": online,
    }
    return step_answer(
        request,
        r,
        policy,
        "normal",
        k,
        None,
        stage_request=False,
        whole=True,
        offline=True,
        page=("offline.html", extra),
    ).body


def offline_filename(r: Run) -> str:
    title = r.scenario.annotations.title or "scenario"
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48] or "scenario"
    return f"cowlab-{slug}-{r.policy.id}.html"


@router.get(
    "/export.html",
    response_class=Response,
    summary="The scenario or lesson as one self-contained HTML file that steps offline",
    description=(
        "Every step drawn into one file (CSS and script inline, no request to any host): open "
        f"it from disk and step with the keys, buttons and timeline. At most {OFFLINE_MAX_STEPS} "
        "steps; the link's step is the one it opens at."
    ),
    responses={200: {"content": {"text/html": {}}}, **LINK_ERRORS},
)
async def export_html(request: Request, query: LinkQuery) -> Response:
    # A whole lesson's steps take a few hundred milliseconds: off the event loop.
    return await run_in_threadpool(_export_html, request, query)


def _export_html(request: Request, query: dict[str, str]) -> Response:
    hx = htmx_details(request)
    opened = _open_run(request, hx, query, "index.html", "home")
    if isinstance(opened, Response):
        return opened
    params, policy, r, k = opened
    # A link without a step shows the last one; a downloaded lesson starts at its beginning.
    k = 0 if params.step is None else k
    online = str(request.base_url).rstrip("/") + Linker("/", r, policy, "normal").step(k)
    try:
        body = offline_page(request, r, policy, k, online)
    except TooLarge as exc:
        message = f"{str(exc).capitalize()}. Shorten it, or split it into lessons."
        error = ErrorView(413, "Too large to download for offline use", message, r.link_text)
        return _error_response(request, hx, error, "index.html", "home", params.view, policy)
    except TooCostly as exc:
        error = ErrorView(413, "This lesson asks more than a page replays", str(exc), r.link_text)
        return _error_response(request, hx, error, "index.html", "home", params.view, policy)
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{offline_filename(r)}"'},
    )


def standalone_request(query: dict[str, str]) -> Request:
    """A request for `offline_page` outside a server (`cowlab export html`): its own run memo,
    no host to link back to."""
    app = SimpleNamespace(state=SimpleNamespace(runs=RunMemo()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/export.html",
        "query_string": urlencode(query).encode(),
        "headers": [],
        "scheme": "http",
        "server": ("localhost", 80),
        "root_path": "",
        "app": app,
    }
    return Request(scope)
