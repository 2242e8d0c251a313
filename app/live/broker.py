"""Where rooms live and how their events reach every open stream.

Each worker keeps a `Hub` of the streams open on it; the broker stores the rooms and carries an
event from the worker that made it to every worker's hub:

- `MemoryBroker` (one worker, the default): rooms in a dict, an event delivered straight to
  the hub. Rooms end with the process.
- `RedisBroker` (`app.live.redis_broker`, ``--broker redis://HOST:PORT/DB``): rooms, votes
  and each worker's student count in Redis keys that expire when the room is idle; events
  through Redis pub/sub, which every worker listens to. Any worker answers any request, and a
  restarted worker finds the rooms where it left them.

An event is encoded as server-sent-event bytes once, where it is made, and the same bytes go
to every stream: a step costs one JSON encoding whatever the size of the class. A stream keeps
only the newest event of each kind (each carries a whole state), so a slow phone holds one
state, not a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from app.live.polls import is_read
from app.live.rooms import (
    FIRST_ROOM_RESERVE,
    IDLE_SECONDS,
    MAX_JOINED,
    MAX_POLLS,
    MAX_ROOMS,
    MAX_ROOMS_PER_CLIENT,
    MAX_STUDENTS,
    Room,
    public_poll,
    public_state,
)
from app.views.runs import RunMemo, run

log = logging.getLogger("cowlab.live")

# The order a stream sends what is pending: a poll update after the state it belongs to, and
# the end of the room last (the stream closes after it).
KINDS = ("state", "poll", "ended")
ENDED = "ended"

# Student counts and vote counts are sent at most this often: a class joining or voting at
# once makes a handful of events, not one per student for every student.
PRESENCE_DELAY_S = 0.5
TALLY_DELAY_S = 0.25

Clock = Callable[[], float]


def encode(kind: str, data: dict[str, Any] | None) -> bytes:
    return ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=kind).encode()


class Listener:
    """One open event stream: the newest payload of each kind, and a wake-up."""

    __slots__ = ("code", "ended", "pending", "student", "wake")

    def __init__(self, code: str, student: bool) -> None:
        self.code = code
        self.student = student
        self.pending: dict[str, bytes] = {}
        self.wake = asyncio.Event()
        self.ended = False

    def deliver(self, kind: str, payload: bytes) -> None:
        self.pending[kind] = payload
        self.wake.set()

    async def next(self, timeout: float) -> list[bytes]:
        """What is pending, in `KINDS` order, or [] when ``timeout`` passes first."""
        if not self.pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
        self.wake.clear()
        out = [self.pending.pop(kind) for kind in KINDS if kind in self.pending]
        self.ended = self.ended or any(item.startswith(b"event: ended") for item in out)
        self.pending.clear()
        return out


class Hub:
    """The streams open on this worker, by room."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[Listener]] = {}
        # The newest ``state`` (and ``poll`` since) each room with streams here was sent: a
        # stream that opens gets them as they are, without asking the store. A class
        # reconnecting at once (its worker killed) costs this worker no work per student.
        self.last: dict[str, dict[str, bytes]] = {}

    def add(self, listener: Listener) -> None:
        self.rooms.setdefault(listener.code, set()).add(listener)

    def remove(self, listener: Listener) -> None:
        listeners = self.rooms.get(listener.code)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self.rooms[listener.code]
                self.last.pop(listener.code, None)

    def students(self, code: str) -> int:
        return sum(1 for listener in self.rooms.get(code, ()) if listener.student)

    def deliver(self, code: str, kind: str, payload: bytes) -> None:
        listeners = self.rooms.get(code)
        if not listeners:
            return
        if kind == "state":
            self.last[code] = {"state": payload}  # it holds the poll as it is now
        elif kind == "poll" and code in self.last:
            self.last[code]["poll"] = payload
        else:
            self.last.pop(code, None)
        for listener in listeners:
            listener.deliver(kind, payload)

    def remember(self, code: str, state: bytes) -> None:
        if code in self.rooms:
            self.last.setdefault(code, {"state": state})


