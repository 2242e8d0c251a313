"""6.15 – today: a write fault reuses a PTE-mapped THP that one process maps alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.policies.base import KernelVersion
from engine.policies.e6_13 import HugeZeroThp613


class LargeFolioReuse615(HugeZeroThp613):
    """6.15 – today: COW reuse of PTE-mapped THP mapped exclusively by one MM (1da190f4d0a6)."""

    id = "6.15"
    label = "COW reuse of PTE-mapped THP"
    kernels = "6.15 – today"
    since = (6, 15)
    until: ClassVar[KernelVersion | None] = None
    commits: ClassVar[tuple[str, ...]] = HugeZeroThp613.commits + ("1da190f4d0a6",)
    story = (
        "David Hildenbrand's series 'mm: MM owner tracking for large folios (!hugetlb) + "
        "CONFIG_NO_PAGE_MAPCOUNT' teaches a large folio which processes map it: two MM ids with "
        "a mapcount each, and a 'maybe mapped shared' bit. 'mm: Copy-on-Write (COW) reuse "
        "support for PTE-mapped THP' (1da190f4d0a6) uses it in wp_can_reuse_anon_folio: a "
        "write fault on a subpage not marked exclusive keeps the page when the whole folio is "
        "mapped by the faulting process alone and every reference to it is one of those "
        "mappings (folio_large_mapcount == folio_ref_count). From 5.9 to 6.14 such a subpage was "
        "always copied — a THP shared by fork() and mapped by the parent alone again was copied "
        "4 KiB at a time, needlessly; small mTHP sizes, always PTE-mapped, made that common."
    )
    knobs: ClassVar[Mapping[str, str]] = {
        **HugeZeroThp613.knobs,
        "wp_reuse": "large-folio-mm",
    }


POLICY = LargeFolioReuse615()
