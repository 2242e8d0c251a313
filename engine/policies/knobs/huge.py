"""Write faults on transparent huge pages, and the huge-page knobs.

Which THP may be reused is the `wp_reuse` knob's business (`write_fault`): the kernel changed
do_wp_page and do_huge_pmd_wp_page in the same series each time, except once — 09854ba94c6a
(5.9) switched do_wp_page to page_count but left do_huge_pmd_wp_page on mapcounts, reopening
CVE-2020-29374 for THP until 3bff7e3f1f16 (5.18) — and each `wp_reuse` choice says what its
kernel did with a PMD-mapped THP (`thp_wp_reuse`) and with a subpage of a PTE-mapped one
(`pte_thp_reuse`, do_wp_page on a large folio, whose refcount counts every subpage's mapping:
the page_count rule copies a subpage even of a THP one process maps, until 6.15 reuses a folio
exclusively mapped by one MM — 1da190f4d0a6, the `wp_reuse` choice `large-folio-mm`). The tests
they share are here.

Two knobs are huge-page only: what do_huge_pmd_wp_page does with a THP it cannot reuse
(`thp_cow`: copy it whole before 5.8, split the PMD since 3917c80280c9 — and since
1ced09e0331f, 6.13, a write to the huge zero page maps a new THP again), and whether
MADV_DONTNEED works on hugetlb (`hugetlb_dontneed`).

The folio's counters, as the kernel reads them (kernel-cow-semantics.md §1.2): the entire
mapcount (PMD mappings), page_mapcount() of a subpage (its PTE mappings plus the entire
mapcount), the folio refcount (one per PMD mapping, one per subpage PTE mapping, one per GUP
reference and per pin — exact _pincount, no 1024 bias —, one per subpage in the swap cache),
and PageAnonExclusive, in the head page for a PMD mapping and per subpage once PTE-mapped.

hugetlb pages are not here: hugetlb_wp reuses iff mapcount == 1 in every era
(`Policy.hugetlb_wp_reuse`).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.policies.decision import Decision, counts, holders
from engine.policies.knobs.choice import Choice
from engine.state import Frame


def _thp_map_swapcount(frame: Frame, swapcount: int) -> int:
    """page_trans_huge_map_swapcount(): the largest page_mapcount() (+ swap count) of any
    subpage — what reuse_swap_page() compares with 1 for a THP (ba3c4ce6def4)."""
    swap = swapcount if frame.swapcache else 0
    return max(frame.subpage_mapcount(0), frame.subpage_mapcount(1)) + swap


def thp_mapcount_test(frame: Frame, swapcount: int, commit: str) -> Decision:
    """do_huge_pmd_wp_page → reuse_swap_page() with THP mapcounts (ba3c4ce6def4, 4.14; before
    it page_trans_huge_mapcount() == 1, the same test without swap): reuse iff no subpage is
    mapped more than once. GUP references, pins and pipe buffers are not looked at."""
    count = _thp_map_swapcount(frame, swapcount)
    inputs = counts(frame) | {"swapcount": swapcount, "map_swapcount": count}
    if count <= 1:
        others = frame.gets + frame.pins
        return Decision(
            "reuse",
            "THP mapcount + swapcount ≤ 1",
            "do_huge_pmd_wp_page → reuse_swap_page",
            commit,
            f"no subpage is mapped more than once (entire mapcount {frame.entire_mapcount}, "
            f"largest page_mapcount {count}), so the writer keeps the whole huge page"
            + (f"; the {others} GUP/pin/pipe reference(s) are not counted" if others else ""),
            inputs,
        )
    return Decision(
        "copy",
        "THP mapcount + swapcount > 1",
        "do_huge_pmd_wp_page",
        commit,
        f"a subpage is mapped {count} times (entire mapcount {frame.entire_mapcount})",
        inputs,
    )


def thp_page_count_test(frame: Frame) -> Decision:
    """do_huge_pmd_wp_page (3bff7e3f1f16, "streamline COW logic in do_huge_pmd_wp_page",
    5.18): after trying to free the swap cache, reuse iff the folio's refcount is 1 — one PMD
    mapping and nothing else."""
    inputs = counts(frame)
    if frame.refcount == 1:
        return Decision(
            "reuse",
            "THP refcount == 1",
            "do_huge_pmd_wp_page",
            "3bff7e3f1f16",
            "the folio's only reference is this PMD mapping, so the writer keeps the huge page",
            inputs,
        )
    return Decision(
        "copy",
        "THP refcount > 1",
        "do_huge_pmd_wp_page",
        "3bff7e3f1f16",
        f"the folio has refcount {frame.refcount} ({holders(frame)}), not 1",
        inputs,
    )


def pte_thp_mapcount_test(frame: Frame, swapcount: int) -> Decision:
    """do_wp_page → reuse_swap_page() before 5.9 on a subpage of a THP: the count is
    page_trans_huge_map_swapcount() — the largest page_mapcount() (+ swap count) of any subpage
    (ba3c4ce6def4); reuse iff ≤ 1. GUP references and pins are not counted."""
    count = _thp_map_swapcount(frame, swapcount)
    inputs = counts(frame) | {"swapcount": swapcount, "map_swapcount": count}
    if count <= 1:
        return Decision(
            "reuse",
            "THP subpage mapcount ≤ 1",
            "do_wp_page → reuse_swap_page",
            "ba3c4ce6def4",
            f"no subpage of the folio is mapped more than once (largest page_mapcount "
            f"{count}), so the writer keeps subpage 0",
            inputs,
        )
    return Decision(
        "copy",
        "THP subpage mapcount > 1",
        "do_wp_page → wp_page_copy",
        "ba3c4ce6def4",
        f"a subpage of the folio is mapped {count} times, so subpage 0 is copied into a small "
        "page of its own",
        inputs,
    )


def pte_thp_page_count_test(frame: Frame) -> Decision:
    """do_wp_page (09854ba94c6a, 5.9): reuse iff page_count() == 1, and page_count() of a
    subpage is the whole folio's refcount — every PTE mapping of every subpage holds one — so
    while the folio's other subpages are mapped the subpage is copied ("PTE-mapped THP
    refcount ⇒ copy", kernel-cow-semantics.md §2.3), even when one process maps all of it —
    until 6.15's __wp_can_reuse_large_anon_folio (1da190f4d0a6, `LargeFolioReuse`)."""
    inputs = counts(frame)
    if frame.refcount == 1:
        return Decision(
            "reuse",
            "folio refcount == 1",
            "do_wp_page",
            "09854ba94c6a",
            "the folio's only reference is this subpage's PTE, so the writer keeps it",
            inputs,
        )
    return Decision(
        "copy",
        "folio refcount > 1",
        "do_wp_page → wp_page_copy",
        "09854ba94c6a",
        f"page_count() of the subpage is the folio's refcount {frame.refcount} "
        f"({holders(frame)}), not 1, so subpage 0 is copied into a small page",
        inputs,
    )


