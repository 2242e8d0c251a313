"""The web side of the probe: "Run on this server's kernel".

Routes (include ``router`` in the app):

- ``POST /probe`` (form field ``s``: the scenario text) — an HTML fragment with the kernel's
  observations beside the simulator's, for htmx to swap into ``#probe-result``; without htmx
  the same fragment is a complete answer to a plain form post.
- ``POST /api/v1/probe`` (JSON ``{"scenario": "..."}``) — ``{"kernel", "policy", "results":
  [one result as in `cowlab probe --json`], "cached"}``.
- ``GET /api/v1/probe`` — whether probing is enabled here, the kernel, its policy and what it
  can run.

Running scenarios on the server's kernel spends the server's CPU and forks processes on it, so
it is **off** unless the server was told otherwise (`app.probe.gate`: the server's switch in
``app.state.probe``, set by `create_app`, and a decision per request — not through a proxy, a
Host on the allow-list, same origin, the form's token). A refused request gets a 403 that says
what was wrong. One probe runs at a time per worker process (others get 429), results are
cached per scenario text (the kernel does not change under a running server), and every run has
a hard timeout (`app.probe.isolate`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from app.http.render import ENV, render_error_page
from app.probe import capabilities, gate
from app.probe.compare import ProbeResult, probe_scenario
from app.probe.executor import static_skip
from app.probe.gate import ProbeSettings, Refusal
from app.views.errors import ErrorView
from engine import commands as c
from engine.limits import MAX_DECOMPRESSED_BYTES
from engine.syntax import ScenarioError, ScenarioLimitError, format_scenario, parse

TIMEOUT = 10.0
CACHE_SIZE = 256

router = APIRouter(tags=["probe"])
log = logging.getLogger("cowlab.probe")

_lock = threading.Lock()  # one probe at a time in this process
_cache: OrderedDict[str, ProbeResult] = OrderedDict()
_cache_lock = threading.Lock()


# ------------------------------------------------------------------------------ enabling
def settings(request: Request) -> ProbeSettings:
    """This app's switch (`create_app` sets it); an app that set none does not probe."""
    found = getattr(request.app.state, "probe", None)
    return found if isinstance(found, ProbeSettings) else ProbeSettings()


def _headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def refusal(request: Request, token: str | None = None, *, needs_token: bool) -> Refusal | None:
    """Why ``request`` may not run a probe, or None (`app.probe.gate.request_refusal`)."""
    return gate.request_refusal(
        settings(request), _headers(request), request.url.scheme, token, needs_token=needs_token
    )


def runnable(scenario: c.Scenario) -> str | None:
    """None when this kernel can run the scenario, else why not (shown on a disabled button)."""
    return static_skip(scenario, capabilities.detect())


# -------------------------------------------------------------------------------- running
class Busy(Exception):
    pass


def run_cached(scenario: c.Scenario) -> tuple[ProbeResult, bool]:
    """The probe result of ``scenario`` and whether it came from the cache; Busy if another
    probe is running in this process."""
    key = format_scenario(scenario)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key], True
    if not _lock.acquire(blocking=False):
        raise Busy
    try:
        result = probe_scenario(scenario, name="scenario", timeout=TIMEOUT)
    finally:
        _lock.release()
    if result.skipped is None or not result.skipped.startswith(("timed out", "probe")):
        # A timeout or a crashed runner may be transient: those are not remembered.
        with _cache_lock:
            _cache[key] = result
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return result, False


# ------------------------------------------------------------------------------- fragments
def probe_button(request: Request, text: str) -> Markup:
    """The "Run on this server's kernel" control for a scenario page, or nothing when probing
    is off. A request that may not probe (through a proxy, an unknown Host) is told why; a
    scenario this kernel cannot run gets a disabled button that says why."""
    config = settings(request)
    if not config.enabled:
        return Markup("")
    headers = _headers(request)
    refused = gate.page_refusal(config, headers)
    if refused is not None:
        return Markup(ENV.get_template("probe/button.html").render(refusal=refused.message))
    try:
        reason = runnable(parse(text))
    except ScenarioError:
        return Markup("")
    return Markup(
        ENV.get_template("probe/button.html").render(
            refusal=None,
            text=text,
            reason=reason,
            token_field=gate.TOKEN_FIELD,
            token=gate.form_token(config, headers["host"]),
        )
    )


def _rows(result: ProbeResult) -> list[dict[str, Any]]:
    return [
        {"step": step, "command": command, "kernel": kernel, "sim": sim, "same": kernel == sim}
        for step, command, kernel, sim in result.by_step("—")
    ]


def render_result(result: ProbeResult, *, cached: bool) -> str:
    release = capabilities.kernel_release()
    label = {"agree": "agrees", "disagree": "DISAGREES", "skipped": "skipped"}[result.status]
    return ENV.get_template("probe/result.html").render(
        status=result.status,
        label=f"the kernel {label} with the simulator" if result.skipped is None else label,
        kernel=release,
        policy=capabilities.policy_for(release),
        swap=capabilities.describe_swap(paths=False),
        cached=cached,
        skipped=result.skipped,
        rows=_rows(result) if result.skipped is None else [],
    )


_TITLES = {
    "off": "The probe is switched off on this server",
    "refused": "This request may not run the probe",
    "error": "This scenario cannot be probed",
    "busy": "Another probe is running",
}


