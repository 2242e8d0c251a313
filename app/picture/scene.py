"""The diagram of one step, as geometry: Python decides every position, templates only draw.

`build_scene` fills the places of a `Layout` (`app.picture.layout`) with the step's state and
marks what changed since the previous step (a yellow wash *and* a "Δ" badge, never colour
alone). A stale or leaking reference is dashed and labelled in words. Arrows go from a
page-table entry to the frame it maps and from a reference to the frame it holds.

A huge page (DESIGN.md §10) is one large folio drawn as one box: its counters (refcount, exact
pincount, entire mapcount), subpage 0 — the 4 KiB that reads and writes touch — and the other
subpages summarised in one box (`app.picture.labels.subpage_runs`). A PMD mapping is a double
line labelled "PMD" that ends at the folio; PTE mappings are single lines labelled with the
subpages they map, ending at those subpages' box. A small page copied out of a folio says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from app.picture.labels import (
    folio_counter_parts,
    folio_extras,
    folio_kind,
    frame_counters,
    frame_extras,
    frame_heading,
    huge_mapping_words,
    huge_target,
    pte_flags,
    ref_detail,
    ref_flags_short,
    ref_heading,
    short,
    subpage_counter_parts,
    subpage_counters,
    subpage_runs,
    vma_note,
)
from app.picture.layout import (
    FILE_H,
    FOLIO_H,
    FRAME_H,
    FRAME_W,
    MARGIN,
    PROC_HEAD_H,
    PROC_W,
    PROC_X,
    REF_H,
    REF_W,
    ROW_H,
    SWAP_H,
    Layout,
    ProcPlace,
)
from app.picture.shapes import (
    BLACK,
    GREY,
    VERM_TEXT,
    VERMILLION,
    YELLOW,
    Group,
    Item,
    Path,
    Poly,
    Rect,
    Scene,
    Text,
)
from engine.state import File, Frame, Proc, Pte, Ref, State, SwapSlot, Vma


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
    # Small pages a COW fault copied out of a large folio: pfn -> (the folio's pfn, its kind).
    split_from: Mapping[int, tuple[int, str]] = field(default_factory=dict)


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
        if vma is not None and vma.huge and (pte.pfn is not None or pte.rest_pfn is not None):
            arrows.extend(
                _huge_arrows(proc.name, page, pte, place.color, start_x, row_y, layout, offsets)
            )
        elif pte.pfn is not None and pte.pfn in layout.frames:
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
    note = vma_note(vma)
    if note:
        name_w = 14 * len(page)
        if vma is not None and vma.huge:
            # Measured for DejaVu Sans Bold at 21 px: "m" and "w" are half again as wide as the
            # 14 px the base-page rows assume (whose pictures are kept as they were).
            name_w = sum(22 if c in "mwMW" else 15 for c in page)
        items.append(Text(x + 16 + name_w + 12, row_y + 24, note, size=15, fill=GREY))
    items.append(Text(x + 16, row_y + 47, " · ".join(flags), size=17))
    target = ""
    if pte is not None and vma is not None and vma.huge:
        target = huge_target(pte)
    elif pte is not None and pte.pfn is not None:
        target = f"→ pfn {pte.pfn}"
    elif pte is not None and pte.swap_slot is not None:
        target = f"→ slot {pte.swap_slot}"
    if target:
        # A huge page's target names two frames: smaller, so the flags keep their room.
        size = 15 if vma is not None and vma.huge else 17
        items.append(Text(x + w - 14, row_y + 47, target, size=size, weight="bold", anchor="end"))
    if changed:
        items.extend(_changed_badge(x + w - 6, row_y))
    title = f"{proc}:{page} — " + ", ".join(flags)
    if note:
        title += f" ({note})"
    if pte is not None and vma is not None and vma.huge:
        title += f"; maps {huge_mapping_words(pte)}"
    elif target:
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


# Inside a folio's box (`_folio_group`): the box of subpage 0, then the box of the others.
SUB_X = 10.0
SUB_W = FRAME_W - 2 * SUB_X
SUB_H = 54.0
SUB0_Y = 118.0
SUB_REST_Y = SUB0_Y + SUB_H + 6

# Where on a frame an arrow ends: "" a small page's middle, "whole" a folio's top half (a PMD
# maps all of it), "sub0" / "rest" a folio's subpage boxes (PTEs map those subpages).
Zone = Literal["", "whole", "sub0", "rest"]
_ZONE_Y: dict[str, tuple[float, float]] = {  # (middle, height) below the frame's top
    "": (FRAME_H / 2, FRAME_H),
    "whole": (FRAME_H / 2, FRAME_H),
    "sub0": (SUB0_Y + SUB_H / 2, SUB_H + 8),
    "rest": (SUB_REST_Y + SUB_H / 2, SUB_H + 8),
}


def _targets(pte: Pte, vma: Vma | None, folios: frozenset[int]) -> list[tuple[int, Zone, str]]:
    """(pfn, zone, suffix of the offsets key) of each arrow a page-table entry draws."""
    if vma is None or not vma.huge:
        return [(pte.pfn, "", "")] if pte.pfn is not None else []
    if pte.pmd:
        return [(pte.pfn, "whole", "")] if pte.pfn is not None else []
    found: list[tuple[int, Zone, str]] = []
    if pte.pfn is not None:
        found.append((pte.pfn, "sub0" if pte.pfn in folios else "", ""))
    if pte.rest_pfn is not None:
        found.append((pte.rest_pfn, "rest", ":rest"))
    return found


def _spread(state: State, folios: frozenset[int] = frozenset()) -> dict[tuple[str, str], float]:
    """Vertical offset of each arrowhead among all the PTEs mapping the same frame.

    Spreading the heads lets a student count the mappings (mapcount) at the frame itself.
    Computed for the whole state in one pass: per arrow it would cost processes × pages.
    A folio has three places arrows end (`Zone`); each spreads its own heads.
    """
    mappers: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for p in state.procs.values():
        if not folios:  # base pages only: the common case, kept to one test per entry
            for page, pte in p.ptes.items():
                if pte.pfn is not None:
                    mappers.setdefault((pte.pfn, ""), []).append((p.name, page))
            continue
        for page, pte in p.ptes.items():
            for pfn, zone, suffix in _targets(pte, p.vmas.get(page), folios):
                mappers.setdefault((pfn, zone), []).append((p.name, page + suffix))
    offsets: dict[tuple[str, str], float] = {}
    for (_, where), same_frame in mappers.items():
        if len(same_frame) > 1:
            room = _ZONE_Y[where][1]
            step = min(14.0, (room - 30) / (len(same_frame) - 1))
            for i, who in enumerate(same_frame):
                offsets[who] = (i - (len(same_frame) - 1) / 2) * step
    return offsets


def _arrow_label(x: float, y: float, text: str, size: float) -> tuple[Item, ...]:
    """A label at an arrow's start on a white ground, so a line crossing it does not cut it."""
    width = 0.68 * size * len(text) + 6
    return (
        Rect(
            x - 3,
            y - size,
            width,
            size + 4,
            fill="#FFFFFF",
            stroke="none",
            stroke_width=0,
            rx=3,
            opacity=0.85,
        ),
        Text(x, y, text, size=size, weight="bold"),
    )


