"""The diagram of one step, as geometry: Python decides every position, templates only draw.

Three columns, left to right: processes with their page tables, physical frames (then swap
slots), and references (then files). Arrows go from a page-table entry to the frame it maps and
from a reference to the frame it holds.

The layout is computed once from *every* state of the trace (`compute_layout`): each process,
page, frame, swap slot, reference and file that ever exists gets a fixed place, so pressing →
never moves anything — things appear, change and disappear in place. A step's picture
(`build_scene`) then fills those places with the step's state and marks what changed since the
previous step (a yellow wash *and* a "Δ" badge, never colour alone). A stale or leaking reference
is dashed and labelled in words. Colours are the Okabe–Ito palette, which stays distinguishable
under the common colour-vision deficiencies.

The output is a tree of plain frozen dataclasses (`Scene` → `Group` → items) styled by SVG
presentation attributes rather than CSS, so the same markup is correct inline under a strict CSP
and as a stand-alone ``.svg`` download.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from engine.events import Event
from engine.state import ZERO_PFN, File, Frame, Proc, Pte, Ref, State, SwapSlot, Vma

T = TypeVar("T")

# Okabe & Ito (2008), "Color Universal Design": safe for protanopia, deuteranopia, tritanopia.
BLACK = "#000000"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#767676"  # 4.5:1 on white: still readable text for "ghost" items
VERM_TEXT = "#9E3F00"  # vermillion darkened to 7:1 for text; the pure hue is for strokes
PROC_COLORS = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION)

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
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
SWAP_H = 70.0
REF_W = 320.0
REF_H = 112.0
REF_GAP = 18.0
FILE_H = 70.0
MIN_FRAMES_PER_COLUMN = 5
VALUE_CHARS = 16  # longer values are cut with "…"; the full value is in the tooltip and table


# ---------------------------------------------------------------------------------------------
# Drawing primitives


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str = "#FFFFFF"
    stroke: str = BLACK
    stroke_width: float = 2.0
    dash: str = ""
    rx: float = 6.0
    opacity: float = 1.0
    kind: Literal["rect"] = "rect"


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 16.0
    weight: str = "normal"
    anchor: Literal["start", "middle", "end"] = "start"
    fill: str = BLACK
    kind: Literal["text"] = "text"
    # What the text says, for CSS: presentation mode enlarges the deciding counters and the
    # reference labels beyond what the boxes' natural size holds.
    cls: str = ""


@dataclass(frozen=True, slots=True)
class Path:
    d: str
    stroke: str = BLACK
    width: float = 3.0
    dash: str = ""
    kind: Literal["path"] = "path"


@dataclass(frozen=True, slots=True)
class Poly:
    points: str
    fill: str = BLACK
    kind: Literal["poly"] = "poly"


Item = Rect | Text | Path | Poly


@dataclass(frozen=True, slots=True)
class Group:
    """One thing in the picture (a frame, a page-table row, an arrow …) with its tooltip.

    ``cls`` is a space-separated class list that names what it is and its condition
    (``ref stale``, ``frame changed``); tests and CSS select on it, colour never carries it alone.
    """

    cls: str
    title: str
    items: tuple[Item, ...]
    key: str = ""


@dataclass(frozen=True, slots=True)
class Scene:
    width: float
    height: float
    title: str
    desc: str
    groups: tuple[Group, ...]
    font: str = FONT


# ---------------------------------------------------------------------------------------------
# Layout: fixed places for everything the trace ever shows


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
    frames: dict[int, tuple[float, float]] = {}
    for i, pfn in enumerate(pfns):
        column, row = divmod(i, per_column)
        frames[pfn] = (frame_x + column * (FRAME_W + FRAME_COL_GAP), top + row * pitch)
    columns = max(1, -(-len(pfns) // per_column))
    frames_bottom = top + min(len(pfns), per_column) * pitch
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
    )


# ---------------------------------------------------------------------------------------------
# One step's picture


@dataclass(frozen=True, slots=True)
class RefMark:
    """Why a reference is drawn as broken: ``stale`` or ``leaking``, and a short label."""

    kind: Literal["stale", "leaking", "at-risk"]
    label: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What the kernel decided about a frame at this step, drawn as a tab on its top edge:
    ``COPY``, ``REUSE``, ``UNSHARE``; ``at_risk`` names who still holds a reused page."""

    word: str
    at_risk: str = ""


