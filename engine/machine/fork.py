"""Fork: dup_mmap and copy_page_range, one PTE at a time.

Fork touches every page of the parent, so it is the costliest command a scenario can repeat
(DESIGN.md §7's worst request is 1,000 forks and exits of a 256-page process). Its per-page
records are therefore built positionally (`pte_readonly`, `frame_mapped`) rather than with
``_replace``, and a PTE or VMA that fork would leave as it is stays the same object, so the
parent's page table is copied only when some PTE of it really changes (the second fork of a
process finds every PTE read-only already).
"""

from __future__ import annotations

from engine import commands as c
from engine.events import Event
from engine.machine.core import MachineCore
from engine.policies import Decision
from engine.state import (
    ZERO_PFN,
    Frame,
    Proc,
    Pte,
    Vma,
    folio_mapped,
    frame_mapped,
    pte_readonly,
)


class Fork(MachineCore):
    def do_Fork(self, cmd: c.Fork) -> None:
        parent = self.need_proc(cmd.proc)
        if cmd.child in self.procs or cmd.child in self.refs or cmd.child in self.files:
            raise self.refuse("error", f"the name {cmd.child} is already in use", proc=cmd.proc)
        child_vmas: dict[str, Vma] = {}
        child_ptes: dict[str, Pte] = {}
        self.put_proc(Proc(cmd.child, cmd.proc, {}, {}))
        self.emit("info", f"{cmd.proc} forks {cmd.child}", kernel="copy_process", proc=cmd.proc)
        # fork_pte changes only the parent's PTE of the page it copies, so the parent's table as
        # it was before the fork gives every page's PTE.
        parent_ptes = parent.ptes
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
            if vma.uffd_wp or vma.uffd_wp_marker:
                child_vmas[page] = vma._replace(uffd_wp=False, uffd_wp_marker=False)
            else:
                child_vmas[page] = vma
            pte = parent_ptes.get(page)
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
            child_ptes[page] = child_pte._replace(uffd_wp=False) if child_pte.uffd_wp else child_pte
        self.put_proc(Proc(cmd.child, cmd.proc, child_vmas, child_ptes))

    def fork_pte(self, parent: str, child: str, page: str, vma: Vma, pte: Pte) -> Pte:
        """copy_pte_range for one PTE; returns the child's PTE."""
        if pte.pmd or pte.rest_pfn is not None:
            return self.fork_huge(parent, child, page, vma, pte)
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
        pfn = pte.pfn
        assert pfn is not None
        if pfn == ZERO_PFN:
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
        frame = self.frames[pfn]
        if frame.folio is not None:
            return self.fork_huge(parent, child, page, vma, pte)
        if vma.shared or frame.kind != "anon":
            if not vma.shared:
                decision = self.policy.fork_pagecache_pte(frame, self.procs[parent].has_pinned)
                if decision.outcome == "copy":
                    # copy_present_page: the parent's PTE and the page stay as they were.
                    return self.fork_copy(child, page, vma, pte, frame, decision)
            self.put_frame(frame_mapped(frame, 1, frame.anon_exclusive))
            if vma.shared:
                self.emit(
                    "fork",
                    f"{page} is a shared mapping: parent and child map the same "
                    f"page #{pfn}, no COW",
                    rule="shared mapping",
                    kernel="copy_present_pte",
                    proc=child,
                    page=page,
                    pfn=pfn,
                )
                return pte
            readonly = pte_readonly(pte)
            if readonly is not pte:
                self.set_pte(parent, page, readonly)
            self.emit(
                "fork",
                f"{page} maps the page cache privately: both map #{pfn} read-only",
                rule="share R/O",
                kernel="copy_present_pte",
                proc=child,
                page=page,
                pfn=pfn,
            )
            return readonly
        decision = self.policy.fork_anon_pte(frame, self.procs[parent].has_pinned)
        if decision.outcome == "copy":
            return self.fork_copy(child, page, vma, pte, frame, decision)
        self.put_frame(frame_mapped(frame, 1, False))
        readonly = pte_readonly(pte)
        if readonly is not pte:
            self.set_pte(parent, page, readonly)
        # The event built in place: this line runs once per page of every fork.
        self.events.append(
            Event(
                "fork",
                f"{page} (frame #{pfn}) is shared with {child}: {decision.why}",
                decision.rule,
                decision.kernel,
                decision.commit,
                child,
                page,
                None,
                pfn,
                None,
                decision.inputs,
            )
        )
        return readonly

    def fork_copy(
        self, child: str, page: str, vma: Vma, pte: Pte, frame: Frame, decision: Decision
    ) -> Pte:
        """copy_present_page: the child gets a new anonymous copy, mapped writable if it may."""
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

    # ------------------------------------------------------------------------- huge pages
    def fork_huge(self, parent: str, child: str, page: str, vma: Vma, pte: Pte) -> Pte:
        """copy_huge_pmd / copy_hugetlb_page_range for a PMD; copy_pte_range for a PTE-mapped
        THP: subpage 0 and the other subpages are decided alike, each by its own page and
        exclusive bit."""
        if pte.pmd:
            return self.fork_huge_pmd(parent, child, page, vma, pte)
        has_pinned = self.procs[parent].has_pinned
        pfn = pte.pfn
        if pfn is None or pfn == ZERO_PFN:
            # Subpage 0 is a swap entry or the zero page: exactly what a small page's is.
            child_pte = self.fork_pte(parent, child, page, vma, pte._replace(rest_pfn=None))
            now = self.procs[parent].ptes[page]
            if now.rest_pfn != pte.rest_pfn:
                self.set_pte(parent, page, now._replace(rest_pfn=pte.rest_pfn))
        else:
            frame = self.frames[pfn]
            decision = self.policy.fork_anon_pte(frame, has_pinned)
            if decision.outcome == "copy":
                new = self.alloc(frame.value, mapcount=1, exclusive=True)
                child_pte = Pte(
                    pfn=new.pfn, writable=vma.write, dirty=True, softdirty=pte.softdirty
                )
                self.emit_fork(child, page, f"subpage 0 is copied into #{new.pfn}", decision, pfn)
            else:
                if frame.folio is None:
                    self.put_frame(frame_mapped(frame, 1, False))
                else:
                    self.put_frame(folio_mapped(frame, sub0=1, exclusive0=False))
                child_pte = pte_readonly(pte)
                if child_pte is not pte:
                    self.set_pte(parent, page, child_pte)
                self.emit_fork(child, page, f"subpage 0 (#{pfn}) is shared", decision, pfn)
        rest = pte.rest_pfn
        if rest is not None:
            folio = self.frames[rest]
            view = folio._replace(anon_exclusive=folio.subpage_anon_exclusive(1))
            decision = self.policy.fork_anon_pte(view, has_pinned)
            if decision.outcome == "copy":
                # The copies of subpages 1… are the child's own small pages, which no command
                # can reach: they leave the model (engine.state).
                rest = None
                self.emit_fork(child, page, "subpages 1… are copied", decision, folio.pfn)
            else:
                self.put_frame(folio_mapped(folio, rest=1, exclusive_rest=False))
                self.emit_fork(
                    child, page, f"subpages 1… of folio #{folio.pfn} are shared", decision, None
                )
        return child_pte._replace(rest_pfn=rest)

    def fork_huge_pmd(self, parent: str, child: str, page: str, vma: Vma, pte: Pte) -> Pte:
        pfn = pte.pfn
        assert pfn is not None
        if pfn == ZERO_PFN:
            self.emit(
                "fork",
                f"{page} maps the huge zero page: the child maps it too",
                rule="huge zero page",
                kernel="copy_huge_pmd",
                proc=child,
                page=page,
                pfn=ZERO_PFN,
            )
            return pte
        frame = self.frames[pfn]
        has_pinned = self.procs[parent].has_pinned
        hugetlb = frame.folio is not None and frame.folio.kind == "hugetlb"
        decision = (
            self.policy.fork_hugetlb(frame, has_pinned)
            if hugetlb
            else self.policy.fork_huge_pmd(frame, has_pinned)
        )
        if decision.outcome == "copy" and hugetlb:
            new = self.alloc_folio("hugetlb", frame.value)
            self.emit_fork(child, page, f"it gets its own hugetlb page #{new.pfn}", decision, pfn)
            return Pte(
                pfn=new.pfn, writable=vma.write, dirty=True, softdirty=pte.softdirty, pmd=True
            )
        if decision.outcome == "copy":
            # Split the parent's PMD; the child's copies are small pages: subpage 0's is kept.
            self.split_huge_pmd(parent, page)
            new = self.alloc(frame.value, mapcount=1, exclusive=True)
            self.emit_fork(child, page, f"subpage 0 is copied into #{new.pfn}", decision, pfn)
            return Pte(pfn=new.pfn, writable=vma.write, dirty=True, softdirty=pte.softdirty)
        self.put_frame(folio_mapped(frame, entire=1, exclusive0=False, exclusive_rest=False))
        readonly = pte_readonly(pte)
        if readonly is not pte:
            self.set_pte(parent, page, readonly)
        self.emit_fork(child, page, f"huge page #{pfn} is shared", decision, pfn)
        return readonly

    def emit_fork(
        self, child: str, page: str, what: str, decision: Decision, pfn: int | None
    ) -> None:
        self.emit("fork", f"{page}: {what} for {child}: {decision.why}", decision, proc=child,
                  page=page, pfn=pfn)  # fmt: skip