def exclusive_reuse(frame: Frame, what: str, function: str) -> Decision:
    """PageAnonExclusive ⇒ reuse at once, pins or not (6c287605fd56)."""
    return Decision(
        "reuse",
        "PageAnonExclusive",
        function,
        "6c287605fd56",
        f"{what} is marked exclusive to this process, so it keeps it whatever references "
        f"the folio has ({holders(frame)})",
        counts(frame),
    )


class ThpCow(Choice):
    """do_huge_pmd_wp_page on a THP it may not reuse: copy it whole, or split the PMD?"""

    knob = "thp_cow"

    def thp_cow(self, frame: Frame, why: str, inputs: Mapping[str, int | bool | str]) -> Decision:
        raise NotImplementedError

    def huge_zero_wp(self) -> Decision:
        raise NotImplementedError


class ThpCopyWhole(ThpCow):
    id = "copy-huge"
    label = "copy the whole THP"
    kernel = "do_huge_pmd_wp_page → copy_user_huge_page"
    commit = ""
    why = (
        "a THP that cannot be reused is copied whole into a new THP (512 subpages), and a "
        "write to the huge zero page allocates a THP (before 5.8)"
    )

    def thp_cow(self, frame: Frame, why: str, inputs: Mapping[str, int | bool | str]) -> Decision:
        """do_huge_pmd_wp_page before 3917c80280c9: allocate a new THP (alloc_hugepage_vma)
        and copy all 512 subpages into it (copy_user_huge_page)."""
        return Decision(
            "copy",
            "copy the whole huge page",
            "do_huge_pmd_wp_page → copy_user_huge_page",
            "",
            f"{why}, so a new huge page is allocated and all 512 subpages are copied into it",
            inputs,
        )

    def huge_zero_wp(self) -> Decision:
        """do_huge_pmd_wp_page before 3917c80280c9: a write to the huge zero page allocates
        a new THP and clears it."""
        return Decision(
            "copy",
            "huge zero page: allocate a THP",
            "do_huge_pmd_wp_page → alloc_hugepage_vma, clear_huge_page",
            "",
            "the PMD maps the huge zero page: a new huge page is allocated, zeroed and mapped "
            "writable",
        )


