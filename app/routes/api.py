"""The JSON API, kept apart from the hypermedia routes (htmx's "splitting your APIs").

``POST /api/v1/simulate`` answers exactly what ``cowlab run --json`` prints (DESIGN.md §4), via
the engine's own `trace_to_json`, so the CLI, the API and any client agree by construction.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.runs import run
from engine.lesson import MAX_REPLAYED_COMMANDS, TooCostly, evaluate_goal, goal_to_json
from engine.limits import MAX_DECOMPRESSED_BYTES
from engine.policies import POLICIES, UnknownPolicy
from engine.policies.custom import MAX_ID_LENGTH
from engine.syntax import ScenarioError, ScenarioLimitError
from engine.trace import trace_to_json

router = APIRouter(prefix="/api/v1", tags=["api"])

EXAMPLE = "P mmap a\nP write a\nP fork C\nC vmsplice a as pipe\nC munmap a\nP write a\npipe read"


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


class GoalTermOut(BaseModel):
    term: str = Field(examples=["leak@5.7"])
    met: bool


class GoalOut(BaseModel):
    met: bool
    terms: list[GoalTermOut]


class TraceOut(BaseModel):
    """The trace of DESIGN.md §4 (`steps[].state` and `events` as the engine reports them)."""

    model_config = ConfigDict(extra="allow")

    policy: str
    steps: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    goal: GoalOut | None = Field(
        default=None,
        description="Only for a scenario with a `#goal` line: every term, each evaluated under "
        "the policies it names whatever `policy` says, and whether all hold (DESIGN.md §8).",
    )


class Problem(BaseModel):
    # "request": the body could not be read at all (not JSON); see app.main's error handler.
    error: Literal["syntax", "limit", "unknown-policy", "request"]
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
        "Returns the trace: every step's command, state, events and observed value, and the "
        "verdicts. 400 for a syntax error (with line, column, expected, found) or an unknown "
        "policy; 413 for a scenario over the limits (commands, processes, pages, references, "
        "bytes), a `#goal` whose eras would replay more than 1,000 commands beyond the one "
        "asked for, or a body over 1 MiB; 422 for a malformed request body."
    ),
    response_model=TraceOut,
    responses={
        400: {"model": ProblemOut, "description": "The scenario or policy is wrong."},
        413: {"model": ProblemOut, "description": "The scenario is over cowlab's limits."},
    },
)
async def simulate(body: SimulateRequest) -> JSONResponse:
    try:
        r = run(body.scenario, body.policy)
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
    document = trace_to_json(r.trace)
    try:
        goal = evaluate_goal(
            r.scenario, {r.trace.policy.id: r.trace}, max_replayed=MAX_REPLAYED_COMMANDS
        )
    except TooCostly as exc:
        return _problem(413, Problem(error="limit", message=f"#goal: {exc}"))
    if goal is not None:
        document["goal"] = goal_to_json(goal)  # DESIGN.md §8, beside `steps`
    return JSONResponse(document)
