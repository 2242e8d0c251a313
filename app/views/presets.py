"""`/presets`: every preset under every era, computed live — the history of COW in one table.

Reading a row left to right tells one bug's story: the era where it appears, the era that fixed
it, the era whose fix broke something else. Each cell opens its run in the simulator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from app.views.links import make_link
from app.views.runs import RunMemo, run
from app.views.scenario_head import story_era
from app.views.sim import Era
from engine.policies import POLICIES, get_policy
from engine.presets import PRESETS
from engine.verdicts import Verdict

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
        for column in columns:
            r = run(preset.text, column.id, memo)
            link_text = r.link_text
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
            )
        )
    return columns, tuple(rows)


def _severity(kind: str) -> int:
    return SEVERITY.index(kind) if kind in SEVERITY else len(SEVERITY)
