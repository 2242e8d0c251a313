"""The write fault's reuse test (do_wp_page) and its twin at swap-in (do_swap_page).

These two knobs are the heart of CVE-2020-29374 and of the page_count argument: reuse a
write-protected anonymous page when no other page table maps it (mapcount), only when nobody
holds any reference (page_count), or when the page is known to be exclusive (PageAnonExclusive).
Whether a zram swap-in skips the swap cache (and so brings no swap-cache reference to that test)
is a third knob here.
"""

from __future__ import annotations

from engine.policies.decision import NOTHING, Decision, counts, holders
from engine.policies.knobs.choice import EXCLUSIVE_BIT, Choice
from engine.policies.knobs.huge import (
    exclusive_reuse,
    pte_thp_mapcount_test,
    pte_thp_page_count_test,
    thp_mapcount_test,
    thp_page_count_test,
)
from engine.state import Frame


class WpReuse(Choice):
    """do_wp_page on a write-protected private anonymous page: reuse it or copy it?"""

    knob = "wp_reuse"

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        raise NotImplementedError

    def thp_wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_huge_pmd_wp_page: may the writer keep the whole PMD-mapped THP? "copy" means
        not; what happens then is the ``thp_cow`` knob's."""
        raise NotImplementedError

    def pte_thp_reuse(self, frame: Frame, swapcount: int, mms: int) -> Decision:
        """do_wp_page on subpage 0 of a PTE-mapped THP (``frame`` is the large folio, ``mms``
        the number of processes that map any of its subpages)."""
        raise NotImplementedError

    def free_swapcache_before_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """Before 5.18 do_wp_page does not free an unused swap cache before its test."""
        return NOTHING

    def reuse_frees_swapcache(self, frame: Frame) -> Decision:
        """reuse_swap_page (c475a8ab625d) deletes a page it lets the writer keep from the swap
        cache."""
        return _REUSE_FREES_SWAPCACHE


class MapcountReuse(WpReuse):
    id = "mapcount"
    label = "mapcount + swapcount ≤ 1"
    kernel = "do_wp_page → reuse_swap_page"
    commit = "c475a8ab625d"
    why = (
        "reuse when no other page table maps the page; references held by GUP, pins and pipes "
        "are not counted (CVE-2020-29374)"
    )

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page → reuse_swap_page(): reuse iff mapcount + swapcount ≤ 1 (c475a8ab625d).

        ``swapcount`` is the number of swap PTEs that still reference the page's swap slot when
        the page sits in the swap cache. Extra page references (GUP, pins, pipes) are not looked
        at: that blindness is CVE-2020-29374.
        """
        count = frame.mapcount + (swapcount if frame.swapcache else 0)
        inputs = counts(frame) | {"swapcount": swapcount}
        if count <= 1:
            return Decision(
                "reuse",
                "mapcount + swapcount ≤ 1",
                "do_wp_page → reuse_swap_page",
                "c475a8ab625d",
                f"only one page table maps the page (mapcount {frame.mapcount}, swap count "
                f"{swapcount if frame.swapcache else 0}), so the writer takes it over"
                + (
                    f"; the {others} other reference(s) are not counted"
                    if (others := frame.refcount - frame.mapcount)
                    else ""
                ),
                inputs,
            )
        return Decision(
            "copy",
            "mapcount + swapcount > 1",
            "do_wp_page → wp_page_copy",
            "c475a8ab625d",
            f"{count} page-table users share the page (mapcount {frame.mapcount}), so the writer "
            "gets a private copy",
            inputs,
        )

    def thp_wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        return thp_mapcount_test(frame, swapcount, "ba3c4ce6def4")

    def pte_thp_reuse(self, frame: Frame, swapcount: int, mms: int) -> Decision:
        return pte_thp_mapcount_test(frame, swapcount)


class PageCountReuse(WpReuse):
    id = "page-count"
    label = "page_count == 1"
    kernel = "do_wp_page"
    commit = "09854ba94c6a"
    why = (
        "reuse only if nobody else holds any reference: copying is always safe, but a pinned or "
        "swap-cached page is copied away from its pin (stale) or needlessly"
    )

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (09854ba94c6a): refcount != 1 ⇒ copy; under the page lock mapcount and
        refcount must both be 1. The swap cache's own reference counts, so a page still in the
        swap cache is copied needlessly."""
        inputs = counts(frame) | {"swapcount": swapcount}
        if frame.refcount == 1 and frame.mapcount == 1:
            return Decision(
                "reuse",
                "page_count == 1",
                "do_wp_page",
                "09854ba94c6a",
                "the faulting page table holds the only reference to the page, so nobody can "
                "see a write to it: reuse",
                inputs,
            )
        return Decision(
            "copy",
            "page_count != 1",
            "do_wp_page → wp_page_copy",
            "09854ba94c6a",
            f"page_count is {frame.refcount}, not 1 ({holders(frame)}), so the writer "
            "cannot prove it is the only user and copies",
            inputs,
        )

    def thp_wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """09854ba94c6a changed do_wp_page only: do_huge_pmd_wp_page keeps reuse_swap_page()
        and its mapcounts, so a THP whose GUP references are not counted is reused — the THP
        variant of CVE-2020-29374, open again until 3bff7e3f1f16 (5.18)."""
        return thp_mapcount_test(frame, swapcount, "09854ba94c6a")

    def pte_thp_reuse(self, frame: Frame, swapcount: int, mms: int) -> Decision:
        return pte_thp_page_count_test(frame)


