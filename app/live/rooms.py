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
# with several classes a day, stay below it, and one visitor can no longer take all MAX_ROOMS.
MAX_ROOMS_PER_CLIENT = 16
MAX_STUDENTS = 500  # per room
MAX_POLLS = 100  # per room
IDLE_SECONDS = 6 * 3600
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
        return cls(
            **data,
            policies=tuple(policies) if policies is not None else None,
            poll=None if poll is None else Poll(**{**poll, "choices": tuple(poll["choices"])}),
        )

    def touched(self, now: float, idle: float) -> Room:
        return replace(self, expires=now + idle)


def public_poll(poll: Poll | None, counts: dict[str, int]) -> dict[str, Any] | None:
    """The poll as every screen sees it (DESIGN.md §9): ``counts[i]`` is ``choices[i]``'s;
    the answer and its why only once revealed."""
    if poll is None:
        return None
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
    }


def room_link(room: Room) -> str:
    """The link of what the teacher shows, as a student's page loads it."""
    if room.view == "compare":
        return make_link("/compare", room.text, policies=room.policies, step=room.step)
    return make_link("/", room.text, policy=room.policy, step=room.step)


def public_state(room: Room, students: int, counts: dict[str, int]) -> dict[str, Any]:
    """The room's state (DESIGN.md §9): what `GET /api/v1/live/{code}` answers and the data of
    the event stream's ``state`` events. Nothing in it gives control of the room."""
    return {
        "code": room.code,
        "link": room_link(room),
        "policy": room.policy,
        "step": room.step,
        "view": room.view,
        "students": students,
        "poll": public_poll(room.poll, counts),
    }
