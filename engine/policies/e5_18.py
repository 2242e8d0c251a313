"""5.18: COW fixes part 1 — the page_count rule on swap-in and THP too."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import Decision, KernelVersion, counts, holders
from engine.policies.e5_9 import PageCount59
from engine.state import Frame


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

    def free_swapcache_before_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page → folio_free_swap (53a05ad9f21d): a swap-cache page whose slot no swap PTE
        uses any more leaves the swap cache before the refcount test, so that reference does
        not force a copy."""
        if not frame.swapcache or swapcount != 0:
            return super().free_swapcache_before_reuse(frame, swapcount)
        return _FREE_UNUSED_SWAPCACHE

    def reuse_frees_swapcache(self, frame: Frame) -> Decision:
        """reuse_swap_page() is gone (53a05ad9f21d): the test above already dropped it."""
        return _KEEP_SWAPCACHE

    def swapin_write_frees_swapcache(self, frame: Frame, swapcount: int) -> Decision:
        """do_swap_page → should_try_to_free_swap (c145e0b47c77): a write fault with no other
        user (the swap cache and our mapping are the only references) frees the swap cache."""
        if swapcount == 0 and frame.swapcache and frame.refcount == 2:
            return _SWAPIN_FREES_SWAPCACHE
        return super().swapin_write_frees_swapcache(frame, swapcount)

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (53a05ad9f21d): a page in the swap cache whose slot no swap PTE uses any
        more is removed from the swap cache first, then refcount == 1 decides. The machine
        drops that swap-cache reference before asking; here we only read the counters."""
        decision = super().wp_reuse(frame, swapcount)
        return Decision(
            decision.outcome,
            decision.rule,
            decision.kernel,
            "53a05ad9f21d" if decision.outcome == "reuse" else "09854ba94c6a",
            decision.why,
            decision.inputs,
        )

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


_FREE_UNUSED_SWAPCACHE = Decision(
    "allow",
    "free unused swap cache before the refcount test",
    "do_wp_page → folio_free_swap",
    "53a05ad9f21d",
    "no swap entry needs the swap cache's reference any more",
)
_KEEP_SWAPCACHE = Decision("none", "", "", "", "")
_SWAPIN_FREES_SWAPCACHE = Decision(
    "allow",
    "should_try_to_free_swap",
    "do_swap_page → should_try_to_free_swap",
    "c145e0b47c77",
    "a write fault with no other user frees the swap cache",
)

POLICY = PageCount518()
