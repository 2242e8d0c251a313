"""The state of a step as text tables: the screen-reader twin of the diagram.

Every fact the picture shows (and marks) is here in words, from the same helpers in
`app.picture.labels`, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from app.picture.labels import (
    backing_words,
    folio_kind,
    frame_counters,
    frame_extras,
    frame_heading,
    huge_mapping_words,
    pte_flags,
    ref_detail,
    vma_flags,
)
from app.picture.layout import Focus
from app.picture.scene import RefMark
from engine.state import Frame, Proc, Pte, Ref, State, Vma


@dataclass(frozen=True, slots=True)
class PteRow:
    proc: str
    page: str
    maps: str  # "pfn 3", "swap slot 1", "not present"
    flags: str
    vma: str
    changed: bool


@dataclass(frozen=True, slots=True)
class FrameRow:
    pfn: int
    what: str
    value: str
    counters: str
    extras: str
    changed: bool


@dataclass(frozen=True, slots=True)
class RefRow:
    name: str
    holder: str
    detail: str
    pfn: int
    status: str
    changed: bool


@dataclass(frozen=True, slots=True)
class StateTable:
    ptes: tuple[PteRow, ...]
    frames: tuple[FrameRow, ...]
    refs: tuple[RefRow, ...]
    swap: tuple[str, ...]
    files: tuple[str, ...]
    note: str = ""  # for a large scenario: what the tables leave out, as the picture does


def _vma_words(vma: Vma | None) -> str:
    if vma is None:
        return "no VMA"
    kind = ["file " + vma.file if vma.file else "anonymous", "shared" if vma.shared else "private"]
    if vma.huge:
        kind.append(backing_words(vma))
    return ", ".join(kind + vma_flags(vma))


def _pte_row(
    proc: str, page: str, vma: Vma | None, pte: Pte | None, changed: bool, has_exclusive_bit: bool
) -> PteRow:
    if pte is None:
        maps = "not present"
    elif vma is not None and vma.huge:
        maps = huge_mapping_words(pte)
    elif pte.pfn is not None:
        maps = f"pfn {pte.pfn}"
    else:
        maps = f"swap slot {pte.swap_slot}"
    return PteRow(
        proc=proc,
        page=page,
        maps=maps,
        flags=", ".join(pte_flags(pte, vma, has_exclusive_bit)),
        vma=_vma_words(vma),
        changed=changed,
    )


def _frame_row(
    frame: Frame, changed: bool, has_exclusive_bit: bool, origin: tuple[int, str] | None = None
) -> FrameRow:
    what = frame_heading(frame)
    if frame.folio is not None:
        what = f"{folio_kind(frame)} folio · pfn {frame.pfn} · {frame.nr_pages} subpages"
        # The pin words a reader compares with a small page's (pins × 1024 in the refcount).
        what += " · pincount exact, +1 refcount a pin"
    elif origin is not None:
        what += f" · 4 KiB copied out of subpage #0 of {origin[1]} pfn {origin[0]}"
    return FrameRow(
        pfn=frame.pfn,
        what=what,
        value=frame.value.describe(),
        counters=frame_counters(frame),
        extras=", ".join(frame_extras(frame, has_exclusive_bit)),
        changed=changed,
    )


def ref_status(ref: Ref, state: State, mark: RefMark | None) -> str:
    """What the reference holds, in words: the page its owner maps only while the owner does."""
    if mark is not None:
        return f"{mark.kind}: {mark.label}"
    owner = state.procs.get(ref.owner)
    pte = owner.ptes.get(ref.page) if owner else None
    if owner is None:
        return f"holds pfn {ref.pfn}; its owner {ref.owner} has exited"
    if pte is not None and pte.swap_slot is not None:
        return f"holds pfn {ref.pfn}; {ref.owner}'s {ref.page} is in swap slot {pte.swap_slot}"
    if pte is None or pte.pfn is None:
        return f"holds pfn {ref.pfn}; its owner {ref.owner} no longer maps {ref.page}"
    return "holds the page its owner maps"


def _ref_row(ref: Ref, state: State, mark: RefMark | None, changed: bool) -> RefRow:
    return RefRow(
        name=ref.name,
        holder=ref.holder,
        detail=ref_detail(ref),
        pfn=ref.pfn,
        status=ref_status(ref, state, mark),
        changed=changed,
    )


def _rows(
    proc: Proc,
    before: Proc | None,
    has_exclusive_bit: bool,
    wanted: AbstractSet[str] | None = None,
) -> tuple[PteRow, ...]:
    """``proc``'s rows, changed where they differ from ``before`` (None: a new process)."""
    rows = []
    for page in dict.fromkeys([*proc.vmas, *proc.ptes]):
        if wanted is not None and page not in wanted:
            continue
        vma = proc.vmas.get(page)
        pte = proc.ptes.get(page)
        changed = before is None or (before.vmas.get(page), before.ptes.get(page)) != (vma, pte)
        rows.append(_pte_row(proc.name, page, vma, pte, changed, has_exclusive_bit))
    return tuple(rows)


def state_table(
    state: State,
    prev: State | None,
    has_exclusive_bit: bool,
    marks: Mapping[str, RefMark],
    focus: Focus | None = None,
    split_from: Mapping[int, tuple[int, str]] | None = None,
) -> StateTable:
    """The tables of ``state``; with ``focus``, the same part of it the picture draws.
    ``split_from``: small pages copied out of a large folio (`SceneOptions.split_from`)."""
    origins = split_from or {}
    ptes: list[PteRow] = []
    for proc in state.procs.values():
        if focus is not None and proc.name not in focus.pages:
            continue
        before = prev.procs.get(proc.name) if prev else None
        wanted = focus.pages[proc.name] if focus is not None else None
        ptes.extend(_rows(proc, before if prev else proc, has_exclusive_bit, wanted))
    frames = tuple(
        _frame_row(
            frame,
            prev is not None and prev.frames.get(frame.pfn) != frame,
            has_exclusive_bit,
            origins.get(frame.pfn),
        )
        for frame in state.frames.values()
        if focus is None or frame.pfn in focus.pfns
    )
    refs = tuple(
        _ref_row(
            ref, state, marks.get(ref.name), prev is not None and prev.refs.get(ref.name) != ref
        )
        for ref in state.refs.values()
        if focus is None or ref.name in focus.refs
    )
    swap = tuple(
        f"slot {s.slot}: {s.value.describe()}, swapcount {s.swapcount}"
        + (f", in swap cache as pfn {s.cache_pfn}" if s.cache_pfn is not None else "")
        for s in state.swap.values()
        if focus is None or s.slot in focus.slots
    )
    files = tuple(
        f"file {f.name}: {f.value.describe()}"
        + (f", page cache pfn {f.cache_pfn}" if f.cache_pfn is not None else ", not cached")
        for f in state.files.values()
        if focus is None or f.name in focus.files
    )
    return StateTable(tuple(ptes), frames, refs, swap, files, focus.note if focus else "")