class ThpSplit(ThpCow):
    id = "split"
    label = "split the PMD, copy the subpage"
    kernel = "do_huge_pmd_wp_page → __split_huge_pmd"
    commit = "3917c80280c9"
    why = (
        "'thp: change CoW semantics for anon-THP' (5.8): the PMD is split and only the subpage "
        "written is copied; the huge zero page is split into small zero pages"
    )

    def thp_cow(self, frame: Frame, why: str, inputs: Mapping[str, int | bool | str]) -> Decision:
        """do_huge_pmd_wp_page since 3917c80280c9 (5.8): split the PMD (__split_huge_pmd) and
        return VM_FAULT_FALLBACK, so do_wp_page decides for the subpage written."""
        return Decision(
            "split",
            "split the PMD, fall back to PTEs",
            "do_huge_pmd_wp_page → __split_huge_pmd",
            "3917c80280c9",
            f"{why}, so the PMD is split into 512 PTEs and the fault is retried on the subpage "
            "written (do_wp_page)",
            inputs,
        )

    def huge_zero_wp(self) -> Decision:
        """A write to the huge zero page (3917c80280c9): split the PMD into PTEs of the small
        zero page and let do_wp_page give subpage 0 a zeroed page of its own."""
        return Decision(
            "split",
            "huge zero page: split",
            "do_huge_pmd_wp_page → __split_huge_pmd",
            "3917c80280c9",
            "the PMD maps the huge zero page: it is split into PTEs of the zero page and only "
            "the subpage written gets a page of its own",
        )


class ThpSplitZeroThp(ThpSplit):
    id = "split-zero-thp"
    label = "split the PMD; the huge zero page gets a THP"
    kernel = "do_huge_pmd_wp_page → do_huge_zero_wp_pmd"
    commit = "1ced09e0331f"
    why = (
        "'mm: allocate THP on hugezeropage wp-fault' (6.13): a THP that cannot be reused is "
        "still split, but a write to the huge zero page maps a new zeroed THP by a PMD"
    )

    def huge_zero_wp(self) -> Decision:
        """do_huge_pmd_wp_page since 1ced09e0331f (6.13): on the huge zero PMD,
        do_huge_zero_wp_pmd allocates a PMD-sized folio, clears it and maps it by a PMD
        (map_anon_folio_pmd); only if no THP can be allocated does it fall back to splitting
        the PMD, which cowlab, whose memory never runs out, never needs. An unshare fault
        (FAULT_FLAG_UNSHARE, a R/O pin) takes the same path; the kernel maps that PMD writable
        at once (maybe_pmd_mkwrite), cowlab keeps it read-only like every unshare — the next
        write finds the page exclusive and keeps it, so no outcome differs."""
        return Decision(
            "copy",
            "huge zero page: allocate a THP",
            "do_huge_pmd_wp_page → do_huge_zero_wp_pmd",
            "1ced09e0331f",
            "the PMD maps the huge zero page: a new zeroed huge page is allocated and mapped by "
            "a PMD instead of splitting the huge zero page",
        )


THP_COW = (ThpCopyWhole(), ThpSplit(), ThpSplitZeroThp())


class HugetlbDontneed(Choice):
    """madvise(MADV_DONTNEED) on a hugetlb mapping: refused, or the huge page is zapped?"""

    knob = "hugetlb_dontneed"

    def hugetlb_dontneed(self) -> Decision:
        raise NotImplementedError


class HugetlbDontneedRefused(HugetlbDontneed):
    id = "einval"
    label = "MADV_DONTNEED refuses hugetlb"
    kernel = "madvise_dontneed_free_valid_vma"
    commit = ""
    why = "before 5.18 MADV_DONTNEED fails with -EINVAL on a VM_HUGETLB mapping"

    def hugetlb_dontneed(self) -> Decision:
        """madvise_dontneed_free_valid_vma before 90e7e7f5ef3f: can_madv_lru_vma() refuses
        VM_HUGETLB, so madvise fails with -EINVAL and the page stays mapped."""
        return Decision(
            "refuse",
            "MADV_DONTNEED refuses VM_HUGETLB",
            "madvise_dontneed_free_valid_vma",
            "",
            "MADV_DONTNEED is not supported on a hugetlb mapping in this kernel: madvise fails "
            "with -EINVAL and the huge page stays mapped",
        )


class HugetlbDontneedZaps(HugetlbDontneed):
    id = "zap"
    label = "MADV_DONTNEED zaps hugetlb pages"
    kernel = "madvise_dontneed_single_vma → zap_page_range"
    commit = "90e7e7f5ef3f"
    why = "5.18 ('mm: enable MADV_DONTNEED for hugetlb mappings') unmaps whole huge pages"

    def hugetlb_dontneed(self) -> Decision:
        """90e7e7f5ef3f (5.18): MADV_DONTNEED of a whole hugetlb page unmaps it like any
        other page; a later touch faults in a new one."""
        return Decision(
            "allow",
            "MADV_DONTNEED zaps the hugetlb page",
            "madvise_dontneed_single_vma → zap_page_range",
            "90e7e7f5ef3f",
            "MADV_DONTNEED unmaps the hugetlb page (5.18)",
        )


HUGETLB_DONTNEED = (HugetlbDontneedRefused(), HugetlbDontneedZaps())
