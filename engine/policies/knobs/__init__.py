"""The knobs: every kernel decision that differs between eras, each with its named choices.

An era (`engine.policies.e*`) is a named setting of every knob; a custom point
(`engine.policies.custom`) is any other setting. Both get every knob-governed rule from the
choice objects here, so a rule is written once. `KNOBS` is in the order `cowlab lab knobs`
prints and canonical custom ids use.

A knob added later (a new era's decision, a new backing) is one more `Knob` here: the lab, the
canonical ids and the sweep pick it up from this registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from engine.policies.errors import RefusedCombination, UnknownPolicy
from engine.policies.knobs.choice import EXCLUSIVE_BIT, HAS_PINNED, Choice
from engine.policies.knobs.fork_and_reclaim import CLEAR_REFS, FORK_PINNED, SWAP_PINNED
from engine.policies.knobs.gup import FORCE_WRITE, GUP_READ, RO_PIN
from engine.policies.knobs.huge import HUGETLB_DONTNEED, THP_COW
from engine.policies.knobs.protection import MPROTECT_UFFD_WP, MPROTECT_UPGRADE, UFFD_WP_FILE
from engine.policies.knobs.write_fault import SWAPIN_REUSE, SWAPIN_ZRAM, WP_REUSE

__all__ = [
    "EXCLUSIVE_BIT",
    "HAS_PINNED",
    "KNOBS",
    "REFUSALS",
    "STATES",
    "Choice",
    "Knob",
    "Refusal",
    "needs_of",
    "refusals_json",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class Knob:
    """One design question and the answers kernels (or proposals) gave to it."""

    id: str
    title: str
    question: str
    choices: tuple[Choice, ...]

    def choice(self, choice_id: str) -> Choice:
        for choice in self.choices:
            if choice.id == choice_id:
                return choice
        raise UnknownPolicy(
            f"unknown choice {choice_id!r} for knob {self.id}; expected one of: "
            + ", ".join(c.id for c in self.choices)
        )


def _knobs(*knobs: Knob) -> Mapping[str, Knob]:
    for knob in knobs:
        assert all(c.knob == knob.id for c in knob.choices), knob.id
    return MappingProxyType({k.id: k for k in knobs})


KNOBS: Mapping[str, Knob] = _knobs(
    Knob(
        "wp_reuse",
        "Write-fault reuse",
        "A write fault on a write-protected anonymous page (a PMD-mapped THP, a subpage of a "
        "PTE-mapped one): when may the writer keep the page?",
        WP_REUSE,
    ),
    Knob(
        "gup_read",
        "Read GUP on a COW mapping",
        "A get_user_pages without FOLL_WRITE on a private mapping: break COW first?",
        GUP_READ,
    ),
    Knob(
        "ro_pin",
        "R/O pin unsharing",
        "A read-only FOLL_PIN: must the page first be made exclusive (FAULT_FLAG_UNSHARE)?",
        RO_PIN,
    ),
    Knob(
        "fork_pinned",
        "fork with a pinned page",
        "fork meets a page of a private mapping the parent may have pinned (anonymous or page "
        "cache): share it or copy it?",
        FORK_PINNED,
    ),
    Knob(
        "force_write",
        "FOLL_FORCE write proof",
        "A FOLL_FORCE write through a read-only PTE: what proves COW already happened?",
        FORCE_WRITE,
    ),
    Knob(
        "swapin_reuse",
        "Swap-in reuse",
        "A write fault on a swapped-out page: may the swapped-in page be mapped writable?",
        SWAPIN_REUSE,
    ),
    Knob(
        "swapin_zram",
        "zram swap-in",
        "A swap-in from a synchronous device (zram) whose slot no other entry uses: through the "
        "swap cache, or straight into a new page?",
        SWAPIN_ZRAM,
    ),
    Knob(
        "swap_pinned",
        "Swapping pinned pages",
        "Reclaim meets a page that may be pinned: may it enter the swap cache?",
        SWAP_PINNED,
    ),
    Knob(
        "mprotect_upgrade",
        "mprotect write upgrade",
        "mprotect(PROT_WRITE) on a private mapping: map exclusive pages writable at once?",
        MPROTECT_UPGRADE,
    ),
    Knob(
        "mprotect_uffd_wp",
        "mprotect and shared uffd-wp",
        "mprotect(PROT_WRITE) on a shared mapping whose PTE is userfaultfd write-protected: "
        "does the protection survive?",
        MPROTECT_UFFD_WP,
    ),
    Knob(
        "clear_refs",
        "clear_refs and pins",
        "Resetting soft-dirty write-protects pages: pinned ones too?",
        CLEAR_REFS,
    ),
    Knob(
        "uffd_wp_file",
        "uffd-wp on files",
        "May userfaultfd write-protect a file-backed private mapping (or a hugetlb one)?",
        UFFD_WP_FILE,
    ),
    Knob(
        "thp_cow",
        "THP copy-on-write",
        "A write fault on a PMD-mapped THP the writer may not keep (or on the huge zero page): "
        "copy the whole huge page, or split the PMD and copy only the subpage written? (And the "
        "huge zero page: a new THP, or split?)",
        THP_COW,
    ),
    Knob(
        "hugetlb_dontneed",
        "MADV_DONTNEED on hugetlb",
        "madvise(MADV_DONTNEED) on a hugetlb mapping: refused, or the huge page unmapped?",
        HUGETLB_DONTNEED,
    ),
)

STATES: Mapping[str, str] = MappingProxyType(
    {
        EXCLUSIVE_BIT: "PG_anon_exclusive on every mapped anonymous page, remembered in swap "
        "PTEs (6c287605fd56, 1493a1913e34)",
        HAS_PINNED: "mm->has_pinned, set by the first FOLL_PIN (008cfe4418b3)",
    }
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A choice that contradicts a piece of state other choices bring along."""

    knob: str
    choice: str
    state: str
    why: str

    def conflicts(self, chosen: Mapping[str, Choice]) -> list[str]:
        """The other knobs whose choice brings ``state``, if this refusal's choice is taken."""
        if chosen[self.knob].id != self.choice:
            return []
        return [
            f"{k}={c.id}" for k, c in chosen.items() if k != self.knob and self.state in c.needs
        ]


