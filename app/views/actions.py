"""The buttons: every sensible next command at a step, per process, page and reference.

An action is nothing but a new link: the scenario up to the current step plus one command. The
page sends the scenario once (a hidden field of the actions form) and each button only its
command (``add=…``); the server appends it and answers with the canonical link (pushed for
htmx, a redirect without JavaScript), so every button works without JavaScript and Back undoes
it. Per-button links would repeat the whole scenario in every button: 150 buttons of a
30-command scenario weighed 140 KB.

Only commands that make sense in the current state are offered (a page the process maps, a write
through a reference that may write); the text editor still accepts anything the language allows,
including commands the kernel would refuse.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import islice

from app.picture.layout import Focus
from engine.commands import (
    ClearSoftdirty,
    Command,
    Dontfork,
    Dontneed,
    Exit,
    ForceWrite,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    PteMap,
    Read,
    RefRead,
    RefRelease,
    RefWrite,
    Swapout,
    TakeRef,
    UffdWp,
    Write,
)
from engine.state import Proc, Ref, State, Vma
from engine.syntax import format_command

MAX_PROCS = 8
MAX_PAGES = 4  # per process
MAX_REFS = 8

CHILD_NAMES = ("C", "D", "E", "F", "G", "H", "K", "L", "M", "N")
PROCESS_NAMES = ("P", "Q", "S", "T", "U", "W")


@dataclass(frozen=True, slots=True)
class Action:
    label: str  # the command without its subject ("write a"), the subject heads the group
    command: str  # the full command text: the button's value, and its tooltip


@dataclass(frozen=True, slots=True)
class ActionRow:
    """The actions of one page (or the process-wide ones when ``page`` is empty)."""

    page: str
    main: tuple[Action, ...]
    more: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class ActionGroup:
    subject: str  # "P", "pipe R", "new process"
    kind: str  # "proc" | "ref" | "new"
    rows: tuple[ActionRow, ...]


def _fresh(candidates: Iterable[str], taken: AbstractSet[str], fallback: str) -> str:
    for name in candidates:
        if name not in taken:
            return name
    n = 2
    while f"{fallback}{n}" in taken:
        n += 1
    return f"{fallback}{n}"


def _act(cmd: Command, subject: str) -> Action:
    text = format_command(cmd)
    label = text[len(subject) + 1 :] if text.startswith(subject + " ") else text
    return Action(label=label, command=text)


# The buttons of a process or a reference depend on a few facts of the state. No button names
# its value after the step (a forced write is ``forced-PAGE``, a device write ``dma-REF``): the
# step that wrote a value is in its description (narration, table, tooltip) all the same, and a
# button that does not change from step to step does not distract.
# page, VM_WRITE, dontfork, uffd-wp, present and swappable, a THP mapped by a PMD (`pte-map`)
PageFacts = tuple[str, bool, bool, bool, bool, bool]


def _page_row(p: str, facts: PageFacts) -> ActionRow:
    page, write, dontcopy, uffd_wp, present, pmd_thp = facts
    main = (
        _act(Read(p, page), p),
        _act(Write(p, page), p),
        _act(TakeRef(p, page, "vmsplice"), p),
        _act(TakeRef(p, page, "pin", write=False), p),
        _act(TakeRef(p, page, "pin", write=True), p),
        _act(TakeRef(p, page, "iouring", write=True, longterm=True), p),
        _act(Mprotect(p, page, writable=not write), p),
        _act(Munmap(p, page), p),
    )
    more = [
        _act(TakeRef(p, page, "get", write=False), p),
        _act(TakeRef(p, page, "get", write=True), p),
        _act(TakeRef(p, page, "pin", write=False, longterm=True), p),
        _act(TakeRef(p, page, "pin", write=False, fast=True), p),
        _act(Dontneed(p, page), p),
        _act(Dontfork(p, page, dofork=dontcopy), p),
        _act(UffdWp(p, page, on=not uffd_wp), p),
        _act(ForceWrite(p, page, f"forced-{page}"), p),
    ]
    if present:
        more.insert(4, _act(Swapout(p, page), p))
    if pmd_thp:
        more.insert(0, _act(PteMap(p, page), p))
    return ActionRow(page, main, tuple(more))


def _proc_group(p: str, pages: tuple[PageFacts, ...], child: str, new_page: str) -> ActionGroup:
    rows = [_page_row(p, facts) for facts in pages]
    process_wide = (
        _act(Fork(p, child), p),
        _act(Mmap(p, (new_page,)), p),
        _act(ClearSoftdirty(p), p),
        _act(Exit(p), p),
    )
    # Huge pages (DESIGN.md §10) under "more": a new page backed by a THP or a hugetlb page.
    huge = tuple(_act(Mmap(p, (new_page,), backing=b), p) for b in ("thp", "hugetlb"))
    rows.append(ActionRow("", process_wide, huge))
    return ActionGroup(p, "proc", tuple(rows))


def _ref_group(ref: str, holder: str, write: bool) -> ActionGroup:
    row = [_act(RefRead(ref), ref)]
    if write:
        row.append(_act(RefWrite(ref, f"dma-{ref}"), ref))
    row.append(_act(RefRelease(ref), ref))
    return ActionGroup(f"{holder} {ref}", "ref", (ActionRow("", tuple(row)),))


def _newcomer_group(newcomer: str) -> ActionGroup:
    return ActionGroup("new process", "new", (ActionRow("", (_act(Mmap(newcomer, ("a",)), ""),)),))


@dataclass(frozen=True, slots=True)
class FreshNames:
    """Names a suggested command may introduce without clashing with any name the whole trace
    uses (earlier or later than the step shown): the same for every step of a run."""

    child: str  # a fork's child
    newcomer: str  # a new process
    new_pages: Mapping[str, str]  # per process, a page it never maps

    def new_page(self, proc: str) -> str:
        return self.new_pages.get(proc, string.ascii_lowercase[0])


def fresh_names(
    names_ever: AbstractSet[str], pages_ever: Mapping[str, Sequence[str]]
) -> FreshNames:
    """``names_ever``: every process, reference and file name of the trace; ``pages_ever``:
    each process's page names."""
    return FreshNames(
        child=_fresh(CHILD_NAMES, names_ever, "C"),
        newcomer=_fresh(PROCESS_NAMES, names_ever, "P"),
        new_pages={
            proc: _fresh(string.ascii_lowercase, set(pages), "p")
            for proc, pages in pages_ever.items()
        },
    )


