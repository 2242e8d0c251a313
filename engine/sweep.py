"""The sweep (DESIGN.md §11): every point of the knob space against every preset.

A replay asks only the knobs its commands reach (a scenario without fork never asks
``fork_pinned``), so a point reuses the result of any point that agrees on every knob — and every
piece of kept state — the replay consulted. That is exact, not sampling: each decision depends
only on what it consulted, so by induction over the steps a point that agrees on those answers
makes the same decisions, consults the same things and gets the same verdicts.

The work is therefore done per *answer*, not per point. A preset's replays form a decision tree
(the first thing every replay consults is the same, the next one depends only on that answer,
and so on); the tree is grown by exploring it — for each answer to a node's question, one
replay of any runnable point that gives that answer, unless a replay already went there — and
never by visiting the points. Sets of points are bitsets over the space in `all_points()` order
(one bit a point, Python ints, so an AND of a million points is a C loop over 117 KB): a node's
points are its parent's AND the points giving its answer, and a leaf's points get its verdicts.
Per-point verdict counts are bit-sliced counters over those sets. What grows with the knobs is
the number of bits (a point is one bit in each set operation) and the number of distinct
consulted answers (the replays) — not a Python loop over the points.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

from engine.gc_pause import collector_paused
from engine.machine import apply
from engine.policies import POLICIES, Policy, UnknownPolicy
from engine.policies.custom import differences
from engine.policies.knobs import KNOBS, REFUSALS, resolve
from engine.presets import BACKINGS, PRESETS, Preset
from engine.state import empty_state
from engine.syntax import parse, reference_names
from engine.trace import Step
from engine.verdicts import VERDICT_KINDS, derive_verdicts

Settings = Mapping[str, str]


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


def all_points() -> Iterator[dict[str, str]]:
    """Every setting of every knob, in `KNOBS` order (refused ones included); the i-th is bit i
    of the sweep's bitsets."""
    for values in itertools.product(*([c.id for c in k.choices] for k in KNOBS.values())):
        yield dict(zip(KNOBS, values, strict=True))


def refused(settings: Settings) -> bool:
    try:
        resolve(settings)
    except UnknownPolicy:
        return True
    return False


def _repeat(block: int, period: int, times: int) -> int:
    """``block`` repeated ``times`` times, ``period`` bits apart (by doubling)."""
    out, chunk, width, shift = 0, block, 1, 0
    while times:
        if times & 1:
            out |= chunk << shift
            shift += width * period
        chunk |= chunk << (width * period)
        width *= 2
        times >>= 1
    return out


def popcount(bits: int) -> int:
    return bits.bit_count()


def lowest(bits: int) -> int:
    """The index of the lowest set bit (``bits`` is not 0)."""
    return (bits & -bits).bit_length() - 1


def set_bits(bits: int, limit: int | None = None) -> Iterator[int]:
    """The indices of the set bits, lowest first."""
    count = 0
    while bits and (limit is None or count < limit):
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low
        count += 1


