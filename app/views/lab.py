"""The policy lab's pages (DESIGN.md §11): what `/lab` and `/lab/sweep` show, and the
``custom=`` columns of `/compare` and `/presets`.

The lab page is a point of the knob space: the knobs as controls with the kernel story of every
choice, the presets grid for the point beside its nearest eras, and for each knob that differs
from the nearest era what that one change fixed or broke. The point is named by those
differences, and its link (``/lab?policy=custom:…``) is the canonical id.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from app.views.lab_answer import (
    BACKING_NAMES,
    backing_sentences,
    debate_sentences,
    modelling_notes,
)
from app.views.lab_store import StoredSweep, load_or_compute
from app.views.links import LinkError, make_link
from app.views.presets import Cell, PresetRow, RowGroup, build_grid, group_rows
from app.views.runs import RunMemo, run
from app.views.sim import Era
from engine.policies import POLICIES, Policy, UnknownPolicy, get_policy
from engine.policies.custom import CustomPolicy, differences, is_custom, nearest_eras
from engine.policies.knobs import KNOBS, STATES
from engine.presets import PRESETS

# Each custom column replays every preset (or the scenario) once more: four keep the worst
# `/compare` and `/presets` request within DESIGN.md §7's budget.
MAX_CUSTOM_COLUMNS = 4


def custom_columns(values: Sequence[str] | None) -> tuple[str, ...]:
    """The canonical ids of repeated ``custom=`` parameters; `LinkError` for too many or for
    an era id (eras go in ``policies=``), `UnknownPolicy` for a point that cannot be built."""
    if any(not v.strip() for v in values or ()):
        # Refused rather than skipped: no form sends one, and a schema fuzzer's negative cases
        # (a value that is not a string) arrive as empty ones.
        raise LinkError(
            "custom", "an empty value; give custom:base=ID,KNOB=CHOICE,… or leave it out"
        )
    named = tuple(dict.fromkeys(v.strip() for v in values or ()))
    if len(named) > MAX_CUSTOM_COLUMNS:
        raise LinkError(
            "custom", f"at most {MAX_CUSTOM_COLUMNS} custom columns, this link has {len(named)}"
        )
    for value in named:
        if not is_custom(value):
            raise LinkError(
                "custom",
                f"{value[:40]!r} is not custom:base=ID,KNOB=CHOICE,…; eras go in policies=",
            )
    return tuple(dict.fromkeys(get_policy(v).id for v in named))


def lab_link(policy_id: str) -> str:
    return "/lab?policy=" + quote_plus(policy_id, safe=":=,")


# ------------------------------------------------------------------------------ the lab page
@dataclass(frozen=True, slots=True)
class ChoiceView:
    id: str
    label: str
    kernel: str
    commit: str
    why: str
    eras: str  # the eras that made this choice, "" for none
    selected: bool


@dataclass(frozen=True, slots=True)
class KnobControl:
    id: str
    title: str
    question: str
    choices: tuple[ChoiceView, ...]
    current: ChoiceView
    changed: bool  # differs from the nearest era


@dataclass(frozen=True, slots=True)
class Effect:
    """One changed knob against the nearest era, the other knobs kept: what it changed."""

    knob: str
    title: str
    choice: str
    era_choice: str
    fixed: tuple[tuple[str, str], ...]  # (preset title, verdict kinds this change removed)
    broke: tuple[tuple[str, str], ...]  # (preset title, verdict kinds this change added)
    alone: str  # why it cannot be judged alone (a refused combination), "" otherwise


@dataclass(frozen=True, slots=True)
class Lab:
    point: str  # the canonical id (an era id when the knobs are an era's)
    name: str  # the point by its differences from the nearest era
    base: str
    bases: tuple[str, ...]
    knobs: tuple[KnobControl, ...]
    nearest: str
    keeps: tuple[str, ...]  # state the point keeps, in words
    columns: tuple[Era, ...]
    rows: tuple[PresetRow, ...]
    groups: tuple[RowGroup, ...]  # the rows by backing, as the grid shows them
    effects: tuple[Effect, ...]
    share: str
    simulator: str
    compare: str
    error: str  # a refused or unknown combination, "" when the point runs


def settings_from_query(query: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The base era and the knob settings a lab request asks for: the form's ``base`` and
    KNOB fields, else ``policy`` (an era or a custom id), else the newest era. Raises
    `UnknownPolicy` for what cannot be read."""
    named = {k: query[k] for k in KNOBS if query.get(k)}
    if query.get("was") and query.get("was") != query.get("base"):
        # The base select changed: start over from the new base's knobs.
        named = {}
    if query.get("base") or named:
        base = get_policy(query.get("base") or _newest())
        if isinstance(base, CustomPolicy) or query.get("base") == "latest":
            raise UnknownPolicy("base must be an era id, e.g. base=5.9")
        for knob, choice in named.items():
            KNOBS[knob].choice(choice)
        return base.id, {**base.knobs, **named}
    policy = get_policy(query.get("policy") or _newest())
    base_id = policy.base.id if isinstance(policy, CustomPolicy) else policy.id
    return base_id, dict(policy.knobs)


