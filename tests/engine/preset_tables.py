"""The vocabulary of the hand-derived preset tables: eras in groups, and one outcome per era.

Era groups (DESIGN.md §3, kernel-cow-semantics.md §2):
  E0  = 4.8, 5.7            classic: reuse iff mapcount(+swapcount) <= 1; read GUP never breaks COW
  E1  = 5.8 and proposals   as E0, but a read GUP (FOLL_GET/FOLL_PIN) on a COW mapping breaks COW
  E2  = 5.9                 reuse iff refcount == 1 (swap-in and PMD-THP still mapcount-based);
                            fork() copies maybe-pinned pages for the child
  E3  = 5.18                refcount rule on swap-in and PMD-mapped THP too
  E4  = 5.19                PageAnonExclusive; R/O FOLL_PIN of a !exclusive anon page unshares
  E5  = 6.2, 6.15           + R/O FOLL_LONGTERM pins unshare the zero page / page cache too;
                            6.15 (1da190f4d0a6) also reuses a PTE-mapped THP that one MM maps
                            whole (mapcount == refcount): the tables give 6.15 its own row
                            where that changes an outcome (`E5_BEFORE_6_15`, `E6_15`)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

POLICIES = (
    "4.8",
    "5.7",
    "5.8",
    "5.8-break-cow",
    "5.8-wrong-side-ok",
    "5.9",
    "5.18",
    "5.19",
    "6.2",
    "6.13",
    "6.15",
)

E0 = ("4.8", "5.7")
E1 = ("5.8", "5.8-break-cow", "5.8-wrong-side-ok")
E2 = ("5.9",)
E3 = ("5.18",)
E4 = ("5.19",)
# 6.13 changed only a write to the huge zero page (1ced09e0331f), which no preset makes: cow.c
# fills its memory before every test.
E5 = ("6.2", "6.13", "6.15")
E5_BEFORE_6_15 = ("6.2", "6.13")
E6_15 = ("6.15",)
ALL = POLICIES


@dataclass(frozen=True, slots=True)
class Outcome:
    """The observed text of every read step, in order, and the set of verdict kinds."""

    reads: tuple[str, ...]
    verdicts: frozenset[str]


def out(*reads: str, verdicts: Iterable[str] = ()) -> Outcome:
    return Outcome(tuple(reads), frozenset(verdicts))


def table(*rows: tuple[tuple[str, ...], Outcome]) -> dict[str, Outcome]:
    """Expand (eras, outcome) rows into one outcome per policy; each policy exactly once."""
    expanded: dict[str, Outcome] = {}
    for policies, outcome in rows:
        for policy in policies:
            assert policy not in expanded, f"policy {policy} listed twice"
            expanded[policy] = outcome
    return expanded
