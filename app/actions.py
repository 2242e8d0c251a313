"""The buttons: every sensible next command at a step, per process, page and reference.

An action is nothing but a link: the scenario up to the current step plus one command. The
server keeps no state, so pressing a button is navigating to the scenario it names — which also
means every button works without JavaScript, and Back undoes it.

Only commands that make sense in the current state are offered (a page the process maps, a write
through a reference that may write); the text editor still accepts anything the language allows,
including commands the kernel would refuse.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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

CHILD_NAMES = ("C", "D", "E", "F", "G", "H", "K", "L", "M", "N")
PROCESS_NAMES = ("P", "Q", "S", "T", "U", "W")


@dataclass(frozen=True, slots=True)
class Action:
    label: str  # the command without its subject ("write a"), the subject heads the group
    command: str  # the full command text, for the tooltip and the table
    href: str


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


def _fresh(candidates: Iterable[str], taken: set[str], fallback: str) -> str:
    for name in candidates:
        if name not in taken:
            return name
    n = 2
    while f"{fallback}{n}" in taken:
        n += 1
    return f"{fallback}{n}"


def suggest_actions(
    state: State,
    names_ever: set[str],
    pages_ever: dict[str, list[str]],
    next_step: int,
    link_for: Callable[[Command], str],
) -> tuple[ActionGroup, ...]:
    """The action groups for ``state``.

    ``names_ever`` holds every process, reference and file name the whole trace uses, so a
    suggested child or process never reuses a name that a later (or earlier) command refers to;
    ``pages_ever`` does the same for each process's page names. ``next_step`` is the step the
    new command will be, used to name values so that each write is recognisable in the picture.
    ``link_for`` turns a command into the link of the scenario with it appended.
    """

    def act(cmd: Command, subject: str) -> Action:
        text = format_command(cmd)
        label = text[len(subject) + 1 :] if text.startswith(subject + " ") else text
        return Action(label=label, command=text, href=link_for(cmd))

    groups: list[ActionGroup] = []
    for proc in state.procs.values():
        p = proc.name
        rows: list[ActionRow] = []
        for page, vma in proc.vmas.items():
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
        new_page = _fresh(string.ascii_lowercase, set(pages_ever.get(p, [])), "p")
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
    for ref in state.refs.values():
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
            (ActionRow("", (Action(*_new_process(newcomer, link_for)),)),),
        )
    )
    return tuple(groups)


def _new_process(name: str, link_for: Callable[[Command], str]) -> tuple[str, str, str]:
    cmd = Mmap(name, ("a",))
    text = format_command(cmd)
    return text, text, link_for(cmd)
