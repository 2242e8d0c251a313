"""The event stream students listen to: ``GET /live/{code}/events`` (server-sent events).

The first event is the current state, so a page that reconnects lands on it; then ``state``
and ``poll`` as they change, ``ended`` when the teacher ends the room or it expires, and a
``heartbeat`` event after `HEARTBEAT_S` quiet seconds: proxies keep the stream open, and the
page sees that it is alive (a comment line would be invisible to its script) and says
"reconnecting…" when heartbeats stop.

A stream whose reader stops reading (a phone asleep with the socket open, or a client that
opens streams and never reads them) is dropped after `SEND_TIMEOUT_S` of a blocked write:
it holds no more than the socket's buffers until then, and its seat is freed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from app.live.broker import KINDS, Broker, BrokerUnavailable, encode
from app.live.control import (
    NO_STORE,
    Refused,
    admit,
    broker_of,
    find_room,
    html_refusals,
    seat_free,
)

log = logging.getLogger("cowlab.live")

HEARTBEAT_S = 12.0  # under the 15 s of DESIGN.md §9, with room for a busy loop
# Longer than a phone's short stall on a bad network, far shorter than a lecture.
SEND_TIMEOUT_S = 20.0
# Streams that do not count as students (the teacher's page, projector screens) per room and
# worker: they bypass the class size, so they have their own small bound.
MAX_WATCHERS = 16
HEARTBEAT = encode("heartbeat", None)
# EventSource's pause before it opens a stream again after one ended (a worker killed): a
# second, so a class is back soon; each page's own jittered backoff spreads later retries.
RETRY = b"retry: 1000\n\n"

router = APIRouter()


@router.get(
    "/live/{code}/events",
    summary="The room's server-sent events: `state`, `poll`, `ended`, `heartbeat`",
    description="`state` and `poll` carry the JSON of `GET /api/v1/live/{code}` and its "
    "`poll`; the first event is the current state, so a reconnecting page lands on it. "
    "`ended` says the teacher ended the room (the stream then closes); `heartbeat` comes "
    "after 12 quiet seconds. `role=teacher` or `role=screen` is not counted as a student.",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}}, **html_refusals(404, 429, 503)},
    tags=["live"],
)
async def events(request: Request, code: str, role: str | None = None) -> Response:
    try:
        broker = broker_of(request)
        room = await find_room(request, broker, code)
        student = role not in ("teacher", "screen")
        if student and not await seat_free(request, broker, room.code):
            raise Refused(
                429,
                "full",
                f"this room already has {broker.max_students} students",
                retry_after=5,
            )
        watchers = broker.hub.rooms.get(room.code, set())
        if not student and sum(1 for w in watchers if not w.student) >= MAX_WATCHERS:
            raise Refused(429, "full", "this room has as many screens open as it allows")
        if student:
            await admit(request, None, broker, room.code)
    except Refused as exc:
        return exc.page(request)
    return EventSourceResponse(
        _stream(broker, room.code, student),
        ping=0,  # the stream sends its own heartbeat, after checking the room still exists
        headers=NO_STORE,
        send_timeout=SEND_TIMEOUT_S,
    )


async def _stream(broker: Broker, code: str, student: bool) -> AsyncIterator[bytes]:
    # Joined here, not in the route: a client gone before the stream starts never ran this
    # generator, so nothing would ever leave for it.
    listener = broker.join(code, student)
    try:
        # Joined before the state is read: an event made in between is not lost.
        sent = dict(broker.hub.last.get(code, {}))
        if not sent:
            room = await broker.load(listener.code)
            if room is None:
                yield encode("ended", None)
                return
            sent = {"state": encode("state", await broker.state(room))}
            broker.hub.remember(code, sent["state"])
        # A page that loses its stream (a phone asleep, a worker restarted) asks again soon.
        yield RETRY
        for kind in KINDS:
            if kind in sent:
                yield sent[kind]
        while True:
            items = await listener.next(HEARTBEAT_S)
            if items:
                for item in items:
                    yield item
                if listener.ended:
                    return
                continue
            try:
                if await broker.load(listener.code) is None:
                    yield encode("ended", None)
                    return
            except BrokerUnavailable:
                # Redis restarting: the stream stays open, and events flow again with it.
                log.info("live room %s: store unavailable at a heartbeat", code)
            yield HEARTBEAT
    finally:
        broker.leave(listener)
