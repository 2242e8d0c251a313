"""The policy lab's routes (DESIGN.md §11): `/lab` and `/lab/sweep`.

`/lab` reads a point from ``policy=`` (an era or ``custom:…`` id) or from the controls' form
(``base`` and one field per knob), and always pushes the canonical link ``/lab?policy=…``; a
form submitted without JavaScript is redirected there.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.http.htmx import htmx_details
from app.http.render import render_fragment, render_page
from app.views.lab import (
    SweepAnswerView,
    SweepJob,
    build_lab,
    build_sweep_page,
    settings_from_query,
    sweep_answer,
)
from app.views.lab_answer import modelling_notes
from app.views.lab_store import is_stored
from engine.policies import UnknownPolicy, get_policy
from engine.policies.custom import MAX_ID_LENGTH
from engine.policies.knobs import KNOBS

router = APIRouter()

VARY = "HX-Request, HX-Request-Type, HX-Target, HX-History-Restore-Request"
_JOB_LOCK = threading.Lock()

Field = Annotated[str | None, Query(max_length=64)]


def _context(request: Request, page: str) -> dict[str, Any]:
    return {
        "request": request,
        "page": page,
        "view": "normal",
        "error": None,
        "nav": {"home": "/", "compare": "/compare"},
        "policy_param": get_policy("latest").id,
        "share_url": "",
        "bad": "",
        "failed": "",
        "sweep": None,
        "notes": modelling_notes(),
    }


LAB_ANSWERS: dict[int | str, dict[str, Any]] = {
    303: {"description": "The controls' form without JavaScript: go to the canonical link."},
    400: {
        "description": "A refused or unknown point: the page with its controls, naming the "
        "conflicting knobs.",
        "content": {"text/html": {}},
    },
}


@router.get(
    "/lab",
    response_class=HTMLResponse,
    responses=LAB_ANSWERS,
    summary="The policy lab: compose a COW/GUP design from the kernel's rule choices",
    description="`policy=` an era or `custom:base=ID,KNOB=CHOICE,…` id; the controls' form "
    "sends `base` and one field per knob instead. A refused combination answers 400 with the "
    "controls and the conflicting knobs named.",
)
async def lab(
    request: Request,
    policy: Annotated[str | None, Query(max_length=MAX_ID_LENGTH)] = None,
    base: Field = None,
    was: Annotated[str | None, Query(max_length=64, description="the base shown before")] = None,
) -> Response:
    # The knob fields are read from the query directly: one parameter per knob, which grows.
    query = {k: v for k, v in request.query_params.items() if k in KNOBS and len(v) <= 64}
    if policy is not None:
        query["policy"] = policy
    if base is not None:
        query["base"] = base
    if was is not None:
        query["was"] = was
    return await run_in_threadpool(_lab, request, query)


def _lab(request: Request, query: dict[str, str]) -> Response:
    hx = htmx_details(request)
    ctx = _context(request, "lab")
    try:
        base_id, settings = settings_from_query(query)
    except UnknownPolicy as exc:
        ctx["bad"] = str(exc)
        base_id, settings = settings_from_query({})
    lab_view = build_lab(base_id, settings, request.app.state.runs)
    ctx["lab"] = lab_view
    # The sweep's answer when this worker has it. The lab page starts loading it only when it
    # is stored already (a moment's read); computing it is the sweep page's to start.
    job: SweepJob | None = getattr(request.app.state, "lab_sweep", None)
    if job is None and is_stored():
        job = _job(request)
    stored = None if job is None else job.stored
    ctx["sweep"] = None if stored is None else SweepAnswerView(sweep_answer(stored.doc))
    status = 400 if lab_view.error or ctx.get("bad") else 200
    from_form = "policy" not in query and bool(query)
    if from_form and not hx.partial and status == 200:
        return RedirectResponse(lab_view.share, status_code=303, headers={"Vary": VARY})
    headers = {"Vary": VARY}
    if hx.partial:
        headers["HX-Push-Url"] = lab_view.share
        body = render_fragment("lab.html", ctx, "lab")
        return HTMLResponse(body, status_code=status, headers=headers)
    return HTMLResponse(render_page("lab.html", ctx), status_code=status, headers=headers)


def _job(request: Request) -> SweepJob:
    with _JOB_LOCK:
        job: SweepJob | None = getattr(request.app.state, "lab_sweep", None)
        if job is None:
            job = SweepJob()
            request.app.state.lab_sweep = job
    job.start()
    return job


@router.get(
    "/lab/sweep",
    response_class=HTMLResponse,
    summary="Every knob combination against every preset",
    description="The first request starts the sweep in the background; until it is done the "
    "page says so and refreshes itself.",
)
async def sweep(request: Request) -> Response:
    job = _job(request)
    ctx = _context(request, "sweep")
    if job.error:
        ctx.update(running=False, failed=job.error, seconds=0, sweep=None)
        return HTMLResponse(render_page("sweep.html", ctx), status_code=503, headers={"Vary": VARY})
    stored = job.stored
    if stored is None:
        ctx.update(running=True, seconds=round(job.running_for()), sweep=None)
        return HTMLResponse(render_page("sweep.html", ctx), headers={"Vary": VARY})
    query = {k: v[:64] for k, v in request.query_params.items()}
    # Bit operations over the stored counters and a page render: off the event loop.
    page = await run_in_threadpool(build_sweep_page, stored, query)
    ctx.update(running=False, seconds=round(job.seconds, 1), sweep=page)
    body = await run_in_threadpool(render_page, "sweep.html", ctx)
    return HTMLResponse(body, headers={"Vary": VARY})


@router.get(
    "/lab/sweep.json",
    summary="The whole sweep as `cowlab lab sweep --json` prints it",
    description="The answer per backing (`summary`), the eras' counts and the designs grouped "
    "by outcome (`outcomes`, each with its designs as cubes; docs/lab.md). Computed once per "
    "deployment and served as stored. While it is still being computed: 202 with "
    "`Retry-After` and how long it has run.",
    responses={
        202: {"description": "The sweep is still running; ask again after Retry-After."},
        503: {"description": "The sweep could not be computed (the message says why)."},
    },
)
async def sweep_json_route(request: Request) -> Response:
    job = _job(request)
    if job.error:
        return JSONResponse({"error": "sweep-failed", "message": job.error}, status_code=503)
    if job.stored is None:
        return JSONResponse(
            {"error": "sweep-running", "seconds": round(job.running_for())},
            status_code=202,
            headers={"Retry-After": "2"},
        )
    return Response(job.stored.body, media_type="application/json")
