"""`/compare`: one scenario under several eras, side by side.

What a kernel engineer wants from it: for every read, the value each era observes (rows whose
values differ are flagged in words), each era's verdicts, and the first step where the eras
stop agreeing — named, with what each group of eras did there.

"Agreeing" compares what an era *did*, not how it numbered things: frame numbers are renamed in
order of first use, so two eras that made the same copies at the same steps compare equal even
if their pfns differ, while an era that shared a page where another copied it does not. The
exclusive bit is left out on purpose: eras without it would differ from eras with it at every
step without having decided anything differently.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote_plus

from app.picture.shapes import Scene
from app.views.links import View, at_step, encode_scenario, link_prefix
from app.views.runs import Run
from app.views.sim import Era, StepNav, VerdictView, picture, verdict_views
from engine.trace import Step

Signature = tuple[object, ...]
# Events that narrate without deciding anything; they never make two eras differ.
_NEUTRAL_EVENTS = frozenset({"info"})


def light_signature(step: Step) -> Signature:
    """What a large scenario's steps are compared by: the value read and the decisions taken.

    Canonicalising a whole state costs its size at every step; for a scenario too large to draw
    (64 processes of 256 pages), the events already name every copy, reuse and unshare.
    """
    return (
        step.observed,
        tuple(sorted(e.kind for e in step.events if e.kind not in _NEUTRAL_EVENTS)),
    )


def step_signature(step: Step) -> Signature:
    state = step.state
    canon: dict[int, int] = {}

    def c(pfn: int | None) -> int | None:
        return None if pfn is None else canon.setdefault(pfn, len(canon))

    procs = tuple(
        (
            proc.name,
            tuple(
                (page, c(pte.pfn), pte.swap_slot is not None, pte.writable, pte.uffd_wp)
                for page, pte in sorted(proc.ptes.items())
            ),
        )
        for proc in sorted(state.procs.values(), key=lambda p: p.name)
    )
    refs = tuple(
        (ref.name, c(ref.pfn)) for ref in sorted(state.refs.values(), key=lambda r: r.name)
    )
    values = tuple(
        sorted(
            (canon[pfn], frame.value.text) for pfn, frame in state.frames.items() if pfn in canon
        )
    )
    observed = step.observed
    kinds = tuple(sorted(e.kind for e in step.events if e.kind not in _NEUTRAL_EVENTS))
    return (observed, procs, refs, values, kinds)


@dataclass(frozen=True, slots=True)
class ReadCell:
    policy: str
    value: str  # the value's text, "—" when this era's read failed
    detail: str  # where the value came from
    odd: bool  # differs from the most common value in the row


@dataclass(frozen=True, slots=True)
class ReadRow:
    step: int
    command: str
    cells: tuple[ReadCell, ...]
    differs: bool


@dataclass(frozen=True, slots=True)
class VerdictCell:
    policy: str
    verdicts: tuple[VerdictView, ...]


@dataclass(frozen=True, slots=True)
class DivergenceGroup:
    policies: tuple[str, ...]
    what: tuple[str, ...]  # the events of this group at the divergence step


@dataclass(frozen=True, slots=True)
class Divergence:
    step: int
    command: str
    groups: tuple[DivergenceGroup, ...]


@dataclass(frozen=True, slots=True)
class Panel:
    era: Era
    href: str  # open this era in the simulator at this step
    scene: Scene
    events: tuple[str, ...]
    observed: str


@dataclass(frozen=True, slots=True)
class Comparison:
    text: str  # canonical `;` form
    policies: tuple[str, ...]
    reads: tuple[ReadRow, ...]
    verdicts: tuple[VerdictCell, ...]
    verdicts_differ: bool
    divergence: Divergence | None
    panels: tuple[Panel, ...]
    nav: StepNav
    command: str
    title: str  # the page's title at this step
    share: str
    present_toggle: str  # this comparison in (or out of) presentation mode
    s_value: str  # the scenario as `s`, for the step form
    policies_param: str  # `policies=` as chosen, "" for all
    customs: tuple[str, ...] = ()  # the custom lab points, one `custom=` each


def build_comparison(
    runs: tuple[Run, ...],
    text: str,
    policies_param: tuple[str, ...] | None,
    k: int,
    view: View,
    customs: tuple[str, ...] = (),
) -> Comparison:
    """``runs`` are the same scenario under each chosen era, in the order to show them."""
    first = runs[0]
    ids = tuple(r.policy.id for r in runs)

    # The scenario is encoded once; every link of the page is one of these prefixes + a step.
    compare_prefix = link_prefix("/compare", text, policies=policies_param, customs=customs)
    sim_bare = link_prefix("/", text)

    def link(step: int) -> str:
        return at_step(compare_prefix, step, view)

    def sim_link(policy: str, step: int) -> str:
        return at_step(f"{sim_bare}&policy={quote_plus(policy, safe=':=,')}", step, view)

    reads: list[ReadRow] = []
    for index in range(len(first.trace.steps)):
        observed = [r.trace.steps[index].observed for r in runs]
        if all(o is None for o in observed):
            continue
        counts: dict[object, int] = defaultdict(int)
        for o in observed:
            counts[o] += 1
        common = max(counts, key=lambda v: counts[v])
        cells = tuple(
            ReadCell(
                policy=pid,
                value=o.text if o is not None else "—",
                detail=o.describe() if o is not None else "the read did not complete",
                odd=o != common,
            )
            for pid, o in zip(ids, observed, strict=True)
        )
        reads.append(ReadRow(index, first.texts[index], cells, differs=len(counts) > 1))

    verdicts = tuple(
        VerdictCell(
            r.policy.id,
            verdict_views(r.trace.verdicts, partial(sim_link, r.policy.id)),
        )
        for r in runs
    )
    verdicts_differ = len({tuple((v.kind, v.step) for v in c.verdicts) for c in verdicts}) > 1

    divergence: Divergence | None = None
    signature = step_signature if first.fits else light_signature
    for index in range(1, len(first.trace.steps)):
        groups: dict[Signature, list[int]] = {}
        for i, r in enumerate(runs):
            groups.setdefault(signature(r.trace.steps[index]), []).append(i)
        if len(groups) > 1:
            divergence = Divergence(
                step=index,
                command=first.texts[index],
                groups=tuple(
                    DivergenceGroup(
                        policies=tuple(ids[i] for i in members),
                        what=tuple(
                            e.text
                            for e in runs[members[0]].trace.steps[index].events
                            if e.kind not in _NEUTRAL_EVENTS
                        ),
                    )
                    for members in groups.values()
                ),
            )
            break

    panels = []
    for r in runs:
        step = r.trace.steps[k]
        scene = picture(r, k, f"{r.policy.id} at step {k}: {r.texts[k] or 'empty machine'}").scene
        panels.append(
            Panel(
                era=Era.of(r.policy),
                href=sim_link(r.policy.id, k),
                scene=scene,
                events=tuple(e.text for e in step.events),
                observed=step.observed.describe() if step.observed is not None else "",
            )
        )
    nav = StepNav.at(k, first.last, link)
    return Comparison(
        title=f"Compare eras — step {k} — cowlab",
        text=text,
        policies=ids,
        reads=tuple(reads),
        verdicts=verdicts,
        verdicts_differ=verdicts_differ,
        divergence=divergence,
        panels=tuple(panels),
        nav=nav,
        command=first.texts[k] or "empty machine",
        share=link(k),
        present_toggle=at_step(compare_prefix, k, "normal" if view == "present" else "present"),
        s_value=encode_scenario(text),
        policies_param=",".join(policies_param) if policies_param else "",
        customs=customs,
    )
