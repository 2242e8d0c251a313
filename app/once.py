"""Markup drawn (and values computed) once per immutable object, however many responses show it.

Stepping through a run redraws mostly the same things: the timeline's entries are the run's
(`Run.derive` keeps them), and a frame, page-table row or reference that a step did not change
is the same box as at the step before (`app.diagram` builds those from memoised functions, so
an unchanged box is the very same object). Drawing each such object once saves the bulk of a
step's rendering.

Objects are looked up by identity, which costs nothing, unlike hashing a tree of dataclasses.
An entry keeps its object alive, so no other object can take its ``id`` while the entry
exists: an entry found by ``id`` is the object's own. When full, the memo starts again empty:
the objects in use are drawn again once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from markupsafe import Markup

T = TypeVar("T")
V = TypeVar("V")

DEFAULT_LIMIT = 4096


class DrawnOnce(Generic[T]):
    __slots__ = ("_by_id", "_draw", "limit")

    def __init__(self, draw: Callable[[T], str], limit: int = DEFAULT_LIMIT) -> None:
        self._draw = draw
        self._by_id: dict[int, tuple[T, Markup]] = {}
        self.limit = limit

    def __call__(self, obj: T) -> Markup:
        found = self._by_id.get(id(obj))
        if found is not None:
            return found[1]
        markup = Markup(self._draw(obj))
        if len(self._by_id) >= self.limit:
            self._by_id.clear()
        self._by_id[id(obj)] = (obj, markup)
        return markup

    def join(self, objs: Sequence[T], separator: str = "") -> str:
        """The markup of each of ``objs``, joined: one call for a list (this is the hot loop of a
        step's rendering, where a call per object costs more than its lookup)."""
        by_id = self._by_id
        try:
            return separator.join([by_id[key][1] for key in map(id, objs)])
        except KeyError:  # something not drawn yet
            return separator.join([self(obj) for obj in objs])

    def __len__(self) -> int:
        return len(self._by_id)

    def clear(self) -> None:
        self._by_id.clear()


K = TypeVar("K", bound=Hashable)


class Recalled(Generic[T, K, V]):
    """Values computed from an immutable object and a small hashable key, recalled by the
    object's identity: the engine hands out the very same record for what a step did not
    change, so what was computed from it at one step serves the next ones."""

    __slots__ = ("_by_key", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._by_key: dict[tuple[int, K], tuple[T, V]] = {}
        self.limit = limit

    def get(self, obj: T, key: K, compute: Callable[[T, K], V]) -> V:
        """``compute(obj, key)``, or what it returned before for this object and key."""
        found = self._by_key.get((id(obj), key))
        if found is not None:
            return found[1]
        value = compute(obj, key)
        if len(self._by_key) >= self.limit:
            self._by_key.clear()
        self._by_key[id(obj), key] = (obj, value)
        return value

    def __len__(self) -> int:
        return len(self._by_key)