@dataclass(frozen=True, slots=True)
class SceneOptions:
    has_exclusive_bit: bool
    ref_marks: Mapping[str, RefMark] = field(default_factory=dict)
    # Verdicts about a process (a read that saw what it must not): shown in its header.
    proc_notes: Mapping[str, str] = field(default_factory=dict)
    title: str = "cowlab diagram"
    decisions: Mapping[int, Decision] = field(default_factory=dict)


def short(value: str, limit: int = VALUE_CHARS) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _arrow(x1: float, y1: float, x2: float, y2: float) -> tuple[str, str]:
    """A horizontal-ended cubic from (x1, y1) to (x2, y2) and its arrowhead's points."""
    dx = (x2 - x1) / 2
    d = f"M{x1:.1f} {y1:.1f} C{x1 + dx:.1f} {y1:.1f} {x2 - dx:.1f} {y2:.1f} {x2:.1f} {y2:.1f}"
    back = -11.0 if x2 > x1 else 11.0
    head = f"{x2:.1f},{y2:.1f} {x2 + back:.1f},{y2 - 7:.1f} {x2 + back:.1f},{y2 + 7:.1f}"
    return d, head


def _changed_wash(x: float, y: float, width: float, height: float) -> Rect:
    """The yellow wash inside a changed box (the "Δ" badge says the same without colour)."""
    return Rect(
        x + 3,
        y + 3,
        width - 6,
        height - 6,
        fill=YELLOW,
        stroke="none",
        stroke_width=0,
        opacity=0.45,
    )


def _changed_badge(x: float, y: float) -> tuple[Item, ...]:
    """The "Δ" badge in a box's top-right corner (x, y), so a change is not told by colour."""
    return (
        Rect(x - 30, y + 4, 26, 24, fill=BLACK, stroke=BLACK, stroke_width=1, rx=4),
        Text(x - 17, y + 22, "Δ", size=17, weight="bold", anchor="middle", fill="#FFFFFF"),
    )


def vma_flags(vma: Vma) -> list[str]:
    """The VMA's flags in words, as both the picture and the table print them."""
    flags: list[str] = []
    if not vma.write:
        flags.append("read-only VMA")
    if vma.dontcopy:
        flags.append("dontfork")
    if vma.uffd_wp:
        flags.append("uffd-wp armed")
    if vma.softdirty_tracking:
        flags.append("sd tracking")
    return flags


def _vma_note(vma: Vma | None) -> str:
    if vma is None:
        return "no VMA"
    notes: list[str] = []
    if vma.file is not None:
        notes.append(f"file {vma.file}" + (" shared" if vma.shared else ""))
    return " · ".join(notes + vma_flags(vma))


def pte_flags(pte: Pte | None, vma: Vma | None, has_exclusive_bit: bool) -> list[str]:
    """The PTE's flags in words, as both the picture and the table print them."""
    if pte is None:
        return ["not present"]
    flags: list[str] = []
    if pte.present:
        flags.append("RW" if pte.writable else "RO")
        if pte.dirty:
            flags.append("dirty")
    else:
        flags.append(f"swap #{pte.swap_slot}")
        if has_exclusive_bit and pte.swap_exclusive:
            flags.append("exclusive")
    # Soft-dirty is set on every new PTE; it only means something once clear_refs armed it.
    if vma is not None and vma.softdirty_tracking:
        flags.append("soft-dirty" if pte.softdirty else "sd clean")
    if pte.uffd_wp:
        flags.append("uffd-wp")
    return flags


