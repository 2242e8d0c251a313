"""The hypermedia routes: decode the link, replay, build the view model, render.

Each route answers a whole page, or — for a partial htmx request — just the region the request
targets plus the other regions that change with it (as htmx 4 ``<hx-partial>``s), and pushes
the canonical share link (``HX-Push-Url``) so the address bar always holds what is on screen.
History restores (Back/Forward) arrive as htmx requests of type ``full`` and get the whole page.

Routes are ``async def``: they do no I/O, and a render takes milliseconds, so running them on
the event loop is cheaper than a hop to the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, ParamSpec

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.compare import build_comparison
from app.errors import ErrorView, limit_error, link_error, policy_error, scenario_error
from app.htmx import HtmxDetails, htmx_details
from app.lab_view import MAX_CUSTOM_COLUMNS, custom_columns
from app.links import LinkError, LinkParams, View, make_link, parse_params
from app.presets_view import build_grid
from app.probe.web import probe_button
from app.render import render_fragment, render_page
from app.runs import Run, lesson_policy, run
from app.sim import Linker, build_sim, build_stage, picture, timeline_is_windowed
from app.svg import draw
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
    "policies": "Comma-separated policy ids to compare (default: all).",
}
S = Annotated[str | None, Query(description=PARAMETERS["s"])]
PolicyQ = Annotated[str | None, Query(description=PARAMETERS["policy"])]
StepQ = Annotated[str | None, Query(description=PARAMETERS["step"])]
VQ = Annotated[str | None, Query(description=PARAMETERS["v"])]
ViewQ = Annotated[str | None, Query(description=PARAMETERS["view"])]
PoliciesQ = Annotated[str | None, Query(description=PARAMETERS["policies"])]
AddQ = Annotated[str | None, Query(description=PARAMETERS["add"])]
PQ = Annotated[list[str] | None, Query(description="Policy ids (checkbox form of `policies`).")]
CustomQ = Annotated[
    list[str] | None,
    Query(
        description="A custom lab point `custom:base=ID,KNOB=CHOICE,…` as one more column "
        f"(repeat for more, at most {MAX_CUSTOM_COLUMNS}, each at most {MAX_ID_LENGTH} "
        "characters; DESIGN.md §11).",
    ),
]


def _query(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


async def link_query(
    s: S = None, policy: PolicyQ = None, step: StepQ = None, v: VQ = None, view: ViewQ = None
) -> dict[str, str]:
    """The parameters of a share link that are present (as `app.links.parse_params` reads
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


# A link this long carries a scenario whose replay takes long enough (up to a second for the
# largest allowed) to stall every other request on the event loop: it runs in the thread
# pool instead. Typical links stay on the loop, where they cost less (no thread hop).
OFFLOAD_CHARS = 2048

P = ParamSpec("P")


async def _answer(
    weight: str | None, build: Callable[P, Response], *args: P.args, **kwargs: P.kwargs
) -> Response:
    if weight is not None and len(weight) > OFFLOAD_CHARS:
        return await run_in_threadpool(build, *args, **kwargs)
    return build(*args, **kwargs)


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
) -> HTMLResponse:
    headers = {"Vary": VARY}
    if push is not None:
        headers["HX-Push-Url"] = push
    if retarget is not None:
        headers["HX-Retarget"] = retarget
        headers["HX-Reswap"] = "innerHTML"
    return HTMLResponse(body, status_code=status, headers=headers)


# Which block of each page holds its error view, and the regions that change with it.
_ERROR_BLOCKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "index.html": ("sim", ("stepbar", "narration")),
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
) -> HTMLResponse:
    """The error view as a page, or as the simulator region for an htmx request.

    For htmx the error replaces the whole simulator region (``HX-Retarget``) whatever the
    request aimed at, and the link the user asked for is pushed, so reloading or sharing it
    shows the same explanation with the same text.
    """
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
) -> HTMLResponse:
    if isinstance(exc, UnknownPolicy):
        error = policy_error(exc, params.text, params.step, params.view, path)
    elif isinstance(exc, ScenarioLimitError):
        error = limit_error(exc, params.text)
    elif isinstance(exc, ScenarioError):
        error = scenario_error(exc, params.text, policy, params.view, path)
    else:  # pragma: no cover - the callers pass only the three kinds above
        raise exc
    return _error_response(request, hx, error, template, page, params.view, policy)