def _newest() -> str:
    return get_policy("latest").id


def point_id(base: str, settings: Mapping[str, str]) -> str:
    changes = differences(settings, POLICIES[base])
    if not changes:
        return base
    return "custom:" + ",".join([f"base={base}", *(f"{k}={v}" for k, v in changes)])


def build_lab(base: str, settings: Mapping[str, str], memo: RunMemo | None) -> Lab:
    """The lab page for ``settings``; a refused point still shows its controls and the error,
    with the grid of its nearest eras, so the user can change a knob back."""
    near = nearest_eras(settings, POLICIES)
    nearest = POLICIES[base] if POLICIES[base] in near else near[0]
    error = ""
    point = point_id(base, settings)
    try:
        policy = get_policy(point)
    except UnknownPolicy as exc:
        error = str(exc)
        policy = nearest
    diffs = dict(differences(settings, nearest))
    knobs = tuple(_control(k, settings[k], k in diffs) for k in KNOBS)
    compared = [nearest.id] if error else [e.id for e in _neighbours(settings, policy)]
    ids = compared if error else [*compared, policy.id]
    columns, rows = build_grid(memo, ids)
    effects = () if error else tuple(_effects(settings, nearest, policy, base, memo))
    if error:
        name = "a refused combination"
    elif not diffs and point == nearest.id:
        name = f"{nearest.id} — {nearest.label}"
    elif not diffs:
        name = f"same knobs as {nearest.id} ({nearest.label})"
    else:
        name = f"{nearest.id} + " + " + ".join(f"{k}={v}" for k, v in diffs.items())
    sim_text = run(PRESETS["cve-2020-29374"].text, policy.id, memo).link_text
    return Lab(
        point=point,
        name=name,
        base=base,
        bases=tuple(POLICIES),
        knobs=knobs,
        nearest=nearest.id,
        keeps=tuple(STATES[s] for s in sorted(policy.keeps)) if not error else (),
        columns=columns,
        rows=rows,
        groups=group_rows(rows),
        effects=effects,
        share=lab_link(point),
        simulator=make_link("/", sim_text, policy=point),
        compare=make_link(
            "/compare",
            sim_text,
            policies=tuple(compared),
            customs=(point,) if is_custom(point) else (),
        ),
        error=error,
    )


def _neighbours(settings: Mapping[str, str], policy: Policy) -> list[Policy]:
    """The eras to show beside the point: the nearest ones that are not the point itself (at
    most three), so an era point is shown beside the eras one decision away."""
    ranked = sorted(POLICIES.values(), key=lambda e: len(differences(settings, e)))
    others = [e for e in ranked if e.id != policy.id]
    best = len(differences(settings, others[0]))
    return [e for e in others if len(differences(settings, e)) == best][:3]