def _message(request: Request, kind: str, message: str, status: int) -> HTMLResponse:
    """A probe that was not run: the fragment for htmx, a whole page for a plain form post
    (the answer a browser shows after another site's form sent it here)."""
    if request.headers.get("hx-request") == "true":
        body = ENV.get_template("probe/message.html").render(kind=kind, message=message)
    else:
        body = render_error_page(request, ErrorView(status, _TITLES[kind], message, text=""))
    return HTMLResponse(body, status_code=status, headers={"Vary": "HX-Request"})


class ObservationOut(BaseModel):
    step: int
    command: str
    value: str


class ResultOut(BaseModel):
    preset: str
    title: str
    agree: bool | None
    kernel_observed: list[ObservationOut]
    sim_observed: list[ObservationOut]
    skipped: str | None


class ProbeOut(BaseModel):
    kernel: str
    policy: str
    swap: str = Field(description="The swap device(s) of this machine, as `cowlab probe` says.")
    results: list[ResultOut]
    cached: bool


class ProbeInfoOut(BaseModel):
    enabled: bool = Field(description="Whether a probe sent like this request would run.")
    reason: str | None = Field(description="Why not, when it would not.")
    kernel: str
    policy: str
    swap: str = Field(description="The swap device(s) of this machine, as `cowlab probe` says.")
    unavailable: dict[str, str]


class ProbeProblem(BaseModel):
    error: str
    message: str


class ProbeProblemOut(BaseModel):
    detail: ProbeProblem


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": ProbeProblemOut, "description": "The scenario has a syntax error."},
    413: {"model": ProbeProblemOut, "description": "The scenario is over cowlab's limits."},
    403: {
        "model": ProbeProblemOut,
        "description": "Probing is switched off on this server, or this request may not probe "
        "(through a proxy, another Host, another origin); the message says which.",
    },
    429: {"model": ProbeProblemOut, "description": "Another probe is running."},
}
_FRAGMENT_STATUSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The scenario has a syntax error (an HTML fragment says where)."},
    413: {"description": "The scenario is over cowlab's limits (HTML fragment)."},
    403: {
        "description": "Probing is switched off, or this request may not probe (through a proxy, "
        "another Host, another origin, no valid form token); an HTML fragment says which."
    },
    429: {"description": "Another probe is running (HTML fragment)."},
}


# ---------------------------------------------------------------------------------- routes
@router.post(
    "/probe",
    response_class=HTMLResponse,
    summary="Run a scenario on this kernel",
    responses=_FRAGMENT_STATUSES,
)
def probe_fragment(
    request: Request,
    s: Annotated[str, Form(max_length=MAX_DECOMPRESSED_BYTES)],
    probe_token: Annotated[str, Form(max_length=128)] = "",
) -> HTMLResponse:
    refused = refusal(request, probe_token, needs_token=True)
    if refused is not None:
        return _message(
            request, "off" if refused.error == "probe-off" else "refused", refused.message, 403
        )
    try:
        scenario = parse(s)
    except ScenarioLimitError as err:
        return _message(request, "error", f"The scenario is over cowlab's limits: {err}", 413)
    except ScenarioError as err:
        return _message(request, "error", f"The scenario has an error: {err}", 400)
    try:
        result, cached = run_cached(scenario)
    except Busy:
        return _message(
            request, "busy", "Another probe is running on this server; try again shortly.", 429
        )
    return HTMLResponse(render_result(result, cached=cached))


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str = Field(max_length=MAX_DECOMPRESSED_BYTES, description="Scenario text.")


def _json_error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"error": error, "message": message}}, status_code=status)


@router.post(
    "/api/v1/probe",
    summary="Run a scenario on this server's kernel and compare",
    response_model=ProbeOut,
    responses=_PROBLEMS,
)
def probe_api(request: Request, body: ProbeRequest) -> JSONResponse:
    refused = refusal(request, needs_token=False)
    if refused is not None:
        return _json_error(403, refused.error, refused.message)
    try:
        scenario = parse(body.scenario)
    except ScenarioLimitError as err:  # the same answer as /api/v1/simulate gives
        return _json_error(413, "limit", str(err))
    except ScenarioError as err:
        return _json_error(400, "syntax", str(err))
    try:
        result, cached = run_cached(scenario)
    except Busy:
        return _json_error(429, "busy", "another probe is running on this server")
    release = capabilities.kernel_release()
    return JSONResponse(
        {
            "kernel": release,
            "policy": capabilities.policy_for(release),
            "swap": capabilities.describe_swap(paths=False),
            "results": [result.to_json()],
            "cached": cached,
        }
    )


@router.get(
    "/api/v1/probe",
    summary="Whether this server can probe its kernel, and what",
    response_model=ProbeInfoOut,
)
def probe_info(request: Request) -> JSONResponse:
    release = capabilities.kernel_release()
    caps = capabilities.detect()
    refused = refusal(request, needs_token=False)
    return JSONResponse(
        {
            "enabled": refused is None,
            "reason": None if refused is None else refused.message,
            "kernel": release,
            "policy": capabilities.policy_for(release),
            "swap": capabilities.describe_swap(paths=False),
            "unavailable": {
                name: reason
                for name, reason in (
                    ("swap", caps.swap),
                    ("soft-dirty", caps.softdirty),
                    ("io_uring", caps.iouring),
                    ("uffd-wp", caps.uffd_wp),
                    ("gup_test", caps.gup_test),
                    ("forcewrite", caps.forcewrite),
                    ("thp", caps.thp),
                    ("hugetlb", caps.hugetlb),
                )
                if reason is not None
            },
        }
    )
