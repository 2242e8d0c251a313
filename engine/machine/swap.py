"""Swap-out: MADV_PAGEOUT → shrink_folio_list and try_to_unmap_one (swap-in is a fault)."""

from __future__ import annotations

from engine import commands as c
from engine.machine.core import MachineCore
from engine.state import Pte, SwapSlot


class Swap(MachineCore):
    def do_Swapout(self, cmd: c.Swapout) -> None:
        proc = self.need_proc(cmd.proc)
        self.need_vma(proc, cmd.page, fault=False)
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
