"""The hypermedia routes: decode the link, replay, build the view model, render.

Each route answers a whole page, or — for a partial htmx request — just the region the request
targets plus the other regions that change with it (as htmx 4 ``<hx-partial>``s), and pushes
the canonical share link (``HX-Push-Url``) so the address bar always holds what is on screen.
History restores (Back/Forward) arrive as htmx requests of type ``full`` and get the whole page.

Routes are ``async def``: they do no I/O, and a render of a lesson takes milliseconds, so
running it on the event loop is cheaper than a hop to the thread pool. A large scenario (by its
decompressed size) is built in a worker thread under a deadline instead (`app.http.heavy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated, Any, ParamSpec

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.http.heavy import OFFLOAD_CHARS, is_heavy, offload, scenario_chars
from app.http.htmx import HtmxDetails, htmx_details
from app.http.render import render_error_page, render_fragment, render_page
from app.picture.png import svg_to_png
from app.picture.svg import draw
from app.probe.web import probe_button
from app.views.compare import build_comparison
from app.views.editor_errors import editor_error
from app.views.embed_range import StepRange
from app.views.errors import (
    ErrorView,
    compare_limit_error,
    limit_error,
    link_error,
    policy_error,
    scenario_error,
    stopped_error,
)
from app.views.lab import MAX_CUSTOM_COLUMNS, custom_columns
from app.views.lessons import (
    TooCostly,
    answer_link,
    build_goal,
    build_lesson,
    hide_future,
    hide_outcome,
    welcome_view,
)
from app.views.links import LinkError, LinkParams, View, make_link, parse_params
from app.views.presets import BACKING_IDS, build_grid, presets_page
from app.views.runs import Run, Stopped, lesson_policy, run
from app.views.scenario_head import scenario_head
from app.views.sim import Linker, build_sim, build_stage, picture, timeline_is_windowed
from engine.policies import POLICIES, UnknownPolicy, get_policy
from engine.policies.custom import MAX_ID_LENGTH
from engine.syntax import ScenarioError, ScenarioLimitError

router = APIRouter()

# What each link parameter means: the OpenAPI schema documents them (and schemathesis fuzzes
# them), and the link decoder validates them itself, answering a bad link with an HTML page that
# says what is wrong rather than FastAPI's JSON 422, so they are plain strings to FastAPI.
# Every page route takes them as FastAPI parameters (DESIGN.md §7's cold_step budget allows the
# parameter solving; see docs/benchmarks.md).
PARAMETERS = {
    "s": "The scenario: commands joined by `;` (by newlines when it has `#` lines), "
    "or `z:` + base64url(deflate).",
    "policy": "Policy era id (`latest` is the newest) or a policy-lab point "
    "`custom:base=ID,KNOB=CHOICE,…`; default: the scenario's `#policy`, else `latest`.",
    "step": "Step to show, 0 = empty machine.",
    "v": "Link format version; `1`.",
    "view": "`present` for presentation mode.",
    "add": "A command to append to `s` (what the action buttons send).",
    "src": "`editor` when the scenario was typed (an error then goes next to the editor).",
    "policies": "Comma-separated policy ids to compare (default: all).",
}
S = Annotated[str | None, Query(description=PARAMETERS["s"])]
PolicyQ = Annotated[str | None, Query(description=PARAMETERS["policy"])]
StepQ = Annotated[str | None, Query(description=PARAMETERS["step"])]
VQ = Annotated[str | None, Query(description=PARAMETERS["v"])]
ViewQ = Annotated[str | None, Query(description=PARAMETERS["view"])]
PoliciesQ = Annotated[str | None, Query(description=PARAMETERS["policies"])]
AddQ = Annotated[str | None, Query(description=PARAMETERS["add"])]
SrcQ = Annotated[str | None, Query(description=PARAMETERS["src"])]
PQ = Annotated[list[str] | None, Query(description="Policy ids (checkbox form of `policies`).")]
CustomQ = Annotated[
    list[str] | None,
    Query(
        description="A custom lab point `custom:base=ID,KNOB=CHOICE,…` as one more column "
        f"(repeat for more, at most {MAX_CUSTOM_COLUMNS}, each at most {MAX_ID_LENGTH} "
        "characters; DESIGN.md §11); anything else, an empty value too, is a 400 page.",
    ),
]
BackingQ = Annotated[
    str | None,
    Query(
        description="Show the presets of one backing: "
        + ", ".join(f"`{b}`" for b in BACKING_IDS)
        + " (DESIGN.md §10); anything else shows every preset and says so.",
    ),
]
# A pick that is not one of the question's choices is no pick (app.views.lessons): no length
# limit of its own, which would answer a long one with FastAPI's JSON 422 instead of the page.
AnswerQ = Annotated[
    str | None,
    Query(
        description="A lesson's question at this step: the learner's pick (DESIGN.md §8); "
        "empty: show the answer without a pick."
    ),
]


def _query(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


async def link_query(
    s: S = None, policy: PolicyQ = None, step: StepQ = None, v: VQ = None, view: ViewQ = None
) -> dict[str, str]:
    """The parameters of a share link that are present (as `app.views.links.parse_params` reads
    them): the query of `/`, `/embed` and `/export.svg`. ``async``: FastAPI would run a
    plain function on the thread pool, a hop that costs more than the function."""
    return _query(s=s, policy=policy, step=step, v=v, view=view)


LinkQuery = Annotated[dict[str, str], Depends(link_query)]


VARY = "HX-Request, HX-Request-Type, HX-Target, HX-History-Restore-Request"
# A link the server cannot read is answered with an HTML page saying why (DESIGN.md §5).
LINK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "The link cannot be read: a page naming the parameter, line and column.",
        "content": {"text/html": {}},
    },
    413: {"description": "The scenario is over cowlab's limits.", "content": {"text/html": {}}},
    414: {
        "description": "The link is longer than cowlab reads (a page naming the limit).",
        "content": {"text/html": {}},
    },
}


P = ParamSpec("P")


async def _answer(
    request: Request, chars: int, build: Callable[P, Response], *args: P.args, **kwargs: P.kwargs
) -> Response:
    """``build(...)``: on the event loop for a small scenario (cheaper than a thread hop), in
    a worker thread under a deadline for a large one (`app.http.heavy`); ``chars`` is the size of
    the decompressed scenario (times the columns, for /compare)."""
    if not is_heavy(chars):
        return build(*args, **kwargs)
    try:
        return await offload(request.receive, partial(build, *args, **kwargs))
    except Stopped as exc:
        return HTMLResponse(render_error_page(request, stopped_error(exc)), status_code=503)


def latest_id() -> str:
    return get_policy("latest").id


def _context(request: Request, page: str, view: View, text: str, policy: str) -> dict[str, Any]:
    """What every page template reads, whatever the route."""
    return {
        "request": request,
        "page": page,
        "view": view,
        "error": None,
        "nav": {
            "home": make_link("/", text, policy=policy, view=view),
            "compare": make_link("/compare", text, view=view),
        },
        "policy_param": policy,
        "share_url": "",
    }


def _absolute(request: Request, link: str) -> str:
    return str(request.base_url).rstrip("/") + link


def _html(
    body: str,
    status: int = 200,
    *,
    push: str | None = None,
    retarget: str | None = None,
    reswap: str = "innerHTML",
) -> HTMLResponse:
    headers = {"Vary": VARY}
    if push is not None:
        headers["HX-Push-Url"] = push
    if retarget is not None:
        headers["HX-Retarget"] = retarget
        headers["HX-Reswap"] = reswap
    return HTMLResponse(body, status_code=status, headers=headers)


# Which block of each page holds its error view, and the regions that change with it.
_ERROR_BLOCKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "index.html": ("sim", ("stepbar", "narration", "scenario_head")),
    "embed.html": ("embed", ()),
    "compare.html": ("compare", ()),
}


def _error_response(
    request: Request,
    hx: HtmxDetails,
    error: ErrorView,
    template: str,
    page: str,
    view: View,
    policy: str,
    editor: bool = False,
) -> HTMLResponse:
    """The error view as a page, or as the simulator region for an htmx request.

    For htmx the error replaces the whole simulator region (``HX-Retarget``) whatever the
    request aimed at, and the link the user asked for is pushed, so reloading or sharing it
    shows the same explanation with the same text.
    """
    if hx.partial and editor:
        # Text typed in the editor: the error goes next to the editor, once, and the picture
        # of the last scenario that ran stays (so does the address bar: nothing new ran).
        typed = editor_error(error)
        return _html(
            render_page("_editor_error.html", {"error": typed}),
            error.status,
            retarget="#editor-error",
        )
    ctx = _context(request, page, view, "", policy)
    ctx["error"] = error
    if hx.partial:
        requested = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        block, partials = _ERROR_BLOCKS[template]
        body = render_fragment(template, ctx, block, partials)
        return _html(body, error.status, push=requested, retarget=f"#{block}")
    return _html(render_page(template, ctx), error.status)


def _replay(
    request: Request, params: LinkParams, policy: str
) -> Run:  # raises UnknownPolicy, ScenarioError, ScenarioLimitError
    return run(params.text, policy, request.app.state.runs)


def _step(params: LinkParams, r: Run) -> int:
    # A step past the end is read as "the end": the scenario may have been shortened by hand.
    return r.last if params.step is None else min(params.step, r.last)


def _failure(
    request: Request,
    hx: HtmxDetails,
    exc: Exception,
    params: LinkParams,
    template: str,
    page: str,
    policy: str,
    path: str = "/",
    editor: bool = False,
) -> HTMLResponse:
    if isinstance(exc, UnknownPolicy):
        error = policy_error(exc, params.text, params.step, params.view, path)
    elif isinstance(exc, ScenarioLimitError):
        error = limit_error(exc, params.text)
    elif isinstance(exc, ScenarioError):
        error = scenario_error(exc, params.text, policy, params.view, path)
    else:  # pragma: no cover - the callers pass only the three kinds above
        raise exc
    return _error_response(request, hx, error, template, page, params.view, policy, editor)


def _open_run(
    request: Request,
    hx: HtmxDetails,
    query: dict[str, str],
    template: str,
    page: str,
    path: str = "/",
    add: str | None = None,
    editor: bool = False,
) -> Response | tuple[LinkParams, str, Run, int]:
    """Decode the link, replay it and pick the step — or answer with the error page.

    Every view of one run (the page, the embed, the SVG download) starts the same way; the
    error it shows keeps the user's text and says where the link went wrong. ``add`` is an
    action button: the scenario so far plus one command, shown at its end.
    """
    try:
        params = parse_params(query)
        if add:
            # A newline, not `;`: the text may end in a comment, which would swallow the command.
            text = f"{params.text}\n{add}" if params.text.strip() else add
            params = replace(params, text=text, step=None)
    except LinkError as exc:
        plain_view: View = "present" if query.get("view") == "present" else "normal"
        return _error_response(
            request,
            hx,
            link_error(exc, query.get("s") or ""),
            template,
            page,
            plain_view,
            query.get("policy") or latest_id(),
        )
    # Text run from the editor opens in its own `#policy` (the era the page showed is only the
    # default): a teacher writing a lesson sees it as the class will.
    written = lesson_policy(params.text) if editor else None
    policy_param = written or params.policy or lesson_policy(params.text) or latest_id()
    try:
        r = _replay(request, params, policy_param)
    except (UnknownPolicy, ScenarioError) as exc:
        return _failure(request, hx, exc, params, template, page, policy_param, path, editor)
    if editor and _starts_at_the_beginning(r):
        return params, policy_param, r, 0
    return params, policy_param, r, _step(params, r)


def _starts_at_the_beginning(r: Run) -> bool:
    """A lesson (title, notes, questions) or a challenge run from the editor opens at step 0,
    as its link does: read from the start, or checked against its goal from the start."""
    a = r.scenario.annotations
    return bool(a.title or a.notes or a.questions or a.goal is not None)


@router.get(
    "/",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="The simulator page",
    description="The scenario at one step under one policy; htmx requests get a fragment.",
)
async def index(
    request: Request,
    query: LinkQuery,
    add: AddQ = None,
    answer: AnswerQ = None,
    src: SrcQ = None,
) -> Response:
    chars = scenario_chars(query.get("s")) + len(add or "")
    hx = htmx_details(request)
    return await _answer(request, chars, _index, request, hx, query, add, answer, src == "editor")


def _index(
    request: Request,
    hx: HtmxDetails,
    query: dict[str, str],
    add: str | None,
    answer: str | None = None,
    editor: bool = False,
) -> Response:
    opened = _open_run(request, hx, query, "index.html", "home", add=add, editor=editor)
    if isinstance(opened, Response):
        return opened
    params, policy_param, r, k = opened
    try:
        answered = step_answer(
            request,
            r,
            policy_param,
            params.view,
            k,
            answer,
            stage_request=hx.partial and hx.target_id == "stage",
            whole=not hx.partial,
            welcome=not request.url.query and not hx.partial,
        )
    except TooCostly as exc:
        error = ErrorView(413, "This lesson asks more than a page replays", str(exc), r.link_text)
        return _error_response(request, hx, error, "index.html", "home", params.view, policy_param)
    if not hx.partial:
        if add:
            # Without JavaScript the form's URL is `…&add=…`: send the browser to the share link.
            return RedirectResponse(answered.push, status_code=303, headers={"Vary": VARY})
        return _html(answered.body)
    retarget = "#sim" if answered.retargeted else None
    # A step stays where the page is, as every step's own swap does (`show:none`): a
    # projector's step bar and picture do not scroll away.
    return _html(answered.body, push=answered.push, retarget=retarget, reswap="innerHTML show:none")


@dataclass(frozen=True, slots=True)
class StepAnswer:
    """What the simulator page answers for one step: the body, the link the address bar takes
    (``HX-Push-Url``), and the region the body is for (``stage`` with its step bar and
    narration as partials, or the whole ``sim`` region)."""

    step: int
    body: str
    push: str
    target: str
    retargeted: bool  # a step request answered with the whole region (a lesson with questions)


def step_answer(
    request: Request,
    r: Run,
    policy_param: str,
    view: View,
    k: int,
    answer: str | None,
    *,
    stage_request: bool,
    whole: bool = False,
    welcome: bool = False,
    offline: bool = False,
    page: tuple[str, Mapping[str, object]] = ("index.html", {}),
) -> StepAnswer:
    """Step ``k`` of run ``r`` as the simulator page answers it: the whole page (``whole``),
    an htmx step request's fragment (``stage_request``), or the whole simulator region.

    The same bodies make the step deck a page holds (`app.http.routes.offline`): a step taken
    from it is what the server would have answered. ``offline``: for the downloaded file,
    without what needs the server (actions, the editor, other eras). ``page``: the template
    of a whole page and what it reads besides the simulator's view. Raises `TooCostly`.
    """
    # A linker encodes the scenario (milliseconds for a long one): made once, and only for a
    # step request or a lesson; a whole page of a plain scenario makes its own in build_sim.
    is_lesson = r.scenario.annotations.is_lesson
    linker = Linker("/", r, policy_param, view) if is_lesson or stage_request else None
    memo = request.app.state.runs
    lesson = build_lesson(r, k, linker, answer, memo) if linker and is_lesson else None
    # A lesson with questions re-renders its whole region on every step (below): what the
    # timeline and the verdict list show depends on the step.
    stage_only = stage_request and not (lesson and lesson.has_questions)
    goal = None if stage_only else build_goal(r, memo)
    if stage_only and linker is not None:
        # A step (← →, the step bar, the timeline): only what changes from step to step is
        # built and sent; the era's story, the verdict list and the editor stay on the page.
        windowed = timeline_is_windowed(r) and not offline
        stage = build_stage(r, k, linker, offline=offline, timeline=windowed)
        fragment: dict[str, object] = {
            "stage": stage,
            "error": None,
            "policy_param": policy_param,
            "view": view,
            "lesson": lesson,
            "offline": offline,
        }
        # The timeline is on the page already, whole for a short scenario: only the mark of the
        # current step moves, which app.js does from the step bar's `data-step`. A long
        # scenario's timeline is a window around the step, sent again with each step.
        partials: tuple[str, ...] = ("stepbar", "narration")
        if windowed:
            partials += ("timeline",)
        body = render_fragment("index.html", fragment, "stage", partials)
        return StepAnswer(k, body, stage.share, "stage", False)
    # The offline file's timeline lists every step once; a step there only moves its mark.
    sim = build_sim(r, policy_param, k, view, offline=offline)
    if lesson is not None and linker is not None:
        stage = sim.stage
        if lesson.hidden:
            stage = hide_outcome(stage, r, k, linker)
        elif lesson.question is not None and lesson.question.picked is not None:
            stage = stage._replace(share=answer_link(stage.share, lesson.question.picked))
        stage, hidden_sim = hide_future(stage, replace(sim, stage=stage), lesson)
        assert hidden_sim is not None
        sim = hidden_sim
    # The offline file is no page of the site: no section is current, no "Go live".
    ctx = _context(request, "offline" if offline else "home", view, r.link_text, policy_param)
    ctx.update(
        sim=sim,
        stage=sim.stage,
        share_url=_absolute(request, sim.stage.share),
        probe=None if offline else probe_button(request, r.editor_text),
        head=scenario_head(r),
        lesson=lesson,
        goal=goal,
        welcome=welcome_view() if welcome else None,
        offline=offline,
    )
    if whole:
        template, extra = page
        ctx.update(extra)
        return StepAnswer(k, render_page(template, ctx), sim.stage.share, "page", False)
    body = render_fragment("index.html", ctx, "sim", ("stepbar", "narration", "scenario_head"))
    # A step of a lesson with questions, asked for the stage alone: the whole region answers.
    return StepAnswer(k, body, sim.stage.share, "sim", stage_request)


@router.get(
    "/embed",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="Read-only diagram for slides and course pages",
    description="Minimal chrome, step buttons only; this is the one page that may be framed.",
)
async def embed(
    request: Request,
    query: LinkQuery,
    from_: Annotated[str | None, Query(alias="from", description="First step shown.")] = None,
    to: Annotated[str | None, Query(description="Last step shown.")] = None,
) -> Response:
    chars = scenario_chars(query.get("s"))
    return await _answer(request, chars, _embed, request, htmx_details(request), query, from_, to)


def _embed(
    request: Request, hx: HtmxDetails, query: dict[str, str], lo: str | None, hi: str | None
) -> Response:
    opened = _open_run(request, hx, query, "embed.html", "embed", path="/embed")
    if isinstance(opened, Response):
        return opened
    params, policy_param, r, k = opened
    link_text = r.link_text
    linker = Linker("/embed", r, policy_param, "normal")
    steps = StepRange.read(lo, hi, r.last)
    k = steps.clamp(k)
    suffix = steps.suffix(r.last)
    stage = build_stage(r, k, linker, timeline=False)  # the embed has no timeline
    if suffix:
        stage = stage._replace(
            nav=steps.nav(k, lambda step: linker.step(step) + suffix),
            share=stage.share + suffix,
        )
    ctx = _context(request, "embed", "normal", link_text, policy_param)
    ctx.update(
        stage=stage,
        policy=r.policy,
        open_link=make_link("/", link_text, policy=policy_param, step=k),
    )
    if hx.partial:
        return _html(render_fragment("embed.html", ctx, "embed"), push=stage.share)
    return _html(render_page("embed.html", ctx))


@router.get(
    "/export.svg",
    response_class=Response,
    summary="The picture of one step, as an SVG download",
    responses={200: {"content": {"image/svg+xml": {}}}, **LINK_ERRORS},
)
async def export_svg(request: Request, query: LinkQuery) -> Response:
    return await _answer(request, scenario_chars(query.get("s")), _export_svg, request, query)


def _export_svg(request: Request, query: dict[str, str]) -> Response:
    opened = _open_run(request, htmx_details(request), query, "index.html", "home")
    if isinstance(opened, Response):
        return opened
    _, _, r, k = opened
    scene = picture(
        r, k, f"cowlab: step {k} under {r.policy.id}: {r.texts[k] or 'empty machine'}"
    ).scene
    svg = '<?xml version="1.0" encoding="UTF-8"?>\n' + str(draw(scene))
    filename = f"cowlab-{r.policy.id}-step{k}.svg"
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/export.png",
    response_class=Response,
    summary="The picture of one step, as a PNG download (for slide tools without SVG)",
    responses={200: {"content": {"image/png": {}}}, **LINK_ERRORS},
)
async def export_png(request: Request, query: LinkQuery) -> Response:
    # Rasterising takes tens of milliseconds: always off the event loop.
    return await run_in_threadpool(_export_png, request, query)


def _export_png(request: Request, query: dict[str, str]) -> Response:
    opened = _open_run(request, htmx_details(request), query, "index.html", "home")
    if isinstance(opened, Response):
        return opened
    _, _, r, k = opened
    scene = picture(
        r, k, f"cowlab: step {k} under {r.policy.id}: {r.texts[k] or 'empty machine'}"
    ).scene
    png = svg_to_png(str(draw(scene)), scene.width, scene.height)
    filename = f"cowlab-{r.policy.id}-step{k}.png"
    return Response(
        png,
        media_type="image/png",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# /compare replays the scenario under every chosen era (eleven by default): it takes scenarios
# whose run weighs at most this (`app.views.runs.Run.weight`: page-table, frame and reference
# entries the trace holds, about the work of its replay) — a tenth of a scenario at every limit
# of DESIGN.md §7 (~500,000), so eleven columns cost about what one era of the largest does.
COMPARE_MAX_WEIGHT = 50_000


def _chosen_policies(params: LinkParams, checkboxes: list[str] | None) -> tuple[str, ...] | None:
    if checkboxes:
        return tuple(dict.fromkeys(checkboxes))
    return params.policies


@router.get(
    "/compare",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="One scenario under all (or chosen) policies side by side",
)
async def compare(
    request: Request,
    s: S = None,
    policies: PoliciesQ = None,
    p: PQ = None,
    step: StepQ = None,
    v: VQ = None,
    view: ViewQ = None,
    policy: PolicyQ = None,
    custom: CustomQ = None,
) -> Response:
    hx = htmx_details(request)
    # Every era replays the scenario: offload sooner than a single-era page.
    columns = len(p) if p else len(policies.split(",")) if policies else len(POLICIES)
    chars = scenario_chars(s) * (columns + len(custom or ()))
    if custom:
        # A custom column is a policy built and a replay nothing has memoised: off the loop.
        chars = max(chars, OFFLOAD_CHARS + 1)
    return await _answer(
        request, chars, _compare, request, hx, s, policies, p, step, v, view, policy, custom
    )


def _compare(
    request: Request,
    hx: HtmxDetails,
    s: str | None,
    policies: str | None,
    p: list[str] | None,
    step: str | None,
    v: str | None,
    view: str | None,
    policy: str | None,
    custom: list[str] | None = None,
) -> Response:
    try:
        params = parse_params(
            _query(s=s, policies=policies, step=step, v=v, view=view, policy=policy)
        )
        customs = custom_columns(custom)
    except LinkError as exc:
        return _error_response(
            request,
            hx,
            link_error(exc, s or ""),
            "compare.html",
            "compare",
            "normal",
            latest_id(),
        )
    except UnknownPolicy as exc:
        return _failure(
            request,
            hx,
            exc,
            parse_params(_query(s=s)),
            "compare.html",
            "compare",
            latest_id(),
            "/compare",
        )
    chosen = _chosen_policies(params, p)
    ids = chosen or tuple(POLICIES)
    try:
        # The last era column first: the newest era, whose run the page the user came from has
        # most likely left in the memo, so a scenario over the limit costs no replay.
        newest = _replay(request, params, ids[-1])
        if newest.weight > COMPARE_MAX_WEIGHT and len(ids) + len(customs) > 1:
            error = compare_limit_error(newest.weight, COMPARE_MAX_WEIGHT, params.text, ids[-1])
            return _error_response(
                request, hx, error, "compare.html", "compare", params.view, latest_id()
            )
        runs = (
            *(_replay(request, params, pid) for pid in ids[:-1]),
            newest,
            *(_replay(request, params, pid) for pid in customs),
        )
    except (UnknownPolicy, ScenarioError) as exc:
        return _failure(
            request, hx, exc, params, "compare.html", "compare", latest_id(), "/compare"
        )
    link_text = runs[0].link_text
    k = _step(params, runs[0])
    # Keep `policies=` in links only when the user chose a subset, in the canonical ids.
    policies_param = tuple(r.policy.id for r in runs[: len(ids)]) if chosen else None
    comparison = build_comparison(runs, link_text, policies_param, k, params.view, customs)
    ctx = _context(request, "compare", params.view, link_text, latest_id())
    ctx.update(
        cmp=comparison,
        all_policies=tuple(POLICIES.values()),
        chosen=set(comparison.policies),
        editor_text=runs[0].editor_text,
    )
    if hx.partial:
        if hx.target_id == "cmp-stage":
            body = render_fragment("compare.html", ctx, "cmp_stage")
        else:
            body = render_fragment("compare.html", ctx, "compare")
        return _html(body, push=comparison.share)
    return _html(render_page("compare.html", ctx))


@router.get(
    "/presets",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="Every preset under every policy, as a grid of verdicts",
)
async def presets(request: Request, custom: CustomQ = None, backing: BackingQ = None) -> Response:
    if not custom:
        # The eras' columns come from the app's memo after the first request: milliseconds.
        return _presets(request, custom, backing)
    # A custom column replays every preset under a point the memo has likely never seen (the
    # knob space has hundreds of thousands): a worker thread, under the request deadline.
    return await _answer(request, OFFLOAD_CHARS + 1, _presets, request, custom, backing)


def _presets(
    request: Request, custom: list[str] | None = None, backing: str | None = None
) -> Response:
    try:
        customs = custom_columns(custom)
    except LinkError as exc:
        return _error_response(
            request,
            htmx_details(request),
            link_error(exc, ""),
            "compare.html",
            "compare",
            "normal",
            latest_id(),
        )
    except UnknownPolicy as exc:
        return _error_response(
            request,
            htmx_details(request),
            policy_error(exc, "", None, "normal", "/compare"),
            "compare.html",
            "compare",
            "normal",
            latest_id(),
        )
    ids = (*POLICIES, *(c for c in customs if c not in POLICIES))
    columns, rows = build_grid(request.app.state.runs, ids)
    ctx = _context(request, "presets", "normal", "", latest_id())
    grid = presets_page(columns, rows, backing, customs)
    ctx.update(grid=grid)
    hx = htmx_details(request)
    if hx.partial and hx.target_id == "presets-grid":
        # The filter's links swap the grid region alone (the filter inside it shows the choice).
        here = next(c.href for c in grid.choices if c.current)
        return _html(render_fragment("presets.html", ctx, "grid"), push=here)
    return _html(render_page("presets.html", ctx))