REFUSALS: tuple[Refusal, ...] = (
    Refusal(
        "fork_pinned",
        "share",
        EXCLUSIVE_BIT,
        "the exclusive bit may be cleared only on a page that may not be pinned "
        "(6c287605fd56, checked on unpin by b6a2619c60b4); a fork that shares every page "
        "clears it on pinned ones, so the rules that trust the bit would be lied to",
    ),
    Refusal(
        "swap_pinned",
        "allow",
        EXCLUSIVE_BIT,
        "swap-out clears the exclusive bit, which may not happen to a maybe-pinned page "
        "(6c287605fd56: try_to_unmap fails instead, b6a2619c60b4 checks it on unpin)",
    ),
)


def needs_of(chosen: Mapping[str, Choice]) -> frozenset[str]:
    """The state a setting keeps: whatever one of its choices needs."""
    return frozenset().union(*(c.needs for c in chosen.values()))


def resolve(settings: Mapping[str, str]) -> Mapping[str, Choice]:
    """The choice objects of a complete setting, in `KNOBS` order; raises `UnknownPolicy` for a
    missing or unknown knob or choice and `RefusedCombination` naming the conflicting knobs."""
    unknown = sorted(set(settings) - set(KNOBS))
    if unknown:
        raise UnknownPolicy(f"unknown knob {unknown[0]!r}; expected one of: {', '.join(KNOBS)}")
    missing = [k for k in KNOBS if k not in settings]
    if missing:
        raise UnknownPolicy(f"no choice for knob(s): {', '.join(missing)}")
    chosen = {k: knob.choice(settings[k]) for k, knob in KNOBS.items()}
    for refusal in REFUSALS:
        others = refusal.conflicts(chosen)
        if others:
            raise RefusedCombination(
                f"refused combination: {refusal.knob}={refusal.choice} conflicts with "
                f"{', '.join(others)}: {refusal.why}"
            )
    return MappingProxyType(chosen)


def refusals_json() -> list[dict[str, object]]:
    """Every refused combination, as `cowlab lab knobs --json` lists it."""
    return [
        {
            "knob": r.knob,
            "choice": r.choice,
            "conflicts_with": [
                f"{k}={c.id}"
                for k, knob in KNOBS.items()
                if k != r.knob
                for c in knob.choices
                if r.state in c.needs
            ],
            "why": r.why,
        }
        for r in REFUSALS
    ]
