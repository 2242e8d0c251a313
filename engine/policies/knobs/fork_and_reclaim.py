"""fork with a pinned page, reclaim of a pinned page, and clear_refs on a pinned page: the three
places where the kernel learned that a pin must keep seeing the page its owner maps."""

from __future__ import annotations

from engine.policies.decision import Decision, counts
from engine.policies.knobs.choice import EXCLUSIVE_BIT, HAS_PINNED, Choice
from engine.state import Frame, Vma


def _pinned(frame: Frame) -> str:
    """How page_maybe_dma_pinned() knew: the 1024 bias of a small page, a folio's _pincount."""
    return "refcount ≥ 1024" if frame.folio is None else f"its folio's _pincount is {frame.pins}"


class ForkPinned(Choice):
    """copy_one_pte / copy_present_pte for a present page of a private mapping: share it, or
    copy it for the child when it may be pinned? The anonymous page and the page-cache page
    (a private file mapping fork walks because it has an anon_vma, vma_needs_copy) go through
    the same function, so one choice answers both."""

    knob = "fork_pinned"

    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        raise NotImplementedError

    def fork_pagecache_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_one_pte for a page-cache page in a private mapping: share it read-only whatever
        pins it has."""
        return _FORK_PAGECACHE_SHARE

    def fork_huge_pmd(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_huge_pmd for a PMD-mapped THP: "share" the PMD write-protected in both, or
        "copy": split the parent's PMD and give the child copies of the subpages (what
        copy_pte_range then does with each subpage of a pinned folio)."""
        raise NotImplementedError

    def fork_hugetlb(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_hugetlb_page_range for a private hugetlb page: share or copy for the child."""
        raise NotImplementedError


class ForkShares(ForkPinned):
    id = "share"
    label = "share every anon page"
    kernel = "copy_one_pte"
    commit = ""
    why = (
        "pins are not looked at: the parent's next write copies away from its own pin, which "
        "goes stale (the RDMA fork problem)"
    )

    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_one_pte: before 5.9 fork knows nothing about pins: share and write-protect."""
        return Decision(
            "share",
            "fork shares every anon page",
            "copy_one_pte",
            "",
            "fork write-protects the page in parent and child and shares it (mapcount +1); "
            "pins are not looked at, so a pinned page can end up on the wrong side of a COW",
            counts(frame),
        )

    def fork_huge_pmd(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_huge_pmd before 5.9: the PMD is write-protected in both and shared (entire
        mapcount +1), pins or not."""
        return Decision(
            "share",
            "fork shares the huge PMD",
            "copy_huge_pmd",
            "",
            "fork write-protects the PMD in parent and child and shares the whole THP (entire "
            "mapcount +1); pins are not looked at",
            counts(frame),
        )

    def fork_hugetlb(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_hugetlb_page_range before 5.12 (4eae4efa2c29): share, write-protected in both."""
        return Decision(
            "share",
            "fork shares the hugetlb page",
            "copy_hugetlb_page_range",
            "",
            "fork write-protects the huge PTE in parent and child and shares the hugetlb page "
            "(mapcount +1); pins are not looked at",
            counts(frame),
        )


class ForkCopiesPinned(ForkPinned):
    id = "copy"
    label = "copy a maybe-pinned page for the child"
    kernel = "copy_present_pte → copy_present_page"
    commit = "70e806e4e645"
    why = (
        "in an mm that ever pinned (mm->has_pinned, brought along), a page with refcount ≥ 1024 "
        "is copied for the child at once and the parent keeps it writable; there is no "
        "anonymous check, so a pinned page-cache page of a private mapping is copied too"
    )
    needs = frozenset({HAS_PINNED})

    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_present_pte → copy_present_page (70e806e4e645): a page that may be DMA-pinned in
        an mm that ever pinned is copied for the child at once; the parent keeps its page."""
        inputs = counts(frame) | {"has_pinned": parent_has_pinned}
        if parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "page_maybe_dma_pinned at fork",
                "copy_present_pte → copy_present_page",
                "70e806e4e645",
                f"the parent has pinned this page ({_pinned(frame)}), so the child gets its own "
                "copy now and the parent keeps the pinned page writable",
                inputs,
            )
        return Decision(
            "share",
            "fork shares unpinned anon page",
            "copy_present_pte",
            "70e806e4e645",
            "the page is not pinned, so fork write-protects it in both and shares it",
            inputs,
        )

    def fork_huge_pmd(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_huge_pmd (d042035eaf5f, "mm/thp: Split huge pmds/puds if they're pinned when
        fork()", 5.9): a THP that may be pinned (exact _pincount) in an mm that ever pinned is
        not shared: the parent's PMD is split and copy_pte_range runs per subpage, where
        copy_present_page (70e806e4e645) copies every subpage for the child — the folio's
        pincount makes each of them maybe-pinned. The parent keeps its PTE-mapped THP
        writable."""
        inputs = counts(frame) | {"has_pinned": parent_has_pinned}
        if parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "pinned THP: split the PMD, copy the subpages for the child",
                "copy_huge_pmd → __split_huge_pmd; copy_present_page",
                "d042035eaf5f",
                f"the THP may be pinned (_pincount {frame.pins}), so fork splits the parent's "
                "PMD and the child gets its own copy of every subpage; the parent keeps the "
                "pinned folio, now PTE-mapped and still writable",
                inputs,
            )
        return Decision(
            "share",
            "unpinned THP: share the PMD",
            "copy_huge_pmd",
            "d042035eaf5f",
            "the THP is not pinned, so fork write-protects the PMD in both and shares it",
            inputs,
        )

    def fork_hugetlb(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_hugetlb_page_range (4eae4efa2c29, "hugetlb: do early cow when page pinned on
        src mm", 5.12; the test is page_needs_cow_for_dma, 97a7e4733b9b): a hugetlb page that
        may be pinned in an mm that ever pinned is copied for the child. The 5.9 era shows
        mainline 5.17, which has it."""
        inputs = counts(frame) | {"has_pinned": parent_has_pinned}
        if parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "page_needs_cow_for_dma: copy the hugetlb page for the child",
                "copy_hugetlb_page_range → page_needs_cow_for_dma",
                "4eae4efa2c29",
                f"the hugetlb page may be pinned (_pincount {frame.pins}), so the child gets a "
                "copy of all 2 MiB now and the parent keeps the pinned page writable",
                inputs,
            )
        return Decision(
            "share",
            "unpinned hugetlb page: share",
            "copy_hugetlb_page_range",
            "97a7e4733b9b",
            "the hugetlb page is not pinned, so fork write-protects it in both and shares it",
            inputs,
        )

    def fork_pagecache_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_present_page (70e806e4e645) has no anonymous check: any normal page of a COW
        mapping that may be pinned in an mm that ever pinned is copied for the child, a
        page-cache page too (the child gets an anonymous copy, writable if the VMA is).

        Mainline kept it so through 5.18 (97a7e4733b9b only moved the test into
        page_needs_cow_for_dma); fb3d824d1a46 (5.19) calls copy_present_page for anonymous
        pages only, and the 5.15/5.10 stable branches got a PageAnon check instead. DESIGN §3
        shows mainline at the end of each range (5.17 for 5.9, 5.18 for the next era), so both
        copy. Fork only walks the PTEs of a VMA with an anon_vma (vma_needs_copy), so the page
        must sit in a private file mapping that already had an anonymous page."""
        if not (parent_has_pinned and frame.maybe_dma_pinned):
            return super().fork_pagecache_pte(frame, parent_has_pinned)
        return Decision(
            "copy",
            "page_maybe_dma_pinned at fork, any page",
            "copy_present_pte → copy_present_page",
            "70e806e4e645",
            "the parent may have pinned this page-cache page (refcount ≥ 1024) and the early "
            "copy does not check for anonymous pages, so the child gets its own anonymous copy",
            counts(frame) | {"has_pinned": parent_has_pinned},
        )


class ForkDupAnonRmap(ForkPinned):
    id = "copy-if-exclusive"
    label = "share unless exclusive and maybe pinned"
    kernel = "copy_present_pte → page_try_dup_anon_rmap"
    commit = "fb3d824d1a46"
    why = (
        "a shared page is shared again; an exclusive one keeps its bit and is copied for the "
        "child when it may be pinned; a page-cache page is always shared (brings the "
        "exclusive bit and mm->has_pinned)"
    )
    needs = frozenset({EXCLUSIVE_BIT, HAS_PINNED})

    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_present_pte → page_try_dup_anon_rmap (fb3d824d1a46, 6c287605fd56): a shared page
        is shared again; an exclusive one can be shared only if it may not be pinned."""
        inputs = counts(frame) | {"has_pinned": parent_has_pinned}
        if not frame.anon_exclusive:
            return Decision(
                "share",
                "not exclusive: share",
                "copy_present_pte",
                "6c287605fd56",
                "the page is already shared, so fork simply shares it once more",
                inputs,
            )
        if parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "exclusive and maybe pinned: copy for child",
                "copy_present_pte → page_try_dup_anon_rmap fails",
                "fb3d824d1a46",
                "the exclusive page may be pinned, so its exclusive bit cannot be cleared: the "
                "child gets a copy and the parent keeps the page writable",
                inputs,
            )
        return Decision(
            "share",
            "exclusive, not pinned: clear exclusive and share",
            "copy_present_pte → page_try_dup_anon_rmap",
            "6c287605fd56",
            "the page is not pinned, so fork clears its exclusive bit, write-protects it in both "
            "and shares it",
            inputs,
        )

    def fork_huge_pmd(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_huge_pmd → page_try_dup_anon_rmap(compound) (fb3d824d1a46, 5.19): a THP that
        is not exclusive is shared again; an exclusive one whose bit cannot be cleared (maybe
        pinned) makes fork split the PMD and retry per PTE, where each exclusive, pinned
        subpage is copied for the child; otherwise the bit is cleared and the PMD shared."""
        inputs = counts(frame) | {"has_pinned": parent_has_pinned}
        if frame.anon_exclusive and parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "exclusive and maybe pinned: split, copy the subpages for the child",
                "copy_huge_pmd → page_try_dup_anon_rmap fails → __split_huge_pmd",
                "fb3d824d1a46",
                f"the exclusive THP may be pinned (_pincount {frame.pins}), so its bit cannot "
                "be cleared: fork splits the parent's PMD and copies every subpage for the "
                "child; the parent keeps the folio PTE-mapped, exclusive and writable",
                inputs,
            )
        return Decision(
            "share",
            "not exclusive: share" if not frame.anon_exclusive else "clear exclusive and share",
            "copy_huge_pmd → page_try_dup_anon_rmap",
            "6c287605fd56",
            "fork write-protects the PMD in both and shares the THP"
            + ("" if not frame.anon_exclusive else ", clearing its exclusive bit (not pinned)"),
            inputs,
        )

    def fork_hugetlb(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_hugetlb_page_range → page_try_dup_anon_rmap (fb3d824d1a46, 5.19): as for a
        small page, an exclusive hugetlb page that may be pinned is copied for the child."""
        inputs = counts(frame) | {"has_pinned": parent_has_pinned}
        if frame.anon_exclusive and parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "exclusive and maybe pinned: copy the hugetlb page for the child",
                "copy_hugetlb_page_range → page_try_dup_anon_rmap fails",
                "fb3d824d1a46",
                f"the exclusive hugetlb page may be pinned (_pincount {frame.pins}), so the "
                "child gets a copy of all 2 MiB and the parent keeps its page writable",
                inputs,
            )
        return Decision(
            "share",
            "not exclusive: share" if not frame.anon_exclusive else "clear exclusive and share",
            "copy_hugetlb_page_range → page_try_dup_anon_rmap",
            "6c287605fd56",
            "fork write-protects the huge PTE in both and shares the hugetlb page"
            + ("" if not frame.anon_exclusive else ", clearing its exclusive bit (not pinned)"),
            inputs,
        )

    def fork_pagecache_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_present_pte (fb3d824d1a46): only an anonymous page goes through
        page_try_dup_anon_rmap and may be copied; a page-cache page gets page_dup_file_rmap and
        is shared, pinned or not."""
        return Decision(
            "share",
            "page-cache page: page_dup_file_rmap",
            "copy_present_pte → page_dup_file_rmap",
            "fb3d824d1a46",
            "fork copies only anonymous pages early; the page-cache page is shared read-only "
            "with the child, pinned or not",
            counts(frame) | {"has_pinned": parent_has_pinned},
        )


class SwapPinned(Choice):
    """Reclaim (MADV_PAGEOUT) of a page that may be pinned: may it enter the swap cache?"""

    knob = "swap_pinned"

    def swapout_blocked(self, frame: Frame) -> Decision | None:
        return None


class SwapAllowed(SwapPinned):
    id = "allow"
    label = "pinned pages are swapped like any other"
    kernel = "shrink_page_list"
    commit = ""
    why = (
        "the pin keeps the old page while the owner faults in a new one from swap: the pin goes "
        "stale"
    )


class SwapRefused(SwapPinned):
    id = "refuse"
    label = "maybe-pinned pages stay out of the swap cache"
    kernel = "shrink_page_list"
    commit = "feb889fb40fa"
    why = "page_maybe_dma_pinned() keeps reclaim away from a pinned page (5.11)"

    def swapout_blocked(self, frame: Frame) -> Decision | None:
        if not frame.maybe_dma_pinned:
            return None
        return Decision(
            "refuse",
            "pinned pages stay out of the swap cache",
            "shrink_page_list",
            "feb889fb40fa",
            "the page may be DMA-pinned, so reclaim leaves it mapped instead of putting it in "
            "the swap cache",
            counts(frame),
        )


class SwapUnmapFails(SwapPinned):
    id = "refuse-unmap"
    label = "unmapping a pinned exclusive page fails"
    kernel = "try_to_unmap_one → page_try_share_anon_rmap"
    commit = "6c287605fd56"
    why = (
        "the exclusive bit of a maybe-pinned page cannot be dropped, so try_to_unmap fails "
        "(brings the exclusive bit)"
    )
    needs = frozenset({EXCLUSIVE_BIT})

    def swapout_blocked(self, frame: Frame) -> Decision | None:
        if not frame.maybe_dma_pinned:
            return None
        return Decision(
            "refuse",
            "cannot unmap a pinned exclusive page",
            "try_to_unmap_one → page_try_share_anon_rmap",
            "6c287605fd56",
            "the page may be pinned, so its exclusive bit cannot be dropped and reclaim leaves "
            "it mapped",
            counts(frame),
        )


class ClearRefs(Choice):
    """clear_refs (soft-dirty reset) on a page of a COW mapping that may be pinned."""

    knob = "clear_refs"

    def clear_refs_skip(self, frame: Frame, vma: Vma) -> Decision | None:
        return None


class ClearRefsAll(ClearRefs):
    id = "write-protect-all"
    label = "write-protect every page"
    kernel = "clear_soft_dirty"
    commit = ""
    why = "a write-protected pinned page makes its owner copy away from the pin on its next write"


class ClearRefsSkipPinned(ClearRefs):
    id = "skip-pinned"
    label = "leave maybe-pinned pages alone"
    kernel = "clear_soft_dirty"
    commit = ""
    why = "5.11, 'mm: don't play games with pinned pages in clear_page_refs'"

    def clear_refs_skip(self, frame: Frame, vma: Vma) -> Decision | None:
        """5.11, "mm: don't play games with pinned pages in clear_page_refs": write-protecting
        a maybe-pinned page of a COW mapping would make its owner copy away from the pin."""
        if not (vma.is_cow_mapping and frame.maybe_dma_pinned):
            return None
        return _CLEAR_REFS_SKIPS_PINNED


_FORK_PAGECACHE_SHARE = Decision(
    "share",
    "share R/O",
    "copy_present_pte",
    "",
    "the page-cache page is shared read-only with the child",
)
_CLEAR_REFS_SKIPS_PINNED = Decision(
    "skip",
    "skip maybe-pinned pages (5.11: mm: don't play games with pinned pages in clear_page_refs)",
    "clear_soft_dirty",
    "",
    "write-protecting it would make its owner copy away from the pin",
)

FORK_PINNED = (ForkShares(), ForkCopiesPinned(), ForkDupAnonRmap())
SWAP_PINNED = (SwapAllowed(), SwapRefused(), SwapUnmapFails())
CLEAR_REFS = (ClearRefsAll(), ClearRefsSkipPinned())
