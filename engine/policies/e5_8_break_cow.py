"""Proposal (Peter Xu, Aug 2020, never merged): FAULT_FLAG_BREAK_COW on top of 5.8."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_8 import EnforcedCow58


class BreakCowProposal(EnforcedCow58):
    """Peter Xu, Aug 2020 (never merged): FAULT_FLAG_BREAK_COW breaks COW for a read GUP
    without calling it a write: no userfault, uffd-wp bit kept, the copy stays write-protected
    (the reading we chose is on `engine.policies.knobs.gup.BreakCow`)."""

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
        "inverted and asked why a silent COW was right for uffd-wp; it was never merged. "
        "cowlab models the proposal's intent on every backing: the posted v2 left hugetlb on "
        "FOLL_WRITE only (follow_hugetlb_page faults for FOLL_WRITE, hugetlb_fault copies only "
        "for FAULT_FLAG_WRITE), so under the posted code a hugetlb vmsplice() still leaks."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **EnforcedCow58.knobs,
        "gup_read": "break-cow",
    }


POLICY = BreakCowProposal()