def suggest_actions(
    state: State, fresh: FreshNames, focus: Focus | None = None
) -> tuple[ActionGroup, ...]:
    """The action groups for ``state``; ``fresh`` (`fresh_names`) names what they create."""
    groups: list[ActionGroup] = []
    procs: Iterable[Proc] = state.procs.values()
    refs: Iterable[Ref] = state.refs.values()
    # A large state would make thousands of buttons: offer the processes and pages the step
    # touched first (the focus), then others, up to a bound; the editor takes anything else.
    in_focus = focus.pages if focus is not None else {}
    if focus is not None:
        procs = sorted(procs, key=lambda proc: proc.name not in in_focus)
        refs = sorted(refs, key=lambda ref: ref.name not in focus.refs)
    for proc in islice(procs, MAX_PROCS):
        p = proc.name
        wanted = in_focus.get(p)
        pages: Iterable[tuple[str, Vma]] = proc.vmas.items()
        if wanted:
            pages = sorted(pages, key=lambda item: item[0] not in wanted)
        facts = []
        for page, vma in islice(pages, MAX_PAGES):
            pte = proc.ptes.get(page)
            # MADV_PAGEOUT of a hugetlb VMA is -EINVAL: hugetlb pages are never swapped.
            present = pte is not None and pte.pfn is not None and vma.backing != "hugetlb"
            pmd_thp = vma.backing == "thp" and pte is not None and pte.pmd
            facts.append((page, vma.write, vma.dontcopy, vma.uffd_wp, present, pmd_thp))
        groups.append(_proc_group(p, tuple(facts), fresh.child, fresh.new_page(p)))
    groups.extend(_ref_group(ref.name, ref.holder, ref.write) for ref in islice(refs, MAX_REFS))
    groups.append(_newcomer_group(fresh.newcomer))
    return tuple(groups)