class PageCountFreeSwapcache(PageCountReuse):
    id = "page-count-free-swapcache"
    label = "page_count == 1 after freeing an unused swap cache"
    kernel = "do_wp_page → folio_free_swap"
    commit = "53a05ad9f21d"
    why = (
        "the page_count test, but a swap cache no swap entry needs is dropped first, so a "
        "swapped-in page is not copied needlessly"
    )

    def free_swapcache_before_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page → folio_free_swap (53a05ad9f21d): a swap-cache page whose slot no swap PTE
        uses any more leaves the swap cache before the refcount test, so that reference does
        not force a copy."""
        if not frame.swapcache or swapcount != 0:
            return NOTHING
        return _FREE_UNUSED_SWAPCACHE

    def reuse_frees_swapcache(self, frame: Frame) -> Decision:
        """reuse_swap_page() is gone (53a05ad9f21d): the test above already dropped it."""
        return NOTHING

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """The machine drops that swap-cache reference before asking; here we only read the
        counters, so only the commit of a reuse differs from `PageCountReuse`."""
        decision = super().wp_reuse(frame, swapcount)
        return Decision(
            decision.outcome,
            decision.rule,
            decision.kernel,
            "53a05ad9f21d" if decision.outcome == "reuse" else "09854ba94c6a",
            decision.why,
            decision.inputs,
        )

    def thp_wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """The same series moved do_huge_pmd_wp_page to the refcount (3bff7e3f1f16)."""
        return thp_page_count_test(frame)


class AnonExclusiveReuse(PageCountFreeSwapcache):
    id = "anon-exclusive"
    label = "PageAnonExclusive, else page_count == 1"
    kernel = "do_wp_page → wp_can_reuse_anon_folio"
    commit = "6c287605fd56"
    why = (
        "an exclusive page is reused whatever pins it has; any other page takes the page_count "
        "test and is marked exclusive when reused (brings the exclusive bit)"
    )
    needs = frozenset({EXCLUSIVE_BIT})

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (6c287605fd56): PageAnonExclusive ⇒ reuse without looking at refcounts;
        otherwise the page_count test, and a successful reuse marks the page exclusive."""
        if frame.anon_exclusive:
            return Decision(
                "reuse",
                "PageAnonExclusive",
                "do_wp_page",
                "6c287605fd56",
                "the page is marked exclusive to this process, so it is reused whatever other "
                "references (pins) exist",
                counts(frame) | {"swapcount": swapcount},
            )
        decision = super().wp_reuse(frame, swapcount)
        if decision.outcome == "reuse":
            return Decision(
                "reuse",
                "page_count == 1, set exclusive",
                "do_wp_page → wp_can_reuse_anon_folio",
                "6c287605fd56",
                decision.why + " and marks it exclusive",
                decision.inputs,
            )
        return decision

    def thp_wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_huge_pmd_wp_page (6c287605fd56): PageAnonExclusive(head) ⇒ reuse whatever pins
        exist; else the 5.18 refcount test, which on success marks the folio exclusive."""
        if frame.anon_exclusive:
            return exclusive_reuse(frame, "the THP", "do_huge_pmd_wp_page")
        return thp_page_count_test(frame)

    def pte_thp_reuse(self, frame: Frame, swapcount: int, mms: int) -> Decision:
        """do_wp_page (6c287605fd56): PageAnonExclusive(subpage) ⇒ reuse; else the folio
        refcount test, which a PTE-mapped THP whose other subpages are mapped never passes —
        even when one process maps all of it, a needless copy 6.15 avoids
        (`LargeFolioReuse`, 1da190f4d0a6)."""
        if frame.anon_exclusive:
            return exclusive_reuse(frame, "subpage 0", "do_wp_page")
        return pte_thp_page_count_test(frame)


class LargeFolioReuse(AnonExclusiveReuse):
    id = "large-folio-mm"
    label = "PageAnonExclusive, else page_count == 1; a large folio only this MM maps is reused"
    kernel = "do_wp_page → __wp_can_reuse_large_anon_folio"
    commit = "1da190f4d0a6"
    why = (
        "as anon-exclusive, and a subpage of a PTE-mapped THP that is not marked exclusive is "
        "reused when one process maps the whole folio and every reference to it is one of "
        "those mappings (6.15, CONFIG_MM_ID) — before, such a subpage was always copied "
        "(brings the exclusive bit)"
    )

    def pte_thp_reuse(self, frame: Frame, swapcount: int, mms: int) -> Decision:
        """wp_can_reuse_anon_folio → __wp_can_reuse_large_anon_folio ("mm: Copy-on-Write (COW)
        reuse support for PTE-mapped THP", 1da190f4d0a6, David Hildenbrand, merged for 6.15 with
        the series "mm: MM owner tracking for large folios (!hugetlb) + CONFIG_NO_PAGE_MAPCOUNT").

        PageAnonExclusive(subpage) still reuses at once. Otherwise a large folio is reused
        when (1) it is mapped more than once — with a single mapping left the kernel would
        rather copy the page out and let the folio go; (2) it is not "maybe mapped shared":
        every mapping is in the faulting MM (the folio keeps two MM ids with a mapcount each,
        set by fork and cleared when one MM holds all mappings again); and (3) every reference is
        a mapping: folio_large_mapcount() — PTE mappings of all subpages plus PMD mappings —
        equals folio_ref_count(). A GUP reference, a pin, a pipe buffer or the swap cache breaks
        (3) (the kernel frees a swap cache first when no swap PTE still needs it, as the machine
        did before asking). A successful reuse marks subpage 0 exclusive.

        The reading cowlab picks: "maybe mapped shared" is "more than one process maps the
        folio now". The kernel tracks only two MM ids per folio; a third MM mapping it at the
        same time sets the shared bit, which is cleared again only when one of the two tracked
        MMs holds every mapping — so after three processes shared a folio, the one left may
        still be told "maybe shared" and copy. Scenarios with more than two processes on one
        PTE-mapped THP may therefore show a reuse here where the kernel copies.
        """
        if frame.anon_exclusive:
            return exclusive_reuse(frame, "subpage 0", "do_wp_page")
        large_mapcount = frame.mapcount + frame.entire_mapcount
        inputs = counts(frame) | {
            "swapcount": swapcount,
            "large_mapcount": large_mapcount,
            "mapped_by_mms": mms,
        }
        if large_mapcount <= 1:
            why = (
                f"the folio is mapped only {large_mapcount} time(s): the kernel copies subpage 0 "
                "out and lets the large folio go"
            )
        elif mms > 1:
            why = (
                f"the folio is maybe mapped shared ({mms} processes map its subpages), so "
                "subpage 0 is copied into a small page"
            )
        elif large_mapcount != frame.refcount:
            why = (
                f"folio_large_mapcount {large_mapcount} != folio_ref_count {frame.refcount} "
                f"({holders(frame)}): a reference that is not a mapping of this process may "
                "see the page, so subpage 0 is copied"
            )
        else:
            return Decision(
                "reuse",
                "large folio mapped by this MM only",
                "do_wp_page → __wp_can_reuse_large_anon_folio",
                "1da190f4d0a6",
                f"only this process maps the folio ({large_mapcount} mappings) and they are all "
                f"its references (refcount {frame.refcount}), so nobody else can see subpage 0: "
                "it is reused and marked exclusive",
                inputs,
            )
        return Decision(
            "copy",
            "large folio maybe shared, or referenced beyond its mappings",
            "do_wp_page → wp_page_copy",
            "1da190f4d0a6",
            why,
            inputs,
        )


class SwapinReuse(Choice):
    """do_swap_page on a write fault: map the swapped-in page writable at once, or go COW?"""

    knob = "swapin_reuse"

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        raise NotImplementedError

    def swapin_write_frees_swapcache(self, frame: Frame, swapcount: int) -> Decision:
        """Before 5.18 do_swap_page leaves the swap cache to reuse_swap_page."""
        return NOTHING


class MapcountSwapin(SwapinReuse):
    id = "mapcount"
    label = "mapcount + swapcount ≤ 1 at swap-in"
    kernel = "do_swap_page → reuse_swap_page"
    commit = "c475a8ab625d"
    why = "the classic rule at swap-in: pipe and GUP references are not counted (the swap hole)"

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_swap_page on a write fault: the classic reuse_swap_page() rule.

        The kernel counts before adding our mapping and before freeing our swap entry; the
        machine asks after both, which leaves mapcount + swapcount unchanged.
        """
        count = frame.mapcount + swapcount
        inputs = counts(frame) | {"swapcount": swapcount}
        if count <= 1:
            return Decision(
                "reuse",
                "mapcount + swapcount ≤ 1 at swap-in",
                "do_swap_page → reuse_swap_page",
                "c475a8ab625d",
                f"no other page table maps the page and only this swap entry refers to it "
                f"(mapcount {frame.mapcount}, swap count {swapcount}), so it is mapped writable "
                "at once; references held by pipes or GUP are not counted",
                inputs,
            )
        return Decision(
            "copy",
            "mapcount + swapcount > 1 at swap-in",
            "do_swap_page",
            "c475a8ab625d",
            f"other users still refer to the page (mapcount {frame.mapcount}, swap count "
            f"{swapcount}), so it is mapped read-only and the write takes the COW path",
            inputs,
        )