def _huge_arrows(
    proc: str,
    page: str,
    pte: Pte,
    color: str,
    x1: float,
    row_y: float,
    layout: Layout,
    offsets: Mapping[tuple[str, str], float],
) -> list[Group]:
    """The mapping of a huge-page VMA: a double line labelled PMD to the whole folio, or at PTE
    level one line to subpage 0's page and one to the folio the other subpages still map.
    Line style and label tell PMD from PTE, not colour."""
    out: list[Group] = []
    rw = "writable" if pte.writable else "read-only"
    if pte.pmd and pte.pfn is not None and pte.pfn in layout.frames:
        fx, fy = layout.frames[pte.pfn]
        y1 = row_y + ROW_H / 2
        d, head = _arrow(x1, y1, fx, fy + FRAME_H / 2 + offsets.get((proc, page), 0.0))
        out.append(
            Group(
                "map-arrow pmd" + (" writable" if pte.writable else ""),
                f"{proc}:{page} maps pfn {pte.pfn} {rw} with one PMD: the whole 2 MiB folio",
                (
                    Path(d, stroke=color, width=10 if pte.writable else 8),
                    Path(d, stroke="#FFFFFF", width=3),
                    Poly(head, fill=color),
                    # Where the "PTE #0" label of the same row sits: after `pte-map` the
                    # label changes its words, not its place (nothing jumps as → is pressed).
                    *_arrow_label(x1 + 10, y1 - 15, "PMD", 13),
                ),
                key=f"map:{proc}:{page}",
            )
        )
        return out
    if pte.pfn is not None and pte.pfn in layout.frames:
        fx, fy = layout.frames[pte.pfn]
        zone = "sub0" if pte.pfn in layout.folios else ""
        y1 = row_y + ROW_H / 2 - 9
        end = fy + _ZONE_Y[zone][0] + offsets.get((proc, page), 0.0)
        d, head = _arrow(x1, y1, fx, end)
        out.append(
            Group(
                "map-arrow pte" + (" writable" if pte.writable else ""),
                f"{proc}:{page} maps subpage #0 {rw} with a PTE to pfn {pte.pfn}",
                (
                    Path(d, stroke=color, width=4 if pte.writable else 2.5),
                    Poly(head, fill=color),
                    *_arrow_label(x1 + 10, y1 - 6, "PTE #0", 13),
                ),
                key=f"map:{proc}:{page}",
            )
        )
    if pte.rest_pfn is not None and pte.rest_pfn in layout.frames:
        fx, fy = layout.frames[pte.rest_pfn]
        y1 = row_y + ROW_H / 2 + 9
        end = fy + _ZONE_Y["rest"][0] + offsets.get((proc, page + ":rest"), 0.0)
        d, head = _arrow(x1, y1, fx, end)
        out.append(
            Group(
                "map-arrow pte rest",
                f"{proc}:{page} maps subpages #1–511 {rw} with 511 PTEs to pfn {pte.rest_pfn}",
                (
                    Path(d, stroke=color, width=2.5),
                    Poly(head, fill=color),
                    *_arrow_label(x1 + 10, y1 + 17, "511 PTEs", 13),
                ),
                key=f"maprest:{proc}:{page}",
            )
        )
    return out


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
    origin: tuple[int, str] | None = None,
) -> Group:
    """A small page's box; ``origin``: the large folio (pfn, kind) a COW copied it out of."""
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
    heading = frame_heading(frame)
    if origin is not None:
        heading = f"pfn {frame.pfn} · 4 KiB from {origin[1]} {origin[0]}"
    items.append(Text(x + 12, y + 22, heading, size=16, weight="bold"))
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
    if origin is not None:
        title += (
            f"; a 4 KiB page a COW fault copied out of subpage #0 of the {origin[1]} folio"
            f" pfn {origin[0]}"
        )
    if decision is not None:
        title += f"; {decision.word.lower()} at this step" + (
            f", while {decision.at_risk} still holds it" if decision.at_risk else ""
        )
    cls = f"frame {frame.kind}" + (f" decided-{decision.word.lower()}" if decision else "")
    if origin is not None:
        cls += " split-off"
    if risky:
        cls += " at-risk"
    return Group(
        cls + (" changed" if changed else ""),
        title,
        tuple(items),
        key=f"frame:{frame.pfn}",
    )


