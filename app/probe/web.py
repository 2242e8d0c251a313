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
it is **off** unless the server was told otherwise: `enable(host, allow_probe)` turns it on when
the server listens on a loopback address or was started with ``--allow-probe``. The flag is an
environment variable (``COWLAB_PROBE=1``) so that every uvicorn worker process sees it.
One probe runs at a time per worker process (others get 429), results are cached per scenario
text (the kernel does not change under a running server), and every run has a hard timeout
(`app.probe.isolate`).
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections import OrderedDict
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, JSONResponse
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from app.probe import capabilities
from app.probe.compare import ProbeResult, probe_scenario
from app.probe.executor import static_skip
from engine import commands as c
from engine.limits import MAX_DECOMPRESSED_BYTES
from engine.syntax import ScenarioError, ScenarioLimitError, format_scenario, parse

ENV_FLAG = "COWLAB_PROBE"
TIMEOUT = 10.0
CACHE_SIZE = 256

router = APIRouter(tags=["probe"])

_lock = threading.Lock()  # one probe at a time in this process
_cache: OrderedDict[str, ProbeResult] = OrderedDict()
_cache_lock = threading.Lock()


# ------------------------------------------------------------------------------ enabling
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def probe_allowed(host: str, allow_probe: bool) -> bool:
    """Probing is allowed when the server listens on loopback only, or was told explicitly."""
    return allow_probe or is_loopback(host)


def enable(host: str, allow_probe: bool = False) -> bool:
    """Call before starting the server (``cowlab serve``); returns whether probing is on."""
    on = probe_allowed(host, allow_probe)
    os.environ[ENV_FLAG] = "1" if on else "0"
    return on


def disable() -> None:
    """`cowlab serve --no-probe`: off for every worker, whatever the address."""
    os.environ[ENV_FLAG] = "0"


def enabled() -> bool:
    return os.environ.get(ENV_FLAG) == "1"


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
_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

_BUTTON = _env.from_string(
    """\
<form class="probe-form" method="post" action="/probe" hx-post="/probe" \
hx-target="#probe-result" hx-swap="innerHTML">
<input type="hidden" name="s" value="{{ text }}">
{% if reason %}<button type="submit" disabled title="{{ reason }}">Run on this server's \
kernel</button> <span class="probe-why">Cannot run here: {{ reason }}</span>
{% else %}<button type="submit">Run on this server's kernel</button>{% endif %}
</form>
<div id="probe-result" class="probe-result" aria-live="polite"></div>
"""
)

_RESULT = _env.from_string(
    """\
<section class="probe probe-{{ status }}" aria-label="Run on this server's kernel">
<h3>On this server's kernel: <strong>{{ label }}</strong></h3>
<p class="probe-meta">Linux {{ kernel }} runs policy <code>{{ policy }}</code>\
{% if cached %} (cached result){% endif %}.</p>
{% if skipped %}<p class="probe-skipped">Skipped: {{ skipped }}</p>{% endif %}
{% if rows %}<table class="probe-table">
<thead><tr><th scope="col">step</th><th scope="col">command</th>\
<th scope="col">kernel</th><th scope="col">simulator</th><th scope="col">same?</th></tr></thead>
<tbody>
{% for r in rows %}<tr class="{{ 'probe-same' if r.same else 'probe-differs' }}">\
<td>{{ r.step }}</td><td><code>{{ r.command }}</code></td><td>{{ r.kernel }}</td>\
<td>{{ r.sim }}</td><td>{{ 'yes' if r.same else 'NO' }}</td></tr>
{% endfor %}</tbody></table>
{% elif not skipped %}<p>The scenario reads nothing, so there is nothing to compare.</p>{% endif %}
</section>
"""
)

_MESSAGE = _env.from_string(
    '<section class="probe probe-{{ kind }}"><p>{{ message }}</p></section>\n'
)