def frame_heading(frame: Frame) -> str:
    if frame.kind == "zero":
        return "ZERO PAGE · pfn 0"
    if frame.kind == "pagecache":
        return f"page cache {frame.file or ''} · pfn {frame.pfn}".replace("  ", " ")
    return f"anon · pfn {frame.pfn}"


def frame_counters(frame: Frame) -> str:
    if frame.kind == "zero":
        return "shared by all, never freed"
    return f"refcount {frame.refcount} · mapcount {frame.mapcount}"


def frame_extras(frame: Frame, has_exclusive_bit: bool) -> list[str]:
    extras: list[str] = []
    if frame.pins:
        extras.append(f"pins {frame.pins}")
    if frame.gets:
        extras.append(f"gets {frame.gets}")
    if frame.swapcache:
        extras.append("swapcache")
    if has_exclusive_bit and frame.kind == "anon":
        extras.append("exclusive ✓" if frame.anon_exclusive else "exclusive ✗")
    return extras


def ref_heading(ref: Ref) -> str:
    return f"{ref.holder} {ref.name}"


def ref_detail(ref: Ref) -> str:
    return f"{'|'.join(ref.foll)} · {ref.owner}:{ref.page}"


def ref_flags_short(ref: Ref) -> str:
    """``FOLL_PIN|WRITE|LONGTERM``: the flags as a kernel reader writes them, fitting a box."""
    return "FOLL_" + "|".join(flag.removeprefix("FOLL_") for flag in ref.foll)


def _proc_groups(
    place: ProcPlace,
    proc: Proc | None,
    prev: Proc | None,
    existed_before: bool,
    has_exclusive_bit: bool,
    layout: Layout,
    offsets: Mapping[tuple[str, str], float],
    note: str = "",
) -> tuple[list[Group], list[Group]]:
    """Boxes and arrows of one process: (boxes, arrows); ``note`` flags a verdict about it.

    ``offsets`` (from `_spread`) places each mapping's arrowhead at its frame.
    """
    x, y = place.x, place.y
    if proc is None:
        return ([_proc_gone(place.name, x, y)] if existed_before else []), []
    boxes = [
        _proc_head(
            proc.name, proc.parent, proc.has_pinned, note, prev is None, place.color, x, y, place.h
        )
    ]
    arrows: list[Group] = []
    for page, row_y in place.rows.items():
        vma = proc.vmas.get(page)
        pte = proc.ptes.get(page)
        prev_vma = prev.vmas.get(page) if prev else None
        prev_pte = prev.ptes.get(page) if prev else None
        changed = (vma, pte) != (prev_vma, prev_pte)
        was_mapped = prev_vma is not None or prev_pte is not None
        boxes.append(
            _pte_row(proc.name, page, x, row_y, vma, pte, changed, was_mapped, has_exclusive_bit)
        )
        if pte is None:
            continue
        # The arrow starts at the box edge and ends where the target is drawn.
        start_x, start_y = x + PROC_W, row_y + ROW_H / 2
        if pte.pfn is not None and pte.pfn in layout.frames:
            fx, fy = layout.frames[pte.pfn]
            end_y = fy + FRAME_H / 2 + offsets.get((proc.name, page), 0.0)
            arrows.append(
                _map_arrow(
                    proc.name, page, pte.pfn, pte.writable, place.color, start_x, start_y, fx, end_y
                )
            )
        elif pte.swap_slot is not None and pte.swap_slot in layout.swap:
            sx, sy = layout.swap[pte.swap_slot]
            arrows.append(
                _swap_arrow(
                    proc.name,
                    page,
                    pte.swap_slot,
                    place.color,
                    start_x,
                    start_y,
                    sx,
                    sy + SWAP_H / 2,
                )
            )
    return boxes, arrows


def _proc_gone(name: str, x: float, y: float) -> Group:
    return Group(
        "proc gone",
        f"process {name} has exited",
        (
            Rect(x, y, PROC_W, PROC_HEAD_H, fill="#FFFFFF", stroke=GREY, dash="4 4"),
            Text(x + 12, y + 29, f"{name} (exited)", size=18, fill=GREY),
        ),
        key=f"proc:{name}",
    )


