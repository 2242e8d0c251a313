"""Huge-page states built by hand, as the engine's model draws them (engine/state.py, DESIGN.md
§10), for the picture and text tests: they fix what the picture must show whatever the engine
decides, and need no replay."""

from __future__ import annotations

from engine.state import (
    ZERO_PFN,
    ZERO_VALUE,
    Folio,
    Frame,
    Proc,
    Pte,
    Ref,
    State,
    Value,
    Vma,
)

N = 512
# The selftest's "Basic COW after fork() ... with THP", replayed by the engine in the web and
# browser tests: at step 3 parent and child map one folio with a PMD each; at step 5 the
# parent's write fault has copied subpage 0 (from 5.8 on) or the whole folio (up to 5.7).
THP = (
    "P mmap mem backing=thp; P write mem v1; P fork C; C read mem; P write mem parent-v2; "
    "C read mem"
)
V1 = Value("v1", "P", "cpu", 2)
ZERO = Frame(ZERO_PFN, "zero", ZERO_VALUE)


def folio(
    pfn: int,
    *,
    entire: int = 0,
    sub0: int = 0,
    rest: int = 0,
    exclusive: tuple[bool, bool] = (True, True),
    pins: int = 0,
    gets: int = 0,
    kind: str = "thp",
    value: Value = V1,
) -> Frame:
    """A 2 MiB folio: ``entire`` PMD mappings, ``sub0`` PTE mappings of subpage 0 and ``rest``
    of each other subpage; the exclusive bits of subpage 0 and of the others."""
    return Frame(
        pfn=pfn,
        kind="anon",
        value=value,
        mapcount=sub0 + rest * (N - 1),
        gets=gets,
        pins=pins,
        anon_exclusive=exclusive[0],
        folio=Folio(
            9,
            (sub0,) + (rest,) * (N - 1),
            (exclusive[0],) + (exclusive[1],) * (N - 1),
            entire,
            "hugetlb" if kind == "hugetlb" else "thp",
        ),
    )


def huge_vma(page: str = "a", backing: str = "thp") -> Vma:
    return Vma(page, anon_vma=True, backing="hugetlb" if backing == "hugetlb" else "thp")


def proc(name: str, parent: str | None, pte: Pte, backing: str = "thp") -> Proc:
    return Proc(name, parent, {"a": huge_vma("a", backing)}, {"a": pte})


def state(procs: list[Proc], frames: list[Frame], refs: tuple[Ref, ...] = ()) -> State:
    table = {f.pfn: f for f in (ZERO, *frames)}
    return State(
        {p.name: p for p in procs},
        table,
        {r.name: r for r in refs},
        {},
        {},
        next_pfn=max(table) + 1,
    )


def pmd_mapped_after_fork(kind: str = "thp") -> State:
    """P mapped a THP with one PMD, wrote v1, forked C: both PMDs map it read-only."""
    return state(
        [
            proc("P", None, Pte(1, writable=False, dirty=True, pmd=True), kind),
            proc("C", "P", Pte(1, writable=False, dirty=True, pmd=True), kind),
        ],
        [folio(1, entire=2, exclusive=(False, False), kind=kind)],
    )


def pmd_mapped_alone() -> State:
    return state(
        [proc("P", None, Pte(1, writable=True, dirty=True, pmd=True))],
        [folio(1, entire=1)],
    )


def pte_mapped_pinned() -> State:
    """P's THP remapped with PTEs and pinned R/O long-term: the exact pincount 1."""
    pin = Ref("pin", "pin", "P", "a", 1, False, True, False, False, 3)
    return state(
        [proc("P", None, Pte(1, writable=True, dirty=True, rest_pfn=1))],
        [folio(1, sub0=1, rest=1, pins=1)],
        (pin,),
    )


def split_by_cow() -> State:
    """P and C share a PTE-mapped THP; C wrote subpage 0, which a COW copied into pfn 2, and
    still maps subpages 1… of the folio with 511 PTEs."""
    copy = Frame(2, "anon", Value("child-v2", "C", "cpu", 5), mapcount=1, anon_exclusive=True)
    return state(
        [
            proc("P", None, Pte(1, writable=False, dirty=True, rest_pfn=1)),
            proc("C", "P", Pte(2, writable=True, dirty=True, rest_pfn=1)),
        ],
        [folio(1, sub0=1, rest=2, exclusive=(False, False)), copy],
    )
