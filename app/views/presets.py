"""`/presets`: every preset under every era, computed live — the history of COW in one table.

Reading a row left to right tells one bug's story: the era where it appears, the era that fixed
it, the era whose fix broke something else. Each cell opens its run in the simulator.

The selftest runs each case on several backings (base page, THP, PTE-mapped THP, hugetlb, and
the non-anonymous ones), so the library holds each story several times over: the grid groups
the rows by backing, under a heading each, and ``?backing=`` shows one group alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from app.views.links import make_link
from app.views.runs import RunMemo, run
from app.views.scenario_head import story_era
from app.views.sim import Era
from engine.policies import POLICIES, get_policy
from engine.presets import PRESETS, Preset
from engine.state import ZERO_PFN
from engine.trace import Trace
from engine.verdicts import Verdict

Backing = Literal["base", "thp", "pte-thp", "hugetlb", "other"]


@dataclass(frozen=True, slots=True)
class BackingKind:
    id: Backing
    label: str  # the group's heading
    short: str  # the filter's button
    about: str  # one sentence under the heading


# In the selftest's order of backings (cow.c runs every anonymous case on each in turn).
BACKINGS: tuple[BackingKind, ...] = (
    BackingKind(
        "base",
        "Base pages",
        "base page",
        "Private anonymous 4 KiB pages, and the bugs and mail threads behind the selftest.",
    ),
    BackingKind(
        "thp",
        "Transparent huge pages, PMD-mapped",
        "THP",
        "One 2 MiB folio mapped by a single PMD: the whole folio is shared or copied at once.",
    ),
    BackingKind(
        "pte-thp",
        "PTE-mapped transparent huge pages",
        "PTE-mapped THP",
        "The same folio mapped by 512 PTEs: each subpage has its own mapcount and exclusive bit.",
    ),
    BackingKind(
        "hugetlb",
        "hugetlb pages",
        "hugetlb",
        "A reserved 2 MiB hugetlb page: never split, never swapped, copied whole.",
    ),
    BackingKind(
        "other",
        "The shared zero page, files and memfd",
        "file & other",
        "Private mappings of pages that are not anonymous: the zero page and the page cache.",
    ),
)
BACKING_IDS: tuple[str, ...] = tuple(b.id for b in BACKINGS)


def preset_backing(preset: Preset, trace: Trace) -> Backing:
    """What backs the preset's page, as the selftest's "... with <backing>" says.

    Huge pages are named by the scenario's own words (DESIGN.md §10: ``backing=hugetlb``,
    ``pte-map``, ``backing=thp``); the zero page and the page cache by its replay (``trace``,
    under any era): a private mapping of either is what a non-anonymous case tests.
    """
    words: set[str] = set()
    for line in preset.text.splitlines():
        for command in line.split("#", 1)[0].split(";"):
            words.update(command.split())
    if "backing=hugetlb" in words:
        return "hugetlb"
    if "pte-map" in words:
        return "pte-thp"
    if "backing=thp" in words:
        return "thp"
    for step in trace.steps:
        if step.state.files or any(
            pte.pfn == ZERO_PFN for proc in step.state.procs.values() for pte in proc.ptes.values()
        ):
            return "other"
    return "base"


# The order verdicts are listed in a cell: the worst first.
SEVERITY = ("leak", "file-corrupted", "stale", "segv", "userfault", "needless-copy")


@dataclass(frozen=True, slots=True)
class Cell:
    policy: str
    kinds: tuple[tuple[str, int], ...]  # (kind, count), worst first; empty means "all good"
    href: str
    summary: str  # for the tooltip and screen readers
    worst: str  # the worst kind, or "ok"


@dataclass(frozen=True, slots=True)
class PresetRow:
    name: str
    title: str
    story: str
    source: str
    href: str  # the preset in the simulator, at step 0 of the era its story happens in
    compare: str
    cells: tuple[Cell, ...]
    changes: bool  # not every era gives the same verdicts
    backing: Backing


@dataclass(frozen=True, slots=True)
class RowGroup:
    """The rows of one backing, under its heading."""

    backing: BackingKind
    rows: tuple[PresetRow, ...]


def group_rows(rows: Sequence[PresetRow]) -> tuple[RowGroup, ...]:
    """``rows`` by backing, in the order of `BACKINGS` (teaching order within each); a backing
    without rows has no group."""
    groups = (RowGroup(b, tuple(r for r in rows if r.backing == b.id)) for b in BACKINGS)
    return tuple(g for g in groups if g.rows)


def build_grid(
    memo: RunMemo | None = None, policy_ids: Sequence[str] | None = None
) -> tuple[tuple[Era, ...], tuple[PresetRow, ...]]:
    """Every preset under ``policy_ids`` (default: every era; custom lab points may be among
    them, DESIGN.md §11)."""
    ids = tuple(POLICIES) if policy_ids is None else policy_ids
    columns = tuple(Era.of(get_policy(i)) for i in ids)
    rows: list[PresetRow] = []
    for preset in PRESETS.values():
        cells: list[Cell] = []
        link_text = ""
        verdicts: dict[str, tuple[Verdict, ...]] = {}
        backing: Backing | None = None
        for column in columns:
            r = run(preset.text, column.id, memo)
            link_text = r.link_text
            if backing is None:
                backing = preset_backing(preset, r.trace)
            verdicts[column.id] = r.trace.verdicts
            counts = Counter(v.kind for v in r.trace.verdicts)
            kinds = tuple((kind, counts[kind]) for kind in sorted(counts, key=_severity))
            summary = (
                ", ".join(f"{kind} ×{n}" if n > 1 else kind for kind, n in kinds)
                if kinds
                else "no verdict: everything behaved"
            )
            cells.append(
                Cell(
                    policy=column.id,
                    kinds=kinds,
                    href=make_link("/", link_text, policy=column.id),
                    summary=f"{preset.title} under {column.id}: {summary}",
                    worst=kinds[0][0] if kinds else "ok",
                )
            )
        rows.append(
            PresetRow(
                name=preset.name,
                title=preset.title,
                story=preset.story,
                source=preset.source,
                # Step 0 of the era where the story happens: the class watches it unfold
                # rather than opening at the last step, which gives the answer away.
                href=make_link("/", link_text, policy=story_era(preset, verdicts), step=0),
                compare=make_link("/compare", link_text),
                cells=tuple(cells),
                changes=len({c.kinds for c in cells}) > 1,
                backing=backing or "base",
            )
        )
    return columns, tuple(rows)


def _severity(kind: str) -> int:
    return SEVERITY.index(kind) if kind in SEVERITY else len(SEVERITY)


@dataclass(frozen=True, slots=True)
class BackingChoice:
    """One button of the backing filter: a plain link, so it works without JavaScript."""

    id: str  # "" for every backing
    label: str
    count: int
    href: str
    current: bool


@dataclass(frozen=True, slots=True)
class PresetsPage:
    columns: tuple[Era, ...]
    groups: tuple[RowGroup, ...]  # the groups shown: one when the link chose a backing
    choices: tuple[BackingChoice, ...]
    shown: int  # rows shown
    total: int  # rows in the library
    note: str  # a backing the link names that no preset has, in words; "" otherwise


def presets_link(backing: str, customs: Sequence[str]) -> str:
    """``/presets`` showing ``backing`` ("" for all), keeping the link's custom columns."""
    query = [("backing", backing)] if backing else []
    query += [("custom", c) for c in customs]
    return "/presets" + (f"?{urlencode(query)}" if query else "")