def probe_button(text: str) -> Markup:
    """The "Run on this server's kernel" control for a scenario page, or nothing when probing
    is off. A scenario this kernel cannot run gets a disabled button that says why."""
    if not enabled():
        return Markup("")
    try:
        reason = runnable(parse(text))
    except ScenarioError:
        return Markup("")
    return Markup(_BUTTON.render(text=text, reason=reason))


def _rows(result: ProbeResult) -> list[dict[str, Any]]:
    return [
        {"step": step, "command": command, "kernel": kernel, "sim": sim, "same": kernel == sim}
        for step, command, kernel, sim in result.by_step("—")
    ]


def render_result(result: ProbeResult, *, cached: bool) -> str:
    release = capabilities.kernel_release()
    label = {"agree": "agrees", "disagree": "DISAGREES", "skipped": "skipped"}[result.status]
    return _RESULT.render(
        status=result.status,
        label=f"the kernel {label} with the simulator" if result.skipped is None else label,
        kernel=release,
        policy=capabilities.policy_for(release),
        cached=cached,
        skipped=result.skipped,
        rows=_rows(result) if result.skipped is None else [],
    )


def _message(kind: str, message: str, status: int) -> HTMLResponse:
    return HTMLResponse(_MESSAGE.render(kind=kind, message=message), status_code=status)


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
    results: list[ResultOut]
    cached: bool


class ProbeInfoOut(BaseModel):
    enabled: bool
    kernel: str
    policy: str
    unavailable: dict[str, str]


class ProbeProblem(BaseModel):
    error: str
    message: str


class ProbeProblemOut(BaseModel):
    detail: ProbeProblem


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": ProbeProblemOut, "description": "The scenario has a syntax error."},
    413: {"model": ProbeProblemOut, "description": "The scenario is over cowlab's limits."},
    403: {"model": ProbeProblemOut, "description": "Probing is switched off on this server."},
    429: {"model": ProbeProblemOut, "description": "Another probe is running."},
}
_FRAGMENT_STATUSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The scenario has a syntax error (an HTML fragment says where)."},
    413: {"description": "The scenario is over cowlab's limits (HTML fragment)."},
    403: {"description": "Probing is switched off on this server (HTML fragment)."},
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
    s: Annotated[str, Form(max_length=MAX_DECOMPRESSED_BYTES)],
) -> HTMLResponse:
    if not enabled():
        return _message(
            "off",
            "Running scenarios on this server's kernel is switched off (the server does not "
            "listen on loopback only and was not started with --allow-probe).",
            403,
        )
    try:
        scenario = parse(s)
    except ScenarioLimitError as err:
        return _message("error", f"The scenario is over cowlab's limits: {err}", 413)
    except ScenarioError as err:
        return _message("error", f"The scenario has an error: {err}", 400)
    try:
        result, cached = run_cached(scenario)
    except Busy:
        return _message("busy", "Another probe is running on this server; try again shortly.", 429)
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
def probe_api(body: ProbeRequest) -> JSONResponse:
    if not enabled():
        return _json_error(403, "probe-off", "probing this server's kernel is switched off")
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
            "results": [result.to_json()],
            "cached": cached,
        }
    )


@router.get(
    "/api/v1/probe",
    summary="Whether this server can probe its kernel, and what",
    response_model=ProbeInfoOut,
)
def probe_info() -> JSONResponse:
    release = capabilities.kernel_release()
    caps = capabilities.detect()
    return JSONResponse(
        {
            "enabled": enabled(),
            "kernel": release,
            "policy": capabilities.policy_for(release),
            "unavailable": {
                name: reason
                for name, reason in (
                    ("swap", caps.swap),
                    ("soft-dirty", caps.softdirty),
                    ("io_uring", caps.iouring),
                    ("uffd-wp", caps.uffd_wp),
                    ("gup_test", caps.gup_test),
                    ("forcewrite", caps.forcewrite),
                )
                if reason is not None
            },
        }
    )