def _proc_head(
    name: str,
    parent: str | None,
    has_pinned: bool,
    note: str,
    is_new: bool,
    color: str,
    x: float,
    y: float,
    height: float,
) -> Group:
    w = PROC_W
    sub = f"child of {parent}" if parent else "process"
    if has_pinned:
        sub += " · has pinned"
    if note:
        sub = f"⚠ {note}"
    # The process colour is the box outline and its arrows; the name strip is black because
    # white text on the palette's lighter colours (orange, sky) would fail contrast.
    head: list[Item] = [
        Rect(x, y, w, height, fill="#FFFFFF", stroke=color, stroke_width=5),
        Rect(x, y, w, PROC_HEAD_H, fill=BLACK, stroke=color, stroke_width=5),
        Text(x + 12, y + 30, name, size=22, weight="bold", fill="#FFFFFF"),
        Text(x + w - 12, y + 28, sub, size=16, anchor="end", fill="#FFFFFF"),
    ]
    if is_new:
        head.extend(_changed_badge(x + w - 150, y))
    return Group(
        "proc" + (" changed" if is_new else "") + (" noted" if note else ""),
        f"process {name}"
        + (f", child of {parent}" if parent else "")
        + (f" — {note}" if note else ""),
        tuple(head),
        key=f"proc:{name}",
    )


def _pte_row(
    proc: str,
    page: str,
    x: float,
    row_y: float,
    vma: Vma | None,
    pte: Pte | None,
    changed: bool,
    was_mapped: bool,
    has_exclusive_bit: bool,
) -> Group:
    w = PROC_W
    key = f"pte:{proc}:{page}"
    if vma is None and pte is None:
        if was_mapped:
            return Group(
                "pte gone changed",
                f"{proc}:{page} was unmapped at this step",
                (
                    Rect(
                        x + 6,
                        row_y + 3,
                        w - 12,
                        ROW_H - 6,
                        fill=YELLOW,
                        stroke=GREY,
                        stroke_width=1.5,
                        dash="4 4",
                        opacity=0.5,
                    ),
                    Text(x + 16, row_y + 33, f"{page}: unmapped", size=17, fill=BLACK),
                    *_changed_badge(x + w - 6, row_y),
                ),
                key=key,
            )
        # Keep the reserved row legible: the page exists at other steps of the trace.
        return Group(
            "pte absent",
            f"{proc}:{page} is not mapped at this step",
            (Text(x + 16, row_y + 33, f"{page}: not mapped", size=16, fill=GREY),),
            key=key,
        )
    flags = pte_flags(pte, vma, has_exclusive_bit)
    items: list[Item] = []
    if changed:
        items.append(
            Rect(
                x + 6,
                row_y + 3,
                w - 12,
                ROW_H - 6,
                fill=YELLOW,
                stroke=BLACK,
                stroke_width=1,
                opacity=0.55,
            )
        )
    else:
        items.append(
            Rect(
                x + 6,
                row_y + 3,
                w - 12,
                ROW_H - 6,
                fill="#F4F4F4",
                stroke="#BBBBBB",
                stroke_width=1,
            )
        )
    items.append(Text(x + 16, row_y + 25, page, size=21, weight="bold"))
    note = _vma_note(vma)
    if note:
        items.append(Text(x + 16 + 14 * len(page) + 12, row_y + 24, note, size=15, fill=GREY))
    items.append(Text(x + 16, row_y + 47, " · ".join(flags), size=17))
    target = ""
    if pte is not None and pte.pfn is not None:
        target = f"→ pfn {pte.pfn}"
    elif pte is not None and pte.swap_slot is not None:
        target = f"→ slot {pte.swap_slot}"
    if target:
        items.append(Text(x + w - 14, row_y + 47, target, size=17, weight="bold", anchor="end"))
    if changed:
        items.extend(_changed_badge(x + w - 6, row_y))
    title = f"{proc}:{page} — " + ", ".join(flags)
    if note:
        title += f" ({note})"
    if target:
        title += f" {target}"
    return Group(
        "pte" + (" changed" if changed else "") + (" writable" if pte and pte.writable else ""),
        title,
        tuple(items),
        key=key,
    )