class Broker(ABC):
    """Rooms, votes, student counts and event fan-out; the same rules whatever the store."""

    def __init__(
        self,
        *,
        max_rooms: int = MAX_ROOMS,
        max_rooms_per_client: int = MAX_ROOMS_PER_CLIENT,
        first_room_reserve: float = FIRST_ROOM_RESERVE,
        max_students: int = MAX_STUDENTS,
        max_joined: int = MAX_JOINED,
        max_polls: int = MAX_POLLS,
        idle_seconds: float = IDLE_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self.hub = Hub()
        self.max_rooms = max_rooms
        self.max_rooms_per_client = max_rooms_per_client
        self.first_room_reserve = int(max_rooms * first_room_reserve)
        self.max_students = max_students
        self.max_joined = max_joined
        self.max_polls = max_polls
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._later: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._closing = False
        # The app's run memo (`create_app` hands it over): a room's scenario is the one its
        # teacher's page just replayed, so announcing a step replays nothing.
        self.runs: RunMemo | None = None

    async def start(self) -> None:
        """Called when the event loop runs (the application's lifespan, which may start again
        after a shutdown: a test client opens the same application many times)."""
        self._closing = False

    async def close(self) -> None:
        # Streams still closing as the worker stops would schedule count updates: none now.
        self._closing = True
        for task in list(self._later.values()):
            task.cancel()

    # --- the store ---------------------------------------------------------------------
    @abstractmethod
    async def create(self, room: Room) -> bool:
        """Store a new room; False when its code is taken. Raises `RoomsFull` when the server
        holds ``max_rooms`` rooms, `ClientRoomsFull` when the room's owner holds
        ``max_rooms_per_client``, or holds any while only the reserve is left (`refusal`)."""

    def refusal(self, rooms: int, held: int) -> Exception | None:
        """Why a server holding ``rooms`` refuses one more to an owner holding ``held``."""
        if rooms >= self.max_rooms:
            return RoomsFull()
        if held >= self.max_rooms_per_client:
            return ClientRoomsFull(f"this address holds {held} live sessions already")
        if held and rooms >= self.max_rooms - self.first_room_reserve:
            return ClientRoomsFull(
                "the server is nearly full and keeps its last rooms for teachers who hold none;"
                f" this address holds {held}"
            )
        return None

    @abstractmethod
    async def end(self, code: str) -> None:
        """Delete the room and its votes; every stream of it gets an ``ended`` event."""

    @abstractmethod
    async def was_ended(self, code: str) -> bool:
        """Whether the teacher ended room ``code`` (within the idle time): pages that ask
        about it are told so, and their question is not a wrong code."""

    @abstractmethod
    async def admit(self, code: str, student: str) -> None:
        """Remember ``student`` as an id of a page that joined the room (at most
        ``max_joined``: past it, later ids are not remembered and cannot vote)."""

    @abstractmethod
    async def admitted(self, code: str, student: str) -> bool: ...

    @abstractmethod
    async def load(self, code: str) -> Room | None:
        """The room, or None when it never existed or has expired."""

    @abstractmethod
    async def save(self, room: Room) -> None: ...

    @abstractmethod
    async def vote(self, room: Room, poll_id: int, student: str, choice: str) -> None: ...

    @abstractmethod
    async def tally(self, code: str, poll_id: int) -> dict[str, int]: ...

    @abstractmethod
    async def students(self, code: str) -> int:
        """Students with a stream open on the room, on every worker."""

    @abstractmethod
    async def publish(self, code: str, kind: str, payload: bytes) -> None:
        """Deliver ``payload`` to every stream of the room, on every worker."""

    async def presence_changed(self, code: str) -> None:
        """This worker's count of the room's students changed (Redis keeps a copy)."""
        return None

    # --- shared behaviour ---------------------------------------------------------------
    async def counts(self, room: Room) -> dict[str, int]:
        return {} if room.poll is None else await self.tally(room.code, room.poll.id)

    async def state(self, room: Room) -> dict[str, Any]:
        state = public_state(
            room, await self.students(room.code), await self.counts(room), self.clock()
        )
        # The teacher's page offers a poll only where one can open.
        # Off the event loop: a scenario never seen by this worker replays in full (up to the
        # limits: a second), and every stream of the worker waits on the loop meanwhile.
        replayed = await run_in_threadpool(run, room.text, room.policy, self.runs)
        state["can_poll"] = is_read(replayed, room.step)
        return state

    async def announce(self, room: Room) -> dict[str, Any]:
        """Send the room's whole state to every stream; returns it."""
        state = await self.state(room)
        await self.publish(room.code, "state", encode("state", state))
        return state

    async def announce_poll(self, code: str) -> None:
        room = await self.load(code)
        if room is not None and room.poll is not None:
            poll = public_poll(room.poll, await self.counts(room), self.clock())
            await self.publish(code, "poll", encode("poll", poll))

    def join(self, code: str, student: bool) -> Listener:
        listener = Listener(code, student)
        self.hub.add(listener)
        if student:
            self.soon(code, "presence", PRESENCE_DELAY_S, self._presence)
        return listener

    def leave(self, listener: Listener) -> None:
        self.hub.remove(listener)
        if listener.student:
            self.soon(listener.code, "presence", PRESENCE_DELAY_S, self._presence)

    async def _presence(self, code: str) -> None:
        await self.presence_changed(code)
        room = await self.load(code)
        if room is not None:
            await self.announce(room)

    def voted(self, code: str) -> None:
        self.soon(code, "tally", TALLY_DELAY_S, self.announce_poll)

    def soon(
        self, code: str, what: str, delay: float, action: Callable[[str], Awaitable[None]]
    ) -> None:
        """Run ``action(code)`` after ``delay``, once for any number of calls meanwhile."""
        key = (code, what)
        if key in self._later or self._closing:
            return

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
                del self._later[key]
                await action(code)
            except asyncio.CancelledError:
                raise
            except BrokerUnavailable:  # Redis restarting: the next update brings it back
                log.warning("live room %s: %s update failed: the store is down", code, what)
            except Exception:  # a lost count update must not end the worker's loop
                log.exception("live room %s: %s update failed", code, what)

        self._later[key] = asyncio.get_running_loop().create_task(later())


class RoomsFull(Exception):
    """The server holds as many live rooms as it allows."""


class ClientRoomsFull(Exception):
    """The client that asks for a room holds as many live rooms as one client may (now)."""


class BrokerUnavailable(Exception):
    """The shared store does not answer (Redis down or restarting): answered 503 with a
    ``Retry-After``, never a 500 — the room comes back with Redis (`RedisBroker`)."""


RETRY_AFTER_S = 2


def ended_payload(code: str) -> bytes:
    return encode(ENDED, {"code": code, "message": "the teacher ended this live session"})


class MemoryBroker(Broker):
    """Rooms in this process: the default with one worker (DESIGN.md §9)."""

    def __init__(self, **limits: Any) -> None:
        super().__init__(**limits)
        self.rooms: dict[str, Room] = {}
        self.votes: dict[tuple[str, int], dict[str, str]] = {}
        self.joined: dict[str, set[str]] = {}
        self.ended: dict[str, float] = {}  # code → until when it is remembered as ended

    def _drop(self, code: str) -> None:
        self.rooms.pop(code, None)
        self.joined.pop(code, None)
        for key in [key for key in self.votes if key[0] == code]:
            del self.votes[key]

    def _expire(self) -> None:
        now = self.clock()
        for code in [code for code, room in self.rooms.items() if room.expires <= now]:
            self._drop(code)

    async def create(self, room: Room) -> bool:
        self._expire()
        if room.code in self.rooms:
            return False
        held = sum(1 for other in self.rooms.values() if room.owner and other.owner == room.owner)
        refused = self.refusal(len(self.rooms), held)
        if refused is not None:
            raise refused
        self.rooms[room.code] = room
        return True

    async def end(self, code: str) -> None:
        self._drop(code)
        now = self.clock()
        for old in [c for c, until in self.ended.items() if until <= now]:
            del self.ended[old]
        self.ended[code] = now + self.idle_seconds
        self.hub.deliver(code, ENDED, ended_payload(code))

    async def was_ended(self, code: str) -> bool:
        return self.ended.get(code, 0.0) > self.clock()

    async def admit(self, code: str, student: str) -> None:
        joined = self.joined.setdefault(code, set())
        if len(joined) < self.max_joined:
            joined.add(student)

    async def admitted(self, code: str, student: str) -> bool:
        return student in self.joined.get(code, ())

    async def load(self, code: str) -> Room | None:
        room = self.rooms.get(code)
        if room is not None and room.expires <= self.clock():
            self._expire()
            return None
        return room

    async def save(self, room: Room) -> None:
        self.rooms[room.code] = room

    async def vote(self, room: Room, poll_id: int, student: str, choice: str) -> None:
        self.votes.setdefault((room.code, poll_id), {})[student] = choice

    async def tally(self, code: str, poll_id: int) -> dict[str, int]:
        return dict(Counter(self.votes.get((code, poll_id), {}).values()))

    async def students(self, code: str) -> int:
        return self.hub.students(code)

    async def publish(self, code: str, kind: str, payload: bytes) -> None:
        self.hub.deliver(code, kind, payload)


def broker_from_url(url: str | None, **limits: Any) -> Broker:
    if not url:
        return MemoryBroker(**limits)
    if not url.startswith(REDIS_SCHEMES):
        raise ValueError(f"--broker takes a redis:// URL, not {url!r}")
    from app.live.redis_broker import RedisBroker  # one worker needs no Redis client

    return RedisBroker(url, max_streams=max_streams(), **limits)


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# Set by `cowlab serve` for its workers (environment variables, which every worker inherits).
ENV_BROKER = "COWLAB_LIVE_BROKER"
ENV_WORKERS = "COWLAB_WORKERS"
ENV_PUBLIC_URL = "COWLAB_PUBLIC_URL"
# Seats per room (default `MAX_STUDENTS`): `cowlab serve --live-seats N`.
ENV_SEATS = "COWLAB_LIVE_SEATS"

REFUSED_WORKERS = (
    "Live sessions need one shared broker when cowlab runs several workers: each worker would "
    "hold its own rooms and a class would be split between them. Restart with "
    "`cowlab serve --workers N --broker redis://HOST:PORT/DB` (Debian: apt install "
    "redis-server), or with one worker."
)


def max_streams() -> int:
    """The event streams one worker may hold: its open-file limit (raised by `cowlab serve`,
    or by the systemd unit's LimitNOFILE) less room for pages, files and Redis."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(64, soft - 256)


def configured() -> Broker | str:
    """The broker this worker's environment asks for, or why live sessions are refused."""
    url = os.environ.get(ENV_BROKER) or None
    workers = int(os.environ.get(ENV_WORKERS) or "1")
    if url is None and workers > 1:
        return REFUSED_WORKERS
    seats = int(os.environ.get(ENV_SEATS) or MAX_STUDENTS)
    return broker_from_url(url, max_students=seats, max_joined=4 * seats)