class PageCountSwapin(SwapinReuse):
    id = "page-count"
    label = "page_count == 1 at swap-in"
    kernel = "do_swap_page → should_try_to_free_swap"
    commit = "c145e0b47c77"
    why = "the page_count rule at swap-in too, after the swap cache lets go when nobody needs it"

    def swapin_write_frees_swapcache(self, frame: Frame, swapcount: int) -> Decision:
        """do_swap_page → should_try_to_free_swap (c145e0b47c77): a write fault with no other
        user (the swap cache and our mapping are the only references) frees the swap cache."""
        if swapcount == 0 and frame.swapcache and frame.refcount == 2:
            return _SWAPIN_FREES_SWAPCACHE
        return NOTHING

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_swap_page (c145e0b47c77): after freeing our swap entry (and the swap cache when no
        entry is left), map writable only if we hold the only reference."""
        inputs = counts(frame) | {"swapcount": swapcount}
        if frame.refcount == 1 and frame.mapcount == 1:
            return Decision(
                "reuse",
                "page_count == 1 at swap-in",
                "do_swap_page",
                "c145e0b47c77",
                "after the swap entry and the swap cache let go, this mapping is the page's only "
                "reference, so it is mapped writable at once",
                inputs,
            )
        return Decision(
            "copy",
            "page_count != 1 at swap-in",
            "do_swap_page",
            "c145e0b47c77",
            f"page_count is {frame.refcount} ({holders(frame)}), so the page is mapped "
            "read-only and the write takes the COW path",
            inputs,
        )


class AnonExclusiveSwapin(PageCountSwapin):
    id = "anon-exclusive"
    label = "exclusive swap entry, else page_count == 1"
    kernel = "do_swap_page"
    commit = "1493a1913e34"
    why = (
        "the swap PTE remembers that the page was exclusive, so it is mapped writable at once "
        "without counting (brings the exclusive bit)"
    )
    needs = frozenset({EXCLUSIVE_BIT})

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        if frame.anon_exclusive:
            return Decision(
                "reuse",
                "exclusive swap entry",
                "do_swap_page",
                "1493a1913e34",
                "the swap PTE remembered that the page was exclusive, so it is mapped writable "
                "at once",
                counts(frame) | {"swapcount": swapcount},
            )
        return super().swapin_write_reuse(frame, swapcount)


_REUSE_FREES_SWAPCACHE = Decision(
    "allow",
    "reuse_swap_page deletes from the swap cache",
    "reuse_swap_page → delete_from_swap_cache",
    "c475a8ab625d",
    "a page the writer keeps leaves the swap cache",
)
_FREE_UNUSED_SWAPCACHE = Decision(
    "allow",
    "free unused swap cache before the refcount test",
    "do_wp_page → folio_free_swap",
    "53a05ad9f21d",
    "no swap entry needs the swap cache's reference any more",
)
_SWAPIN_FREES_SWAPCACHE = Decision(
    "allow",
    "should_try_to_free_swap",
    "do_swap_page → should_try_to_free_swap",
    "c145e0b47c77",
    "a write fault with no other user frees the swap cache",
)


class SwapinZram(Choice):
    """do_swap_page on a SWP_SYNCHRONOUS_IO device (zram) whose slot only this PTE uses: read the
    page through the swap cache, or straight into a new page that skips it?"""

    knob = "swapin_zram"

    def swapin_skips_swapcache(self, device: str, swapcount: int) -> Decision:
        raise NotImplementedError


class SwapinThroughCache(SwapinZram):
    id = "through-cache"
    label = "every swap-in goes through the swap cache"
    kernel = "do_swap_page → swapin_readahead"
    commit = ""
    why = (
        "a zram page is added to the swap cache like any other, so its extra reference is there "
        "when the write fault decides"
    )

    def swapin_skips_swapcache(self, device: str, swapcount: int) -> Decision:
        """Before 4.15 (0bcac06f27d7) every swap-in goes through the swap cache, zram too."""
        return NOTHING


class SwapinSkipsCache(SwapinZram):
    id = "skip-cache"
    label = "a synchronous device skips the swap cache"
    kernel = "do_swap_page → swap_readpage (synchronous)"
    commit = "0bcac06f27d7"
    why = (
        "'mm, swap: skip swapcache for swapin of synchronous device' (4.15): a zram slot only one "
        "PTE uses is read into a new page that never enters the swap cache, and the slot is freed"
    )

    def swapin_skips_swapcache(self, device: str, swapcount: int) -> Decision:
        """do_swap_page on a SWP_SYNCHRONOUS_IO device (zram) whose entry only this PTE uses
        (__swap_count == 1) reads the page into a new page that never enters the swap cache and
        frees the slot at once (0bcac06f27d7, "mm, swap: skip swapcache for swapin of
        synchronous device", 4.15). `Policy` asks only for such a swap-in: a swap file or
        partition always goes through the cache."""
        return Decision(
            "allow",
            "SWP_SYNCHRONOUS_IO skips the swap cache",
            "do_swap_page → swap_readpage (synchronous)",
            "0bcac06f27d7",
            "the swap device is synchronous (zram) and no other swap entry shares the slot, so "
            "the page is read straight into a new page that skips the swap cache, and the slot "
            "is freed",
            {"swap_device": device, "swapcount": swapcount},
        )


WP_REUSE = (
    MapcountReuse(),
    PageCountReuse(),
    PageCountFreeSwapcache(),
    AnonExclusiveReuse(),
    LargeFolioReuse(),
)
SWAPIN_REUSE = (MapcountSwapin(), PageCountSwapin(), AnonExclusiveSwapin())
SWAPIN_ZRAM = (SwapinThroughCache(), SwapinSkipsCache())
