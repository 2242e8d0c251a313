"""Real code (DESIGN.md §12): the C program of a scenario, and the system calls of one step.

`/export.c?…` answers the whole program as a download; `/realcode?…` shows the code of one step
beside the simulator (an htmx fragment, or a page of its own without JavaScript). Both take the
link parameters of the simulator page and come from `app.cexport`, the generator the CLI uses.
The server only writes text: it never compiles or runs what it hands out.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.cexport import ExportRefused, program, step_code
from app.http.heavy import scenario_chars
from app.http.htmx import htmx_details
from app.http.render import render_fragment, render_page
from app.http.routes.pages import (
    COMPARE_MAX_WEIGHT,
    LINK_ERRORS,
    LinkQuery,
    _answer,
    _context,
    _error_response,
    _html,
    _open_run,
)
from app.views.errors import ErrorView
from app.views.links import make_link
from app.views.sim import Linker

router = APIRouter()

# The program embeds every era's expectations (and, for a scenario that pages out, those of
# both swap devices): it replays the scenario up to eighteen times. It takes scenarios whose run
# weighs at most half of what /compare's nine columns take, so it costs about as much.
EXPORT_MAX_WEIGHT = COMPARE_MAX_WEIGHT // 2


def _too_large(weight: int, text: str, policy: str) -> ErrorView:
    return ErrorView(
        status=413,
        title="This scenario is too large to export as a C program",
        message=(
            "The program carries what every era expects, so writing it replays the scenario "
            f"under every era: it takes scenarios whose trace holds at most {EXPORT_MAX_WEIGHT:,} "
            f"page-table, frame and reference entries; this one holds {weight:,}. "
            "`cowlab export c` writes it without this limit."
        ),
        text=text,
        where=(("limit", "export.c"),),
        links=((f"Open it under {policy}", make_link("/", text, policy=policy)),),
    )


@router.get(
    "/export.c",
    response_class=Response,
    summary="The scenario as a C program that runs it on a real kernel (a download)",
    description=(
        "One self-contained C11 file (glibc and UAPI headers only): build it with "
        "`cc -O2 -Wall -Werror`, run it on any kernel. The same scenario always gives the "
        "same text; `policy` and `step` are accepted and do not change it."
    ),
    responses={200: {"content": {"text/x-csrc": {}}}, **LINK_ERRORS},
)
async def export_c(request: Request, query: LinkQuery) -> Response:
    return await _answer(request, scenario_chars(query.get("s")), _export_c, request, query)


def _export_c(request: Request, query: dict[str, str]) -> Response:
    hx = htmx_details(request)
    opened = _open_run(request, hx, query, "index.html", "home")
    if isinstance(opened, Response):
        return opened
    params, policy, r, _ = opened
    if r.weight > EXPORT_MAX_WEIGHT:
        error = _too_large(r.weight, r.link_text, policy)
        return _error_response(request, hx, error, "index.html", "home", params.view, policy)
    try:
        text = program(r.scenario)
    except ExportRefused as exc:
        error = ErrorView(400, "Nothing to export", str(exc), r.link_text, (("s", "empty"),))
        return _error_response(request, hx, error, "index.html", "home", params.view, policy)
    return Response(
        text,
        media_type="text/x-csrc",
        headers={"Content-Disposition": 'attachment; filename="cowlab-scenario.c"'},
    )


@router.get(
    "/realcode",
    response_class=HTMLResponse,
    responses=LINK_ERRORS,
    summary="The system calls one step makes, as the C program does them",
    description="A page; an htmx request gets the fragment shown beside the step.",
)
async def realcode(request: Request, query: LinkQuery) -> Response:
    return await _answer(request, scenario_chars(query.get("s")), _realcode, request, query)


def _realcode(request: Request, query: dict[str, str]) -> Response:
    hx = htmx_details(request)
    opened = _open_run(request, hx, query, "index.html", "home")
    if isinstance(opened, Response):
        return opened
    params, policy, r, k = opened
    linker = Linker("/", r, policy, params.view)
    ctx: dict[str, Any] = _context(request, "realcode", params.view, r.link_text, policy)
    ctx.update(
        k=k,
        code=step_code(r.scenario, k) if k > 0 else None,
        back=linker.step(k),
        export_c=linker.elsewhere("/export.c", None, "normal"),
    )
    if hx.partial:
        return _html(render_fragment("realcode.html", ctx, "realcode"))
    return _html(render_page("realcode.html", ctx))
