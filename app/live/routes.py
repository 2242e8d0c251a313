"""Live sessions over HTTP: the pages, the JSON API and the event stream students listen to.

- ``POST /live`` (the "Go live" button) and ``POST /api/v1/live`` make a room from a link;
- ``/live`` joins by code, ``/live/{code}`` is a student's page, ``/live/{code}/teach`` the
  teacher's, ``/live/{code}/screen`` the projector's join screen with the QR code;
- ``/live/{code}/events`` streams the room's ``state`` and ``poll`` events (server-sent
  events; a comment line at least every 15 s keeps proxies from closing it);
- the teacher changes the state, opens and reveals polls through ``/api/v1/live/{code}/…``,
  holding the room's key: in the ``Authorization: Bearer`` header, or in the cookie the
  "Go live" button sets. The key never appears in a URL, so never in a log or a student link.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Body, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from app.errors import ErrorView
from app.links import LinkError, parse_params
from app.live import polls
from app.live.broker import Broker, RoomsFull, encode
from app.live.qr import qr_svg
from app.live.rooms import (
    MAX_CHOICE_CHARS,
    MAX_LINK_CHARS,
    VIEW_PATHS,
    Poll,
    Room,
    View,
    key_digest,
    key_matches,
    new_code,
    new_key,
    normalize_code,
    room_link,
)
from app.render import render_error_page, render_page
from app.runs import Run, run
from engine.limits import MAX_DECOMPRESSED_BYTES
from engine.policies import UnknownPolicy
from engine.syntax import ScenarioError

HEARTBEAT_S = 12.0  # under the 15 s of DESIGN.md §9, with room for a busy loop
# Streams that do not count as students (the teacher's page, projector screens) per room and
# worker: they bypass the class size, so they have their own small bound.
MAX_WATCHERS = 16
TEACHER_COOKIE = "cowlab_teacher_"
STUDENT_COOKIE = "cowlab_student"
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What `create_app` puts in ``app.state.live``: the broker, or why there is none."""

    broker: Broker | None
    refusal: str | None = None
    public_url: str | None = None


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
        "(what the teacher's page sends); the fields below override it.",
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


class RoomState(BaseModel):
    code: str
    link: str = Field(description="What the teacher shows, as a link a student's page loads.")
    policy: str
    step: int
    view: Literal["simulator", "compare"]
    students: int = Field(description="Students with the room open, on every worker.")
    poll: PollState | None
    can_poll: bool = Field(description="Whether the current step is a read (a poll may open).")


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: str = Field(max_length=MAX_CHOICE_CHARS)


class VoteAnswer(BaseModel):
    poll: int
    choice: str


PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"model": ProblemAnswer, "description": "Missing or wrong teacher key."},
    404: {"model": ProblemAnswer, "description": "No such room, or it expired."},
    409: {"model": ProblemAnswer, "description": "Not now (no open poll, not a read step…)."},
    400: {"model": ProblemAnswer, "description": "A link, scenario, era, step or choice refused."},
    429: {"model": ProblemAnswer, "description": "A bound of the room is reached."},
    503: {"model": ProblemAnswer, "description": "Live sessions are off or the server is full."},
}


