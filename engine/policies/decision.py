"""What a policy answers the machine: a `Decision`, and the small helpers every rule uses.

Split from `base.py` so that the knob choices (`engine.policies.knobs`) and the policy base can
both build decisions without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from engine.state import Frame

Outcome = Literal[
    "reuse", "copy", "share", "unshare", "allow", "refuse", "fault", "skip", "none", "split"
]
KernelVersion = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    rule: str
    kernel: str
    commit: str
    why: str
    inputs: Mapping[str, int | bool | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GupRequest:
    """The FOLL_* flags of one get_user_pages call, as the policy sees them."""

    pin: bool  # FOLL_PIN (else FOLL_GET)
    write: bool  # FOLL_WRITE
    longterm: bool = False  # FOLL_LONGTERM
    fast: bool = False  # pin_user_pages_fast / get_user_pages_fast
    force: bool = False  # FOLL_FORCE (/proc/PID/mem)
    wrong_side_ok: bool = False  # the seed's READ_WRONG_SIDE_COW_OK opt-out


def counts(frame: Frame) -> dict[str, int | bool | str]:
    """The counters a decision read. A large folio adds its own: the PMD mappings (entire
    mapcount), page_mapcount() of subpage 0 (the one reads and writes touch) and of the other
    subpages, their PageAnonExclusive bits, and the exact _pincount (``pins``)."""
    found: dict[str, int | bool | str] = {
        "refcount": frame.refcount,
        "mapcount": frame.mapcount,
        "pins": frame.pins,
        "gets": frame.gets,
        "swapcache": frame.swapcache,
        "anon_exclusive": frame.anon_exclusive,
    }
    if frame.folio is not None:
        found |= {
            "folio": frame.folio.kind,
            "nr_pages": frame.nr_pages,
            "entire_mapcount": frame.folio.entire_mapcount,
            "subpage0_mapcount": frame.subpage_mapcount(0),
            "rest_mapcount": frame.subpage_mapcount(1),
            "subpage0_exclusive": frame.subpage_anon_exclusive(0),
            "rest_exclusive": frame.subpage_anon_exclusive(1),
            "pincount": frame.pins,
        }
    return found


def holders(frame: Frame) -> str:
    if frame.folio is not None:
        return _folio_holders(frame)
    parts = [f"{frame.mapcount} mapping(s)"] if frame.mapcount else []
    if frame.pins:
        parts.append(f"{frame.pins} pin(s) × 1024")
    if frame.gets:
        parts.append(f"{frame.gets} GUP/pipe reference(s)")
    if frame.swapcache:
        parts.append("the swap cache")
    if frame.file is not None:
        parts.append("the page cache")
    return " + ".join(parts) if parts else "no holders"


def _folio_holders(frame: Frame) -> str:
    assert frame.folio is not None
    parts = []
    if frame.folio.entire_mapcount:
        parts.append(f"{frame.folio.entire_mapcount} PMD mapping(s)")
    if frame.mapcount:
        parts.append(f"{frame.mapcount} subpage PTE mapping(s)")
    if frame.pins:
        parts.append(f"{frame.pins} pin(s) (exact _pincount, +1 each)")
    if frame.gets:
        parts.append(f"{frame.gets} GUP/pipe reference(s)")
    if frame.swapcache:
        parts.append(f"the swap cache ({frame.nr_pages})")
    return " + ".join(parts) if parts else "no holders"


NOTHING = Decision("none", "", "", "", "")
