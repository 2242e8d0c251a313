"""The event stream students listen to: ``GET /live/{code}/events`` (server-sent events).

The first event is the current state, so a page that reconnects lands on it; then ``state``
and ``poll`` as they change, ``ended`` when the room expires, and a comment line after
`HEARTBEAT_S` quiet seconds so that proxies keep the stream open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.live.broker import Broker, encode
from app.live.control import NO_STORE, Refused, broker_of, find_room, html_refusals

HEARTBEAT_S = 12.0  # under the 15 s of DESIGN.md §9, with room for a busy loop
# Streams that do not count as students (the teacher's page, projector screens) per room and
# worker: they bypass the class size, so they have their own small bound.
MAX_WATCHERS = 16

router = APIRouter()


@router.get(
    "/live/{code}/events",
    summary="The room's server-sent events: `state`, `poll`, `ended`",
    description="`state` and `poll` carry the JSON of `GET /api/v1/live/{code}` and its "
    "`poll`; the first event is the current state, so a reconnecting page lands on it. "
    "`role=teacher` or `role=screen` is not counted as a student.",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}}, **html_refusals(404, 429, 503)},
    tags=["live"],
)
async def events(request: Request, code: str, role: str | None = None) -> Response:
    try:
        broker = broker_of(request)
        room = await find_room(broker, code)
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