def _subpage_box(
    x: float, y: float, heading: str, counters: list[str], touched: bool, changed: bool
) -> tuple[Item, ...]:
    """One box of subpages inside a folio: subpage 0 (``touched``: outlined solid, what reads
    and writes reach) or the others (a thin dashed outline: nothing in a scenario touches them
    alone)."""
    return (
        Rect(
            x + SUB_X,
            y,
            SUB_W,
            SUB_H,
            fill=YELLOW if changed else "#F4F4F4",
            stroke=BLACK,
            stroke_width=1.5 if touched else 1,
            dash="" if touched else "5 3",
            rx=4,
            opacity=1.0,
        ),
        Text(x + SUB_X + 10, y + 21, heading, size=15, weight="bold"),
        # Mapcount at the left, the exclusive bit at the right: apart, each keeps its room when
        # presentation mode draws the counters larger than the box's natural text.
        *(
            Text(
                x + SUB_X + (10 if i == 0 else SUB_W - 10),
                y + 44,
                part,
                size=16,
                anchor="start" if i == 0 else "end",
                cls="counters",
            )
            for i, part in enumerate(counters[:2])
        ),
    )


def _folio_group(
    frame: Frame,
    before: Frame | None,
    changed: bool,
    x: float,
    y: float,
    has_exclusive_bit: bool,
    decision: Decision | None = None,
) -> Group:
    """A large folio: heading (THP or hugetlb, pfn, size), subpage 0's value, refcount and the
    exact pincount, the entire mapcount, then subpage 0 and the other subpages in two boxes."""
    risky = decision is not None and bool(decision.at_risk)
    items: list[Item] = [
        # A second outline a few pixels out: a folio is one object of many pages.
        Rect(x - 4, y - 4, FRAME_W + 8, FOLIO_H + 8, fill="#FFFFFF", stroke=BLACK, stroke_width=1),
        Rect(
            x,
            y,
            FRAME_W,
            FOLIO_H,
            fill="#FFFFFF",
            stroke=VERMILLION if risky else BLACK,
            stroke_width=4 if risky else 2.5,
            dash="10 6" if risky else "",
        ),
    ]
    if changed:
        items.append(_changed_wash(x, y, FRAME_W, FOLIO_H))
    extras = folio_extras(frame)
    items.append(Text(x + 12, y + 22, frame_heading(frame), size=16, weight="bold"))
    items.append(Text(x + 12, y + 54, short(frame.value.text), size=27, weight="bold"))
    refcount, pincount = folio_counter_parts(frame)
    items.append(Text(x + 12, y + 80, refcount, size=17, cls="counters"))
    items.append(Text(x + FRAME_W - 12, y + 80, pincount, size=17, anchor="end", cls="counters"))
    items.append(Text(x + 12, y + 104, " · ".join(extras), size=15, cls="counters extras"))
    runs = subpage_runs(frame)
    old_runs = subpage_runs(before) if before is not None and before.folio is not None else ()
    first, rest = runs[0], runs[1:]
    items.extend(
        _subpage_box(
            x,
            y + SUB0_Y,
            f"{first.name} · reads, writes",
            subpage_counter_parts(first, has_exclusive_bit),
            True,
            bool(old_runs) and old_runs[0] != first,
        )
    )
    if rest:
        # The model keeps subpages 1… alike (no command reaches one alone); should they ever
        # differ, the box says how many kinds there are and the table lists each.
        common = max(rest, key=lambda r: r.size)
        if len(rest) == 1:
            heading = f"{common.name}, each"
        else:
            heading = f"subpages #1–{rest[-1].last}: {len(rest)} kinds"
        items.extend(
            _subpage_box(
                x,
                y + SUB_REST_Y,
                heading,
                subpage_counter_parts(common, has_exclusive_bit),
                False,
                bool(old_runs) and old_runs[1:] != rest,
            )
        )
    if changed:
        items.extend(_changed_badge(x + FRAME_W, y))
    if decision is not None:
        items.extend(_decision_tab(decision, x, y))
    words = "; ".join(f"{run.name}: {subpage_counters(run, has_exclusive_bit)}" for run in runs)
    title = (
        f"{folio_kind(frame)} folio pfn {frame.pfn}, {frame.nr_pages} subpages:"
        f" subpage #0 holds {frame.value.describe()}; refcount {frame.refcount};"
        f" pincount {frame.pins} (exact: each pin adds 1 to a large folio's refcount, where it"
        f" adds 1024 to a small page's); {', '.join(extras)}; {words}"
    )
    if decision is not None:
        title += f"; {decision.word.lower()} at this step" + (
            f", while {decision.at_risk} still holds it" if decision.at_risk else ""
        )
    cls = f"frame folio {frame.folio.kind if frame.folio else 'thp'}"
    cls += f" decided-{decision.word.lower()}" if decision else ""
    cls += " at-risk" if risky else ""
    cls += " changed" if changed else ""
    return Group(cls, title, tuple(items), key=f"frame:{frame.pfn}")


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
    if ref.pfn in layout.folios:
        # GUP on a huge page takes subpage 0 (what the scenario reads and writes) and with it
        # a reference on the folio: the arrow ends at subpage 0's box.
        end = fy + SUB0_Y + SUB_H / 2 + offset * 0.5
        return box, _ref_arrow(ref, x, y, mark, fx + FRAME_W, end)
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


def _frame_gone(pfn: int, x: float, y: float, height: float = FRAME_H) -> Group:
    return Group(
        "frame gone changed",
        f"pfn {pfn} was freed at this step",
        (
            Rect(x, y, FRAME_W, height, fill="#FFFFFF", stroke=GREY, dash="4 4"),
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
    offsets = _spread(state, layout.folios)
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
            if frame.folio is not None:
                was = before_frame if prev is not None else None
                boxes.append(_folio_group(frame, was, changed, x, y, ex, decision))
            else:
                origin = options.split_from.get(pfn)
                boxes.append(_frame_group(frame, changed, x, y, ex, decision, origin))
        elif before_frame is not None:
            boxes.append(_frame_gone(pfn, x, y, layout.frame_h(pfn)))
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