def _pages(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a page route answers with an HTML page that says why."""
    return {
        status: {"description": _TITLES[status], "content": {"text/html": {}}}
        for status in statuses
    }


class Refused(Exception):
    """An answer other than success, with the API's problem shape."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def json(self) -> JSONResponse:
        body = {"detail": {"error": self.error, "message": self.message}}
        return JSONResponse(body, status_code=self.status, headers=NO_STORE)

    def page(self, request: Request) -> HTMLResponse:
        view = ErrorView(self.status, _TITLES[self.status], self.message, text="")
        return HTMLResponse(render_error_page(request, view), status_code=self.status)


_TITLES = {
    400: "This link cannot start a live session",
    403: "This browser is not the teacher's",
    404: "There is no live session with this code",
    409: "Not now",
    429: "This live session is at its limit",
    503: "Live sessions are not available",
}


def _config(request: Request) -> LiveConfig:
    config: LiveConfig = request.app.state.live
    return config


def _broker(request: Request) -> Broker:
    config = _config(request)
    if config.broker is None:
        raise Refused(503, "live-off", config.refusal or "live sessions are off")
    return config.broker


async def _room(broker: Broker, code: str) -> Room:
    normal = normalize_code(code)
    room = None if normal is None else await broker.load(normal)
    if room is None:
        raise Refused(
            404, "unknown-room", f"no live session has the code {code[:12]!r} (or it ended)"
        )
    return room


def _key(request: Request, code: str) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(TEACHER_COOKIE + code)


async def _teacher_room(request: Request, code: str) -> tuple[Broker, Room]:
    broker = _broker(request)
    room = await _room(broker, code)
    if not key_matches(room, _key(request, room.code)):
        raise Refused(403, "forbidden", "only the teacher's key controls this room")
    return broker, room


def _base_url(request: Request) -> str:
    public = _config(request).public_url
    return (public or str(request.base_url)).rstrip("/")


def join_url(request: Request, code: str) -> str:
    return f"{_base_url(request)}/live/{code}"


# --- what a link or an update asks for, checked by the engine -------------------------------
@dataclass(frozen=True, slots=True)
class Wanted:
    text: str | None = None
    policy: str | None = None
    step: int | None = None
    view: View | None = None
    policies: tuple[str, ...] | None = None
    last_if_unnamed: bool = False  # a link without a step shows the last step


def _from_link(link: str) -> Wanted:
    parts = urlsplit(link)
    view = VIEW_PATHS.get(parts.path or "/")
    if view is None:
        raise Refused(
            400,
            "link",
            f"a live session follows the simulator or the comparison, not {parts.path!r}",
        )
    try:
        params = parse_params(dict(parse_qsl(parts.query, keep_blank_values=True)))
    except LinkError as exc:
        raise Refused(400, "link", str(exc)) from exc
    return Wanted(
        text=params.text,
        policy=params.policy,
        step=params.step,
        view=view,
        policies=params.policies,
        last_if_unnamed=params.step is None,
    )


def _replay(text: str, policy: str) -> Run:
    try:
        return run(text, policy)
    except UnknownPolicy as exc:
        raise Refused(400, "policy", str(exc)) from exc
    except ScenarioError as exc:
        raise Refused(400, "scenario", str(exc)) from exc


def _apply(room: Room, wanted: Wanted) -> Room:
    """``room`` showing what ``wanted`` asks for; the poll goes when anything changes."""
    text = room.text if wanted.text is None else wanted.text
    r = _replay(text, wanted.policy or room.policy)
    if wanted.step is not None:
        if wanted.step > r.last:
            raise Refused(400, "step", f"step {wanted.step} is past the last step ({r.last})")
        step = wanted.step
    elif wanted.last_if_unnamed:
        step = r.last
    else:
        step = min(room.step, r.last)
    view = wanted.view or room.view
    policies = wanted.policies if wanted.view == "compare" else room.policies
    changed = replace(
        room, text=r.link_text, policy=r.policy.id, step=step, view=view, policies=policies
    )
    if changed != room:
        changed = replace(changed, poll=None)
    return changed


async def _applied(room: Room, wanted: Wanted) -> Room:
    # A replay of a scenario at the limits takes up to a second, and a poll replays every
    # era: off the event loop, where every student's stream waits.
    return await run_in_threadpool(_apply, room, wanted)


async def _start(request: Request, link: str) -> tuple[Room, str]:
    broker = _broker(request)
    wanted = _from_link(link)
    key = new_key()
    now = broker.clock()
    blank = Room(code="", key_digest=key_digest(key), text="", policy="latest", step=0)
    room = await _applied(blank, replace(wanted, policy=wanted.policy or "latest"))
    room = room.touched(now, broker.idle_seconds)
    for _ in range(8):  # 3 × 10⁸ codes: a collision is rare, eight in a row is not a thing
        room = replace(room, code=new_code())
        try:
            if await broker.create(room):
                return room, key
        except RoomsFull:
            raise Refused(
                503, "rooms-full", f"this server runs {broker.max_rooms} live sessions already"
            ) from None
    raise Refused(503, "rooms-full", "no free room code was found; try again")


async def _announce(broker: Broker, room: Room) -> dict[str, Any]:
    await broker.save(room)
    await broker.announce(room)
    return await broker.state(room)


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
        room, key = await _start(request, body.link)
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
        broker = _broker(request)
        room = await _room(broker, code)
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
        broker, room = await _teacher_room(request, code)
        wanted = _from_link(body.link) if body.link is not None else Wanted()
        wanted = replace(
            wanted,
            text=wanted.text if body.scenario is None else body.scenario,
            policy=body.policy or wanted.policy,
            step=wanted.step if body.step is None else body.step,
            view=body.view or wanted.view,
        )
        room = (await _applied(room, wanted)).touched(broker.clock(), broker.idle_seconds)
        return JSONResponse(await _announce(broker, room), headers=NO_STORE)
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
        broker, room = await _teacher_room(request, code)
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
            command=run(room.text, room.policy).texts[room.step],
            choices=choices,
        )
        room = replace(room, poll=poll, polls_opened=poll.id)
        room = room.touched(broker.clock(), broker.idle_seconds)
        return JSONResponse(await _announce(broker, room), headers=NO_STORE)
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
        broker, room = await _teacher_room(request, code)
        if room.poll is None:
            raise Refused(409, "no-poll", "there is no poll to reveal")
        value, why = await run_in_threadpool(
            polls.answer, room.text, room.poll.policy, room.poll.step
        )
        poll = replace(room.poll, revealed=True, answer=value, why=why)
        room = replace(room, poll=poll).touched(broker.clock(), broker.idle_seconds)
        return JSONResponse(await _announce(broker, room), headers=NO_STORE)
    except Refused as exc:
        return exc.json()


