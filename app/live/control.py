"""What every live route shares: where the broker is, the refusals, the teacher's key, and how
a link or an update becomes a room's new state (checked by the engine).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.http.render import render_error_page
from app.live.broker import RETRY_AFTER_S, Broker, ClientRoomsFull, RoomsFull
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
from app.views.runs import Run, lesson_policy, run
from engine.policies import UnknownPolicy
from engine.syntax import ScenarioError

TEACHER_COOKIE = "cowlab_teacher_"
STUDENT_COOKIE = "cowlab_student"
NO_STORE = {"Cache-Control": "no-store"}


# Wrong room codes one client address may try in a burst, and how fast it may try more: a
# lecture hall behind one NAT mistypes a few dozen codes in its first minute, a guesser gets
# one try a second (3 × 10⁸ codes for a few hundred rooms: weeks per room found).
MISS_BURST = 60
MISS_PER_S = 1.0
MISS_CLIENTS = 10_000  # addresses remembered per worker (the oldest are forgotten first)


class MissLimiter:
    """A token bucket per client address, spent by lookups of codes that name no room."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, address: str) -> float:
        tokens, at = self.buckets.get(address, (MISS_BURST, self.clock()))
        return min(MISS_BURST, tokens + (self.clock() - at) * MISS_PER_S)

    def allowed(self, address: str) -> bool:
        return self._tokens(address) >= 1

    def missed(self, address: str) -> None:
        self.buckets[address] = (self._tokens(address) - 1, self.clock())
        self.buckets.move_to_end(address)
        while len(self.buckets) > MISS_CLIENTS:
            self.buckets.popitem(last=False)


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What `create_app` puts in ``app.state.live``: the broker, or why there is none."""

    broker: Broker | None
    refusal: str | None = None
    public_url: str | None = None
    misses: MissLimiter = field(default_factory=MissLimiter)


def html_refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a page route answers with an HTML page that says why."""
    return {
        status: {"description": TITLES[status], "content": {"text/html": {}}} for status in statuses
    }


class Refused(Exception):
    """An answer other than success, with the API's problem shape."""

    def __init__(self, status: int, error: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.retry_after = retry_after

    def _headers(self) -> dict[str, str]:
        retry = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return {**NO_STORE, **retry}

    def json(self) -> JSONResponse:
        body = {"detail": {"error": self.error, "message": self.message}}
        return JSONResponse(body, status_code=self.status, headers=self._headers())

    def page(self, request: Request) -> HTMLResponse:
        view = ErrorView(self.status, TITLES[self.status], self.message, text="")
        return HTMLResponse(
            render_error_page(request, view), status_code=self.status, headers=self._headers()
        )


def broker_down(detail: str) -> Refused:
    return Refused(
        503,
        "broker-down",
        f"the live sessions' store does not answer ({detail[:120]}); the room comes back "
        f"with it: try again in {RETRY_AFTER_S} s",
        retry_after=RETRY_AFTER_S,
    )


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


def client_address(request: Request) -> str:
    # Behind the deployment's nginx, uvicorn (proxy_headers) has put the visitor's address
    # from X-Forwarded-For here; a proxy it does not trust cannot choose whom a room counts for.
    return request.client.host if request.client is not None else ""


async def find_room(request: Request, broker: Broker, code: str) -> Room:
    """The room ``code`` names; 404 when none, 429 once one client has tried too many wrong
    codes (`MissLimiter`: guessing codes is as slow as guessing them is hopeless)."""
    misses = live_config(request).misses
    address = client_address(request)
    if not misses.allowed(address):
        raise Refused(
            429,
            "too-many-codes",
            "too many wrong live session codes from this address: check the code on the "
            "projector and try again in a few seconds",
            retry_after=2,
        )
    normal = normalize_code(code)
    room = None if normal is None else await broker.load(normal)
    if room is None and normal is not None and await broker.was_ended(normal):
        raise Refused(404, "ended", f"the live session {normal} has ended")
    if room is None:
        misses.missed(address)
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
    room = await find_room(request, broker, code)
    if not key_matches(room, teacher_key(request, room.code)):
        raise Refused(403, "forbidden", "only the teacher's key controls this room")
    return broker, room


def same_site(request: Request) -> bool:
    """Whether a browser says the request comes from a page of this server (or says nothing:
    a script, curl). Another site's form or script cannot start rooms for its visitors."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":  # a sandboxed or privacy-stripped page: not ours
        return False
    seen = urlsplit(origin)
    public = live_config(request).public_url
    # A proxy that rewrites Host names the visitor's in X-Forwarded-Host; another site's
    # page cannot set that header (nor any other a form or simple request cannot send).
    ours = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")}
    if public:
        ours.add(urlsplit(public).netloc)
    return seen.netloc in ours


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
        # The era the link opens in on its own page (DESIGN.md §8): a lesson's `#policy` when
        # the link names none, so a class sees the story the lesson tells under its era.
        policy=params.policy or lesson_policy(params.text) or "latest",
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
        changed = changed.with_poll(None)
    return changed


async def applied(room: Room, wanted: Wanted) -> Room:
    # A replay of a scenario at the limits takes up to a second, and a poll replays every
    # era: off the event loop, where every student's stream waits.
    return await run_in_threadpool(apply_wanted, room, wanted)


async def start_room(request: Request, link: str) -> tuple[Room, str]:
    broker = broker_of(request)
    if not same_site(request):
        raise Refused(
            403,
            "cross-site",
            "a live session starts from a page of this server (the request came from another "
            "site); scripts that send no Origin header may start one",
        )
    wanted = from_link(link)
    key = new_key()
    now = broker.clock()
    address = client_address(request)
    blank = Room(
        code="",
        key_digest=key_digest(key),
        text="",
        policy="latest",
        step=0,
        owner=owner_digest(address) if address else "",
    )
    room = await applied(blank, wanted)
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
        except ClientRoomsFull as exc:
            raise Refused(
                429,
                "rooms-per-client",
                f"{exc}; end a session you started (or it ends after "
                f"{broker.idle_seconds / 3600:g} idle hours) and try again",
            ) from None
    raise Refused(503, "rooms-full", "no free room code was found; try again")


async def admit(request: Request, response: Response | None, broker: Broker, code: str) -> None:
    """The student page or stream of ``request`` joins room ``code``: its id (the cookie, or
    a new one set on ``response``) may vote there."""
    sid, new = student_id(request)
    if new:
        if response is None:
            return  # a stream without the page's cookie: nobody to remember
        set_student(response, request, sid)
    await broker.admit(code, sid)


async def seat_free(request: Request, broker: Broker, code: str) -> bool:
    """Whether a student's stream may open. A room at its size still takes back a student
    whose page joined it (its id in the cookie) while the count is under twice the size:
    the count may still hold, for a few seconds, the seats of a worker that died under its
    students, and those students are the ones reconnecting."""
    count = await broker.students(code)
    if count < broker.max_students:
        return True
    sid, new = student_id(request)
    return count < 2 * broker.max_students and not new and await broker.admitted(code, sid)


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
