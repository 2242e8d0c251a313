"""The main page's view model: everything `index.html` draws for one link.

The route decodes the link and calls `build_sim`; the template only reads the result. Data that
depends on the step (the diagram, the table, the buttons, the narration) is separate from data
that depends only on the scenario and policy (verdicts, editor, policy story), which is what lets
a step request re-render only the stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote_plus

from app.picture.layout import Focus, compute_layout, focus_of
from app.picture.scene import RefMark, SceneOptions, build_scene
from app.picture.shapes import Scene
from app.views.actions import ActionGroup, fresh_names, suggest_actions
from app.views.decisions import at_risk_marks, frame_decisions, split_origins
from app.views.links import View, at_step, encode_scenario, link_prefix
from app.views.runs import EventView, Run
from app.views.tables import StateTable, state_table
from engine.policies import POLICIES, Policy, get_policy
from engine.syntax import canonical_prefix
from engine.trace import Trace
from engine.verdicts import Verdict

TIMELINE_ALL = 80  # up to this many steps the timeline lists them all
TIMELINE_AROUND = 30  # beyond, this many on each side of the current step


class Linker:
    """Builds the links of one page: same scenario, policy and view, another step.

    The scenario is encoded once per page (the costly part of a link); each of the page's
    dozens of links is that encoding plus its path, policy and step.
    """

    __slots__ = ("_bare", "_prefix", "_query", "_run", "path", "policy", "texts", "view")

    def __init__(self, path: str, run: Run, policy: str, view: View) -> None:
        self.path = path
        self.policy = policy
        self.view = view
        self._run = run
        self.texts = run.texts
        self._query = link_prefix("", run.link_text)  # "?v=1&s=…"
        self._bare = path + self._query
        self._prefix = self._link_prefix(path, policy)

    def _link_prefix(self, path: str, policy: str) -> str:
        """`link_prefix(path, text, policy=policy)`, from the scenario encoded once."""
        return f"{path}{self._query}&policy={quote_plus(policy)}"

    def step(self, k: int) -> str:
        return at_step(self._prefix, k, self.view)

    def policy_link(self, policy_id: str, k: int) -> str:
        # Policy ids are plain tokens (POLICIES keys): no escaping needed after the prefix.
        return at_step(f"{self._bare}&policy={policy_id}", k, self.view)

    def prefix(self, upto: int) -> str:
        """The link text of the scenario's first ``upto`` commands (what an action extends),
        with the comments and annotations that belong to them (a lesson keeps its goal)."""
        if self._run.scenario.remarks:
            return canonical_prefix(self._run.scenario, upto)
        return ";".join(self.texts[1 : upto + 1])

    def elsewhere(self, path: str, k: int | None, view: View | None = None) -> str:
        return at_step(self._link_prefix(path, self.policy), k, view or self.view)


@dataclass(frozen=True, slots=True)
class VerdictView:
    kind: str
    step: int
    text: str
    subject: str
    href: str


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One step in the timeline (the template marks the current one)."""

    index: int
    command: str
    events: tuple[EventView, ...]
    observed: str
    verdicts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Era:
    """A policy era as every page describes it (the picker, the presets grid, a comparison)."""

    id: str
    label: str
    kernels: str
    story: str
    merged: bool

    @classmethod
    def of(cls, policy: Policy) -> Era:
        merged = bool(getattr(policy, "merged", True))
        return cls(policy.id, str(policy.label), str(policy.kernels), str(policy.story), merged)


@dataclass(frozen=True, slots=True)
class PolicyChoice:
    era: Era
    href: str
    current: bool


@dataclass(frozen=True, slots=True)
class StepNav:
    """The step bar's links (None where there is no such step), of any page that steps."""

    index: int
    last: int
    first: str | None
    prev: str | None
    next: str | None
    end: str | None

    @classmethod
    def at(cls, k: int, last: int, link: Callable[[int], str]) -> StepNav:
        return cls(
            index=k,
            last=last,
            first=link(0) if k > 0 else None,
            prev=link(k - 1) if k > 0 else None,
            next=link(k + 1) if k < last else None,
            end=link(last) if k < last else None,
        )


class Stage(NamedTuple):
    """What changes from step to step. A NamedTuple: one is made for every step, in a third of
    the time a frozen dataclass of twenty fields takes."""

    nav: StepNav
    title: str  # the page's title at this step
    policy: str  # the era's id, as the narration names it
    command: str
    events: tuple[EventView, ...]
    observed: str
    verdicts: tuple[VerdictView, ...]  # verdicts found at this step
    scene: Scene
    focus_note: str  # for a large scenario: what the picture leaves out
    huge: bool  # the picture draws a large folio: the legend tells PMD from PTE lines
    table: StateTable
    actions: tuple[ActionGroup, ...]
    actions_base: str  # the scenario up to this step, as `s`: the actions form sends it with `add`
    s_value: str  # the scenario as `s` (readable or z:), for the timeline's form
    actions_truncate: int  # commands after the current step an action would replace
    timeline: tuple[TimelineEntry, ...]  # the steps around this one (all, for a short run)
    timeline_cut: tuple[bool, bool]  # steps left out before / after the shown window
    share: str
    export: str
    export_png: str
    export_c: str  # the scenario as a C program (DESIGN.md §12)
    export_html: str  # the scenario as one file that steps offline (issue 23)
    realcode: str  # the system calls of this step, from the same generator
    embed: str
    present_toggle: str