def _student_id(request: Request) -> tuple[str, bool]:
    """(the anonymous id in the student's cookie, whether it is new)."""
    sid = request.cookies.get(STUDENT_COOKIE, "")
    if 16 <= len(sid) <= 64 and sid.replace("-", "").replace("_", "").isalnum():
        return sid, False
    return secrets.token_urlsafe(16), True


def _set_student(response: Response, request: Request, sid: str) -> None:
    response.set_cookie(
        STUDENT_COOKIE,
        sid,
        max_age=24 * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


@router.post(
    "/api/v1/live/{code}/vote",
    response_model=VoteAnswer,
    responses=PROBLEMS,
    summary="Student: answer the open poll (again, to change the answer, until the reveal)",
    description="One answer per anonymous student id (the `cowlab_student` cookie, set by "
    "the student's page or by this answer); other students see only the counts.",
    tags=["live"],
)
async def api_vote(request: Request, code: str, body: Annotated[VoteRequest, Body()]) -> Response:
    try:
        broker = _broker(request)
        room = await _room(broker, code)
        poll = room.poll
        if poll is None or poll.revealed:
            raise Refused(409, "no-poll", "there is no open poll (or it was revealed)")
        if body.choice not in poll.choices:
            raise Refused(400, "choice", f"{body.choice!r} is not one of the poll's choices")
        sid, new = _student_id(request)
        await broker.vote(room, poll.id, sid, body.choice)
        broker.voted(room.code)
    except Refused as exc:
        return exc.json()
    response = JSONResponse({"poll": poll.id, "choice": body.choice}, headers=NO_STORE)
    if new:
        _set_student(response, request, sid)
    return response


# --- the event stream -----------------------------------------------------------------------
@router.get(
    "/live/{code}/events",
    summary="The room's server-sent events: `state`, `poll`, `ended`",
    description="`state` and `poll` carry the JSON of `GET /api/v1/live/{code}` and its "
    "`poll`; the first event is the current state, so a reconnecting page lands on it. "
    "`role=teacher` or `role=screen` is not counted as a student.",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}}, **_pages(404, 429, 503)},
    tags=["live"],
)
async def events(request: Request, code: str, role: str | None = None) -> Response:
    try:
        broker = _broker(request)
        room = await _room(broker, code)
        student = role not in ("teacher", "screen")
        if student and await broker.students(room.code) >= broker.max_students:
            raise Refused(429, "full", f"this room already has {broker.max_students} students")
        watchers = broker.hub.rooms.get(room.code, set())
        if not student and sum(1 for w in watchers if not w.student) >= MAX_WATCHERS:
            raise Refused(429, "full", "this room has as many screens open as it allows")
    except Refused as exc:
        return exc.page(request)
    return EventSourceResponse(
        _stream(broker, room.code, student),
        ping=0,  # the stream sends its own heartbeat, after checking the room still exists
        headers=NO_STORE,
    )


async def _stream(broker: Broker, code: str, student: bool) -> AsyncIterator[bytes]:
    # Joined here, not in the route: a client gone before the stream starts never ran this
    # generator, so nothing would ever leave for it.
    listener = broker.join(code, student)
    try:
        # Joined before the state is read: an event made in between is not lost.
        room = await broker.load(listener.code)
        if room is None:
            yield encode("ended", None)
            return
        # A page that loses its stream (a phone asleep, a worker restarted) asks again soon.
        yield b"retry: 1500\n\n"
        yield encode("state", await broker.state(room))
        while True:
            items = await listener.next(HEARTBEAT_S)
            if items:
                for item in items:
                    yield item
                continue
            if await broker.load(listener.code) is None:
                yield encode("ended", None)
                return
            await broker.heartbeat(listener.code)
            yield b": heartbeat\n\n"
    finally:
        broker.leave(listener)


