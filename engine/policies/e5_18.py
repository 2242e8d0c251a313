"""5.18: COW fixes part 1 — the page_count rule on swap-in and THP too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e5_9 import PageCount59


class PageCount518(PageCount59):
    """5.18: COW fixes part 1 — the page_count rule on swap-in and THP too."""

    id = "5.18"
    label = "page_count everywhere"
    kernels = "5.18"
    since = (5, 18)
    until: ClassVar[KernelVersion | None] = (5, 18)
    commits: ClassVar[tuple[str, ...]] = (
        "c145e0b47c77",
        "3bff7e3f1f16",
        "53a05ad9f21d",
        "d4c470970d45",
        "03104c2c5db8",
    )
    story = (
        "David Hildenbrand's COW fixes part 1 close the swap and THP variants of CVE-2020-29374: "
        "do_swap_page and the huge-PMD write fault use the same page_count rule as do_wp_page, "
        "and reuse_swap_page() is gone. Before the count is checked the swap cache's reference "
        "is dropped when no swap entry needs it any more, so a swapped-in page is not copied "
        "needlessly. Pins still make their owner copy away from them (wrong COW)."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **PageCount59.knobs,
        "wp_reuse": "page-count-free-swapcache",
        "swapin_reuse": "page-count",
        "hugetlb_dontneed": "zap",
    }


POLICY = PageCount518()
