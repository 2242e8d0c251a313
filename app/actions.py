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
from functools import lru_cache

from app.diagram import Focus
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
    Read,
    RefRead,
    RefRelease,
    RefWrite,
    Swapout,
    TakeRef,
    UffdWp,
    Write,
)
from engine.state import State
from engine.syntax import format_command

# The canonical printer validates every name it prints; the same few hundred commands are
# printed for every step of a scenario, so their text is memoised (commands are frozen values).
command_text = lru_cache(maxsize=8192)(format_command)

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


def suggest_actions(
    state: State,
    names_ever: AbstractSet[str],
    pages_ever: Mapping[str, Sequence[str]],
    next_step: int,
    focus: Focus | None = None,
) -> tuple[ActionGroup, ...]:
    """The action groups for ``state``.

    ``names_ever`` holds every process, reference and file name the whole trace uses, so a
    suggested child or process never reuses a name that a later (or earlier) command refers to;
    ``pages_ever`` does the same for each process's page names. ``next_step`` is the step the
    new command will be, used to name values so that each write is recognisable in the picture.
    """

    def act(cmd: Command, subject: str) -> Action:
        text = command_text(cmd)
        label = text[len(subject) + 1 :] if text.startswith(subject + " ") else text
        return Action(label=label, command=text)

    groups: list[ActionGroup] = []
    # A large state would make thousands of buttons: offer the processes and pages the step
    # touched first (the focus), then others, up to a bound; the editor takes anything else.
    in_focus = focus.pages if focus is not None else {}
    procs = sorted(state.procs.values(), key=lambda proc: proc.name not in in_focus)
    for proc in procs[:MAX_PROCS]:
        p = proc.name
        rows: list[ActionRow] = []
        wanted = in_focus.get(p, frozenset())
        pages = sorted(proc.vmas.items(), key=lambda item: item[0] not in wanted)
        for page, vma in pages[:MAX_PAGES]:
            pte = proc.ptes.get(page)
            main = [
                act(Read(p, page), p),
                act(Write(p, page), p),
                act(TakeRef(p, page, "vmsplice"), p),
                act(TakeRef(p, page, "pin", write=False), p),
                act(TakeRef(p, page, "pin", write=True), p),
                act(TakeRef(p, page, "iouring", write=True, longterm=True), p),
                act(Mprotect(p, page, writable=not vma.write), p),
                act(Munmap(p, page), p),
            ]
            more = [
                act(TakeRef(p, page, "get", write=False), p),
                act(TakeRef(p, page, "get", write=True), p),
                act(TakeRef(p, page, "pin", write=False, longterm=True), p),
                act(TakeRef(p, page, "pin", write=False, fast=True), p),
                act(Dontneed(p, page), p),
                act(Dontfork(p, page, dofork=vma.dontcopy), p),
                act(UffdWp(p, page, on=not vma.uffd_wp), p),
                act(ForceWrite(p, page, f"force{next_step}"), p),
            ]
            if pte is not None and pte.present:
                more.insert(4, act(Swapout(p, page), p))
            rows.append(ActionRow(page, tuple(main), tuple(more)))
        child = _fresh(CHILD_NAMES, names_ever, "C")
        new_page = _fresh(string.ascii_lowercase, set(pages_ever.get(p, ())), "p")
        rows.append(
            ActionRow(
                "",
                (
                    act(Fork(p, child), p),
                    act(Mmap(p, (new_page,)), p),
                    act(ClearSoftdirty(p), p),
                    act(Exit(p), p),
                ),
            )
        )
        groups.append(ActionGroup(p, "proc", tuple(rows)))
    refs = sorted(state.refs.values(), key=lambda ref: focus is None or ref.name not in focus.refs)
    for ref in refs[:MAX_REFS]:
        row = [act(RefRead(ref.name), ref.name)]
        if ref.write:
            row.append(act(RefWrite(ref.name, f"dma{next_step}"), ref.name))
        row.append(act(RefRelease(ref.name), ref.name))
        groups.append(ActionGroup(f"{ref.holder} {ref.name}", "ref", (ActionRow("", tuple(row)),)))
    newcomer = _fresh(PROCESS_NAMES, names_ever, "P")
    groups.append(
        ActionGroup(
            "new process",
            "new",
            (ActionRow("", (act(Mmap(newcomer, ("a",)), ""),)),),
        )
    )
    return tuple(groups)