def _control(knob_id: str, current: str, changed: bool) -> KnobControl:
    knob = KNOBS[knob_id]
    views = tuple(
        ChoiceView(
            c.id,
            c.label,
            c.kernel,
            c.commit,
            c.why,
            ", ".join(e.id for e in POLICIES.values() if e.knobs[knob_id] == c.id),
            c.id == current,
        )
        for c in knob.choices
    )
    return KnobControl(
        knob.id,
        knob.title,
        knob.question,
        views,
        next(v for v in views if v.selected),
        changed,
    )


def _kinds(policy_id: str, memo: RunMemo | None) -> dict[str, frozenset[str]]:
    return {
        p.title: frozenset(v.kind for v in run(p.text, policy_id, memo).trace.verdicts)
        for p in PRESETS.values()
    }


def _effects(
    settings: Mapping[str, str],
    era: Policy,
    policy: Policy,
    base: str,
    memo: RunMemo | None,
) -> list[Effect]:
    ours = _kinds(policy.id, memo)
    out = []
    for knob, choice in differences(settings, era):
        reverted = {**settings, knob: era.knobs[knob]}
        try:
            theirs = _kinds(get_policy(point_id(base, reverted)).id, memo)
        except UnknownPolicy as exc:
            out.append(Effect(knob, KNOBS[knob].title, choice, era.knobs[knob], (), (), str(exc)))
            continue
        fixed = tuple(
            (t, ", ".join(sorted(theirs[t] - ours[t]))) for t in ours if theirs[t] - ours[t]
        )
        broke = tuple(
            (t, ", ".join(sorted(ours[t] - theirs[t]))) for t in ours if ours[t] - theirs[t]
        )
        out.append(Effect(knob, KNOBS[knob].title, choice, era.knobs[knob], fixed, broke, ""))
    return out


def custom_column_cells(policy_id: str, memo: RunMemo | None = None) -> tuple[Cell, ...]:
    """One custom column of the presets grid (what `cowlab bench` times as custom_column_ms)."""
    _, rows = build_grid(memo, [policy_id])
    return tuple(row.cells[0] for row in rows)


