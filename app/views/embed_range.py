"""A step range for `/embed` (``from`` and ``to``): a course page shows the steps of one idea.

The embed steps only inside the range; its links keep the range, so the reader of a slide
cannot wander past the point the author wanted to make. A range that does not read (not a
number, reversed, beyond the end) is clamped to the scenario rather than refused: an embed in
someone else's page must not break because the scenario behind it was shortened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.views.sim import StepNav


@dataclass(frozen=True, slots=True)
class StepRange:
    lo: int
    hi: int

    @classmethod
    def read(cls, lo: str | None, hi: str | None, last: int) -> StepRange:
        start = _number(lo, 0, last)
        end = _number(hi, last, last)
        return cls(start, end) if start <= end else cls(end, start)

    def clamp(self, k: int) -> int:
        return min(max(k, self.lo), self.hi)

    def suffix(self, last: int) -> str:
        """What each link of a ranged embed appends (nothing for the whole scenario)."""
        parts = []
        if self.lo > 0:
            parts.append(f"&from={self.lo}")
        if self.hi < last:
            parts.append(f"&to={self.hi}")
        return "".join(parts)

    def nav(self, k: int, link: Callable[[int], str]) -> StepNav:
        return StepNav(
            index=k,
            last=self.hi,
            first=link(self.lo) if k > self.lo else None,
            prev=link(k - 1) if k > self.lo else None,
            next=link(k + 1) if k < self.hi else None,
            end=link(self.hi) if k < self.hi else None,
        )


def _number(raw: str | None, default: int, last: int) -> int:
    if raw is None or not raw.isdecimal() or len(raw) > 7:
        return default
    return min(int(raw), last)
