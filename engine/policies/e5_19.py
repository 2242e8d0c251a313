"""5.19 – 6.1: PageAnonExclusive, and FAULT_FLAG_UNSHARE for R/O pins."""

from __future__ import annotations

from typing import ClassVar

from engine.policies.base import Decision, GupRequest, KernelVersion, counts
from engine.policies.e5_18 import PageCount518
from engine.state import Frame, Pte, Vma


class Exclusive519(PageCount518):
    """5.19 – 6.1: PageAnonExclusive, and FAULT_FLAG_UNSHARE for R/O pins."""

    id = "5.19"
    label = "PageAnonExclusive + FAULT_FLAG_UNSHARE"
    kernels = "5.19 – 6.1"
    since = (5, 19)
    until: ClassVar[KernelVersion | None] = (6, 1)
    commits: ClassVar[tuple[str, ...]] = (
        "6c287605fd56",
        "78fbe906cc90",
        "c89357e27f20",
        "a7f226604170",
        "1493a1913e34",
        "5535be309971",
        "64fe24a3e05e",
    )
    story = (
        "COW fixes part 2: every mapped anonymous page carries an exclusive bit. An exclusive "
        "page is always reused on a write fault, pins or not; fork refuses to share a pinned "
        "exclusive page and copies it for the child instead. A R/O pin of a possibly shared "
        "page first triggers FAULT_FLAG_UNSHARE, which gives the pinner an exclusive page while "
        "keeping the PTE read-only — Peter Xu's 2020 idea, scoped to FOLL_PIN. vmsplice still "
        "takes plain FOLL_GET references, which are left as the 'wrong side OK' class. Modelled "
        "with 6.0's FOLL_FORCE fix (5535be309971) and mprotect upgrade of dirty exclusive pages."
    )
    has_exclusive_bit = True

    def exclusive_bit(self) -> Decision:
        """6c287605fd56: a new or reused anonymous page is marked PG_anon_exclusive."""
        return _EXCLUSIVE_BIT

    def swapout_exclusive(self, frame: Frame) -> Decision:
        """try_to_unmap_one (1493a1913e34): the swap PTE keeps the exclusive marker."""
        return _SWAP_EXCLUSIVE if frame.anon_exclusive else super().swapout_exclusive(frame)

    def uffd_wp_register(self, vma: Vma) -> Decision | None:
        """Peter Xu's "userfaultfd-wp: Support shmem and hugetlbfs" (5.19): PTE markers make
        write-protection of file-backed memory possible; only VM_MAYWRITE is still needed."""
        decision = super().uffd_wp_register(vma)
        return decision if not vma.maywrite else None

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (6c287605fd56): PageAnonExclusive ⇒ reuse without looking at refcounts;
        otherwise the 5.18 refcount test, and a successful reuse marks the page exclusive."""
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

    def swapin_exclusive(self, pte: Pte, frame: Frame, fresh: bool) -> Decision:
        """do_swap_page (1493a1913e34): the swap PTE's exclusive marker survives swap-out."""
        if pte.swap_exclusive:
            return _SWAP_EXCLUSIVE
        return super().swapin_exclusive(pte, frame, fresh)

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """gup_must_unshare (a7f226604170): a R/O FOLL_PIN of an anon page that is not marked
        exclusive must unshare first; FOLL_GET readers are left alone."""
        if req.write or not req.pin or frame.kind != "anon" or frame.anon_exclusive:
            return None
        return Decision(
            "unshare",
            "R/O pin of a possibly shared anon page",
            "gup_must_unshare → FAULT_FLAG_UNSHARE",
            "a7f226604170",
            "a read-only pin of an anon page that is not exclusive could end up on the wrong "
            "side of a later COW, so GUP first unshares it",
            counts(frame) | {"foll_pin": True, "foll_write": False},
        )

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """can_follow_write_pte (5535be309971): FOLL_COW is gone; proof is an exclusive anon page
        whose PTE needs no fault for soft-dirty or uffd-wp tracking."""
        needs_fault = (vma.softdirty_tracking and not pte.softdirty) or pte.uffd_wp
        ok = frame.kind == "anon" and frame.anon_exclusive and not needs_fault
        return Decision(
            "allow" if ok else "fault",
            "anon exclusive page" if ok else "not an exclusive anon page",
            "can_follow_write_pte",
            "5535be309971",
            "the R/O PTE maps an exclusive anonymous page, so writing it cannot reach anyone else"
            if ok
            else "the R/O PTE does not map an exclusive anonymous page, so GUP breaks COW with "
            "a write fault first",
            {"anon": frame.kind == "anon", "anon_exclusive": frame.anon_exclusive},
        )

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

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """can_change_pte_writable (64fe24a3e05e, 6.0): an exclusive *dirty* anon page may be
        mapped writable at once, unless soft-dirty or uffd-wp tracking needs the fault."""
        return self._mprotect_upgrade(pte, frame, vma, need_dirty=True, commit="64fe24a3e05e")

    def _mprotect_upgrade(
        self, pte: Pte, frame: Frame, vma: Vma, *, need_dirty: bool, commit: str
    ) -> Decision:
        inputs: dict[str, int | bool | str] = {
            "anon_exclusive": frame.anon_exclusive,
            "pte_dirty": pte.dirty,
            "softdirty_tracking": vma.softdirty_tracking,
            "pte_softdirty": pte.softdirty,
            "uffd_wp": pte.uffd_wp,
        }
        if vma.softdirty_tracking and not pte.softdirty:
            why = "soft-dirty tracking wants to see the next write, so the PTE stays read-only"
            return Decision(
                "none",
                "soft-dirty needs a fault",
                "can_change_pte_writable",
                "76aefad628aa",
                why,
                inputs,
            )
        if pte.uffd_wp:
            why = "the PTE is userfaultfd write-protected, so it stays read-only"
            return Decision(
                "none", "uffd-wp needs a fault", "can_change_pte_writable", commit, why, inputs
            )
        if frame.kind != "anon" or not frame.anon_exclusive:
            why = "the page is not an exclusive anonymous page, so the next write must fault"
            return Decision("none", "not exclusive", "can_change_pte_writable", commit, why, inputs)
        if need_dirty and not pte.dirty:
            why = "the exclusive page is clean; this kernel upgrades only dirty ones"
            return Decision("none", "clean page", "can_change_pte_writable", commit, why, inputs)
        why = "the page is exclusive to this process, so mprotect maps it writable at once"
        return Decision(
            "allow", "exclusive anon page", "can_change_pte_writable", commit, why, inputs
        )

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


_EXCLUSIVE_BIT = Decision(
    "allow",
    "PageAnonExclusive",
    "__page_set_anon_rmap",
    "6c287605fd56",
    "the page is marked exclusive to the process that maps it",
)
_SWAP_EXCLUSIVE = Decision(
    "allow",
    "exclusive swap entry",
    "do_swap_page",
    "1493a1913e34",
    "the swap PTE remembers that the page was exclusive",
)

POLICY = Exclusive519()
