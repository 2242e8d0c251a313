"""Where everything goes: a fixed place for each thing the trace ever shows.

Three columns, left to right: processes with their page tables, physical frames (then swap
slots), and references (then files). The layout is computed once from *every* state of the
trace (`compute_layout`): each process, page, frame, swap slot, reference and file that ever
exists gets a fixed place, so pressing → never moves anything — things appear, change and
disappear in place. A trace too big to draw whole is drawn around its step's `Focus`.

A large folio (a huge page, DESIGN.md §10) takes the place of two frames, one above the other:
it shows its counters and its subpages (`FOLIO_H`). A scenario of base pages has none, and is
laid out exactly as before folios existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from app.picture.shapes import PROC_COLORS
from engine.events import Event
from engine.state import ZERO_PFN, State

T = TypeVar("T")

MARGIN = 16.0
TITLE_H = 34.0  # column headings
PROC_X = MARGIN
PROC_W = 380.0
PROC_HEAD_H = 44.0
ROW_H = 54.0
PROC_GAP = 22.0
ARROW_GAP = 150.0  # horizontal room for arrows between columns
FRAME_W = 300.0
FRAME_H = 112.0
FRAME_GAP = 18.0
FRAME_COL_GAP = 40.0
FOLIO_SLOTS = 2  # a large folio takes the place of this many frames
FOLIO_H = FOLIO_SLOTS * FRAME_H + (FOLIO_SLOTS - 1) * FRAME_GAP
SWAP_H = 70.0
REF_W = 320.0
REF_H = 112.0
REF_GAP = 18.0
FILE_H = 70.0
MIN_FRAMES_PER_COLUMN = 5


@dataclass(frozen=True, slots=True)
class ProcPlace:
    name: str
    color: str
    x: float
    y: float
    h: float
    rows: Mapping[str, float]  # page name -> top y of its row


@dataclass(frozen=True, slots=True)
class Layout:
    procs: Mapping[str, ProcPlace]
    frames: Mapping[int, tuple[float, float]]  # pfn -> top-left
    swap: Mapping[int, tuple[float, float]]
    refs: Mapping[str, tuple[float, float]]
    files: Mapping[str, tuple[float, float]]
    frame_x: float
    ref_x: float
    width: float
    height: float
    folios: frozenset[int] = frozenset()  # pfns drawn as large folios (FOLIO_H tall)

    def frame_h(self, pfn: int) -> float:
        return FOLIO_H if pfn in self.folios else FRAME_H


def _ordered_union(groups: Iterable[Iterable[str]]) -> list[str]:
    """Names in order of first appearance (dict keeps insertion order)."""
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))  # a key already present keeps its place
    return list(seen)


def _distinct(objects: Iterable[T]) -> list[T]:
    """Each object once, in order of first appearance, compared by identity.

    Consecutive states share every process, page table and frame table a step did not change,
    so a 1,000-step trace of 64 processes holds a few hundred distinct processes, not 64,000:
    walking each once keeps the layout linear in the scenario instead of steps × pages. (The
    states are all alive while this runs, so no two distinct objects share an ``id``.)
    """
    seen: set[int] = set()
    out = []
    for obj in objects:
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
    return out


# Beyond this, a picture of everything stops being readable (and costs megabytes): the picture
# then shows what the step touched, and says so.
MAX_DRAWN_ROWS = 40  # page-table rows, all processes together
MAX_DRAWN_FRAMES = 40
MAX_DRAWN_REFS = 16
MAX_FOCUS_PROCS = 6
MAX_FOCUS_PAGES = 8  # per process


@dataclass(frozen=True, slots=True)
class Focus:
    """The part of a large state one step is about: its processes, pages, frames, references."""

    pages: Mapping[str, frozenset[str]]  # process -> its pages to draw
    pfns: frozenset[int]
    refs: frozenset[str]
    slots: frozenset[int]
    files: frozenset[str]
    note: str  # what is left out, in words


def layout_fits(layout: Layout) -> bool:
    rows = sum(len(place.rows) for place in layout.procs.values())
    return (
        rows <= MAX_DRAWN_ROWS
        and len(layout.frames) <= MAX_DRAWN_FRAMES
        and len(layout.refs) <= MAX_DRAWN_REFS
    )


def focus_of(
    state: State, prev: State | None, events: Sequence[Event], subjects: Sequence[str]
) -> Focus:
    """What to draw of a large state: the processes and references the step names.

    ``subjects`` are the names the command itself names (its process, a fork's child, a
    reference); the events add what the kernel touched on the way (the other process of a
    COW, the frame copied from). Every frame a drawn page or reference maps is drawn, so each
    arrow has both of its ends.
    """
    procs: dict[str, set[str]] = {}
    refs: set[str] = set()
    pfns: set[int] = {ZERO_PFN}

    def add_proc(name: str | None, page: str | None = None) -> None:
        if name is None or (name not in state.procs and (prev is None or name not in prev.procs)):
            return
        if name not in procs and len(procs) >= MAX_FOCUS_PROCS:
            return
        pages = procs.setdefault(name, set())
        if page is not None and len(pages) < MAX_FOCUS_PAGES:
            pages.add(page)

    for name in subjects:
        if name in state.refs or (prev is not None and name in prev.refs):
            refs.add(name)
        else:
            add_proc(name)
    for event in events:
        add_proc(event.proc, event.page)
        if event.ref is not None:
            refs.add(event.ref)
        pfns.update(pfn for pfn in (event.pfn, event.new_pfn) if pfn is not None)
    for name in sorted(refs):
        ref = state.refs.get(name) or (prev.refs.get(name) if prev else None)
        if ref is not None:
            add_proc(ref.owner, ref.page)
            pfns.add(ref.pfn)
    slots: set[int] = set()
    files: set[str] = set()
    for name, pages in procs.items():
        if not pages:  # a process-wide command (fork, exit): show its first pages
            proc = state.procs.get(name) or (prev.procs.get(name) if prev else None)
            pages.update(list(proc.vmas)[:MAX_FOCUS_PAGES] if proc else ())
        for st in (state, prev):
            proc = st.procs.get(name) if st else None
            if proc is None:
                continue
            for page in pages:
                pte = proc.ptes.get(page)
                vma = proc.vmas.get(page)
                if pte is not None and pte.pfn is not None:
                    pfns.add(pte.pfn)
                if pte is not None and pte.swap_slot is not None:
                    slots.add(pte.swap_slot)
                if vma is not None and vma.file is not None:
                    files.add(vma.file)
    drawn_rows = sum(len(p) for p in procs.values())
    total_rows = sum(len(p.ptes) for p in state.procs.values())
    note = (
        f"Large scenario: the picture shows what this step touched — {len(procs)} of "
        f"{len(state.procs)} processes, {drawn_rows} of {total_rows} mapped pages, "
        f"{len(pfns & set(state.frames))} of {len(state.frames)} frames."
    )
    return Focus(
        pages={name: frozenset(pages) for name, pages in procs.items()},
        pfns=frozenset(pfns),
        refs=frozenset(refs),
        slots=frozenset(slots),
        files=frozenset(files),
        note=note,
    )


def _folio_pfns(states: Sequence[State], pfns: Sequence[int], focus: bool) -> frozenset[int]:
    """The pfns that are a large folio in some state of ``states``.

    A folio is born large (a huge-page fault or a copy of one) and pfns are never reused, so
    each pfn is looked at in the state that allocated it (the pfns from one state's
    ``next_pfn`` to the next's): linear in the frames the trace allocated, not steps × frames.
    A focused layout (two states of a large trace) looks at its few frames in both states.
    """
    found: set[int] = set()
    if focus:
        for state in states:
            found.update(p for p in pfns if (f := state.frames.get(p)) and f.folio is not None)
        return frozenset(found)
    start = 0
    for state in states:
        for pfn in range(start, state.next_pfn):
            frame = state.frames.get(pfn)
            if frame is not None and frame.folio is not None:
                found.add(pfn)
        start = max(start, state.next_pfn)
    return frozenset(found)


def compute_layout(states: Sequence[State], focus: Focus | None = None) -> Layout:
    """Places for every process, page, frame, slot, reference and file in ``states``.

    With ``focus``, only what it names gets a place (`focus_of`: a large scenario's picture
    shows what one step touched).
    """
    proc_names = _ordered_union(_distinct(s.procs for s in states))
    pages: dict[str, list[str]] = {
        name: _ordered_union(
            _distinct(
                table
                for proc in _distinct(s.procs[name] for s in states if name in s.procs)
                for table in (proc.vmas, proc.ptes)
            )
        )
        for name in proc_names
    }
    pfns = sorted({pfn for frames in _distinct(s.frames for s in states) for pfn in frames})
    slots = sorted({slot for swap in _distinct(s.swap for s in states) for slot in swap})
    ref_names = _ordered_union(_distinct(s.refs for s in states))
    file_names = _ordered_union(_distinct(s.files for s in states))
    if focus is not None:
        proc_names = [name for name in proc_names if name in focus.pages]
        pages = {name: [p for p in pages[name] if p in focus.pages[name]] for name in proc_names}
        pfns = [pfn for pfn in pfns if pfn in focus.pfns]
        slots = [slot for slot in slots if slot in focus.slots]
        ref_names = [name for name in ref_names if name in focus.refs]
        file_names = [name for name in file_names if name in focus.files]

    top = MARGIN + TITLE_H
    procs: dict[str, ProcPlace] = {}
    y = top
    for i, name in enumerate(proc_names):
        rows = {page: y + PROC_HEAD_H + j * ROW_H for j, page in enumerate(pages[name])}
        h = PROC_HEAD_H + max(1, len(rows)) * ROW_H + 6
        procs[name] = ProcPlace(name, PROC_COLORS[i % len(PROC_COLORS)], PROC_X, y, h, rows)
        y += h + PROC_GAP
    procs_bottom = y

    # Frames fill columns top to bottom; a column is as tall as the process column (at least
    # MIN_FRAMES_PER_COLUMN frames), so a scenario with many copies grows sideways and the
    # picture keeps a projector-friendly shape instead of becoming a long strip.
    frame_x = PROC_X + PROC_W + ARROW_GAP
    pitch = FRAME_H + FRAME_GAP
    per_column = max(MIN_FRAMES_PER_COLUMN, int((procs_bottom - top) // pitch))
    folios = _folio_pfns(states, pfns, focus is not None)
    frames: dict[int, tuple[float, float]] = {}
    column, row, rows_used = 0, 0, 0
    for pfn in pfns:
        size = FOLIO_SLOTS if pfn in folios else 1
        if row + size > per_column and row > 0:  # a folio never straddles two columns
            column, row = column + 1, 0
        frames[pfn] = (frame_x + column * (FRAME_W + FRAME_COL_GAP), top + row * pitch)
        row += size
        rows_used = max(rows_used, row)
    columns = column + 1
    frames_bottom = top + rows_used * pitch
    swap: dict[int, tuple[float, float]] = {}
    y = frames_bottom
    for slot in slots:
        swap[slot] = (frame_x, y)
        y += SWAP_H + FRAME_GAP
    frames_bottom = y
    frames_right = frame_x + columns * FRAME_W + (columns - 1) * FRAME_COL_GAP

    ref_x = frames_right + ARROW_GAP
    refs: dict[str, tuple[float, float]] = {}
    y = top
    for name in ref_names:
        refs[name] = (ref_x, y)
        y += REF_H + REF_GAP
    files: dict[str, tuple[float, float]] = {}
    for name in file_names:
        files[name] = (ref_x, y)
        y += FILE_H + REF_GAP
    refs_bottom = y

    right = ref_x + REF_W if (refs or files) else frames_right
    bottom = max(procs_bottom, frames_bottom, refs_bottom, top + pitch)
    return Layout(
        procs=procs,
        frames=frames,
        swap=swap,
        refs=refs,
        files=files,
        frame_x=frame_x,
        ref_x=ref_x,
        width=right + MARGIN,
        height=bottom + MARGIN,
        folios=folios,
    )
