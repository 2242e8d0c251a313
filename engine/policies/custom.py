"""Custom points of the knob space: ``custom:base=ID,KNOB=CHOICE,…`` (DESIGN.md §11).

``base`` is required and is an era id, never ``latest`` (it moves when an era is added); the
knobs not named take the base era's choice. The canonical id lists the knobs in `KNOBS` order
and drops those equal to the base, so two spellings of one point share a link, a memo entry and
the JSON's ``policy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from engine.policies.base import Policy
from engine.policies.errors import UnknownPolicy
from engine.policies.knobs import KNOBS, resolve

PREFIX = "custom:"
# A custom id names at most one choice per knob plus its base: well under this in any spelling
# a person writes; the bound keeps a hostile id from costing more than parsing a short string.
MAX_ID_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Point:
    """A parsed custom id: the base era and the knobs that differ from it, in `KNOBS` order."""

    base: str
    changes: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return PREFIX + ",".join([f"base={self.base}", *(f"{k}={v}" for k, v in self.changes)])


def is_custom(policy_id: str) -> bool:
    return policy_id.startswith(PREFIX)


def parse(policy_id: str, eras: Mapping[str, Policy]) -> Point:
    """The point a custom id names; raises `UnknownPolicy` (or `RefusedCombination`) with a
    message that says what is wrong and what would be right."""
    if len(policy_id) > MAX_ID_LENGTH:
        raise UnknownPolicy(f"custom policy id longer than {MAX_ID_LENGTH} characters")
    if not is_custom(policy_id):
        raise UnknownPolicy(f"a custom policy id starts with {PREFIX!r}")
    named: dict[str, str] = {}
    for part in policy_id[len(PREFIX) :].split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UnknownPolicy(f"custom policy part {part!r} is not KNOB=CHOICE")
        if key in named:
            raise UnknownPolicy(f"custom policy names {key!r} twice")
        named[key] = value
    base_id = named.pop("base", None)
    if base_id is None:
        raise UnknownPolicy("a custom policy needs base=ID, e.g. custom:base=5.9,gup_read=none")
    if base_id == "latest":
        raise UnknownPolicy(
            "base=latest moves when an era is added; name the era, e.g. base=" + list(eras)[-1]
        )
    if base_id not in eras:
        raise UnknownPolicy(f"unknown base era {base_id!r}; expected one of: {', '.join(eras)}")
    base = eras[base_id]
    for knob, choice in named.items():
        if knob not in KNOBS:
            raise UnknownPolicy(f"unknown knob {knob!r}; expected one of: {', '.join(KNOBS)}")
        KNOBS[knob].choice(choice)
    settings = {k: named.get(k, base.knobs[k]) for k in KNOBS}
    resolve(settings)
    return Point(base_id, tuple((k, settings[k]) for k in KNOBS if settings[k] != base.knobs[k]))


class CustomPolicy(Policy):
    """A point that is not an era: the base era's knobs with some changed. It covers no kernel,
    and its story is the stories of the choices that differ from the base. `build` makes one
    subclass per point, so identity stays in class attributes as it does for the eras."""

    merged: ClassVar[bool] = False
    point: ClassVar[Point]
    base: ClassVar[Policy]


def build(point: Point, eras: Mapping[str, Policy]) -> CustomPolicy:
    """The policy of a parsed point (``parse`` already refused what cannot be built)."""
    base = eras[point.base]
    knobs = {**base.knobs, **dict(point.changes)}
    chosen = resolve(knobs)
    # Named by its differences from the nearest era (its base wins a tie), which is how a
    # reader places it: "5.8-break-cow + fork_pinned=copy".
    near = nearest_eras(knobs, eras)
    nearest = base if base in near else near[0]
    diffs = differences(knobs, nearest)
    changed = " + ".join(f"{k}={v}" for k, v in diffs)
    story = " ".join(
        [f"The {base.id} era ({base.label}) with these knobs changed:"]
        + [f"{KNOBS[k].title}: {chosen[k].label} — {chosen[k].why}." for k, _ in point.changes]
    )
    namespace = {
        "id": point.id,
        "label": f"custom: {nearest.id} + {changed}"
        if diffs
        else f"custom: same knobs as {nearest.id}",
        "kernels": "custom point, no kernel",
        "commits": tuple(dict.fromkeys(c for k, _ in point.changes if (c := chosen[k].commit))),
        "story": story,
        "since": base.since,
        "until": base.until,
        "knobs": knobs,
        "point": point,
        "base": base,
    }
    cls: type[CustomPolicy] = type("CustomPolicy", (CustomPolicy,), namespace)
    return cls()


def differences(settings: Mapping[str, str], era: Policy) -> list[tuple[str, str]]:
    """The knobs where ``settings`` differs from ``era``, in `KNOBS` order."""
    return [(k, settings[k]) for k in KNOBS if settings[k] != era.knobs[k]]


def nearest_eras(settings: Mapping[str, str], eras: Mapping[str, Policy]) -> list[Policy]:
    """The eras with the fewest knobs changed from ``settings`` (ties in era order)."""
    distance = {e.id: len(differences(settings, e)) for e in eras.values()}
    best = min(distance.values())
    return [e for e in eras.values() if distance[e.id] == best]
