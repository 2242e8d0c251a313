"""Swap-out: MADV_PAGEOUT → shrink_folio_list and try_to_unmap_one (swap-in is a fault)."""

from __future__ import annotations

from engine import commands as c
from engine.machine.core import MachineCore
from engine.state import Frame, Pte, SwapSlot, folio_mapped


class Swap(MachineCore):
    def do_Swapout(self, cmd: c.Swapout) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        if vma.backing == "hugetlb":
            refused = self.policy.hugetlb_pageout()
            raise self.refuse(
                "efault",
                f"{cmd.proc}'s MADV_PAGEOUT of {cmd.page}: {refused.why}",
                kernel=refused.kernel,
                proc=cmd.proc,
                page=cmd.page,
            )
        pte = proc.ptes.get(cmd.page)
        if pte is None or pte.pfn is None:
            self.emit(
                "info",
                f"{cmd.page} is not resident; MADV_PAGEOUT has nothing to do",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        frame = self.frames[pte.pfn]
        if pte.pmd and frame.kind == "zero":
            self.emit(
                "info",
                f"{cmd.page} maps the huge zero page by a PMD; MADV_PAGEOUT skips it",
                self.policy.huge_zero_pageout(),
                proc=cmd.proc,
                page=cmd.page,
                pfn=frame.pfn,
            )
            return
        if pte.pmd and frame.kind == "anon":
            self.swapout_thp(cmd, pte, frame)
            return
        if frame.folio is not None or pte.rest_pfn is not None:
            split = self.split_for_pageout(cmd, pte, frame)
            if split is None:
                return
            frame = split
        if frame.kind != "anon":
            self.emit(
                "info",
                f"{cmd.page} maps the {frame.kind.replace('zero', 'zero page')}"
                "; cowlab pages out anonymous pages only",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        if frame.mapcount > 1:
            self.emit(
                "info",
                f"frame #{frame.pfn} is mapped by {frame.mapcount} processes; MADV_PAGEOUT "
                "leaves shared pages alone",
                rule="skip shared pages",
                kernel="madvise_cold_or_pageout_pte_range",
                proc=cmd.proc,
                page=cmd.page,
                pfn=frame.pfn,
            )
            return
        blocked = self.policy.swapout_blocked(frame)
        if blocked is not None:
            self.emit(
                "info",
                f"MADV_PAGEOUT of {cmd.page}: {blocked.why}",
                blocked,
                proc=cmd.proc,
                page=cmd.page,
                pfn=frame.pfn,
            )
            return
        slot = self.slot_of(frame)
        reused = slot is not None
        if slot is None:
            # shrink_folio_list → add_to_swap: a folio not yet in the swap cache gets a slot.
            slot = SwapSlot(self.next_slot, frame.value, swapcount=1, cache_pfn=frame.pfn)
            self.next_slot += 1
        else:
            # A folio already in the swap cache keeps its slot: shrink_folio_list skips
            # add_to_swap, try_to_unmap_one installs the existing entry and swap_duplicate()s
            # its count, and pageout writes the (possibly dirtied) page back to that slot.
            slot = slot._replace(value=frame.value, swapcount=slot.swapcount + 1)
        self.put_slot(slot)
        marker = self.policy.swapout_exclusive(frame)
        exclusive = marker.outcome == "allow"
        self.set_pte(
            cmd.proc,
            cmd.page,
            Pte(
                swap_slot=slot.slot,
                softdirty=pte.softdirty,
                uffd_wp=pte.uffd_wp,
                swap_exclusive=exclusive,
                # Subpages of a THP still mapped from a folio others map too stay mapped.
                rest_pfn=self.procs[cmd.proc].ptes[cmd.page].rest_pfn,
            ),
        )
        frame = frame._replace(mapcount=frame.mapcount - 1, swapcache=True, anon_exclusive=False)
        self.put_frame(frame)
        held = frame.refcount - 1
        self.emit(
            "swap",
            f"{cmd.proc} pages out {cmd.page}: frame #{frame.pfn} is written to swap slot "
            f"{slot.slot} and the PTE becomes a swap entry"
            + (
                f" (the page was still in the swap cache, so it keeps its slot, now used by "
                f"{slot.swapcount} swap entries)"
                if reused
                else ""
            )
            + (" that remembers the page was exclusive" if exclusive else "")
            + (f"; {held} other reference(s) keep the page in the swap cache" if held else ""),
            rule="swap-out",
            kernel="madvise_pageout → shrink_folio_list",
            commit=marker.commit,
            proc=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
        )
        if held == 0:
            self.drop_swapcache(frame, slot)
            self.maybe_free(self.frames[frame.pfn])

    # ------------------------------------------------------------------------- huge pages
    def swapout_thp(self, cmd: c.Swapout, pte: Pte, frame: Frame) -> None:
        """MADV_PAGEOUT of a whole PMD-mapped THP (madvise_cold_or_pageout_pte_range): a THP
        this process alone maps goes to swap whole (THP_SWAP): try_to_unmap splits the
        PMD into 512 swap entries and the folio sits in the swap cache until nothing else
        holds it. Subpage 0's entry is kept; the other 511 leave the model (engine.state).
        Swap-in brings subpage 0 back as a small page, as every modelled era does (large
        folio swap-in came later), unless the folio is still in the swap cache."""
        if frame.folio_mapcount > 1 or frame.mapcount:
            self.emit(
                "info",
                f"huge page #{frame.pfn} is mapped {frame.folio_mapcount} times; MADV_PAGEOUT "
                "leaves shared huge pages alone",
                rule="skip shared pages",
                kernel="madvise_cold_or_pageout_pte_range",
                proc=cmd.proc,
                page=cmd.page,
                pfn=frame.pfn,
            )
            return
        blocked = self.policy.swapout_blocked(frame)
        if blocked is not None:
            self.emit(
                "info",
                f"MADV_PAGEOUT of {cmd.page}: {blocked.why}",
                blocked,
                proc=cmd.proc,
                page=cmd.page,
                pfn=frame.pfn,
            )
            return
        unsplittable = self.policy.thp_pageout_unsplittable(frame)
        if unsplittable is not None:
            self.emit(
                "info",
                f"MADV_PAGEOUT of {cmd.page} leaves huge page #{frame.pfn} resident: "
                f"{unsplittable.why}",
                unsplittable,
                proc=cmd.proc,
                page=cmd.page,
                pfn=frame.pfn,
            )
            return
        slot = SwapSlot(self.next_slot, frame.value, swapcount=1, cache_pfn=frame.pfn)
        self.next_slot += 1
        self.put_slot(slot)
        marker = self.policy.swapout_exclusive(frame)
        exclusive = marker.outcome == "allow"
        self.set_pte(
            cmd.proc,
            cmd.page,
            Pte(
                swap_slot=slot.slot,
                softdirty=pte.softdirty,
                uffd_wp=pte.uffd_wp,
                swap_exclusive=exclusive,
            ),
        )
        frame = folio_mapped(frame, entire=-1, exclusive0=False, exclusive_rest=False)
        frame = frame._replace(swapcache=True)
        self.put_frame(frame)
        held = frame.refcount - frame.nr_pages
        self.emit(
            "swap",
            f"{cmd.proc} pages out {cmd.page}: huge page #{frame.pfn} goes to swap whole "
            f"(512 swap entries; subpage 0's is slot {slot.slot}) and the PMD becomes swap "
            "entries"
            + (" that remember the page was exclusive" if exclusive else "")
            + (f"; {held} other reference(s) keep the folio in the swap cache" if held else ""),
            rule="swap-out of a THP",
            kernel="madvise_pageout → shrink_folio_list → add_to_swap",
            commit=marker.commit,
            proc=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
        )
        if held == 0:
            self.drop_swapcache(frame, slot)
            self.maybe_free(self.frames[frame.pfn])

    def split_for_pageout(self, cmd: c.Swapout, pte: Pte, frame: Frame) -> Frame | None:
        """MADV_PAGEOUT over a PTE-mapped THP: madvise_cold_or_pageout_pte_range splits a
        large folio this process alone maps before paging it out (split_folio), and stops at
        one mapped by others or that cannot be split (a GUP reference or pin holds it). Returns
        subpage 0's page to page out, or None when nothing is paged out."""
        if frame.folio is None:
            # Subpage 0 is a small page already. The other subpages' folio is split and paged
            # out with it when this process alone maps them; otherwise the walk stops there
            # and they stay mapped.
            assert pte.rest_pfn is not None
            rest = self.frames[pte.rest_pfn]
            if rest.subpage_mapcount(1) == 1 and not (rest.gets or rest.pins):
                self.split_folio(rest)
                self.emit(
                    "split",
                    f"MADV_PAGEOUT splits folio #{rest.pfn}, whose other subpages only "
                    f"{cmd.proc} maps, and pages them out too (they leave the model)",
                    rule="split a PTE-mapped THP before pageout",
                    kernel="madvise_cold_or_pageout_pte_range → split_folio",
                    proc=cmd.proc,
                    page=cmd.page,
                    pfn=rest.pfn,
                )
            return frame
        folio = frame
        if folio.subpage_mapcount(0) != 1 or folio.gets or folio.pins:
            why = (
                f"subpage 0 is mapped {folio.subpage_mapcount(0)} times"
                if folio.subpage_mapcount(0) != 1
                else f"the folio cannot be split while {folio.gets + folio.pins} GUP "
                "reference(s) or pin(s) hold it"
            )
            self.emit(
                "info",
                f"MADV_PAGEOUT of {cmd.page} leaves folio #{folio.pfn} alone: {why}",
                rule="skip a large folio it cannot split",
                kernel="madvise_cold_or_pageout_pte_range → split_folio",
                proc=cmd.proc,
                page=cmd.page,
                pfn=folio.pfn,
            )
            return None
        small = self.split_folio(folio)
        self.emit(
            "split",
            f"MADV_PAGEOUT splits folio #{folio.pfn} into small pages before paging it out; "
            "subpage 0 keeps the frame number",
            rule="split a PTE-mapped THP before pageout",
            kernel="madvise_cold_or_pageout_pte_range → split_folio",
            proc=cmd.proc,
            page=cmd.page,
            pfn=folio.pfn,
        )
        return small
