"""6.13 – 6.14: a write fault on the huge zero page maps a whole new THP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e6_2 import LongtermUnshare62


class HugeZeroThp613(LongtermUnshare62):
    """6.13 – 6.14: do_huge_zero_wp_pmd (1ced09e0331f) allocates a THP on a write fault on the
    huge zero page.

    Ends where 6.15 (`e6_15`) starts reusing PTE-mapped THPs mapped by one process alone;
    until then a subpage of such a THP is copied on every write fault (a needless copy)."""

    id = "6.13"
    label = "THP on a huge zero page write"
    kernels = "6.13 – 6.14"
    since = (6, 13)
    until: ClassVar[KernelVersion | None] = (6, 14)
    commits: ClassVar[tuple[str, ...]] = LongtermUnshare62.commits + ("1ced09e0331f",)
    story = (
        "Dev Jain's 'mm: allocate THP on hugezeropage wp-fault' (1ced09e0331f): a process that "
        "read a THP-sized range first (mapping the huge zero page) and then writes it used to "
        "get the PMD split and one 4 KiB page, losing the huge page for good. From 6.13 "
        "do_huge_zero_wp_pmd allocates a new zeroed THP and maps it by a PMD, as a first write "
        "would have. The page is a whole folio again: a fork shares it by its PMD, and a write "
        "after the fork splits and copies subpage by subpage — where 6.12 had copied one small "
        "page and let the child keep its own."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **LongtermUnshare62.knobs,
        "thp_cow": "split-zero-thp",
    }


POLICY = HugeZeroThp613()