def _map_arrow(
    proc: str,
    page: str,
    pfn: int,
    writable: bool,
    color: str,
    x1: float,
    y1: float,
    x2: float,
    y2: float,
) -> Group:
    d, head_pts = _arrow(x1, y1, x2, y2)
    return Group(
        "map-arrow" + (" writable" if writable else ""),
        f"{proc}:{page} maps pfn {pfn} " + ("writable" if writable else "read-only"),
        (
            Path(d, stroke=color, width=4 if writable else 2.5),
            Poly(head_pts, fill=color),
        ),
        key=f"map:{proc}:{page}",
    )


def _swap_arrow(
    proc: str, page: str, slot: int, color: str, x1: float, y1: float, x2: float, y2: float
) -> Group:
    d, head_pts = _arrow(x1, y1, x2, y2)
    return Group(
        "swap-arrow",
        f"{proc}:{page} is a swap entry for slot {slot}",
        (
            Path(d, stroke=color, width=2.5, dash="2 5"),
            Poly(head_pts, fill=color),
        ),
        key=f"swapmap:{proc}:{page}",
    )


def _spread(state: State) -> dict[tuple[str, str], float]:
    """Vertical offset of each arrowhead among all the PTEs mapping the same frame.

    Spreading the heads lets a student count the mappings (mapcount) at the frame itself.
    Computed for the whole state in one pass: per arrow it would cost processes × pages.
    """
    mappers: dict[int, list[tuple[str, str]]] = {}
    for p in state.procs.values():
        for page, pte in p.ptes.items():
            if pte.pfn is not None:
                mappers.setdefault(pte.pfn, []).append((p.name, page))
    offsets: dict[tuple[str, str], float] = {}
    for same_frame in mappers.values():
        if len(same_frame) > 1:
            step = min(14.0, (FRAME_H - 30) / (len(same_frame) - 1))
            for i, who in enumerate(same_frame):
                offsets[who] = (i - (len(same_frame) - 1) / 2) * step
    return offsets


def _decision_tab(decision: Decision, x: float, y: float) -> tuple[Item, ...]:
    """A tab across the frame's top edge, right-aligned before the Δ badge: dark ink on white
    for a decision, white on dark vermillion (7:1) when the reused page is at risk."""
    label = f"⚠ {decision.word} · AT RISK" if decision.at_risk else decision.word
    width = 16 + 9.5 * len(label)
    left = x + FRAME_W - 40 - width
    fill, ink = (VERM_TEXT, "#FFFFFF") if decision.at_risk else ("#FFFFFF", BLACK)
    return (
        Rect(left, y - 17, width, 23, fill=fill, stroke=BLACK, stroke_width=1.5, rx=11),
        Text(left + width / 2, y + 0.5, label, size=15, weight="bold", anchor="middle", fill=ink),
    )


