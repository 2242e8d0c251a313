"""The live JSON API (``/api/v1/live…``), for the pages' scripts and for anyone's scripts.

The teacher changes the state, opens and reveals polls holding the room's key: in the
``Authorization: Bearer`` header, or in the cookie the "Go live" button sets. The key never
appears in a URL, so never in a log or a student's link.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from app.live import polls
from app.live.control import (
    NO_STORE,
    Refused,
    Wanted,
    announce,
    applied,
    broker_of,
    find_room,
    from_link,
    join_url,
    start_room,
    student_id,
    teacher_room,
)
from app.live.rooms import (
    MAX_CHOICE_CHARS,
    MAX_COUNTDOWN_S,
    MAX_LINK_CHARS,
    MIN_COUNTDOWN_S,
    Poll,
)
from app.views.runs import run
from engine.limits import MAX_DECOMPRESSED_BYTES

router = APIRouter()


# --- API models (the OpenAPI schema documents them) -----------------------------------------
class Problem(BaseModel):
    error: str
    message: str


class ProblemAnswer(BaseModel):
    detail: Problem


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link: str = Field(
        max_length=MAX_LINK_CHARS,
        description="The view to start from: a simulator (`/?v=1&s=…`) or comparison "
        "(`/compare?…`) link, absolute or from the path on.",
    )


class StartAnswer(BaseModel):
    code: str = Field(description="Six characters students type on /live.")
    join_url: str = Field(description="The students' link; it carries no power.")
    teacher_key: str = Field(
        description="The room's secret (256 bits): send it as `Authorization: Bearer KEY`."
    )


class StateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    link: str | None = Field(
        default=None,
        max_length=MAX_LINK_CHARS,
        description="A simulator or comparison link: scenario, era, step and view at once "
        "(what the teacher's page sends, or another lesson: the room's code stays and its "
        "students follow). Its era is its `policy=`, else the scenario's `#policy`, else the "
        "newest; a link without `step=` shows the last step. The fields below override it.",
    )
    scenario: str | None = Field(default=None, max_length=MAX_DECOMPRESSED_BYTES)
    policy: str | None = Field(default=None, max_length=512)
    step: int | None = Field(
        default=None,
        ge=0,
        le=1_000,
        description="Default: the current step (the last step when a link names none).",
    )
    view: Literal["simulator", "compare"] | None = None


class PollState(BaseModel):
    id: int
    step: int
    policy: str
    command: str = Field(description="The read the poll asks about.")
    choices: list[str]
    counts: list[int] = Field(description="`counts[i]` students answered `choices[i]`.")
    answered: int
    revealed: bool
    answer: str | None = Field(description="The engine's answer, null until revealed.")
    why: str | None = Field(description="The engine's narration of the step, once revealed.")
    closes_at: float | None = Field(
        description="With a countdown: when votes stop (Unix seconds), else null."
    )
    seconds_left: int | None = Field(
        description="With a countdown: whole seconds left as this answer was made (0 once "
        "closed), else null. Pages count down from it rather than from their own clock."
    )
    closed: bool = Field(description="Votes are refused: revealed, or the countdown ended.")


class RoomState(BaseModel):
    code: str
    link: str = Field(description="What the teacher shows, as a link a student's page loads.")
    policy: str
    step: int
    view: Literal["simulator", "compare"]
    students: int = Field(description="Students with the room open, on every worker.")
    poll: PollState | None
    can_poll: bool = Field(description="Whether the current step is a read (a poll may open).")


class CountdownRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=MIN_COUNTDOWN_S, le=MAX_COUNTDOWN_S)


class EndAnswer(BaseModel):
    code: str
    ended: bool


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: str = Field(max_length=MAX_CHOICE_CHARS)


class VoteAnswer(BaseModel):
    poll: int
    choice: str


PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ProblemAnswer,
        "description": "Missing or wrong teacher key; a vote from a page that did not join; "
        "a room started from another site's page.",
    },
    404: {"model": ProblemAnswer, "description": "No such room, or it expired."},
    409: {"model": ProblemAnswer, "description": "Not now (no open poll, not a read step…)."},
    400: {"model": ProblemAnswer, "description": "A link, scenario, era, step or choice refused."},
    429: {
        "model": ProblemAnswer,
        "description": "A bound of the room, or of the rooms one client may hold, is reached.",
    },
    503: {
        "model": ProblemAnswer,
        "description": "Live sessions are off, the server is full, or its store (Redis) is "
        "restarting: try again after `Retry-After` seconds.",
    },
}


# --- JSON API -----------------------------------------------------------------------------
@router.post(
    "/api/v1/live",
    status_code=201,
    response_model=StartAnswer,
    responses=PROBLEMS,
    summary="Start a live session from a view",
    tags=["live"],
)
async def api_start(request: Request, body: StartRequest) -> Response:
    try:
        room, key = await start_room(request, body.link)
    except Refused as exc:
        return exc.json()
    answer = StartAnswer(code=room.code, join_url=join_url(request, room.code), teacher_key=key)
    return JSONResponse(answer.model_dump(), status_code=201, headers=NO_STORE)


@router.get(
    "/api/v1/live/{code}",
    response_model=RoomState,
    responses=PROBLEMS,
    summary="The room's state and how many students follow it",
    tags=["live"],
)
async def api_state(request: Request, code: str) -> Response:
    try:
        broker = broker_of(request)
        room = await find_room(request, broker, code)
        return JSONResponse(await broker.state(room), headers=NO_STORE)
    except Refused as exc:
        return exc.json()


@router.post(
    "/api/v1/live/{code}/state",
    response_model=RoomState,
    responses=PROBLEMS,
    summary="Teacher: show another scenario, era, step or view",
    tags=["live"],
)
async def api_set_state(request: Request, code: str, body: StateRequest) -> Response:
    try:
        broker, room = await teacher_room(request, code)
        wanted = from_link(body.link) if body.link is not None else Wanted()
        wanted = replace(
            wanted,
            text=wanted.text if body.scenario is None else body.scenario,
            policy=body.policy or wanted.policy,
            step=wanted.step if body.step is None else body.step,
            view=body.view or wanted.view,
        )
        room = (await applied(room, wanted)).touched(broker.clock(), broker.idle_seconds)
        return JSONResponse(await announce(broker, room), headers=NO_STORE)
    except Refused as exc:
        return exc.json()


@router.post(
    "/api/v1/live/{code}/poll",
    response_model=RoomState,
    responses=PROBLEMS,
    summary="Teacher: open a poll on the current (read) step",
    tags=["live"],
)
async def api_open_poll(request: Request, code: str) -> Response:
    try:
        broker, room = await teacher_room(request, code)
        if room.polls_opened >= broker.max_polls:
            raise Refused(429, "polls", f"a room opens at most {broker.max_polls} polls")
        try:
            choices = await run_in_threadpool(polls.choices, room.text, room.step)
        except polls.NotARead as exc:
            raise Refused(409, "not-a-read", str(exc)) from exc
        poll = Poll(
            id=room.polls_opened + 1,
            step=room.step,
            policy=room.policy,
            command=(await run_in_threadpool(run, room.text, room.policy, broker.runs)).texts[
                room.step
            ],
            choices=choices,
        )
        room = replace(room.with_poll(poll), polls_opened=poll.id)
        room = room.touched(broker.clock(), broker.idle_seconds)
        return JSONResponse(await announce(broker, room), headers=NO_STORE)
    except Refused as exc:
        return exc.json()


@router.post(
    "/api/v1/live/{code}/reveal",
    response_model=RoomState,
    responses=PROBLEMS,
    summary="Teacher: show the engine's answer and its why on every screen",
    tags=["live"],
)
async def api_reveal(request: Request, code: str) -> Response:
    try:
        broker, room = await teacher_room(request, code)
        if room.poll is None:
            raise Refused(409, "no-poll", "there is no poll to reveal")
        value, why = await run_in_threadpool(
            polls.answer, room.text, room.poll.policy, room.poll.step
        )
        poll = replace(room.poll, revealed=True, answer=value, why=why)
        room = room.with_poll(poll).touched(broker.clock(), broker.idle_seconds)
        return JSONResponse(await announce(broker, room), headers=NO_STORE)
    except Refused as exc:
        return exc.json()


@router.post(
    "/api/v1/live/{code}/countdown",
    response_model=RoomState,
    responses=PROBLEMS,
    summary="Teacher: close the open poll after a countdown",
    description=f"Votes are refused `seconds` ({MIN_COUNTDOWN_S}–{MAX_COUNTDOWN_S}) from "
    "now; the poll gains `closes_at` and `seconds_left`. Starting it again restarts it.",
    tags=["live"],
)
async def api_countdown(request: Request, code: str, body: CountdownRequest) -> Response:
    try:
        broker, room = await teacher_room(request, code)
        now = broker.clock()
        if room.poll is None or room.poll.revealed:
            raise Refused(409, "no-poll", "there is no open poll to count down")
        poll = replace(room.poll, closes_at=now + body.seconds)
        room = room.with_poll(poll).touched(now, broker.idle_seconds)
        state = await announce(broker, room)
        # Every page learns it closed (the counts are final) just after it does.
        broker.soon(
            room.code, f"countdown-{poll.id}-{now}", body.seconds + 0.2, broker.announce_poll
        )
        return JSONResponse(state, headers=NO_STORE)
    except Refused as exc:
        return exc.json()


@router.delete(
    "/api/v1/live/{code}",
    response_model=EndAnswer,
    responses=PROBLEMS,
    summary="Teacher: end the session",
    description="The room, its votes and its code are gone; every open stream gets an `ended` "
    "event and closes.",
    tags=["live"],
)
async def api_end(request: Request, code: str) -> Response:
    try:
        broker, room = await teacher_room(request, code)
        await broker.end(room.code)
    except Refused as exc:
        return exc.json()
    return JSONResponse({"code": room.code, "ended": True}, headers=NO_STORE)


CSV_COLUMNS = (
    "poll",
    "step",
    "policy",
    "command",
    "choice",
    "votes",
    "answered",
    "revealed",
    "correct",
)


@router.get(
    "/api/v1/live/{code}/poll.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **PROBLEMS},
    summary="Teacher: every poll of the room and its counts, as CSV",
    description="One row per poll and choice: "
    + ", ".join(f"`{c}`" for c in CSV_COLUMNS)
    + " (`correct` is empty until the poll is revealed).",
    tags=["live"],
)
async def api_poll_csv(request: Request, code: str) -> Response:
    try:
        broker, room = await teacher_room(request, code)
    except Refused as exc:
        return exc.json()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for poll in room.all_polls():
        counts = await broker.tally(room.code, poll.id)
        answered = sum(counts.get(choice, 0) for choice in poll.choices)
        for choice in poll.choices:
            correct = "" if not poll.revealed else ("yes" if choice == poll.answer else "no")
            writer.writerow(
                [
                    poll.id,
                    poll.step,
                    poll.policy,
                    _cell(poll.command),
                    _cell(choice),
                    counts.get(choice, 0),
                    answered,
                    "yes" if poll.revealed else "no",
                    correct,
                ]
            )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="cowlab-{room.code}-polls.csv"',
        },
    )


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula is quoted by a '."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.post(
    "/api/v1/live/{code}/vote",
    response_model=VoteAnswer,
    responses=PROBLEMS,
    summary="Student: answer the open poll (again, to change the answer, until the reveal)",
    description="One answer per anonymous student id: the `cowlab_student` cookie of a page "
    "that joined the room (`/live/{code}`, or its event stream); other students see only the "
    "counts. Refused (409, `poll-closed`) once the poll's countdown ends.",
    tags=["live"],
)
async def api_vote(request: Request, code: str, body: Annotated[VoteRequest, Body()]) -> Response:
    try:
        broker = broker_of(request)
        room = await find_room(request, broker, code)
        poll = room.poll
        if poll is None or poll.revealed:
            raise Refused(409, "no-poll", "there is no open poll (or it was revealed)")
        if poll.closed(broker.clock()):
            raise Refused(409, "poll-closed", "the poll's countdown has ended: votes are closed")
        if body.choice not in poll.choices:
            raise Refused(400, "choice", f"{body.choice!r} is not one of the poll's choices")
        sid, new = student_id(request)
        if new or not await broker.admitted(room.code, sid):
            raise Refused(
                403,
                "not-joined",
                f"a vote counts from a page that joined the room: open /live/{room.code} "
                "first (its cookie is the student's id)",
            )
        await broker.vote(room, poll.id, sid, body.choice)
        broker.voted(room.code)
    except Refused as exc:
        return exc.json()
    return JSONResponse({"poll": poll.id, "choice": body.choice}, headers=NO_STORE)
