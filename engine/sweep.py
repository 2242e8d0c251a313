"""The sweep (DESIGN.md §11): every point of the knob space against every preset.

A replay asks only the knobs its commands reach (a scenario without fork never asks
``fork_pinned``), so a point reuses the result of any point that agrees on every knob — and every
piece of kept state — the replay consulted. That is exact, not sampling: each decision depends
only on what it consulted, so by induction over the steps a point that agrees on those answers
makes the same decisions, consults the same things and gets the same verdicts.

The memo is a decision tree per preset: the first thing every replay consults is the same, the
next one depends only on that answer, and so on; a lookup follows the point's answers down to a
leaf, and a miss replays and grows the branch it took.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.policies import POLICIES, Policy, UnknownPolicy
from engine.policies.custom import differences
from engine.policies.knobs import KNOBS, needs_of, resolve
from engine.presets import PRESETS, Preset
from engine.syntax import parse
from engine.trace import replay
from engine.verdicts import VERDICT_KINDS

Settings = Mapping[str, str]


@dataclass(slots=True)
class _Node:
    """A decision-tree node: ``facet`` is what the replays below it consulted next (None at a
    leaf, where ``kinds`` is the verdict kinds of the replay)."""

    facet: str | None = None
    children: dict[str | bool, _Node] = field(default_factory=dict)
    kinds: frozenset[str] | None = None
    # The facet taken apart once, when it is set: a lookup walks ~9 million nodes a sweep, and
    # parsing "state:…" at each of them was a third of the sweep's time.
    is_state: bool = False
    key: str = ""


def point_policy(settings: Settings) -> Policy:
    """A fresh policy for ``settings`` that records what its replays consult."""
    cls: type[Policy] = type(
        "SweepPoint",
        (Policy,),
        {
            "id": "sweep",
            "label": "sweep point",
            "kernels": "",
            "commits": (),
            "story": "",
            "knobs": dict(settings),
        },
    )
    policy = cls()
    policy.consulted = {}
    return policy


def facet_value(settings: Settings, keeps: frozenset[str], facet: str) -> str | bool:
    if facet.startswith("state:"):
        return facet.removeprefix("state:") in keeps
    return settings[facet]


class Memo:
    """Verdict kinds of one preset under any point, replaying only when no point that agrees on
    everything consulted was replayed before."""

    def __init__(self, preset: Preset) -> None:
        self.scenario = parse(preset.text)
        self.root = _Node()
        self.replays = 0

    def kinds(self, settings: Settings, keeps: frozenset[str]) -> frozenset[str]:
        node = self.root
        while node.kinds is None and node.facet is not None:
            value = (node.key in keeps) if node.is_state else settings[node.key]
            child = node.children.get(value)
            if child is None:
                break
            node = child
        if node.kinds is not None:
            return node.kinds
        return self._replay(settings, keeps)

    def _replay(self, settings: Settings, keeps: frozenset[str]) -> frozenset[str]:
        policy = point_policy(settings)
        kinds = frozenset(v.kind for v in replay(self.scenario, policy).verdicts)
        self.replays += 1
        assert policy.consulted is not None
        node = self.root
        for facet in policy.consulted:
            if node.facet is None:
                node.facet = facet
                node.is_state = facet.startswith("state:")
                node.key = facet.removeprefix("state:")
            # The order of first consultation is a function of the earlier answers, so an
            # existing node must be asking the same question.
            assert node.facet == facet, (node.facet, facet)
            node = node.children.setdefault(facet_value(settings, keeps, facet), _Node())
        node.kinds = kinds
        return kinds


def all_points() -> Iterator[dict[str, str]]:
    """Every setting of every knob, in `KNOBS` order (refused ones included)."""
    for values in itertools.product(*([c.id for c in k.choices] for k in KNOBS.values())):
        yield dict(zip(KNOBS, values, strict=True))


def refused(settings: Settings) -> bool:
    try:
        resolve(settings)
    except UnknownPolicy:
        return True
    return False


@dataclass(frozen=True, slots=True)
class PointResult:
    settings: Mapping[str, str]
    # Per verdict kind, how many presets give this point that verdict.
    counts: Mapping[str, int]

    @property
    def clean(self) -> bool:
        return not any(self.counts.values())


@dataclass(frozen=True, slots=True)
class Sweep:
    presets: tuple[str, ...]
    points: tuple[PointResult, ...]
    refused: int
    replays: int

    def of(self, settings: Settings) -> PointResult:
        key = tuple(settings[k] for k in KNOBS)
        for point in self.points:
            if tuple(point.settings[k] for k in KNOBS) == key:
                return point
        raise KeyError(key)


def run_sweep(presets: Iterable[Preset] | None = None) -> Sweep:
    chosen = tuple(PRESETS.values() if presets is None else presets)
    memos = [Memo(p) for p in chosen]
    results: list[PointResult] = []
    refused_count = 0
    for settings in all_points():
        try:
            keeps = needs_of(resolve(settings))
        except UnknownPolicy:
            refused_count += 1
            continue
        counts: dict[str, int] = dict.fromkeys(VERDICT_KINDS, 0)
        for memo in memos:
            for kind in memo.kinds(settings, keeps):
                counts[kind] += 1
        results.append(PointResult(settings, counts))
    return Sweep(
        tuple(p.name for p in chosen),
        tuple(results),
        refused_count,
        sum(m.replays for m in memos),
    )


# ----------------------------------------------------------------------------- analysis
def point_id(settings: Settings, base: Policy) -> str:
    """The canonical custom id of ``settings`` relative to ``base`` (the era id if equal)."""
    changes = differences(settings, base)
    if not changes:
        return base.id
    return "custom:" + ",".join([f"base={base.id}", *(f"{k}={v}" for k, v in changes)])


def smallest_clean_changes(sweep: Sweep, eras: Mapping[str, Policy]) -> dict[str, list[str]]:
    """For each era, the clean points that change the fewest of its knobs."""
    clean = [p for p in sweep.points if p.clean]
    out: dict[str, list[str]] = {}
    for era in eras.values():
        if not clean:
            out[era.id] = []
            continue
        best = min(len(differences(p.settings, era)) for p in clean)
        out[era.id] = [
            point_id(p.settings, era) for p in clean if len(differences(p.settings, era)) == best
        ]
    return out


def knobs_that_matter(sweep: Sweep) -> dict[str, dict[str, int]]:
    """Per verdict kind, per knob: how many groups of points that differ only in that knob
    disagree on how many presets give that kind. Zero (left out) means the knob never
    matters for that verdict."""
    out: dict[str, dict[str, int]] = {kind: {} for kind in VERDICT_KINDS}
    names = list(KNOBS)
    for i, knob in enumerate(names):
        groups: dict[tuple[str, ...], list[Mapping[str, int]]] = {}
        for p in sweep.points:
            key = tuple(p.settings[k] for j, k in enumerate(names) if j != i)
            groups.setdefault(key, []).append(p.counts)
        for kind in VERDICT_KINDS:
            changed = sum(1 for g in groups.values() if len({c[kind] for c in g}) > 1)
            if changed:
                out[kind][knob] = changed
    return {kind: knobs for kind, knobs in out.items() if knobs}


def august_2020(sweep: Sweep, eras: Mapping[str, Policy]) -> dict[str, Any]:
    """What the engine says about the thread: from 5.8, each answer to ``gup_read`` with the
    rest of 5.8 kept, and the designs nearest to 5.8 with neither a leak nor a userfault."""
    era = eras["5.8"]
    by_choice = {
        c.id: dict(sweep.of({**era.knobs, "gup_read": c.id}).counts)
        for c in KNOBS["gup_read"].choices
    }
    quiet = [p for p in sweep.points if not p.counts["leak"] and not p.counts["userfault"]]
    best = min((len(differences(p.settings, era)) for p in quiet), default=0)
    return {
        "from": era.id,
        "gup_read": by_choice,
        "no_leak_no_userfault_nearest": [
            point_id(p.settings, era) for p in quiet if len(differences(p.settings, era)) == best
        ],
        "changes_needed": best,
    }


def sweep_json(sweep: Sweep, eras: Mapping[str, Policy] | None = None) -> dict[str, Any]:
    """The sweep as `cowlab lab sweep --json` prints it: reproducible (no clock, stable order).

    ``points`` rows are compact: one choice index per knob (into ``knobs``), then one count per
    verdict kind (in ``kinds``)."""
    eras = POLICIES if eras is None else eras
    index = {k: {c.id: i for i, c in enumerate(knob.choices)} for k, knob in KNOBS.items()}
    clean = [p for p in sweep.points if p.clean]
    return {
        "knobs": {k: [c.id for c in knob.choices] for k, knob in KNOBS.items()},
        "kinds": list(VERDICT_KINDS),
        "presets": list(sweep.presets),
        "points_total": len(sweep.points) + sweep.refused,
        "points_refused": sweep.refused,
        "points_run": len(sweep.points),
        "replays": sweep.replays,
        "eras": {e.id: dict(sweep.of(e.knobs).counts) for e in eras.values()},
        "clean_points": len(clean),
        "clean": [point_id(p.settings, _nearest(p.settings, eras)) for p in clean],
        "smallest_clean_change": smallest_clean_changes(sweep, eras),
        "knobs_that_matter": knobs_that_matter(sweep),
        "august_2020": august_2020(sweep, eras),
        "points": [
            [index[k][p.settings[k]] for k in KNOBS] + [p.counts[kind] for kind in VERDICT_KINDS]
            for p in sweep.points
        ],
    }


def _nearest(settings: Settings, eras: Mapping[str, Policy]) -> Policy:
    return min(eras.values(), key=lambda e: len(differences(settings, e)))
