"""What every live route shares: where the broker is, the refusals, the teacher's key, and how
a link or an update becomes a room's new state (checked by the engine).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.http.render import render_error_page
from app.live.broker import Broker, ClientRoomsFull, RoomsFull
from app.live.rooms import (
    VIEW_PATHS,
    Room,
    View,
    key_digest,
    key_matches,
    new_code,
    new_key,
    normalize_code,
    owner_digest,
)
from app.views.errors import ErrorView
from app.views.links import LinkError, parse_params
from app.views.runs import Run, run
from engine.policies import UnknownPolicy
from engine.syntax import ScenarioError

TEACHER_COOKIE = "cowlab_teacher_"
STUDENT_COOKIE = "cowlab_student"
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What `create_app` puts in ``app.state.live``: the broker, or why there is none."""

    broker: Broker | None
    refusal: str | None = None
    public_url: str | None = None


def html_refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a page route answers with an HTML page that says why."""
    return {
        status: {"description": TITLES[status], "content": {"text/html": {}}} for status in statuses
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
        view = ErrorView(self.status, TITLES[self.status], self.message, text="")
        return HTMLResponse(render_error_page(request, view), status_code=self.status)


TITLES = {
    400: "This link cannot start a live session",
    403: "This browser is not the teacher's",
    404: "There is no live session with this code",
    409: "Not now",
    429: "This live session is at its limit",
    503: "Live sessions are not available",
}


def live_config(request: Request) -> LiveConfig:
    config: LiveConfig = request.app.state.live
    return config


def broker_of(request: Request) -> Broker:
    config = live_config(request)
    if config.broker is None:
        raise Refused(503, "live-off", config.refusal or "live sessions are off")
    return config.broker


async def find_room(broker: Broker, code: str) -> Room:
    normal = normalize_code(code)
    room = None if normal is None else await broker.load(normal)
    if room is None:
        raise Refused(
            404, "unknown-room", f"no live session has the code {code[:12]!r} (or it ended)"
        )
    return room


def teacher_key(request: Request, code: str) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(TEACHER_COOKIE + code)


async def teacher_room(request: Request, code: str) -> tuple[Broker, Room]:
    broker = broker_of(request)
    room = await find_room(broker, code)
    if not key_matches(room, teacher_key(request, room.code)):
        raise Refused(403, "forbidden", "only the teacher's key controls this room")
    return broker, room


def base_url(request: Request) -> str:
    public = live_config(request).public_url
    return (public or str(request.base_url)).rstrip("/")


def join_url(request: Request, code: str) -> str:
    return f"{base_url(request)}/live/{code}"


# --- what a link or an update asks for, checked by the engine -------------------------------
@dataclass(frozen=True, slots=True)
class Wanted:
    text: str | None = None
    policy: str | None = None
    step: int | None = None
    view: View | None = None
    policies: tuple[str, ...] | None = None
    last_if_unnamed: bool = False  # a link without a step shows the last step


def from_link(link: str) -> Wanted:
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


def replay(text: str, policy: str) -> Run:
    try:
        return run(text, policy)
    except UnknownPolicy as exc:
        raise Refused(400, "policy", str(exc)) from exc
    except ScenarioError as exc:
        raise Refused(400, "scenario", str(exc)) from exc


def apply_wanted(room: Room, wanted: Wanted) -> Room:
    """``room`` showing what ``wanted`` asks for; the poll goes when anything changes."""
    text = room.text if wanted.text is None else wanted.text
    r = replay(text, wanted.policy or room.policy)
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


async def applied(room: Room, wanted: Wanted) -> Room:
    # A replay of a scenario at the limits takes up to a second, and a poll replays every
    # era: off the event loop, where every student's stream waits.
    return await run_in_threadpool(apply_wanted, room, wanted)


async def start_room(request: Request, link: str) -> tuple[Room, str]:
    broker = broker_of(request)
    wanted = from_link(link)
    key = new_key()
    now = broker.clock()
    # Behind the deployment's nginx, uvicorn (proxy_headers) has put the visitor's address
    # from X-Forwarded-For here; a proxy it does not trust cannot choose whom a room counts for.
    address = request.client.host if request.client is not None else ""
    blank = Room(
        code="",
        key_digest=key_digest(key),
        text="",
        policy="latest",
        step=0,
        owner=owner_digest(address) if address else "",
    )
    room = await applied(blank, replace(wanted, policy=wanted.policy or "latest"))
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
        except ClientRoomsFull:
            raise Refused(
                429,
                "rooms-per-client",
                f"this address holds {broker.max_rooms_per_client} live sessions already; a"
                " session ends after six idle hours, or use one you started",
            ) from None
    raise Refused(503, "rooms-full", "no free room code was found; try again")


async def announce(broker: Broker, room: Room) -> dict[str, Any]:
    await broker.save(room)
    await broker.announce(room)
    return await broker.state(room)


def student_id(request: Request) -> tuple[str, bool]:
    """(the anonymous id in the student's cookie, whether it is new)."""
    sid = request.cookies.get(STUDENT_COOKIE, "")
    if 16 <= len(sid) <= 64 and sid.replace("-", "").replace("_", "").isalnum():
        return sid, False
    return secrets.token_urlsafe(16), True


def set_student(response: Response, request: Request, sid: str) -> None:
    response.set_cookie(
        STUDENT_COOKIE,
        sid,
        max_age=24 * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