class Space:
    """The knob space as bit positions: the mixed-radix index of a setting in `KNOBS` order (the
    last knob varies fastest, as `all_points` does), and the bitset of each choice and state."""

    def __init__(self, knobs: Mapping[str, Sequence[str]] | None = None) -> None:
        if knobs is None:
            knobs = {k: [c.id for c in knob.choices] for k, knob in KNOBS.items()}
        self.knobs: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in knobs.items()}
        names = list(self.knobs)
        self.radix = {k: len(self.knobs[k]) for k in names}
        self.stride = {k: prod(self.radix[n] for n in names[i + 1 :]) for i, k in enumerate(names)}
        self.size = prod(self.radix.values())
        self.full = (1 << self.size) - 1
        self.choice: dict[str, dict[str, int]] = {}
        for k in names:
            s, r = self.stride[k], self.radix[k]
            self.choice[k] = {
                c: _repeat(((1 << s) - 1) << (i * s), r * s, self.size // (r * s))
                for i, c in enumerate(self.knobs[k])
            }
        # A point keeps a piece of state when one of its choices needs it (`needs_of`).
        self.state: dict[str, int] = {}
        for k, knob in KNOBS.items():
            for c in knob.choices:
                for need in c.needs:
                    self.state[need] = self.state.get(need, 0) | self.choice[k][c.id]
        # A refusal: its choice with any other knob's choice that brings the state it
        # contradicts (`Refusal.conflicts`, which `resolve` raises on).
        refused_bits = 0
        for refusal in REFUSALS:
            brought = 0
            for k, knob in KNOBS.items():
                if k != refusal.knob:
                    for c in knob.choices:
                        if refusal.state in c.needs:
                            brought |= self.choice[k][c.id]
            refused_bits |= self.choice[refusal.knob][refusal.choice] & brought
        self.refused = refused_bits
        self.runnable = self.full & ~refused_bits

    def index(self, settings: Settings) -> int:
        return sum(self.knobs[k].index(settings[k]) * self.stride[k] for k in self.knobs)

    def settings(self, index: int) -> dict[str, str]:
        return {k: self.knobs[k][(index // self.stride[k]) % self.radix[k]] for k in self.knobs}

    def answers(self, facet: str) -> list[tuple[str | bool, int]]:
        """Each answer to a consulted facet (a knob, or ``state:NAME``) and its points."""
        if facet.startswith("state:"):
            bits = self.state.get(facet.removeprefix("state:"), 0)
            return [(True, bits), (False, self.full & ~bits)]
        return list(self.choice[facet].items())

    def distance(self, settings: Settings) -> list[int]:
        """Bit-sliced counter: plane i holds bit i of how many knobs differ from ``settings``."""
        counter = Counter()
        for k in self.knobs:
            counter.add(self.full & ~self.choice[k][settings[k]])
        return counter.planes

    def equal(self, planes: Sequence[int], value: int) -> int:
        """The points whose bit-sliced counter equals ``value``."""
        if value >> len(planes):
            return 0
        bits = self.full
        for i, plane in enumerate(planes):
            bits &= plane if value >> i & 1 else ~plane
        return bits

    def count_at(self, planes: Sequence[int], index: int) -> int:
        return sum(((plane >> index) & 1) << i for i, plane in enumerate(planes))


@dataclass(slots=True)
class Counter:
    """A bit-sliced counter: ``planes[i]`` has bit p set when bit i of point p's count is."""

    planes: list[int] = field(default_factory=list)

    def add(self, bits: int) -> None:
        carry = bits
        for i, plane in enumerate(self.planes):
            if not carry:
                return
            self.planes[i], carry = plane ^ carry, plane & carry
        if carry:
            self.planes.append(carry)


@dataclass(slots=True)
class _Node:
    """A decision-tree node: ``facet`` is what the replays below it consulted next (None at a
    leaf, where ``kinds`` is the verdict kinds of the replay). ``path`` is the facets consulted
    before it, in order; the replay that made the node first consulted its facet while applying
    command ``step``, from the state ``prefix[step - 1]`` — the same in every replay that reaches
    the node, since everything before it depended only on the answers along ``path``."""

    facet: str | None = None
    children: dict[str | bool, _Node] = field(default_factory=dict)
    kinds: frozenset[str] | None = None
    path: tuple[str, ...] = ()
    step: int = 1
    prefix: Sequence[Step] = ()


def preset_verdicts(preset: Preset, space: Space) -> tuple[dict[str, int], int]:
    """Per verdict kind, the runnable points whose replay of ``preset`` gives it; and how many
    replays that took (one per leaf of the preset's decision tree).

    A replay for a new answer starts where the node's question was first asked (its state is
    shared, frozen data), not from the empty machine: the same trace as `engine.trace.replay`,
    without replaying the prefix every point below the node shares."""
    scenario = parse(preset.text)
    commands = scenario.commands
    lines = scenario.lines or (None,) * len(commands)
    names = reference_names(commands)
    swap = scenario.annotations.swap
    root = _Node(prefix=(Step(0, None, None, empty_state(), ()),))
    replays = 0

    def run(index: int, start: _Node) -> None:
        nonlocal replays
        settings = space.settings(index)
        policy = point_policy(settings)
        consulted = policy.consulted
        assert consulted is not None
        consulted.update(dict.fromkeys(start.path))
        steps = list(start.prefix[: start.step])
        first: dict[str, int] = {}
        state = steps[-1].state
        for i in range(start.step, len(commands) + 1):
            before = len(consulted)
            result = apply(state, commands[i - 1], policy, i, names[i - 1], swap_device=swap)
            state = result.state
            if len(consulted) > before:
                for facet in itertools.islice(consulted, before, None):
                    first[facet] = i
            steps.append(
                Step(i, commands[i - 1], lines[i - 1], state, result.events, result.observed)
            )
        kinds = frozenset(v.kind for v in derive_verdicts(steps))
        replays += 1
        keeps = policy.keeps
        node = root
        path: list[str] = []
        for facet in consulted:
            if node.facet is None:
                node.facet = facet
                node.path = tuple(path)
                node.step = first[facet]
                node.prefix = steps
            # The order of first consultation is a function of the earlier answers, so an
            # existing node must be asking the same question.
            assert node.facet == facet, (node.facet, facet)
            path.append(facet)
            value: str | bool = (
                facet.removeprefix("state:") in keeps
                if facet.startswith("state:")
                else settings[facet]
            )
            node = node.children.setdefault(value, _Node())
        node.kinds = kinds

    verdicts: dict[str, int] = {}
    if not space.runnable:
        return verdicts, 0
    with collector_paused():
        run(lowest(space.runnable), root)
        # Depth first with an explicit stack: (node, the runnable points that reach it).
        stack: list[tuple[_Node, int]] = [(root, space.runnable)]
        while stack:
            node, points = stack.pop()
            if node.kinds is not None:
                for kind in node.kinds:
                    verdicts[kind] = verdicts.get(kind, 0) | points
                continue
            assert node.facet is not None
            for value, bits in space.answers(node.facet):
                below = points & bits
                if not below:
                    continue
                if value not in node.children:
                    # Any point below answers every question on the way here as this path did,
                    # so its replay passes through this node and takes this answer.
                    run(lowest(below), node)
                stack.append((node.children[value], below))
            # The node's states are needed only to start its children's replays.
            node.prefix = ()
    return verdicts, replays


@dataclass(frozen=True, slots=True)
class Sweep:
    """Every runnable point against ``presets``: per preset, per verdict kind, its points."""

    space: Space
    presets: tuple[Preset, ...]
    verdicts: tuple[Mapping[str, int], ...]  # per preset, in ``presets`` order
    replays: int

    @property
    def points_run(self) -> int:
        return popcount(self.space.runnable)

    def counts(self, settings: Settings) -> dict[str, int]:
        """How many presets give each verdict kind at ``settings``."""
        i = self.space.index(settings)
        return {
            kind: sum(1 for v in self.verdicts if v.get(kind, 0) >> i & 1) for kind in VERDICT_KINDS
        }

    def kind_counters(self) -> dict[str, list[int]]:
        """Per verdict kind, the bit-sliced count of presets giving it, at every point."""
        out: dict[str, list[int]] = {}
        for kind in VERDICT_KINDS:
            counter = Counter()
            for v in self.verdicts:
                counter.add(v.get(kind, 0))
            out[kind] = counter.planes
        return out


def _run_chunk(names: Sequence[str]) -> tuple[list[dict[str, int]], int]:
    """A worker process's share of `run_sweep`: the presets named, by name."""
    space = Space()
    out, replays = [], 0
    for name in names:
        kinds, n = preset_verdicts(PRESETS[name], space)
        out.append(kinds)
        replays += n
    return out, replays


def run_sweep(presets: Iterable[Preset] | None = None, *, workers: int = 1) -> Sweep:
    """Every runnable point against ``presets`` (default: the library). ``workers`` > 1 splits
    the library's presets over that many processes (presets are independent; the results are
    the same whatever the split)."""
    chosen = tuple(PRESETS.values() if presets is None else presets)
    space = Space()
    library = all(PRESETS.get(p.name) is p for p in chosen)
    if workers > 1 and library and len(chosen) > 1:
        import multiprocessing
        import threading

        # fork shares the imported engine with the children at no cost; a process with other
        # threads (a web worker) must not fork, and spawns instead.
        method = "fork" if threading.active_count() == 1 else "spawn"
        # Alternate presets so each process gets a share of the long ones (the huge backings
        # come last in the library).
        shares = [[p.name for p in chosen[i::workers]] for i in range(workers)]
        with multiprocessing.get_context(method).Pool(workers) as pool:
            parts = pool.map(_run_chunk, shares)
        by_name: dict[str, Mapping[str, int]] = {}
        replays = 0
        for share, (kinds, n) in zip(shares, parts, strict=True):
            by_name.update(zip(share, kinds, strict=True))
            replays += n
        return Sweep(space, chosen, tuple(by_name[p.name] for p in chosen), replays)
    verdicts: list[Mapping[str, int]] = []
    replays = 0
    for preset in chosen:
        found, n = preset_verdicts(preset, space)
        verdicts.append(found)
        replays += n
    return Sweep(space, chosen, tuple(verdicts), replays)


# ----------------------------------------------------------------------------- analysis
def point_id(settings: Settings, base: Policy) -> str:
    """The canonical custom id of ``settings`` relative to ``base`` (the era id if equal)."""
    changes = differences(settings, base)
    if not changes:
        return base.id
    return "custom:" + ",".join([f"base={base.id}", *(f"{k}={v}" for k, v in changes)])


def _nearest(settings: Settings, eras: Mapping[str, Policy]) -> Policy:
    return min(eras.values(), key=lambda e: len(differences(settings, e)))


def latest_merged(eras: Mapping[str, Policy]) -> Policy:
    """Today's kernel: the newest era that reached mainline."""
    merged = [e for e in eras.values() if e.merged]
    return max(merged, key=lambda e: e.since)


def expected_failures(sweep: Sweep, eras: Mapping[str, Policy]) -> list[str]:
    """The presets today's kernel still gets wrong: cow.c's XFAILs (a test holds the two lists
    equal). Computed from today's era, so a fix that lands moves the preset out."""
    today = sweep.space.index(latest_merged(eras).knobs)
    return [
        p.name
        for p, v in zip(sweep.presets, sweep.verdicts, strict=True)
        if any(bits >> today & 1 for bits in v.values())
    ]


# A clean design's nearest clean changes: at most this many are named per era (the summary says
# how many there are).
SHOWN_CHANGES = 10


def _smallest(space: Space, clean: int, planes: Sequence[int]) -> tuple[int, int] | None:
    """The fewest knobs changed (``planes`` counts them per point) to reach ``clean``, and the
    clean points that far; None when nothing is clean."""
    if not clean:
        return None
    for d in range(len(space.knobs) + 1):
        at = clean & space.equal(planes, d)
        if at:
            return d, at
    raise AssertionError("a clean point is some number of knobs away")


def _changes(settings: Settings, era: Policy) -> list[str]:
    return [f"{k}={v}" for k, v in differences(settings, era)]


def cubes(space: Space, bits: int) -> list[dict[str, list[str]]]:
    """``bits`` as a union of disjoint cubes: per cube, the allowed choices of each knob it
    restricts (a knob left out takes any choice). Choices whose sub-spaces hold the same points
    share a cube, so a set that does not depend on a knob never names it."""
    names = list(space.knobs)
    out: list[dict[str, list[str]]] = []

    def walk(sub: int, depth: int, fixed: dict[str, list[str]]) -> None:
        if depth == len(names):
            out.append(dict(fixed))
            return
        knob = names[depth]
        width = space.stride[knob]
        ones = (1 << width) - 1
        slices: dict[int, list[str]] = {}
        for i, choice in enumerate(space.knobs[knob]):
            part = (sub >> (i * width)) & ones
            if part:
                slices.setdefault(part, []).append(choice)
        for part, choices in slices.items():
            here = fixed if len(choices) == space.radix[knob] else fixed | {knob: choices}
            if part == ones:
                out.append(dict(here))
            else:
                walk(part, depth + 1, here)

    if bits:
        walk(bits, 0, {})
    return out


def outcome_groups(
    sweep: Sweep, counters: Mapping[str, list[int]]
) -> list[tuple[dict[str, int], int]]:
    """The runnable points split by their verdict counts (every point of a group has the same
    count of presets for every kind): (counts, points), fewest verdicts first."""
    groups = [sweep.space.runnable]
    for planes in counters.values():
        for plane in planes:
            split = []
            for g in groups:
                on = g & plane
                off = g ^ on
                split += [x for x in (on, off) if x]
            groups = split
    space = sweep.space
    out: list[tuple[dict[str, int], int]] = []
    for g in groups:
        i = lowest(g)
        out.append(({k: space.count_at(counters[k], i) for k in VERDICT_KINDS}, g))
    out.sort(key=lambda cg: (sum(cg[0].values()), tuple(cg[0].values()), -popcount(cg[1])))
    return out


def knobs_that_matter(sweep: Sweep, counters: Mapping[str, list[int]]) -> dict[str, dict[str, int]]:
    """Per verdict kind, per knob: how many groups of runnable points that differ only in that
    knob disagree on how many presets give that kind. Zero (left out) means the knob never
    matters for that verdict."""
    space = sweep.space
    out: dict[str, dict[str, int]] = {kind: {} for kind in VERDICT_KINDS}
    for knob in space.knobs:
        width = space.stride[knob]
        # Each choice's points moved onto the choice-0 positions: one bit per group.
        run = [
            (space.runnable & space.choice[knob][c]) >> (i * width)
            for i, c in enumerate(space.knobs[knob])
        ]
        for kind in VERDICT_KINDS:
            disagree = 0
            for plane in counters[kind]:
                ones = zeros = 0
                for i, c in enumerate(space.knobs[knob]):
                    shifted = (plane & space.choice[knob][c]) >> (i * width)
                    ones |= shifted & run[i]
                    zeros |= run[i] & ~shifted
                disagree |= ones & zeros
            if disagree:
                out[kind][knob] = popcount(disagree)
    return {kind: knobs for kind, knobs in out.items() if knobs}


def _backing_summary(
    sweep: Sweep,
    presets: Sequence[int],
    xfail: set[str],
    eras: Mapping[str, Policy],
    distances: Mapping[str, list[int]],
) -> dict[str, Any]:
    """The answer for one backing (``presets`` are indices into the sweep's presets)."""
    space = sweep.space
    bad = 0
    for i in presets:
        if sweep.presets[i].name not in xfail:
            for bits in sweep.verdicts[i].values():
                bad |= bits
    clean = space.runnable & ~bad
    smallest: dict[str, list[str]] = {}
    smallest_designs: dict[str, int] = {}
    for era in eras.values():
        found = _smallest(space, clean, distances[era.id])
        if found is None:
            continue
        _d, at = found
        smallest[era.id] = _changes(space.settings(lowest(at)), era)
        smallest_designs[era.id] = popcount(at)
    era_counts = {}
    for era in eras.values():
        at = space.index(era.knobs)
        era_counts[era.id] = {
            kind: sum(
                1
                for i in presets
                if sweep.presets[i].name not in xfail and sweep.verdicts[i].get(kind, 0) >> at & 1
            )
            for kind in VERDICT_KINDS
        }
    return {
        "presets": len(presets),
        "designs": popcount(space.runnable),
        "clean": popcount(clean),
        "eras_clean": [e.id for e in eras.values() if clean >> space.index(e.knobs) & 1],
        "smallest_change": smallest,
        "smallest_change_designs": smallest_designs,
        "expected_failures": [
            sweep.presets[i].name for i in presets if sweep.presets[i].name in xfail
        ],
        "eras": era_counts,
        "clean_designs": cubes(space, clean),
    }


def clean_sets(sweep: Sweep, eras: Mapping[str, Policy] | None = None) -> dict[str, int]:
    """Per backing and for "all": the runnable points with no verdict on any of its presets
    but the expected failures."""
    eras = POLICIES if eras is None else eras
    xfail = set(expected_failures(sweep, eras))
    bad: dict[str, int] = {}
    for p, v in zip(sweep.presets, sweep.verdicts, strict=True):
        if p.name in xfail:
            continue
        for bits in v.values():
            bad[p.backing] = bad.get(p.backing, 0) | bits
            bad["all"] = bad.get("all", 0) | bits
    backings = [b for b in BACKINGS if any(p.backing == b for p in sweep.presets)]
    return {b: sweep.space.runnable & ~bad.get(b, 0) for b in [*backings, "all"]}


def summary(sweep: Sweep, eras: Mapping[str, Policy]) -> dict[str, dict[str, Any]]:
    """The answer per backing and for all presets together (the "summary" of the JSON)."""
    xfail = set(expected_failures(sweep, eras))
    distances = {e.id: sweep.space.distance(e.knobs) for e in eras.values()}
    backings = [b for b in BACKINGS if any(p.backing == b for p in sweep.presets)]
    out: dict[str, dict[str, Any]] = {
        b: _backing_summary(
            sweep,
            [i for i, p in enumerate(sweep.presets) if p.backing == b],
            xfail,
            eras,
            distances,
        )
        for b in backings
    }
    out["all"] = _backing_summary(sweep, range(len(sweep.presets)), xfail, eras, distances)
    return out


def august_2020(sweep: Sweep, eras: Mapping[str, Policy], xfail: set[str]) -> dict[str, Any]:
    """What the engine says about the thread: from 5.8 (and under 5.9's page_count rule), each
    answer to ``gup_read`` with the rest kept, and the designs nearest to 5.8 with neither a
    leak nor a userfault on any preset but the expected failures."""
    era = eras["5.8"]
    kept = [i for i, p in enumerate(sweep.presets) if p.name not in xfail]

    def counts(settings: Settings) -> dict[str, int]:
        at = sweep.space.index(settings)
        return {
            kind: sum(1 for i in kept if sweep.verdicts[i].get(kind, 0) >> at & 1)
            for kind in VERDICT_KINDS
        }

    loud = 0
    for i in kept:
        loud |= sweep.verdicts[i].get("leak", 0) | sweep.verdicts[i].get("userfault", 0)
    quiet = sweep.space.runnable & ~loud
    found = _smallest(sweep.space, quiet, sweep.space.distance(era.knobs))
    nearest = [] if found is None else list(set_bits(found[1], SHOWN_CHANGES))
    choices = [c.id for c in KNOBS["gup_read"].choices]
    return {
        "from": era.id,
        "gup_read": {c: counts({**era.knobs, "gup_read": c}) for c in choices},
        "under_page_count": {
            "from": "5.9",
            "gup_read": {c: counts({**eras["5.9"].knobs, "gup_read": c}) for c in choices},
        },
        "no_leak_no_userfault_nearest": [point_id(sweep.space.settings(i), era) for i in nearest],
        "no_leak_no_userfault_designs": 0 if found is None else popcount(found[1]),
        "changes_needed": None if found is None else found[0],
    }


def sweep_json(sweep: Sweep, eras: Mapping[str, Policy] | None = None) -> dict[str, Any]:
    """The sweep as `cowlab lab sweep --json` prints it: reproducible (no clock, stable order).

    Designs are grouped by outcome: ``outcomes`` lists each distinct row of verdict counts once,
    with how many designs give it and those designs as cubes (docs/lab.md)."""
    eras = POLICIES if eras is None else eras
    space = sweep.space
    counters = sweep.kind_counters()
    xfail = set(expected_failures(sweep, eras))
    answer = summary(sweep, eras)
    overall = answer["all"]
    distances = {e.id: space.distance(e.knobs) for e in eras.values()}
    smallest_ids: dict[str, list[str]] = {}
    bad = 0
    for p, v in zip(sweep.presets, sweep.verdicts, strict=True):
        if p.name not in xfail:
            for bits in v.values():
                bad |= bits
    clean_bits = space.runnable & ~bad
    for era in eras.values():
        found = _smallest(space, clean_bits, distances[era.id])
        smallest_ids[era.id] = (
            []
            if found is None
            else [point_id(space.settings(i), era) for i in set_bits(found[1], SHOWN_CHANGES)]
        )
    return {
        "knobs": dict(space.knobs),
        "kinds": list(VERDICT_KINDS),
        "presets": [p.name for p in sweep.presets],
        "backings": {p.name: p.backing for p in sweep.presets},
        "expected_failures": sorted(xfail, key=[p.name for p in sweep.presets].index),
        "points_total": space.size,
        "points_refused": space.size - popcount(space.runnable),
        "points_run": popcount(space.runnable),
        "replays": sweep.replays,
        "eras": {e.id: sweep.counts(e.knobs) for e in eras.values()},
        "summary": answer,
        "clean_points": overall["clean"],
        "clean": overall["clean_designs"],
        "smallest_clean_change": smallest_ids,
        "knobs_that_matter": knobs_that_matter(sweep, counters),
        "august_2020": august_2020(sweep, eras, xfail),
        "outcomes": [
            {"counts": c, "designs": popcount(bits), "cubes": cubes(space, bits)}
            for c, bits in outcome_groups(sweep, counters)
        ],
    }
