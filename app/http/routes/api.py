"""The JSON API, kept apart from the hypermedia routes (htmx's "splitting your APIs").

``POST /api/v1/simulate`` answers exactly what ``cowlab run --json`` prints (DESIGN.md §4), via
the engine's one serialiser `traces_json_bytes`, so the CLI, the API and any client agree by
construction — including its bound on the answer's size (`engine.trace.MAX_JSON_BYTES`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from app.http.heavy import is_heavy, offload
from app.views.runs import RunMemo, Stopped, check_budget, run
from engine.lesson import MAX_REPLAYED_COMMANDS, TooCostly, evaluate_goal, goal_to_json
from engine.limits import MAX_DECOMPRESSED_BYTES
from engine.policies import POLICIES, UnknownPolicy
from engine.policies.custom import MAX_ID_LENGTH
from engine.syntax import ScenarioError, ScenarioLimitError
from engine.trace import (
    MAX_JSON_BYTES,
    MAX_STATE_STEPS,
    MAX_STEP_EVENTS,
    OutputTooLarge,
    StatesChoice,
    check_states,
    traces_json_bytes,
)

router = APIRouter(prefix="/api/v1", tags=["api"])

EXAMPLE = "P mmap a\nP write a\nP fork C\nC vmsplice a as pipe\nC munmap a\nP write a\npipe read"


STATES_DOC = (
    "Which steps carry their machine state: `last` (default) the last step's full `state`; "
    "`none` no state; `changes` every step's `changes` from the step before (step 1's from "
    f"the empty machine; applied in order they rebuild every state); or a list of at most "
    f"{MAX_STATE_STEPS} step numbers whose full `state` is given. The answer's size is bounded "
    "by the limits (1,000 commands, 64 processes, 256 pages each, 64 references): under 24 MB "
    "with `none` (events are capped per step), under 30 MB with `last` (a full state is under "
    f"6 MB); an answer over {MAX_JSON_BYTES:,} bytes (more full states of the largest "
    "scenarios, or `changes` of a long scenario of big forks and exits) is refused with 413 "
    "naming that limit."
)


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str = Field(
        max_length=MAX_DECOMPRESSED_BYTES,
        description="Scenario text (DESIGN.md §2): one command per line or `;`-separated.",
        examples=[EXAMPLE],
    )
    policy: str = Field(
        default="latest",
        max_length=MAX_ID_LENGTH,
        description="Policy era id, `latest`, or a policy-lab point "
        "`custom:base=ID,KNOB=CHOICE,…` (DESIGN.md §11; `cowlab lab knobs` lists the knobs).",
        examples=["5.7", "latest", "custom:base=5.8,gup_read=break-cow"],
    )
    states: Literal["none", "last", "changes"] | list[int] = Field(
        default="last",
        description=STATES_DOC,
        examples=["last", "changes", [3, 7]],
    )


class StepOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    command: str
    observed: str | None
    events: list[dict[str, Any]] = Field(
        description=f"The step's first {MAX_STEP_EVENTS} events (a fork or an exit tells one "
        "per page)."
    )
    events_omitted: int = Field(description="How many more events the step had.")
    state: dict[str, Any] | None = Field(
        default=None,
        description="The full state after the step: only for the steps `states` asks for.",
    )
    changes: dict[str, Any] | None = Field(
        default=None,
        description=(
            'With `states: "changes"`: what the step changed from the step before (processes '
            "with only their new or changed pages and `unmapped`; new or changed frames, "
            "references, swap slots and files; `exited`, `freed`, `released`, `swap_freed`)."
        ),
    )


class GoalTermOut(BaseModel):
    term: str = Field(examples=["leak@5.7"])
    met: bool


class GoalOut(BaseModel):
    met: bool
    terms: list[GoalTermOut]


class TraceOut(BaseModel):
    """The trace of DESIGN.md §4: every step's command, observed value and events, states
    as the request's `states` asks."""

    model_config = ConfigDict(extra="allow")

    policy: str
    states: Literal["none", "last", "changes"] | list[int]
    steps: list[StepOut]
    verdicts: list[dict[str, Any]]
    goal: GoalOut | None = Field(
        default=None,
        description="Only for a scenario with a `#goal` line: every term, each evaluated under "
        "the policies it names whatever `policy` says, and whether all hold (DESIGN.md §8).",
    )