def presets_page(
    columns: tuple[Era, ...],
    rows: Sequence[PresetRow],
    backing: str | None,
    customs: Sequence[str] = (),
) -> PresetsPage:
    """The grid grouped by backing; ``backing`` (the link's ``?backing=``) keeps one group.

    An unknown backing shows every group and says so, rather than an empty grid or an error:
    the link is otherwise fine, and the filter beside it offers the real choices.
    """
    groups = group_rows(rows)
    counts = {g.backing.id: len(g.rows) for g in groups}
    chosen = backing if backing in BACKING_IDS else ""
    note = ""
    if backing and not chosen:
        note = f"No backing is called “{backing}”: every preset is shown."
    choices = (
        BackingChoice("", "all", len(rows), presets_link("", customs), chosen == ""),
        *(
            BackingChoice(
                b.id, b.short, counts.get(b.id, 0), presets_link(b.id, customs), chosen == b.id
            )
            for b in BACKINGS
            # A backing no preset uses would be a button to an empty grid.
            if b.id in counts or b.id == chosen
        ),
    )
    if chosen and chosen not in counts:
        label = next(b.short for b in BACKINGS if b.id == chosen)
        note = f"No preset runs on {label}."
    shown = tuple(g for g in groups if not chosen or g.backing.id == chosen)
    return PresetsPage(
        columns=columns,
        groups=shown,
        choices=choices,
        shown=sum(len(g.rows) for g in shown),
        total=len(rows),
        note=note,
    )