def _frame_group(
    frame: Frame,
    changed: bool,
    x: float,
    y: float,
    has_exclusive_bit: bool,
    decision: Decision | None = None,
) -> Group:
    fill = {"zero": "#EDEDED", "pagecache": "#DDEFFA", "anon": "#FFFFFF"}[frame.kind]
    items: list[Item] = []
    if frame.kind == "zero":
        # A double border: the zero page is special, and says so without relying on colour.
        items.append(
            Rect(
                x - 4,
                y - 4,
                FRAME_W + 8,
                FRAME_H + 8,
                fill="#FFFFFF",
                stroke=BLACK,
                stroke_width=1.5,
            )
        )
    risky = decision is not None and bool(decision.at_risk)
    items.append(
        Rect(
            x,
            y,
            FRAME_W,
            FRAME_H,
            fill=fill,
            stroke=VERMILLION if risky else BLACK,
            stroke_width=4 if risky else 2.5,
            dash="10 6" if risky else "",
        )
    )
    if changed:
        items.append(_changed_wash(x, y, FRAME_W, FRAME_H))
    items.append(Text(x + 12, y + 22, frame_heading(frame), size=16, weight="bold"))
    items.append(Text(x + 12, y + 54, short(frame.value.text), size=27, weight="bold"))
    items.append(Text(x + 12, y + 80, frame_counters(frame), size=17, cls="counters"))
    extras = frame_extras(frame, has_exclusive_bit)
    if extras:
        items.append(Text(x + 12, y + 102, " · ".join(extras), size=15, cls="counters extras"))
    if changed:
        items.extend(_changed_badge(x + FRAME_W, y))
    if decision is not None:
        items.extend(_decision_tab(decision, x, y))
    title = f"{frame_heading(frame)}: value {frame.value.describe()}; {frame_counters(frame)}" + (
        f"; {', '.join(extras)}" if extras else ""
    )
    if decision is not None:
        title += f"; {decision.word.lower()} at this step" + (
            f", while {decision.at_risk} still holds it" if decision.at_risk else ""
        )
    cls = f"frame {frame.kind}" + (f" decided-{decision.word.lower()}" if decision else "")
    if risky:
        cls += " at-risk"
    return Group(
        cls + (" changed" if changed else ""),
        title,
        tuple(items),
        key=f"frame:{frame.pfn}",
    )


def _slot_group(slot: SwapSlot, changed: bool, x: float, y: float) -> Group:
    items: list[Item] = [
        Rect(x, y, FRAME_W, SWAP_H, fill="#F4F4F4", stroke=BLACK, stroke_width=2, dash="2 4"),
    ]
    if changed:
        items.append(_changed_wash(x, y, FRAME_W, SWAP_H))
    cache = f" · cache pfn {slot.cache_pfn}" if slot.cache_pfn is not None else ""
    items.append(Text(x + 12, y + 22, f"swap slot {slot.slot}", size=16, weight="bold"))
    items.append(Text(x + 12, y + 46, short(slot.value.text), size=21, weight="bold"))
    items.append(Text(x + 12, y + 64, f"swapcount {slot.swapcount}{cache}", size=15))
    if changed:
        items.extend(_changed_badge(x + FRAME_W, y))
    return Group(
        "swapslot" + (" changed" if changed else ""),
        f"swap slot {slot.slot}: value {slot.value.describe()}; swapcount {slot.swapcount}" + cache,
        tuple(items),
        key=f"slot:{slot.slot}",
    )


def _ref_box(ref: Ref, changed: bool, x: float, y: float, mark: RefMark | None) -> Group:
    broken = mark is not None
    items: list[Item] = [
        Rect(
            x,
            y,
            REF_W,
            REF_H,
            fill="#FFFFFF",
            stroke=VERMILLION if broken else BLACK,
            stroke_width=3,
            dash="10 6" if broken else "",
        ),
    ]
    if changed:
        items.append(_changed_wash(x, y, REF_W, REF_H))
    items.append(Text(x + 12, y + 27, ref.name, size=21, weight="bold", cls="ref-label"))
    items.append(
        Text(
            x + REF_W - 40,
            y + 25,
            f"{ref.holder} · {ref.owner}:{ref.page}",
            size=15,
            anchor="end",
            fill=GREY,
            cls="ref-holder",
        )
    )
    items.append(Text(x + 12, y + 52, ref_flags_short(ref), size=15, cls="ref-label"))
    if mark is None:
        status = f"holds pfn {ref.pfn}"
        items.append(Text(x + 12, y + 80, status, size=17, cls="ref-label"))
    else:
        word = mark.kind.replace("-", " ").upper()
        status = f"{word}: {mark.label}"
        items.append(
            Text(x + 12, y + 80, word, size=18, weight="bold", fill=VERM_TEXT, cls="ref-label")
        )
        items.append(
            Text(x + 12, y + 102, short(mark.label, 32), size=15, fill=BLACK, cls="ref-label")
        )
    if changed:
        items.extend(_changed_badge(x + REF_W, y))
    cls = "ref" + (f" {mark.kind}" if mark else "") + (" changed" if changed else "")
    return Group(
        cls,
        f"{ref_heading(ref)} ({ref_detail(ref)}): {status}",
        tuple(items),
        key=f"ref:{ref.name}",
    )


