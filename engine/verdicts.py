"""Verdicts derived from a trace, never written by hand.

`leak` and `stale` compare what each read observed with what it *should* observe. The
expectation comes from a logical model with no kernel in it — POSIX's promise: after fork every
process has its own copy of its memory; a write by one process is seen by that process only; a
reference (pipe buffer, pin, DMA mapping) is bound to the page of the process that took it, so it
sees that process's current contents (or the last contents, once the process unmapped the page),
and a device write through it changes that process's page. A file's page is shared by every
shared mapping and seen by private mappings until they write.

When a read observes something else:
- `leak` if the observed value never was part of the reader's own history: another process's
  write after the split reached it (a missed COW, CVE-2020-29374);
- `stale` otherwise: the reader sees an older value of its own, or the owner misses a device
  write (a wrong COW: the reference and the owner no longer share a page).

`userfault`, `segv`, `file-corrupted` and `needless-copy` are read off the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

from engine import commands as c
from engine.events import Event
from engine.machine import written_value
from engine.state import ZERO_VALUE, Value

if TYPE_CHECKING:
    from engine.trace import Step

VerdictKind = Literal["leak", "stale", "userfault", "file-corrupted", "segv", "needless-copy"]
VERDICT_KINDS: tuple[VerdictKind, ...] = (
    "leak",
    "stale",
    "userfault",
    "file-corrupted",
    "segv",
    "needless-copy",
)


class Verdict(NamedTuple):
    kind: VerdictKind
    step: int
    text: str
    subject: str = ""  # the process or reference the verdict is about


@dataclass(slots=True)
class _LogicalPage:
    content: Value | None  # None: a file page not yet written privately: it shows the file
    file: str | None
    shared: bool
    history: set[Value] = field(default_factory=set)


@dataclass(slots=True)
class _Binding:
    owner: str
    page: str
    frozen: _LogicalPage | None = None  # set once the owner no longer maps the page


class _Ideal:
    """What every process and reference should see, step by step."""

    def __init__(self) -> None:
        self.pages: dict[str, dict[str, _LogicalPage]] = {}
        self.files: dict[str, Value] = {}
        self.file_history: dict[str, set[Value]] = {}
        self.refs: dict[str, _Binding] = {}

    def value(self, page: _LogicalPage) -> Value:
        if page.content is not None:
            return page.content
        assert page.file is not None
        return self.files[page.file]

    def history(self, page: _LogicalPage) -> set[Value]:
        if page.file is None:
            return page.history
        return page.history | self.file_history[page.file]

    def set(self, page: _LogicalPage, value: Value) -> None:
        if page.shared and page.file is not None:
            self.files[page.file] = value
            self.file_history[page.file].add(value)
        else:
            page.content = value
            page.history.add(value)

    def freeze_bindings(self, proc: str, page: str | None) -> None:
        for binding in self.refs.values():
            if binding.frozen is None and binding.owner == proc and page in (None, binding.page):
                current = self.pages[proc][binding.page]
                binding.frozen = _LogicalPage(
                    self.value(current), None, False, set(self.history(current))
                )

    def bound_page(self, ref: str) -> _LogicalPage | None:
        binding = self.refs.get(ref)
        if binding is None:
            return None
        if binding.frozen is not None:
            return binding.frozen
        return self.pages[binding.owner][binding.page]


_VERDICT_EVENTS = frozenset({"userfault", "segv", "write", "copy"})
_REFUSALS = frozenset({"segv", "efault", "error"})
# Commands that change how the kernel maps memory but not what any process should see.
_NO_LOGICAL_EFFECT = frozenset({c.Swapout, c.Mprotect, c.ClearSoftdirty, c.UffdWp, c.Dontfork})


def derive_verdicts(steps: Sequence[Step]) -> tuple[Verdict, ...]:
    ideal = _Ideal()
    verdicts: list[Verdict] = []
    for step in steps[1:]:
        command = step.command
        assert command is not None
        refused = False
        for event in step.events:
            kind = event.kind
            refused = refused or kind in _REFUSALS
            # Most events (a fork's or an exit's one per page) give no verdict: the kind is
            # checked here, before a call per event.
            if kind in _VERDICT_EVENTS:
                verdict = _event_verdict(step.index, event)
                if verdict is not None:
                    verdicts.append(verdict)
        if not refused and type(command) not in _NO_LOGICAL_EFFECT:
            expectation = _follow(ideal, command, step)
            if expectation is not None and step.observed is not None:
                reader, page = expectation
                verdict = _compare(
                    step.index, reader, ideal.value(page), ideal.history(page), step.observed
                )
                if verdict is not None:
                    verdicts.append(verdict)
    return tuple(verdicts)


def _follow(ideal: _Ideal, command: c.Command, step: Step) -> tuple[str, _LogicalPage] | None:
    """Advance the logical model by one command; for a read, return (reader, logical page)."""
    k = step.index
    match command:
        case c.FileDecl(name=name):
            value = Value(command.value, name, "file", k)
            ideal.files[name] = value
            ideal.file_history[name] = {value}
        case c.Mmap(proc=proc, pages=pages, file=file, shared=shared):
            mem = ideal.pages.setdefault(proc, {})
            for page in pages:
                if file is None:
                    mem[page] = _LogicalPage(ZERO_VALUE, None, False, {ZERO_VALUE})
                else:
                    mem[page] = _LogicalPage(None, file, shared)
        case c.Write(proc=proc, page=page):
            ideal.set(ideal.pages[proc][page], written_value(command, k))
        case c.ForceWrite(proc=proc, page=page):
            ideal.set(ideal.pages[proc][page], written_value(command, k))
        case c.Fork(proc=proc, child=child):
            state_child = step.state.procs[child]
            ideal.pages[child] = {
                name: _LogicalPage(p.content, p.file, p.shared, set(p.history))
                for name, p in ideal.pages[proc].items()
                if name in state_child.vmas
            }
        case c.Exit(proc=proc):
            ideal.freeze_bindings(proc, None)
            for name, binding in list(ideal.refs.items()):
                if binding.owner == proc:
                    del ideal.refs[name]
            del ideal.pages[proc]
        case c.Munmap(proc=proc, page=page):
            if page in ideal.pages[proc]:
                ideal.freeze_bindings(proc, page)
                del ideal.pages[proc][page]
        case c.Dontneed(proc=proc, page=page):
            ideal.freeze_bindings(proc, page)
            logical = ideal.pages[proc][page]
            if logical.file is None:
                logical.content = ZERO_VALUE
                logical.history.add(ZERO_VALUE)
            elif not logical.shared:
                logical.content = None  # a private file page shows the file again
        case c.TakeRef(proc=proc, page=page):
            new = set(step.state.refs) - set(ideal.refs)
            for name in new:
                ideal.refs[name] = _Binding(proc, page)
        case c.RefWrite(ref=ref):
            bound = ideal.bound_page(ref)
            if bound is not None:
                ideal.set(bound, written_value(command, k))
        case c.RefRelease(ref=ref):
            ideal.refs.pop(ref, None)
        case c.Read(proc=proc, page=page):
            return proc, ideal.pages[proc][page]
        case c.RefRead(ref=ref):
            bound = ideal.bound_page(ref)
            if bound is not None:
                return ref, bound
    return None


def _compare(
    step: int, reader: str, expected: Value, history: set[Value], observed: Value
) -> Verdict | None:
    if observed == expected:
        return None
    if observed in history:
        return Verdict(
            "stale",
            step,
            f"{reader} sees {observed.describe()}, but should see {expected.describe()}: "
            "the reference and its owner no longer share a page",
            reader,
        )
    return Verdict(
        "leak",
        step,
        f"{reader} sees {observed.describe()}, a value its own memory never held — it should "
        f"see {expected.describe()}",
        reader,
    )


def _event_verdict(step: int, event: Event) -> Verdict | None:
    kind = event.kind
    if kind not in _VERDICT_EVENTS:
        return None
    subject = event.proc or event.ref or ""
    if kind == "userfault":
        return Verdict("userfault", step, event.text, subject)
    if kind == "segv":
        return Verdict("segv", step, event.text, subject)
    if kind == "write" and event.inputs.get("file_write_allowed") is False:
        return Verdict("file-corrupted", step, event.text, subject)
    if kind == "copy" and event.inputs.get("needless") is True:
        return Verdict(
            "needless-copy",
            step,
            f"frame #{event.pfn} had one user and no other reference, yet was copied: {event.text}",
            subject,
        )
    return None
