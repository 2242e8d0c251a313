"""Proposal (Peter Xu, Aug 2020, never merged): FAULT_FLAG_BREAK_COW on top of 5.8."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import Decision, GupRequest, KernelVersion
from engine.policies.e5_8 import EnforcedCow58
from engine.state import Vma


class BreakCowProposal(EnforcedCow58):
    """Peter Xu, Aug 2020 (never merged): FAULT_FLAG_BREAK_COW breaks COW for a read GUP
    without calling it a write: no userfault, uffd-wp bit kept, the copy stays write-protected.

    The machine runs it as an unsharing fault: "the page is not marked writable; dirty/soft-dirty
    not set for a pure read" (semantics §3 prose; its table's "else writable" contradicts it, and
    the prose follows the patch's intent, so we follow the prose).
    """

    id = "5.8-break-cow"
    label = "Proposal: FAULT_FLAG_BREAK_COW"
    kernels = "proposal (Aug 2020), never merged"
    commits: ClassVar[tuple[str, ...]] = ("17839856fd58",)
    merged = False
    since = (5, 8)
    until: ClassVar[KernelVersion | None] = (5, 8)
    story = (
        "Peter Xu's '[PATCH v2] mm/gup: Allow real explicit breaking of COW' (10 Aug 2020) kept "
        "5.8's COW break for read GUPs but marked it FAULT_FLAG_BREAK_COW instead of a write: no "
        "userfaultfd write-protect notification for a read, the uffd-wp bit carried over to the "
        "copy and the PTE left write-protected. Linus liked the idea but wanted the flag "
        "inverted and asked why a silent COW was right for uffd-wp; it was never merged."
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        decision = super().gup_breaks_cow(req, vma)
        if decision is None:
            return None
        return Decision(
            "unshare",
            "FOLL_BREAK_COW",
            "should_force_cow_break → faultin_page(FAULT_FLAG_BREAK_COW)",
            "20200810145701.129228-1-peterx@redhat.com",
            "the GUP breaks COW for a read with FAULT_FLAG_BREAK_COW: a copy if shared, but not "
            "a write, so no userfault is raised and a write-protected PTE stays write-protected",
            decision.inputs,
        )


POLICY = BreakCowProposal()
