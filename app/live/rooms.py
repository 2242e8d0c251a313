"""A live room's data and rules: codes, the teacher's key, limits, the state students follow.

A room is a small record (the scenario text, era, step and view the teacher shows, the poll)
that every worker can rebuild from its JSON, so the Redis broker stores exactly what the
in-process one holds. The teacher's key is kept only as a digest: a leaked store (a Redis dump,
a debugging print of a room) gives no control over the room.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from app.views.links import make_link

# Six characters from an alphabet without the look-alikes 0/O, 1/I/L, 5/S, 2/Z, 8/B: a code
# read off a projector at the back of a hall is typed right the first time. 26 characters
# give 26⁶ ≈ 3.1 × 10⁸ codes, so guessing a live room among a few hundred is hopeless.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY345679"
CODE_LENGTH = 6
# 32 random bytes: 256 bits, twice the 128 the issue asks for.
KEY_BYTES = 32

MAX_ROOMS = 200  # per server (or per Redis database)
# Live rooms one client address may hold at once: a few teachers behind one school NAT, each
# with several classes a day, stay below it.
MAX_ROOMS_PER_CLIENT = 16
# The last quarter of the server's rooms go only to an address that holds none: a few
# addresses taking MAX_ROOMS_PER_CLIENT each cannot take every room, and the next teacher
# still gets one.
FIRST_ROOM_RESERVE = 1 / 4
MAX_STUDENTS = 500  # per room
# Student ids a room remembers as joined (a vote counts only with one of them): phones that
# reload, lose their cookie or change networks join again, so more than the seats.
MAX_JOINED = 4 * MAX_STUDENTS
MAX_POLLS = 100  # per room
# A room with nothing done in it for this long ends: a 50-minute lecture with a long
# discussion stays well inside it, and a room taken and left does not hold a slot for the day.
IDLE_SECONDS = 2 * 3600
MIN_COUNTDOWN_S = 5
MAX_COUNTDOWN_S = 600
MAX_LINK_CHARS = 3 * 16 * 1024 + 512  # a link's escaped 16 KB scenario and its parameters
MAX_CHOICE_CHARS = 64

View = Literal["simulator", "compare"]
VIEW_PATHS: dict[str, View] = {"/": "simulator", "/compare": "compare"}


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """The code a person typed, upper-cased and without spaces or dashes; None if it cannot be
    one (so a typo answers "no such room" without a lookup)."""
    code = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def owner_digest(address: str) -> str:
    """Who started a room, as the live store keeps it: a digest, not the address itself, so a
    dump of the store lists no visitor's address in clear (the IPv4 space is small enough to
    search, so this hides an address from a glance, not from a determined reader)."""
    return hashlib.sha256(f"cowlab-live-owner:{address}".encode()).hexdigest()[:32]


def key_matches(room: Room, key: str | None) -> bool:
    if not key:
        return False
    # A constant-time comparison of digests: the time taken says nothing about the key.
    return hmac.compare_digest(room.key_digest, key_digest(key))


@dataclass(frozen=True, slots=True)
class Poll:
    """A question on one read step under one era; the votes are kept apart (`broker`)."""

    id: int
    step: int
    policy: str
    command: str  # the read's text, which the question names
    choices: tuple[str, ...]
    revealed: bool = False
    answer: str | None = None
    why: str | None = None
    # Wall-clock seconds (every worker and Redis agree) after which votes are refused; None
    # while no countdown runs.
    closes_at: float | None = None

    def closed(self, now: float) -> bool:
        return self.revealed or (self.closes_at is not None and now >= self.closes_at)


@dataclass(frozen=True, slots=True)
class Room:
    code: str
    key_digest: str
    text: str  # the canonical scenario text (`Run.link_text`)
    policy: str  # a resolved era id
    step: int
    view: View = "simulator"
    policies: tuple[str, ...] | None = None  # the compare view's chosen eras
    poll: Poll | None = None
    # The room's earlier polls, oldest first, for the results download (`poll.csv`).
    past: tuple[Poll, ...] = ()
    polls_opened: int = 0
    expires: float = field(default=0.0)  # wall-clock seconds: Redis and every worker agree
    owner: str = ""  # `owner_digest` of the address that started the room

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Room:
        data: dict[str, Any] = json.loads(raw)
        poll = data.pop("poll")
        policies = data.pop("policies")
        past = data.pop("past", ())  # rooms stored before polls were kept
        return cls(
            **data,
            policies=tuple(policies) if policies is not None else None,
            poll=None if poll is None else _poll_from(poll),
            past=tuple(_poll_from(p) for p in past),
        )

    def touched(self, now: float, idle: float) -> Room:
        return replace(self, expires=now + idle)

    def with_poll(self, poll: Poll | None) -> Room:
        """The room asking ``poll`` (None: no poll); the poll it replaces joins `past`."""
        if self.poll is None or (poll is not None and poll.id == self.poll.id):
            return replace(self, poll=poll)
        return replace(self, poll=poll, past=(*self.past, self.poll))

    def all_polls(self) -> tuple[Poll, ...]:
        return self.past if self.poll is None else (*self.past, self.poll)


def _poll_from(data: dict[str, Any]) -> Poll:
    return Poll(**{**data, "choices": tuple(data["choices"])})


def public_poll(poll: Poll | None, counts: dict[str, int], now: float) -> dict[str, Any] | None:
    """The poll as every screen sees it (DESIGN.md §9): ``counts[i]`` is ``choices[i]``'s;
    the answer and its why only once revealed; with a countdown, when it closes (wall-clock
    ``closes_at``) and ``seconds_left`` as of this answer (a page counts down from it, so a
    phone with a wrong clock counts right)."""
    if poll is None:
        return None
    seconds_left = None
    if poll.closes_at is not None:
        seconds_left = max(0, math.ceil(poll.closes_at - now))
    return {
        "id": poll.id,
        "step": poll.step,
        "policy": poll.policy,
        "command": poll.command,
        "choices": list(poll.choices),
        "counts": [counts.get(choice, 0) for choice in poll.choices],
        "answered": sum(counts.get(choice, 0) for choice in poll.choices),
        "revealed": poll.revealed,
        "answer": poll.answer if poll.revealed else None,
        "why": poll.why if poll.revealed else None,
        "closes_at": poll.closes_at,
        "seconds_left": seconds_left,
        "closed": poll.closed(now),
    }


def room_link(room: Room) -> str:
    """The link of what the teacher shows, as a student's page loads it."""
    if room.view == "compare":
        return make_link("/compare", room.text, policies=room.policies, step=room.step)
    return make_link("/", room.text, policy=room.policy, step=room.step)


def public_state(room: Room, students: int, counts: dict[str, int], now: float) -> dict[str, Any]:
    """The room's state (DESIGN.md §9): what `GET /api/v1/live/{code}` answers and the data of
    the event stream's ``state`` events. Nothing in it gives control of the room."""
    return {
        "code": room.code,
        "link": room_link(room),
        "policy": room.policy,
        "step": room.step,
        "view": room.view,
        "students": students,
        "poll": public_poll(room.poll, counts, now),
    }
