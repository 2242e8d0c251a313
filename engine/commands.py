"""The scenario language's abstract syntax: one frozen dataclass per command.

Commands are intentions (what the user asked the machine to do); what the kernel then did is
recorded as events by the machine. A scenario is the tuple of its commands; the parser in
`engine.syntax` produces it and the canonical printer turns it back into text, so that
``parse(format_scenario(s)) == s`` for every scenario.

Positions in the source text are kept beside the commands (``Scenario.lines``), not inside them,
so two scenarios that differ only in layout compare equal. Comments and annotations
(`engine.annotations`) are kept beside them too, and do take part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from engine.annotations import NO_ANNOTATIONS, Annotations, Remark

RefKind = Literal["vmsplice", "get", "pin", "iouring"]
# What backs an anonymous mapping (DESIGN.md §10): base pages, a PMD-mapped 2 MiB transparent
# huge page, or a private 2 MiB hugetlb page.
Backing = Literal["base", "thp", "hugetlb"]


@dataclass(frozen=True, slots=True)
class FileDecl:
    """`file F VALUE`: a file whose single page holds VALUE (in the page cache once touched)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Mmap:
    """`P mmap a [b …] [backing=thp|hugetlb]` (private anonymous; each page its own 2 MiB huge
    page with a backing) or `P mmap a file=F [shared] [ro]`."""

    proc: str
    pages: tuple[str, ...]
    file: str | None = None
    shared: bool = False
    readonly: bool = False
    backing: Backing = "base"


@dataclass(frozen=True, slots=True)
class Read:
    proc: str
    page: str


@dataclass(frozen=True, slots=True)
class Write:
    """`P write a [VALUE]`; without VALUE the machine names the value after writer and step."""

    proc: str
    page: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Fork:
    proc: str
    child: str


@dataclass(frozen=True, slots=True)
class Exit:
    proc: str


@dataclass(frozen=True, slots=True)
class Munmap:
    proc: str
    page: str


@dataclass(frozen=True, slots=True)
class Dontneed:
    proc: str
    page: str


@dataclass(frozen=True, slots=True)
class Dontfork:
    """`P dontfork a` (MADV_DONTFORK) or, with ``dofork=True``, `P dofork a` (MADV_DOFORK)."""

    proc: str
    page: str
    dofork: bool = False


@dataclass(frozen=True, slots=True)
class Mprotect:
    proc: str
    page: str
    writable: bool


@dataclass(frozen=True, slots=True)
class PteMap:
    """`P pte-map a`: remap a PMD-mapped THP with PTEs, keeping the folio whole — what the
    selftest's "PTE-mapped THP" does with mprotect() of one subpage and back
    (__split_huge_pmd)."""

    proc: str
    page: str


@dataclass(frozen=True, slots=True)
class ClearSoftdirty:
    proc: str


@dataclass(frozen=True, slots=True)
class Swapout:
    proc: str
    page: str


@dataclass(frozen=True, slots=True)
class UffdWp:
    proc: str
    page: str
    on: bool


@dataclass(frozen=True, slots=True)
class TakeRef:
    """A GUP reference: `vmsplice`, `get`, `pin` or `iouring`.

    - vmsplice: read-only FOLL_GET held by a pipe (``write`` is always False).
    - get: FOLL_GET, ``write`` from `ro|rw`.
    - pin: FOLL_PIN, ``write`` from `ro|rw`, optional ``longterm`` and ``fast``.
    - iouring: FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM (``write`` and ``longterm`` always True).
    ``name`` is the `as R` name, or None when the machine names the reference.
    ``wrong_side_ok`` is only legal for get and pin.
    """

    proc: str
    page: str
    kind: RefKind
    write: bool = False
    longterm: bool = False
    fast: bool = False
    name: str | None = None
    wrong_side_ok: bool = False


@dataclass(frozen=True, slots=True)
class ForceWrite:
    """`P forcewrite a VALUE [race]`: write through /proc/PID/mem (FOLL_FORCE|FOLL_WRITE)."""

    proc: str
    page: str
    value: str
    race: bool = False


@dataclass(frozen=True, slots=True)
class RefRead:
    ref: str


@dataclass(frozen=True, slots=True)
class RefWrite:
    ref: str
    value: str


@dataclass(frozen=True, slots=True)
class RefRelease:
    ref: str


Command = (
    FileDecl
    | Mmap
    | Read
    | Write
    | Fork
    | Exit
    | Munmap
    | Dontneed
    | Dontfork
    | Mprotect
    | PteMap
    | ClearSoftdirty
    | Swapout
    | UffdWp
    | TakeRef
    | ForceWrite
    | RefRead
    | RefWrite
    | RefRelease
)

PROC_COMMANDS = (
    Mmap,
    Read,
    Write,
    Fork,
    Exit,
    Munmap,
    Dontneed,
    Dontfork,
    Mprotect,
    PteMap,
    ClearSoftdirty,
    Swapout,
    UffdWp,
    TakeRef,
    ForceWrite,
)
REF_COMMANDS = (RefRead, RefWrite, RefRelease)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario. ``lines[i]`` is the 1-based source line of ``commands[i]``.

    ``remarks`` are the text's `#` lines and trailing comments, kept so the canonical text (and
    so a link) keeps them; ``annotations`` is the lesson data they hold (DESIGN.md §8). Both
    take part in equality: a lesson with another note is another lesson.
    """

    commands: tuple[Command, ...]
    lines: tuple[int, ...] = field(default=(), compare=False)
    remarks: tuple[Remark, ...] = ()
    annotations: Annotations = NO_ANNOTATIONS