def _ref_arrow(
    ref: Ref, x: float, y: float, mark: RefMark | None, end_x: float, end_y: float
) -> Group:
    d, head_pts = _arrow(x, y + REF_H / 2, end_x, end_y)
    broken = mark is not None
    color = VERMILLION if broken else BLACK
    return Group(
        "ref-arrow" + (f" {mark.kind}" if mark else ""),
        f"{ref.holder} {ref.name} holds pfn {ref.pfn}"
        + (f" — {mark.kind}: {mark.label}" if mark else ""),
        (
            Path(d, stroke=color, width=3.5, dash="10 6" if broken else ""),
            Poly(head_pts, fill=color),
        ),
        key=f"hold:{ref.name}",
    )


def _ref_groups(
    ref: Ref,
    prev: Ref | None,
    x: float,
    y: float,
    mark: RefMark | None,
    layout: Layout,
    state: State,
) -> tuple[Group, Group | None]:
    box = _ref_box(ref, ref != prev, x, y, mark)
    if ref.pfn not in layout.frames:
        return box, None
    fx, fy = layout.frames[ref.pfn]
    holders = [r.name for r in state.refs.values() if r.pfn == ref.pfn]
    offset = (holders.index(ref.name) - (len(holders) - 1) / 2) * 12.0
    return box, _ref_arrow(ref, x, y, mark, fx + FRAME_W, fy + FRAME_H / 2 + offset)


def _file_group(file: File, changed: bool, x: float, y: float) -> Group:
    items: list[Item] = [
        Rect(x, y, REF_W, FILE_H, fill="#DDEFFA", stroke=BLACK, stroke_width=2, rx=2),
    ]
    if changed:
        items.append(_changed_wash(x, y, REF_W, FILE_H))
    cache = f"page cache pfn {file.cache_pfn}" if file.cache_pfn is not None else "not cached"
    items.append(Text(x + 12, y + 24, f"file {file.name}", size=17, weight="bold"))
    items.append(Text(x + 12, y + 50, f"on disk: {short(file.value.text)} · {cache}", size=15))
    if changed:
        items.extend(_changed_badge(x + REF_W, y))
    return Group(
        "file" + (" changed" if changed else ""),
        f"file {file.name}: {file.value.describe()}; {cache}",
        tuple(items),
        key=f"file:{file.name}",
    )


def _headings(frame_x: float, ref_x: float | None) -> Group:
    y = MARGIN + 22
    items: list[Item] = [
        Text(PROC_X, y, "processes and page tables", size=18, weight="bold", fill=GREY),
        Text(frame_x, y, "physical frames", size=18, weight="bold", fill=GREY),
    ]
    if ref_x is not None:
        items.append(Text(ref_x, y, "references", size=18, weight="bold", fill=GREY))
    return Group("headings", "column headings", tuple(items))


def _frame_gone(pfn: int, x: float, y: float) -> Group:
    return Group(
        "frame gone changed",
        f"pfn {pfn} was freed at this step",
        (
            Rect(x, y, FRAME_W, FRAME_H, fill="#FFFFFF", stroke=GREY, dash="4 4"),
            Text(x + 12, y + 22, f"pfn {pfn}", size=15, fill=GREY),
            Text(x + 12, y + 56, "freed", size=24, weight="bold", fill=GREY),
            *_changed_badge(x + FRAME_W, y),
        ),
        key=f"frame:{pfn}",
    )