# --- pages ----------------------------------------------------------------------------------
def _page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    context = {
        "request": request,
        "page": "live",
        "view": "normal",
        "error": None,
        "nav": {"home": "/", "compare": "/compare"},
        "policy_param": "latest",
        "share_url": "",
        **values,
    }
    return HTMLResponse(render_page(template, context), status_code=status, headers=NO_STORE)


@router.get(
    "/live",
    response_class=HTMLResponse,
    summary="Join a live session by its code",
    responses={303: {"description": "To the room's page."}, **_pages(404, 503)},
)
async def join(request: Request, code: str | None = None) -> Response:
    message = ""
    status = 200
    if code is not None:
        try:
            room = await _room(_broker(request), code)
            return RedirectResponse(f"/live/{room.code}", status_code=303)
        except Refused as exc:
            message, status = exc.message, exc.status
    return _page(request, "live_join.html", status, message=message, typed=(code or "")[:12])


@router.post(
    "/live",
    response_class=RedirectResponse,
    summary='Start a live session from a view (the page\'s "Go live" button)',
    description="Answers 303 to the teacher's page and keeps the teacher's key in a cookie. "
    "Without `link`, the page the request came from (`Referer`).",
    status_code=303,
    responses=_pages(400, 503),
)
async def start(
    request: Request, link: Annotated[str, Form(max_length=MAX_LINK_CHARS)] = ""
) -> Response:
    # live.js puts the address bar's link in the form as it is sent (htmx moves the address
    # bar without redrawing the header); without scripts the browser's Referer names the
    # page the button was on (same origin: `Referrer-Policy: same-origin` sends it whole).
    link = link or request.headers.get("referer", "")[:MAX_LINK_CHARS]
    try:
        room, key = await _start(request, link)
    except Refused as exc:
        return exc.page(request)
    response = RedirectResponse(f"/live/{room.code}/teach", status_code=303)
    broker = _broker(request)
    response.set_cookie(
        TEACHER_COOKIE + room.code,
        key,
        max_age=int(broker.idle_seconds),
        httponly=True,  # no script reads it: the page's requests carry it
        samesite="strict",  # and no other site's page can make them
        secure=request.url.scheme == "https",
    )
    return response


async def _room_page(request: Request, code: str, role: str) -> HTMLResponse:
    try:
        broker = _broker(request)
        room = await _room(broker, code)
        if role == "student" and await broker.students(room.code) >= broker.max_students:
            # Said here, on the page: a refused event stream only looks like an ended room.
            raise Refused(429, "full", f"this room already has {broker.max_students} students")
        if role == "teacher" and not key_matches(room, _key(request, room.code)):
            raise Refused(
                403,
                "forbidden",
                f"the teacher's page of room {room.code} opens in the browser that started it",
            )
    except Refused as exc:
        return exc.page(request)
    response = _page(
        request,
        "live_room.html",
        code=room.code,
        role=role,
        link=room_link(room),
        join_url=join_url(request, room.code),
        students=await broker.students(room.code),
    )
    if role == "student":
        sid, new = _student_id(request)
        if new:
            _set_student(response, request, sid)
    return response


@router.get(
    "/live/{code}",
    response_class=HTMLResponse,
    summary="A student's page",
    responses=_pages(404, 429, 503),
)
async def student_page(request: Request, code: str) -> Response:
    return await _room_page(request, code, "student")


@router.get(
    "/live/{code}/teach",
    response_class=HTMLResponse,
    summary="The teacher's page (in the browser holding the key's cookie)",
    responses=_pages(403, 404, 503),
)
async def teacher_page(request: Request, code: str) -> Response:
    return await _room_page(request, code, "teacher")


@router.get(
    "/live/{code}/screen",
    response_class=HTMLResponse,
    summary="The projector's join screen: the code, the link and its QR code",
    responses=_pages(404, 503),
)
async def screen_page(request: Request, code: str) -> Response:
    try:
        broker = _broker(request)
        room = await _room(broker, code)
    except Refused as exc:
        return exc.page(request)
    url = join_url(request, room.code)
    return _page(
        request,
        "live_screen.html",
        code=room.code,
        join_url=url,
        qr=qr_svg(url, f"QR code of {url}"),
        students=await broker.students(room.code),
    )