@dataclass(frozen=True, slots=True)
class Sim:
    """The whole simulator region."""

    text: str  # the scenario, one command per line, for the editor
    policy: PolicyChoice
    policies: tuple[PolicyChoice, ...]
    verdicts: tuple[VerdictView, ...]
    stage: Stage
    compare: str
    view: View


def verdict_views(
    verdicts: Iterable[Verdict], link: Callable[[int], str]
) -> tuple[VerdictView, ...]:
    """``verdicts``, each with ``link`` to the step that found it."""
    return tuple(VerdictView(v.kind, v.step, v.text, v.subject, link(v.step)) for v in verdicts)


def ref_marks(trace: Trace, k: int) -> dict[str, RefMark]:
    """Which references are drawn broken at step ``k``, and why.

    A reference is *stale* when its owner still maps the page but through another frame (the
    kernel's "wrong COW": the owner's writes no longer reach the device, nor the device's the
    owner). A verdict the engine found earlier about the same reference keeps it marked — a
    *leak* (another process's write reached it) is only visible in the verdicts, not the state.
    """
    state = trace.steps[k].state
    marks: dict[str, RefMark] = {}
    for ref in state.refs.values():
        owner = state.procs.get(ref.owner)
        pte = owner.ptes.get(ref.page) if owner else None
        if pte is not None and pte.pfn is not None and pte.pfn != ref.pfn:
            marks[ref.name] = RefMark("stale", f"{ref.owner} maps pfn {pte.pfn}")
    for name, mark in at_risk_marks(trace, k, frame_decisions(trace, k)).items():
        marks.setdefault(name, mark)
    for verdict in trace.verdicts:
        held = state.refs.get(verdict.subject)
        # `held.step <= verdict.step`: the verdict is about this reference, not an earlier one
        # that had the same name and was released.
        if held is None or verdict.step > k or held.step > verdict.step:
            continue
        if verdict.kind == "leak":
            marks[held.name] = RefMark("leaking", f"foreign write seen at step {verdict.step}")
        elif verdict.kind == "stale":
            marks.setdefault(held.name, RefMark("stale", f"diverged at step {verdict.step}"))
    return marks


def proc_notes(trace: Trace, k: int) -> dict[str, str]:
    """Verdicts found so far about processes (a read that observed what it must not)."""
    notes: dict[str, str] = {}
    for verdict in trace.verdicts:
        if verdict.step <= k and verdict.subject in trace.steps[k].state.procs:
            notes[verdict.subject] = f"{verdict.kind} at step {verdict.step}"
    return notes


@dataclass(frozen=True, slots=True)
class Picture:
    scene: Scene
    focus: Focus | None  # set when the scenario is too large to draw whole
    split_from: Mapping[int, tuple[int, str]]  # small pages copied out of a large folio


def _subjects(command: object) -> list[str]:
    """The process, child and reference names a command names itself."""
    names = [getattr(command, attr, None) for attr in ("proc", "child", "ref", "name")]
    return [name for name in names if isinstance(name, str)]


def picture(run: Run, k: int, title: str, marks: Mapping[str, RefMark] | None = None) -> Picture:
    """Step ``k``'s diagram: the whole trace's stable layout, or, for a scenario too large to
    draw whole, a layout of what the step touched (`focus_of`). ``marks``: `ref_marks` of the
    step, when the caller has them already."""
    trace = run.trace
    step = trace.steps[k]
    prev = trace.steps[k - 1].state if k > 0 else None
    layout = run.layout
    focus = None
    if not run.fits:
        focus = focus_of(step.state, prev, step.events, _subjects(step.command))
        layout = compute_layout([s for s in (prev, step.state) if s is not None], focus)
    # Only a trace with a large folio can have split one (and the scan costs k steps).
    split_from = split_origins(trace, k) if run.layout.folios or layout.folios else {}
    scene = build_scene(
        layout,
        step.state,
        prev,
        SceneOptions(
            has_exclusive_bit=bool(run.policy.has_exclusive_bit),
            ref_marks=ref_marks(trace, k) if marks is None else marks,
            proc_notes=proc_notes(trace, k),
            title=title,
            decisions=frame_decisions(trace, k),
            split_from=split_from,
        ),
    )
    return Picture(scene, focus, split_from)


