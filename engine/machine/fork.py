"""Fork: dup_mmap and copy_page_range, one PTE at a time."""

from __future__ import annotations

from engine import commands as c
from engine.machine.core import MachineCore
from engine.state import ZERO_PFN, Proc, Pte, Vma


class Fork(MachineCore):
    def do_Fork(self, cmd: c.Fork) -> None:
        parent = self.need_proc(cmd.proc)
        if cmd.child in self.procs or cmd.child in self.refs or cmd.child in self.files:
            raise self.refuse("error", f"the name {cmd.child} is already in use", proc=cmd.proc)
        child_vmas: dict[str, Vma] = {}
        child_ptes: dict[str, Pte] = {}
        self.put_proc(Proc(cmd.child, cmd.proc, {}, {}))
        self.emit("info", f"{cmd.proc} forks {cmd.child}", kernel="copy_process", proc=cmd.proc)
        for page, vma in parent.vmas.items():
            if vma.dontcopy:
                self.emit(
                    "fork",
                    f"{page} is MADV_DONTFORK: the child gets no mapping there at all",
                    rule="VM_DONTCOPY",
                    kernel="dup_mmap",
                    proc=cmd.child,
                    page=page,
                )
                continue
            # Without UFFD_FEATURE_EVENT_FORK the child's VMA is not registered with uffd.
            child_vmas[page] = vma._replace(uffd_wp=False, uffd_wp_marker=False)
            pte = self.procs[cmd.proc].ptes.get(page)
            if pte is None:
                continue
            if not vma.anon_vma:
                # The child's VMA is not uffd-wp registered either, so nothing needs the PTE.
                self.emit(
                    "fork",
                    f"{page} has no anonymous page yet (no anon_vma): fork copies no PTE, the "
                    f"child will fault it in when it touches {page}",
                    rule="vma_needs_copy: no anon_vma",
                    kernel="copy_page_range → vma_needs_copy",
                    proc=cmd.child,
                    page=page,
                    pfn=pte.pfn,
                )
                continue
            child_pte = self.fork_pte(cmd.proc, cmd.child, page, vma, pte)
            child_ptes[page] = child_pte._replace(uffd_wp=False)
        self.put_proc(Proc(cmd.child, cmd.proc, child_vmas, child_ptes))

    def fork_pte(self, parent: str, child: str, page: str, vma: Vma, pte: Pte) -> Pte:
        """copy_pte_range for one PTE; returns the child's PTE."""
        if pte.swap_slot is not None:
            slot = self.swap[pte.swap_slot]
            self.put_slot(slot._replace(swapcount=slot.swapcount + 1))
            if pte.swap_exclusive:
                self.set_pte(parent, page, pte._replace(swap_exclusive=False))
            copied = self.policy.fork_swap_entry(pte)
            self.emit(
                "fork",
                f"{page} is swapped out: the swap entry is duplicated (swap count "
                f"{slot.swapcount + 1})" + (f"; {copied.why}" if copied.why else ""),
                copied,
                proc=child,
                page=page,
            )
            return pte._replace(swap_exclusive=False)
        assert pte.pfn is not None
        frame = self.frames[pte.pfn]
        if pte.pfn == ZERO_PFN:
            self.emit(
                "fork",
                f"{page} maps the zero page: the child maps it too",
                rule="zero page",
                kernel="copy_present_pte",
                proc=child,
                page=page,
                pfn=ZERO_PFN,
            )
            return pte
        if vma.shared or frame.kind != "anon":
            self.put_frame(frame._replace(mapcount=frame.mapcount + 1))
            if vma.shared:
                self.emit(
                    "fork",
                    f"{page} is a shared mapping: parent and child map the same "
                    f"page #{frame.pfn}, no COW",
                    rule="shared mapping",
                    kernel="copy_present_pte",
                    proc=child,
                    page=page,
                    pfn=frame.pfn,
                )
                return pte
            self.set_pte(parent, page, pte._replace(writable=False))
            self.emit(
                "fork",
                f"{page} maps the page cache privately: both map #{frame.pfn} read-only",
                rule="share R/O",
                kernel="copy_present_pte",
                proc=child,
                page=page,
                pfn=frame.pfn,
            )
            return pte._replace(writable=False)
        parent_proc = self.procs[parent]
        decision = self.policy.fork_anon_pte(frame, parent_proc.has_pinned)
        if decision.outcome == "copy":
            new = self.alloc(frame.value, mapcount=1, exclusive=True)
            self.emit(
                "fork",
                f"{child} gets its own copy #{new.pfn} of {page}: {decision.why}",
                decision,
                proc=child,
                page=page,
                pfn=frame.pfn,
                new_pfn=new.pfn,
            )
            return Pte(pfn=new.pfn, writable=vma.write, dirty=True, softdirty=pte.softdirty)
        self.put_frame(frame._replace(mapcount=frame.mapcount + 1, anon_exclusive=False))
        self.set_pte(parent, page, pte._replace(writable=False))
        self.emit(
            "fork",
            f"{page} (frame #{frame.pfn}) is shared with {child}: {decision.why}",
            decision,
            proc=child,
            page=page,
            pfn=frame.pfn,
        )
        return pte._replace(writable=False)
