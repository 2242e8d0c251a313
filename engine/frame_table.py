"""The physical frames of one step: a mapping pfn → `Frame` that shares its unchanged parts with
the step before.

A step that touches one frame used to copy the whole frame table; at the limits (64 processes
each forking copies of pinned pages) that is ~4,000 frames copied at each of 1,000 steps, three
million entries for one run — larger than the run memo keeps, so every route replayed it again.
Here the frames live in buckets of `BUCKET` consecutive pfns; a step copies the (short) tuple of
buckets and only the buckets it writes, so its cost and its memory follow what it changes. A
small table (at most `SMALL` frames, every lesson and preset) stays a plain dict, copied whole:
`working_copy` and `frozen` choose, so a state's frames are a dict or a `FrameTable`, both a
``Mapping[int, Frame]`` with the same contents in the same order.

Iteration is in ascending pfn order, which is also the order a plain dict had: pfns are
allocated in increasing order (``State.next_pfn``) and never reused. A `FrameTable` is never
changed once built; `FrameTableBuilder` is the working copy a step writes to.

Persistent maps on PyPI were measured (docs/benchmarks.md): `immutables.Map` (a HAMT in C)
reads and writes faster but iterates in hash order, not pfn order, which every consumer of
``frames.values()`` would show, and hides which nodes two steps share, which the run memo's
weight needs; `pyrsistent.PMap` reads four times slower than this. Frames are dense small
integers, which a list of buckets suits exactly.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import TYPE_CHECKING, TypeVar, overload

if TYPE_CHECKING:
    from engine.state import Frame

T = TypeVar("T")

SHIFT = 6
BUCKET = 1 << SHIFT  # pfns per bucket
# A table of at most this many frames stays a plain dict: copying a few hundred entries in C
# costs less than the buckets' bookkeeping in Python (a 30-command replay measured 15% slower
# with buckets from its first frame), and only a table this large makes a step's copy costly.
SMALL = 4 * BUCKET
_EMPTY: dict[int, Frame] = {}  # the bucket of a range with no frame; never written to


class _Items(ItemsView[int, "Frame"]):
    _mapping: FrameTable

    def __iter__(self) -> Iterator[tuple[int, Frame]]:
        for bucket in self._mapping.buckets:
            yield from bucket.items()


class _Values(ValuesView["Frame"]):
    _mapping: FrameTable

    def __iter__(self) -> Iterator[Frame]:
        for bucket in self._mapping.buckets:
            yield from bucket.values()


class FrameTable(Mapping[int, "Frame"]):
    """An immutable pfn → Frame mapping made of buckets that tables of later steps share."""

    __slots__ = ("buckets", "_len")

    def __init__(self, buckets: tuple[dict[int, Frame], ...] = (), length: int = 0) -> None:
        self.buckets = buckets
        self._len = length

    @classmethod
    def of(cls, frames: Mapping[int, Frame]) -> FrameTable:
        """The table of any mapping (a test or a tool may build a state with a dict)."""
        if isinstance(frames, FrameTable):
            return frames
        builder = FrameTableBuilder(cls())
        for pfn in sorted(frames):
            builder[pfn] = frames[pfn]
        return builder.freeze()

    def __getitem__(self, pfn: int) -> Frame:
        # One indexing; the checks only on a miss (a negative pfn indexes the last bucket,
        # which does not hold it either).
        try:
            return self.buckets[pfn >> SHIFT][pfn]
        except (IndexError, TypeError):
            raise KeyError(pfn) from None

    @overload
    def get(self, pfn: int, /) -> Frame | None: ...
    @overload
    def get(self, pfn: int, /, default: Frame | T) -> Frame | T: ...
    def get(self, pfn: int, /, default: object = None) -> object:
        try:
            return self.buckets[pfn >> SHIFT].get(pfn, default)
        except (IndexError, TypeError):
            return default

    def __contains__(self, pfn: object) -> bool:
        if not isinstance(pfn, int) or pfn < 0 or (pfn >> SHIFT) >= len(self.buckets):
            return False
        return pfn in self.buckets[pfn >> SHIFT]

    def __iter__(self) -> Iterator[int]:
        for bucket in self.buckets:
            yield from bucket

    def __len__(self) -> int:
        return self._len

    def items(self) -> ItemsView[int, Frame]:
        return _Items(self)

    def values(self) -> ValuesView[Frame]:
        return _Values(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrameTable) and other.buckets == self.buckets:
            return True
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # like the dict it stands for

    def __repr__(self) -> str:
        return f"FrameTable({dict(self.items())!r})"

    def changed_since(self, before: FrameTable) -> tuple[list[Frame], list[int]]:
        """(frames new or different from ``before``'s, pfns ``before`` had and this lacks),
        looking only into the buckets the two tables do not share."""
        changed: list[Frame] = []
        gone: list[int] = []
        old_buckets = before.buckets
        for index, bucket in enumerate(self.buckets):
            old = old_buckets[index] if index < len(old_buckets) else _EMPTY
            if old is bucket:
                continue
            for pfn, frame in bucket.items():
                was = old.get(pfn)
                if was is not frame and was != frame:
                    changed.append(frame)
            gone.extend(pfn for pfn in old if pfn not in bucket)
        for old in old_buckets[len(self.buckets) :]:
            gone.extend(old)
        return changed, gone


class FrameTableBuilder(MutableMapping[int, "Frame"]):
    """One step's working copy of a `FrameTable`: a bucket is copied on its first write."""

    __slots__ = ("buckets", "_owned", "_len")

    def __init__(self, table: FrameTable) -> None:
        self.buckets = list(table.buckets)
        self._owned: set[int] = set()
        self._len = len(table)

    def _bucket(self, pfn: int) -> dict[int, Frame]:
        index = pfn >> SHIFT
        if index not in self._owned:
            if index >= len(self.buckets):
                self.buckets.extend(_EMPTY for _ in range(index + 1 - len(self.buckets)))
            self.buckets[index] = dict(self.buckets[index])
            self._owned.add(index)
        return self.buckets[index]

    def __getitem__(self, pfn: int) -> Frame:
        # One indexing; the checks only on a miss (a negative pfn indexes the last bucket,
        # which does not hold it either).
        try:
            return self.buckets[pfn >> SHIFT][pfn]
        except (IndexError, TypeError):
            raise KeyError(pfn) from None

    @overload
    def get(self, pfn: int, /) -> Frame | None: ...
    @overload
    def get(self, pfn: int, /, default: Frame | T) -> Frame | T: ...
    def get(self, pfn: int, /, default: object = None) -> object:
        try:
            return self.buckets[pfn >> SHIFT].get(pfn, default)
        except (IndexError, TypeError):
            return default

    def __contains__(self, pfn: object) -> bool:
        if not isinstance(pfn, int) or pfn < 0 or (pfn >> SHIFT) >= len(self.buckets):
            return False
        return pfn in self.buckets[pfn >> SHIFT]

    def __iter__(self) -> Iterator[int]:
        for bucket in self.buckets:
            yield from bucket

    def __setitem__(self, pfn: int, frame: Frame) -> None:
        if pfn < 0:
            raise KeyError(pfn)
        index = pfn >> SHIFT
        bucket = self.buckets[index] if index in self._owned else self._bucket(pfn)
        if pfn not in bucket:
            self._len += 1
        bucket[pfn] = frame

    def __delitem__(self, pfn: int) -> None:
        if pfn not in self:
            raise KeyError(pfn)
        del self._bucket(pfn)[pfn]
        self._len -= 1

    def __len__(self) -> int:
        return self._len

    def freeze(self) -> FrameTable:
        # Trailing empty buckets are dropped so that equal tables have equal bucket tuples.
        buckets = self.buckets
        end = len(buckets)
        while end and not buckets[end - 1]:
            end -= 1
        return FrameTable(tuple(buckets[:end]), self._len)


def working_copy(
    frames: Mapping[int, Frame], small: int = SMALL
) -> dict[int, Frame] | FrameTableBuilder:
    """A step's writable copy of ``frames``: a dict while the table is small, else buckets."""
    if isinstance(frames, FrameTable):
        return FrameTableBuilder(frames)
    if len(frames) > small:
        return FrameTableBuilder(FrameTable.of(frames))
    return dict(frames)


def frozen(
    working: dict[int, Frame] | FrameTableBuilder, small: int = SMALL
) -> Mapping[int, Frame]:
    """The table a step leaves: a dict that outgrew ``small`` becomes buckets (once)."""
    if isinstance(working, FrameTableBuilder):
        return working.freeze()
    if len(working) > small:
        return FrameTable.of(working)
    return working