def timeline_is_windowed(run: Run) -> bool:
    """Whether the timeline shows only the steps around the current one (a long scenario)."""
    return run.last > TIMELINE_ALL


def timeline_entries(run: Run, lo: int, hi: int) -> tuple[TimelineEntry, ...]:
    """The timeline's entries of steps ``lo`` to ``hi``."""
    kinds_at: dict[int, list[str]] = {}
    for v in run.trace.verdicts:
        kinds_at.setdefault(v.step, []).append(v.kind)
    return tuple(
        TimelineEntry(
            index=s.index,
            command=run.texts[s.index] or "empty machine",
            events=run.events[s.index],
            observed=s.observed.describe() if s.observed is not None else "",
            verdicts=tuple(kinds_at.get(s.index, ())),
        )
        for s in run.trace.steps[lo : hi + 1]
    )


def build_stage(
    run: Run, k: int, linker: Linker, offline: bool = False, timeline: bool = True
) -> Stage:
    """Step ``k``'s stage; ``offline``: for the offline file, which has no server to send an
    action to (no action buttons: they were most of the work of its steps) and draws every
    step in its timeline once, however long, rather than a window with every step.
    ``timeline``: False when nothing draws the timeline's entries (a step answer of a short
    scenario moves only the mark of the timeline already on the page)."""
    trace = run.trace
    last = run.last
    step = trace.steps[k]
    prev = trace.steps[k - 1].state if k > 0 else None
    policy = run.policy
    has_bit = bool(policy.has_exclusive_bit)
    marks = ref_marks(trace, k)
    pic = picture(
        run, k, f"Step {k} of {last} under {policy.id}: {run.texts[k] or 'empty machine'}", marks
    )
    focus = pic.focus
    fresh = fresh_names(run.names, run.pages)
    actions = () if offline else suggest_actions(step.state, fresh, focus)
    verdicts_here = verdict_views((v for v in trace.verdicts if v.step == k), linker.step)
    # A long scenario's timeline shows the steps around this one; the others are a click on
    # the step bar away, and sending all their narration with every step would cost more
    # than the rest of the page.
    lo, hi = 0, last
    if timeline_is_windowed(run) and not offline:
        lo, hi = max(0, k - TIMELINE_AROUND), min(last, k + TIMELINE_AROUND)
    entries = timeline_entries(run, lo, hi) if timeline else ()
    nav = StepNav.at(k, last, linker.step)
    return Stage(
        nav=nav,
        title=f"cowlab — step {k} under {policy.id}",
        policy=policy.id,
        command=run.texts[k] or "empty machine",
        events=run.events[k],
        observed=step.observed.describe() if step.observed is not None else "",
        verdicts=verdicts_here,
        scene=pic.scene,
        focus_note=focus.note if focus else "",
        huge=bool(run.layout.folios),
        table=state_table(step.state, prev, has_bit, marks, focus, pic.split_from),
        actions=actions,
        actions_base=encode_scenario(linker.prefix(k)),
        s_value=encode_scenario(run.link_text),
        actions_truncate=last - k,
        timeline=entries,
        timeline_cut=(lo > 0, hi < last),
        share=linker.step(k),
        export=linker.elsewhere("/export.svg", k, "normal"),
        export_png=linker.elsewhere("/export.png", k, "normal"),
        export_c=linker.elsewhere("/export.c", None, "normal"),
        export_html=linker.elsewhere("/export.html", k, "normal"),
        realcode=linker.elsewhere("/realcode", k, "normal"),
        embed=linker.elsewhere("/embed", k, "normal"),
        present_toggle=linker.elsewhere(
            linker.path, k, "normal" if linker.view == "present" else "present"
        ),
    )


def choices(linker: Linker, current: str, k: int) -> tuple[PolicyChoice, ...]:
    eras = tuple(
        PolicyChoice(Era.of(p), linker.policy_link(p.id, k), p.id == current)
        for p in POLICIES.values()
    )
    if current in POLICIES:
        return eras
    # A custom lab point (DESIGN.md §11) is shown as one more, current, choice.
    return (*eras, PolicyChoice(Era.of(get_policy(current)), linker.policy_link(current, k), True))


def build_sim(run: Run, policy_param: str, k: int, view: View, offline: bool = False) -> Sim:
    """``policy_param`` is kept as the user wrote it (``latest`` stays ``latest`` in links)."""
    linker = Linker("/", run, policy_param, view)
    policies = choices(linker, run.policy.id, k)
    current = next(c for c in policies if c.current)
    verdicts = verdict_views(run.trace.verdicts, linker.step)
    return Sim(
        text=run.editor_text,
        policy=current,
        policies=policies,
        verdicts=verdicts,
        stage=build_stage(run, k, linker, offline),
        compare=linker.elsewhere("/compare", k, "normal"),
        view=view,
    )