def _open_run(
    request: Request,
    hx: HtmxDetails,
    query: dict[str, str],
    template: str,
    page: str,
    path: str = "/",
    add: str | None = None,
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
    policy_param = params.policy or lesson_policy(params.text) or latest_id()
    try:
        r = _replay(request, params, policy_param)
    except (UnknownPolicy, ScenarioError) as exc:
        return _failure(request, hx, exc, params, template, page, policy_param, path)
    return params, policy_param, r, _step(params, r)


@router.get(
    "/",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="The simulator page",
    description="The scenario at one step under one policy; htmx requests get a fragment.",
)
async def index(request: Request, query: LinkQuery, add: AddQ = None) -> Response:
    return await _answer(query.get("s"), _index, request, htmx_details(request), query, add)


def _index(request: Request, hx: HtmxDetails, query: dict[str, str], add: str | None) -> Response:
    opened = _open_run(request, hx, query, "index.html", "home", add=add)
    if isinstance(opened, Response):
        return opened
    params, policy_param, r, k = opened
    if hx.partial and hx.target_id == "stage":
        # A step (← →, the step bar, the timeline): only what changes from step to step is
        # built and sent; the era's story, the verdict list and the editor stay on the page.
        stage = build_stage(r, k, Linker("/", r, policy_param, params.view))
        fragment = {
            "stage": stage,
            "error": None,
            "policy_param": policy_param,
            "view": params.view,
        }
        # The timeline is on the page already, whole for a short scenario: only the mark of the
        # current step moves, which app.js does from the step bar's `data-step`. A long
        # scenario's timeline is a window around the step, sent again with each step.
        partials: tuple[str, ...] = ("stepbar", "narration")
        if timeline_is_windowed(r):
            partials += ("timeline",)
        body = render_fragment("index.html", fragment, "stage", partials)
        return _html(body, push=stage.share)
    sim = build_sim(r, policy_param, k, params.view)
    ctx = _context(request, "home", params.view, r.link_text, policy_param)
    ctx.update(
        sim=sim,
        stage=sim.stage,
        share_url=_absolute(request, sim.stage.share),
        probe=probe_button(request, r.editor_text),
    )
    if not hx.partial:
        if add:
            # Without JavaScript the form's URL is `…&add=…`: send the browser to the share link.
            return RedirectResponse(sim.stage.share, status_code=303, headers={"Vary": VARY})
        return _html(render_page("index.html", ctx))
    body = render_fragment("index.html", ctx, "sim", ("stepbar", "narration"))
    return _html(body, push=sim.stage.share)


@router.get(
    "/embed",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="Read-only diagram for slides and course pages",
    description="Minimal chrome, step buttons only; this is the one page that may be framed.",
)
async def embed(request: Request, query: LinkQuery) -> Response:
    return await _answer(query.get("s"), _embed, request, htmx_details(request), query)


def _embed(request: Request, hx: HtmxDetails, query: dict[str, str]) -> Response:
    opened = _open_run(request, hx, query, "embed.html", "embed", path="/embed")
    if isinstance(opened, Response):
        return opened
    params, policy_param, r, k = opened
    link_text = r.link_text
    linker = Linker("/embed", r, policy_param, "normal")
    stage = build_stage(r, k, linker)
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
    return await _answer(query.get("s"), _export_svg, request, query)


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
    columns = (len(policies.split(",")) if policies else len(POLICIES)) + len(custom or ())
    weight = (s or "") * columns
    return await _answer(
        weight, _compare, request, hx, s, policies, p, step, v, view, policy, custom
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
        runs = tuple(_replay(request, params, pid) for pid in (*ids, *customs))
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
async def presets(request: Request, custom: CustomQ = None) -> Response:
    return _presets(request, custom)


def _presets(request: Request, custom: list[str] | None = None) -> Response:
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
    ctx.update(columns=columns, rows=rows)
    return _html(render_page("presets.html", ctx))