# --------------------------------------------------------------------------- the sweep page
class SweepJob:
    """The sweep behind `/lab` and `/lab/sweep`: computed once per deployment and stored where
    every worker reads it (`app.views.lab_store`); this worker loads it (or waits for whichever
    worker computes it) in a thread of its own, while the pages say how long that has been
    running — a request never waits for it, and the event loop never sweeps nor encodes."""

    def __init__(self, directory: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._directory = directory
        self.stored: StoredSweep | None = None
        self.error: str = ""
        self.seconds = 0.0

    @property
    def doc(self) -> Mapping[str, Any] | None:
        return None if self.stored is None else self.stored.doc

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._started = time.monotonic()
                self._thread = threading.Thread(target=self._run, name="cowlab-sweep", daemon=True)
                self._thread.start()

    def running_for(self) -> float:
        return time.monotonic() - self._started

    def wait(self, timeout: float | None = None) -> bool:
        self.start()
        assert self._thread is not None
        self._thread.join(timeout)
        return self.stored is not None

    def _run(self) -> None:
        try:
            stored = load_or_compute(self._directory)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            self.error = f"the sweep could not be computed: {exc}"
            return
        self.seconds = time.monotonic() - self._started
        self.stored = stored


@dataclass(frozen=True, slots=True)
class EraRow:
    era: str
    counts: tuple[int, ...]
    smallest: tuple[tuple[str, str], ...]  # (name, lab link) of the smallest clean changes


@dataclass(frozen=True, slots=True)
class PointRow:
    name: str  # by its differences from the nearest era
    href: str  # its lab page
    counts: tuple[int, ...]  # per shown verdict kind


@dataclass(frozen=True, slots=True)
class Filter:
    """Which designs of the sweep the page lists: some knobs fixed, maybe only clean ones."""

    knobs: tuple[tuple[str, tuple[str, ...], str], ...]  # (knob, choices, chosen or "")
    clean: bool
    matching: int
    rows: tuple[PointRow, ...]


@dataclass(frozen=True, slots=True)
class SweepPage:
    doc: Mapping[str, Any]
    kinds: tuple[str, ...]
    eras: tuple[EraRow, ...]
    matter: tuple[tuple[str, tuple[str, ...]], ...]  # per knob: the counts per kind, "" for 0
    august: tuple[tuple[str, int, int, int], ...]  # gup_read choice, leak, userfault, stale
    august_nearest: tuple[tuple[str, str], ...]
    filter: Filter
    answer: Answer


# The design list shows this many rows; the filter narrows it, the JSON has them all.
SHOWN_POINTS = 40


def build_filter(stored: StoredSweep, query: Mapping[str, str], kinds: Sequence[str]) -> Filter:
    """The designs matching the fixed knobs of ``query`` (unknown values are ignored), in
    sweep order, the first `SHOWN_POINTS` of them with their verdict counts. "Clean" is the
    summary's: no verdict on any preset but the expected failures."""
    knobs = stored.space.knobs
    fixed = {k: query[k] for k in knobs if query.get(k) in knobs[k]}
    clean = query.get("clean") == "1"
    bits = stored.matching(fixed, clean)
    rows = []
    for settings, counts in stored.rows(bits, SHOWN_POINTS):
        era = min(POLICIES.values(), key=lambda e: len(differences(settings, e)))
        pid = point_id(era.id, settings)
        rows.append(PointRow(_short(pid, era.id), lab_link(pid), tuple(counts[k] for k in kinds)))
    return Filter(
        tuple((k, tuple(knobs[k]), fixed.get(k, "")) for k in knobs),
        clean,
        stored.count(bits),
        tuple(rows),
    )


def build_sweep_page(stored: StoredSweep, query: Mapping[str, str] | None = None) -> SweepPage:
    doc = stored.doc
    kinds = tuple(
        k
        for k in doc["kinds"]
        if any(c[k] for c in doc["eras"].values()) or k in doc["knobs_that_matter"]
    )
    eras = tuple(
        EraRow(
            era,
            tuple(counts[k] for k in kinds),
            tuple((_short(i, era), lab_link(i)) for i in doc["smallest_clean_change"][era][:4]),
        )
        for era, counts in doc["eras"].items()
    )
    matter = tuple(
        (knob, tuple(str(doc["knobs_that_matter"].get(k, {}).get(knob, "")) for k in kinds))
        for knob in doc["knobs"]
    )
    aug = doc["august_2020"]
    return SweepPage(
        doc=doc,
        kinds=kinds,
        eras=eras,
        matter=matter,
        august=tuple(
            (choice, c["leak"], c["userfault"], c["stale"]) for choice, c in aug["gup_read"].items()
        ),
        august_nearest=tuple(
            (_short(i, aug["from"]), lab_link(i)) for i in aug["no_leak_no_userfault_nearest"]
        ),
        filter=build_filter(stored, query or {}, kinds),
        answer=sweep_answer(doc),
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """The sweep's answer in sentences, per backing, and the August 2020 thread."""

    backings: tuple[tuple[str, tuple[str, ...]], ...]  # (heading, sentences)
    debate: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SweepAnswerView:
    """What `_sweep_answer.html` reads on `/lab` (``sweep.answer``, as on `/lab/sweep`)."""

    answer: Answer


def sweep_answer(doc: Mapping[str, Any]) -> Answer:
    return Answer(
        tuple(
            (BACKING_NAMES.get(b, b), tuple(backing_sentences(b, answer)))
            for b, answer in doc["summary"].items()
        ),
        tuple(debate_sentences(doc)),
        tuple(modelling_notes()),
    )


def _short(policy_id: str, era: str) -> str:
    """``custom:base=5.9,a=b,c=d`` as ``5.9 + a=b + c=d``."""
    if not is_custom(policy_id):
        return policy_id
    parts = policy_id.removeprefix("custom:").split(",")[1:]
    return " + ".join([era, *parts])