def _frame_free(pfn: int, x: float, y: float) -> Group:
    # The place stays reserved (the frame exists at another step): say so quietly.
    return Group(
        "frame free",
        f"pfn {pfn} is not in use at this step",
        (Text(x + 12, y + 22, f"pfn {pfn}: free", size=15, fill="#AAAAAA"),),
        key=f"frame:{pfn}",
    )


def build_scene(layout: Layout, state: State, prev: State | None, options: SceneOptions) -> Scene:
    """The picture of ``state``; ``prev`` (the previous step) decides what is marked changed."""
    ex = options.has_exclusive_bit
    show_refs = bool(layout.refs or layout.files)
    boxes: list[Group] = [_headings(layout.frame_x, layout.ref_x if show_refs else None)]
    arrows: list[Group] = []
    offsets = _spread(state)
    for name, place in layout.procs.items():
        proc = state.procs.get(name)
        before = prev.procs.get(name) if prev else None
        note = options.proc_notes.get(name, "")
        b, a = _proc_groups(place, proc, before, before is not None, ex, layout, offsets, note)
        boxes.extend(b)
        arrows.extend(a)
    # At step 0 (no previous state) nothing is marked changed.
    for pfn, (x, y) in layout.frames.items():
        frame = state.frames.get(pfn)
        before_frame = prev.frames.get(pfn) if prev else frame
        if frame is not None:
            # A frame that appears is new, except the zero page, which is always there.
            changed = frame.kind != "zero" if before_frame is None else before_frame != frame
            decision = options.decisions.get(pfn)
            boxes.append(_frame_group(frame, changed, x, y, ex, decision))
        elif before_frame is not None:
            boxes.append(_frame_gone(pfn, x, y))
        else:
            boxes.append(_frame_free(pfn, x, y))
    for slot_id, (x, y) in layout.swap.items():
        slot = state.swap.get(slot_id)
        if slot is not None:
            changed = prev is not None and prev.swap.get(slot_id) != slot
            boxes.append(_slot_group(slot, changed, x, y))
    for name, (x, y) in layout.refs.items():
        ref = state.refs.get(name)
        if ref is None:
            continue
        before_ref = prev.refs.get(name) if prev else ref
        box, arrow = _ref_groups(ref, before_ref, x, y, options.ref_marks.get(name), layout, state)
        boxes.append(box)
        if arrow is not None:
            arrows.append(arrow)
    for name, (x, y) in layout.files.items():
        file = state.files.get(name)
        if file is not None:
            changed = prev is not None and prev.files.get(name) != file
            boxes.append(_file_group(file, changed, x, y))
    desc = describe_state(state, layout, options)
    # Arrows first, so boxes (opaque) sit on top and arrowheads meet their edges cleanly.
    return Scene(
        width=layout.width,
        height=layout.height,
        title=options.title,
        desc=desc,
        groups=(*arrows, *boxes),
    )


def describe_state(state: State, layout: Layout, options: SceneOptions) -> str:
    """A one-paragraph text alternative for what the picture draws (the table has the rest)."""
    parts: list[str] = []
    for proc in state.procs.values():
        place = layout.procs.get(proc.name)
        if place is None:
            continue
        maps = []
        for page, pte in proc.ptes.items():
            if page not in place.rows:
                continue
            if pte.pfn is not None:
                maps.append(f"{page}→pfn {pte.pfn} {'RW' if pte.writable else 'RO'}")
            elif pte.swap_slot is not None:
                maps.append(f"{page}→swap {pte.swap_slot}")
        parts.append(f"{proc.name}: " + (", ".join(maps) if maps else "nothing mapped"))
    for ref in state.refs.values():
        if ref.name not in layout.refs:
            continue
        mark = options.ref_marks.get(ref.name)
        parts.append(
            f"{ref.holder} {ref.name} holds pfn {ref.pfn}" + (f" ({mark.kind})" if mark else "")
        )
    return "; ".join(parts) if parts else "Empty machine: only the zero page exists."
