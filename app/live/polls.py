"""Polls on read steps: the choices a class picks from, and the engine's answer with its why.

The choices are the same under every era, so they give nothing away (DESIGN.md §8, `#?`
questions): every value written to the page or reference before the read, the zero page's
``0``, and ``SIGSEGV`` where the read can fault. "Can fault" and "the values the read may see"
are taken from the replays under every era (a union, hence the same whichever era is shown),
together with the writes the scenario's text makes, so the engine's answer is always among
them.
"""

from __future__ import annotations

from app.views.runs import Run, run
from engine import commands as c
from engine.machine import written_value
from engine.policies import POLICIES

FAULT = "SIGSEGV"
ZERO = "0"


class NotARead(ValueError):
    """The step is not ``P read a`` or ``R read``: there is nothing to predict."""


def is_read(r: Run, step: int) -> bool:
    return 0 < step <= r.last and isinstance(r.trace.steps[step].command, c.Read | c.RefRead)


def _pages_read(runs: list[Run], step: int) -> set[str]:
    """The page names a read at ``step`` can reach: its own page, or the page its reference
    was taken on (under any era; a reference an era refused to take is absent there)."""
    command = runs[0].trace.steps[step].command
    if isinstance(command, c.Read):
        return {command.page}
    assert isinstance(command, c.RefRead)
    pages: set[str] = set()
    for r in runs:
        ref = r.trace.steps[step - 1].state.refs.get(command.ref)
        if ref is not None:
            pages.add(ref.page)
    return pages


def choices(text: str, step: int) -> tuple[str, ...]:
    """The choices of a poll on ``step`` of ``text``; raises `NotARead`."""
    runs = [run(text, era) for era in POLICIES]
    if not is_read(runs[0], step):
        raise NotARead(f"step {step} is not a read: a poll asks what a read will see")
    pages = _pages_read(runs, step)
    command = runs[0].trace.steps[step].command
    refs_on_page = {command.ref} if isinstance(command, c.RefRead) else set()
    files: dict[str, str] = {}
    found: dict[str, None] = {ZERO: None}
    for index, before in enumerate(runs[0].scenario.commands[: step - 1], start=1):
        if isinstance(before, c.FileDecl):
            files[before.name] = before.value
        elif isinstance(before, c.Mmap) and before.file is not None and pages & set(before.pages):
            if before.file in files:
                found[files[before.file]] = None
        elif isinstance(before, c.TakeRef) and before.page in pages and before.name:
            refs_on_page.add(before.name)
        elif (
            isinstance(before, c.Write | c.ForceWrite)
            and before.page in pages
            or isinstance(before, c.RefWrite)
            and before.ref in refs_on_page
        ):
            found[written_value(before, index).text] = None
    faults = False
    for r in runs:
        observed = r.trace.steps[step].observed
        if observed is None:
            faults = True
        else:
            found[observed.text] = None
    if faults:
        found[FAULT] = None
    return tuple(found)


def answer(text: str, policy: str, step: int) -> tuple[str, str]:
    """(the value the read observes under ``policy``, or SIGSEGV; the engine's why)."""
    r = run(text, policy)
    if not is_read(r, step):
        raise NotARead(f"step {step} is not a read")
    observed = r.trace.steps[step].observed
    why = [event.text for event in r.events[step]]
    why += [verdict.text for verdict in r.trace.verdicts if verdict.step == step]
    # A verdict may repeat its step's event word for word (a SIGSEGV is both).
    return (FAULT if observed is None else observed.text), " ".join(dict.fromkeys(why))