class Problem(BaseModel):
    # "request": the body could not be read at all (not JSON); see app.http.main's error handler.
    # "states": `states` names steps the trace lacks; "time": the deadline passed.
    error: Literal["syntax", "limit", "unknown-policy", "request", "states", "time"]
    message: str
    line: int | None = None
    column: int | None = None
    expected: str | None = None
    found: str | None = None
    policies: list[str] | None = None


class ProblemOut(BaseModel):
    detail: Problem


def _problem(status: int, problem: Problem) -> JSONResponse:
    return JSONResponse({"detail": problem.model_dump(exclude_none=True)}, status_code=status)


@router.post(
    "/simulate",
    summary="Replay a scenario under one policy",
    description=(
        "Returns the trace: every step's command, events and observed value, the states that "
        "`states` asks for, and the verdicts. 400 for a syntax error (with line, column, "
        "expected, found), an unknown policy or `states` naming a step the trace lacks; 413 "
        "for a scenario over the limits (commands, processes, pages, references, bytes), a "
        "`#goal` whose eras would replay more than 1,000 commands beyond the one asked for, "
        "a body over 1 MiB or an answer over its size limit; 422 for a malformed request body; "
        "503 when the replay takes longer than the time one request may take."
    ),
    response_model=TraceOut,
    responses={
        400: {"model": ProblemOut, "description": "The scenario or policy is wrong."},
        413: {"model": ProblemOut, "description": "The scenario is over cowlab's limits."},
        503: {"model": ProblemOut, "description": "The replay took too long."},
    },
)
async def simulate(request: Request, body: SimulateRequest) -> Response:
    states: StatesChoice = body.states if isinstance(body.states, str) else tuple(body.states)
    if not isinstance(states, str) and len(states) > MAX_STATE_STEPS:
        message = f"states: at most {MAX_STATE_STEPS} steps, not {len(states)}"
        return _problem(400, Problem(error="states", message=message))
    memo: RunMemo = request.app.state.runs  # a page just shown is not replayed again
    if not is_heavy(len(body.scenario)):
        return _simulate(body, states, memo)
    try:
        return await offload(request.receive, partial(_simulate, body, states, memo))
    except Stopped as exc:
        return _problem(503, Problem(error="time", message=str(exc)))


def _simulate(body: SimulateRequest, states: StatesChoice, memo: RunMemo) -> Response:
    try:
        r = run(body.scenario, body.policy, memo)
    except UnknownPolicy as exc:
        return _problem(
            400, Problem(error="unknown-policy", message=str(exc), policies=[*POLICIES, "latest"])
        )
    except ScenarioLimitError as exc:
        return _problem(413, Problem(error="limit", message=str(exc)))
    except ScenarioError as exc:
        return _problem(
            400,
            Problem(
                error="syntax",
                message=str(exc),
                line=exc.line,
                column=exc.column,
                expected=str(exc.expected),
                found=str(exc.found),
            ),
        )
    try:
        check_states(states, r.last)
    except ValueError as exc:
        return _problem(400, Problem(error="states", message=str(exc)))
    try:
        goal = evaluate_goal(
            r.scenario, {r.trace.policy.id: r.trace}, max_replayed=MAX_REPLAYED_COMMANDS
        )
    except TooCostly as exc:
        return _problem(413, Problem(error="limit", message=f"#goal: {exc}"))
    try:
        answer = traces_json_bytes(
            [r.trace],
            states,
            check=check_budget,
            goal=None if goal is None else goal_to_json(goal),  # DESIGN.md §8, beside `steps`
        )
    except OutputTooLarge as exc:
        return _problem(413, Problem(error="limit", message=str(exc)))
    return Response(answer, media_type="application/json")
