"""5.9 – 5.17: reuse only if page_count == 1; fork copies pinned pages for the child."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import Decision, KernelVersion, counts, holders
from engine.policies.e5_7 import Classic57
from engine.state import Frame, Vma


class PageCount59(Classic57):
    """5.9 – 5.17: reuse only if page_count == 1; fork copies pinned pages for the child."""

    id = "5.9"
    label = "page_count reuse"
    kernels = "5.9 – 5.17"
    since = (5, 9)
    until: ClassVar[KernelVersion | None] = (5, 17)
    commits: ClassVar[tuple[str, ...]] = (
        "09854ba94c6a",
        "a308c71bf1e6",
        "70e806e4e645",
        "008cfe4418b3",
        "feb889fb40fa",
    )
    story = (
        "Linus' 'mm: do_wp_page() simplification' (09854ba94c6a): reuse a page only if nobody "
        "else holds any reference (page_count == 1) — copying is always safe. The forced COW of "
        "5.8 was removed (a308c71bf1e6), and after the RDMA regression fork copies a pinned page "
        "for the child at once (70e806e4e645). The price: a process that pinned or vmspliced its "
        "own page copies away from it on its next write, so R/O pins go stale; swap-in still "
        "uses the old mapcount rule. Modelled with 5.11's changes: pinned pages stay out of the "
        "swap cache and clear_refs leaves them alone."
    )

    def pin_marks_mm(self) -> Decision:
        """The first FOLL_PIN sets mm->has_pinned, which fork looks at (008cfe4418b3)."""
        return _HAS_PINNED

    def clear_refs_skip(self, frame: Frame, vma: Vma) -> Decision | None:
        """5.11, "mm: don't play games with pinned pages in clear_page_refs": write-protecting
        a maybe-pinned page of a COW mapping would make its owner copy away from the pin."""
        if not (vma.is_cow_mapping and frame.maybe_dma_pinned):
            return None
        return _CLEAR_REFS_SKIPS_PINNED

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
                "the parent has pinned this page (refcount ≥ 1024), so the child gets its own "
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


_HAS_PINNED = Decision(
    "allow",
    "mm->has_pinned",
    "try_grab_page",
    "008cfe4418b3",
    "the mm remembers that it pinned a page, so fork checks its pages for pins",
)
_CLEAR_REFS_SKIPS_PINNED = Decision(
    "skip",
    "skip maybe-pinned pages (5.11: mm: don't play games with pinned pages in clear_page_refs)",
    "clear_soft_dirty",
    "",
    "write-protecting it would make its owner copy away from the pin",
)

POLICY = PageCount59()
