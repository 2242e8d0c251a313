"""Faults on huge pages: the PMD-mapped THP (do_huge_pmd_anonymous_page, do_huge_pmd_wp_page),
a subpage of a PTE-mapped THP (do_wp_page on a large folio) and hugetlb (hugetlb_no_page,
hugetlb_wp).

`HugeFaults` overrides the base fault paths of `Faults` only where a huge-page VMA or a large
folio is involved, so a base page costs one test per fault. What each era decides comes from
the policy (`thp_wp_reuse`, `huge_zero_wp`, `pte_thp_reuse`, `hugetlb_wp_reuse`); how a
process's mapping of a huge page is kept (subpage 0 and the rest) is in `engine.state`.
"""

from __future__ import annotations

from engine.machine.faults import Faults
from engine.policies import Decision
from engine.state import ZERO_PFN, ZERO_VALUE, FolioKind, Frame, Proc, Pte, Vma, folio_mapped


class HugeFaults(Faults):
    # ------------------------------------------------------------------- first touch
    def read_fault(self, proc: Proc, page: str, vma: Vma) -> None:
        pte = proc.ptes.get(page)
        if vma.backing == "base" or (pte is not None and pte.swap_slot is not None):
            super().read_fault(proc, page, vma)
            return
        if vma.backing == "thp":
            # do_huge_pmd_anonymous_page prepares the anon_vma before it maps even the huge
            # zero page, so fork copies this PMD (unlike a small zero-page PTE).
            self.note_anon_vma(proc.name, page)
            self.set_pte(proc.name, page, Pte(pfn=ZERO_PFN, pmd=True))
            self.emit(
                "map",
                f"{proc.name} reads {page} for the first time: the huge zero page is mapped "
                "read-only by a PMD",
                rule="first read maps the huge zero page",
                kernel="do_huge_pmd_anonymous_page",
                proc=proc.name,
                page=page,
                pfn=ZERO_PFN,
            )
            return
        # hugetlb has no zero page: a read fault allocates the page, mapped read-only in a
        # private mapping until a write fault (hugetlb_wp) finds it mapped once.
        # A uffd-wp marker in the slot: the page is mapped uffd-wp protected.
        marked = vma.uffd_wp_marker and vma.uffd_wp
        folio = self.alloc_folio("hugetlb", ZERO_VALUE)
        self.note_anon_vma(proc.name, page)
        self.set_pte(proc.name, page, Pte(pfn=folio.pfn, pmd=True, uffd_wp=marked))
        if vma.uffd_wp_marker:
            self.set_vma(proc.name, vma._replace(uffd_wp_marker=False))
        self.emit(
            "map",
            f"{proc.name} reads {page} for the first time: a new zeroed hugetlb page "
            f"#{folio.pfn} (2 MiB) is mapped read-only"
            + (", keeping the uffd-wp protection of the PTE marker it replaces" if marked else ""),
            self.policy.hugetlb_marker_fault() if marked else None,
            rule="first read allocates a hugetlb page",
            kernel="hugetlb_no_page",
            proc=proc.name,
            page=page,
            new_pfn=folio.pfn,
        )

    def fault_missing_for_write(self, proc: Proc, page: str, vma: Vma) -> None:
        if vma.backing == "base":
            super().fault_missing_for_write(proc, page, vma)
            return
        kind: FolioKind = "hugetlb" if vma.backing == "hugetlb" else "thp"
        folio = self.alloc_folio(kind, ZERO_VALUE)
        self.note_anon_vma(proc.name, page)
        self.set_pte(proc.name, page, Pte(pfn=folio.pfn, writable=vma.write, dirty=True, pmd=True))
        what = "hugetlb page" if kind == "hugetlb" else "transparent huge page"
        self.emit(
            "map",
            f"{proc.name} writes {page} for the first time: a fresh zeroed 2 MiB {what} "
            f"#{folio.pfn} is mapped writable by a PMD"
            + (" and exclusive" if folio.anon_exclusive else ""),
            rule="first write allocates a huge page",
            kernel="hugetlb_no_page" if kind == "hugetlb" else "do_huge_pmd_anonymous_page",
            proc=proc.name,
            page=page,
            new_pfn=folio.pfn,
        )

    # -------------------------------------------------------------------- write faults
    def wp_fault(
        self, proc_name: str, page: str, pte: Pte, frame: Frame, vma: Vma, keep_ro: bool
    ) -> None:
        if pte.pmd:
            self.huge_pmd_wp(proc_name, page, pte, frame, vma, keep_ro)
        elif frame.folio is not None:
            self.pte_thp_wp(proc_name, page, frame, vma, keep_ro)
        else:
            super().wp_fault(proc_name, page, pte, frame, vma, keep_ro)

    def huge_pmd_wp(
        self, proc_name: str, page: str, pte: Pte, frame: Frame, vma: Vma, keep_ro: bool
    ) -> None:
        """wp_huge_pmd: hugetlb_wp for a hugetlb page, do_huge_pmd_wp_page for a THP."""
        writable = vma.write and not keep_ro
        if frame.folio is not None and frame.folio.kind == "hugetlb":
            decision = self.policy.hugetlb_wp_reuse(frame)
        elif pte.pfn == ZERO_PFN:
            decision = self.policy.huge_zero_wp()
        else:
            decision = self.policy.thp_wp_reuse(frame, self.swapcount(frame))
        if decision.outcome == "reuse":
            self.reuse_huge(proc_name, page, frame, decision, writable=writable, unshare=False)
        elif decision.outcome == "copy":
            self.copy_huge(proc_name, page, frame, decision, writable=writable, carry_uffd=keep_ro)
        else:
            self.split_then(proc_name, page, frame, decision)
            self.write_fault_after_split(proc_name, page, vma, keep_ro)

    def write_fault_after_split(self, proc_name: str, page: str, vma: Vma, keep_ro: bool) -> None:
        """VM_FAULT_FALLBACK: the fault is retried on the PTE of the subpage written."""
        pte = self.procs[proc_name].ptes[page]
        assert pte.pfn is not None
        frame = self.frames[pte.pfn]
        if frame.folio is None:  # the huge zero page, now PTEs of the small zero page
            super().wp_fault(proc_name, page, pte, frame, vma, keep_ro)
        else:
            self.pte_thp_wp(proc_name, page, frame, vma, keep_ro)

    def mapping_mms(self, frame: Frame) -> int:
        """How many processes map any subpage of the large folio ``frame`` (by PMD, subpage 0's
        PTE or the other subpages' PTEs): the MMs a folio's mm ids count (CONFIG_MM_ID)."""
        return sum(
            any(pte.pfn == frame.pfn or pte.rest_pfn == frame.pfn for pte in proc.ptes.values())
            for proc in self.procs.values()
        )

    def pte_thp_wp(self, proc_name: str, page: str, frame: Frame, vma: Vma, keep_ro: bool) -> None:
        """do_wp_page on subpage 0 of a PTE-mapped THP: reuse it, or copy it into a small
        page of its own while the other subpages stay mapped from the folio."""
        decision = self.policy.pte_thp_reuse(frame, self.swapcount(frame), self.mapping_mms(frame))
        writable = vma.write and not keep_ro
        if decision.outcome == "reuse":
            self.reuse(proc_name, page, frame, decision, writable=writable)
        else:
            self.cow_copy(proc_name, page, frame, decision, writable=writable, carry_uffd=keep_ro)

    def split_then(self, proc_name: str, page: str, frame: Frame, decision: Decision) -> None:
        self.split_huge_pmd(proc_name, page)
        self.emit(
            "split",
            f"{proc_name}'s PMD for {page} is split into PTEs: {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )

    def reuse_huge(
        self,
        proc_name: str,
        page: str,
        frame: Frame,
        decision: Decision,
        *,
        writable: bool,
        unshare: bool,
    ) -> None:
        """The writer keeps the whole huge page (maybe_pmd_mkwrite / set_huge_ptep_writable);
        an unshare fault only marks it exclusive and leaves the PMD read-only."""
        pte = self.procs[proc_name].ptes[page]
        exclusive = self.policy.exclusive_bit().outcome == "allow"
        self.put_frame(folio_mapped(frame, exclusive0=exclusive, exclusive_rest=exclusive))
        if not unshare:
            self.set_pte(
                proc_name, page, pte._replace(writable=writable, dirty=True, softdirty=True)
            )
        self.emit(
            "unshare" if unshare else "reuse",
            f"{proc_name} keeps huge page #{frame.pfn}"
            + (" (the PMD stays read-only)" if unshare else "")
            + f": {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )

    def copy_huge(
        self,
        proc_name: str,
        page: str,
        frame: Frame,
        decision: Decision,
        *,
        writable: bool,
        carry_uffd: bool = False,
        unshare: bool = False,
    ) -> None:
        """A new huge page with all 512 subpages copied (or zeroed, from the huge zero page)."""
        pte = self.procs[proc_name].ptes[page]
        hugetlb = frame.folio is not None and frame.folio.kind == "hugetlb"
        new = self.alloc_folio("hugetlb" if hugetlb else "thp", frame.value)
        self.note_anon_vma(proc_name, page)
        self.set_pte(
            proc_name,
            page,
            Pte(
                pfn=new.pfn,
                writable=writable,
                dirty=not unshare,
                softdirty=pte.softdirty or not unshare,
                uffd_wp=pte.uffd_wp and (carry_uffd or unshare),
                pmd=True,
            ),
        )
        old_left = 0 if frame.kind == "zero" else frame.refcount - 1
        self.emit(
            "copy",
            f"{proc_name} {'unshares' if unshare else 'copies'} huge page #{frame.pfn} into new "
            f"huge page #{new.pfn}"
            + (" (kept read-only)" if not writable else "")
            + f": {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
            new_pfn=new.pfn,
            inputs={
                "needless": frame.kind == "anon" and old_left == 0,
                "unshare": unshare,
                "frame_kind": frame.kind,
            },
        )
        if frame.kind != "zero":
            self.put_frame(folio_mapped(self.frames[frame.pfn], entire=-1))
            self.maybe_free(self.frames[frame.pfn])

    # ------------------------------------------------------------------- unshare faults
    def unshare_fault(
        self, proc_name: str, page: str, decision: Decision, *, flag: str = "FAULT_FLAG_UNSHARE"
    ) -> None:
        pte = self.procs[proc_name].ptes[page]
        assert pte.pfn is not None
        frame = self.frames[pte.pfn]
        if not pte.pmd and frame.folio is None:
            super().unshare_fault(proc_name, page, decision, flag=flag)
            return
        self.emit(
            "info",
            f"{proc_name}'s GUP must break COW for a read first ({flag}): {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )
        if pte.pmd:
            if frame.folio is not None and frame.folio.kind == "hugetlb":
                reuse = self.policy.hugetlb_wp_reuse(frame)
            elif pte.pfn == ZERO_PFN:
                reuse = self.policy.huge_zero_wp()
            else:
                reuse = self.policy.thp_wp_reuse(frame, self.swapcount(frame))
            if reuse.outcome == "reuse":
                cause = self.policy.unshare_reused(flag, decision, reuse)
                self.reuse_huge(proc_name, page, frame, cause, writable=False, unshare=True)
                return
            if reuse.outcome == "copy":
                self.copy_huge(proc_name, page, frame, reuse, writable=False, unshare=True)
                return
            self.split_then(proc_name, page, frame, reuse)
            pte = self.procs[proc_name].ptes[page]
            assert pte.pfn is not None
            frame = self.frames[pte.pfn]
            if frame.folio is None:  # the huge zero page split into small zero pages
                self.cow_copy(proc_name, page, frame, reuse, writable=False, unshare=True)
                return
        reuse = self.policy.pte_thp_reuse(frame, self.swapcount(frame), self.mapping_mms(frame))
        if reuse.outcome == "reuse":
            exclusive = self.policy.exclusive_bit().outcome == "allow"
            self.put_frame(folio_mapped(frame, exclusive0=exclusive))
            self.emit(
                "unshare",
                f"{flag}: {proc_name} may keep subpage 0 of folio #{frame.pfn}, so it is "
                + ("marked exclusive without a copy" if exclusive else "left as it is")
                + "; the PTE stays read-only",
                self.policy.unshare_reused(flag, decision, reuse),
                proc=proc_name,
                page=page,
                pfn=frame.pfn,
            )
            return
        self.cow_copy(proc_name, page, frame, reuse, writable=False, unshare=True)
