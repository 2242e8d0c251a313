"""System calls: file declarations, mmap, munmap, exit, madvise, mprotect, clear_refs and
userfaultfd write-protection, and the plain loads and stores of `P read`/`P write`."""

from __future__ import annotations

from engine import commands as c
from engine.machine.core import written_value
from engine.machine.huge_faults import HugeFaults
from engine.state import ZERO_PFN, File, Proc, Value, Vma


class Syscalls(HugeFaults):
    def do_FileDecl(self, cmd: c.FileDecl) -> None:
        if cmd.name in self.files or cmd.name in self.procs or cmd.name in self.refs:
            raise self.refuse("error", f"the name {cmd.name} is already in use")
        self.put_file(File(cmd.name, Value(cmd.value, cmd.name, "file", self.k)))
        self.emit(
            "info",
            f"file {cmd.name} holds {cmd.value}; its page enters the page cache when first touched",
        )

    def do_Mmap(self, cmd: c.Mmap) -> None:
        # Every check comes before the first change: a refused mmap must leave no trace, or a
        # process would start that the refusal said was never created (issue 9).
        proc = self.procs.get(cmd.proc)
        if proc is None and (cmd.proc in self.refs or cmd.proc in self.files):
            raise self.refuse("error", f"{cmd.proc} names a reference or file, not a process")
        if cmd.file is not None and cmd.file not in self.files:
            raise self.refuse(
                "efault",
                f"there is no file {cmd.file} (declare it with `file {cmd.file} VALUE`)",
                proc=cmd.proc,
            )
        for page in cmd.pages:
            if proc is not None and page in proc.vmas:
                raise self.refuse(
                    "error",
                    f"{cmd.proc} already maps {page}; munmap it first",
                    proc=cmd.proc,
                    page=page,
                )
        if proc is None:
            proc = Proc(cmd.proc, None, {}, {})
            self.put_proc(proc)
            self.emit("info", f"process {cmd.proc} starts", proc=cmd.proc)
        for page in cmd.pages:
            vma = Vma(
                page=page,
                file=cmd.file,
                shared=cmd.shared,
                write=not cmd.readonly,
                maywrite=not (cmd.shared and cmd.readonly),
                backing=cmd.backing,
            )
            self.set_vma(cmd.proc, vma)
        what = (
            {
                "base": "private anonymous",
                "thp": "private anonymous, each a 2 MiB transparent huge page",
                "hugetlb": "private anonymous, each a 2 MiB hugetlb page",
            }[cmd.backing]
            if cmd.file is None
            else f"{'shared' if cmd.shared else 'private'} file {cmd.file}"
        )
        perm = "read-only" if cmd.readonly else "read-write"
        self.emit(
            "map",
            f"{cmd.proc} maps {' '.join(cmd.pages)} ({what}, {perm}); no page is allocated until "
            "first touch",
            kernel="do_mmap",
            proc=cmd.proc,
            page=cmd.pages[0],
        )

    def do_Read(self, cmd: c.Read) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=True)
        pte = proc.ptes.get(cmd.page)
        if pte is None or pte.pfn is None:
            self.read_fault(proc, cmd.page, vma)
            pte = self.procs[cmd.proc].ptes[cmd.page]
        assert pte.pfn is not None
        frame = self.frames[pte.pfn]
        self.observed = frame.value
        self.emit(
            "read",
            f"{cmd.proc} reads {cmd.page} from frame #{frame.pfn}: {frame.value.describe()}",
            kernel="",
            proc=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
        )

    def do_Write(self, cmd: c.Write) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=True)
        if not vma.write:
            raise self.refuse(
                "segv",
                f"{cmd.proc} writes {cmd.page}, which is mapped read-only: SIGSEGV (SEGV_ACCERR)",
                kernel="do_user_addr_fault → access_error",
                proc=cmd.proc,
                page=cmd.page,
            )
        self.write_fault(cmd.proc, cmd.page)
        self.store(cmd.proc, cmd.page, written_value(cmd, self.k), vma=vma)

    def do_Exit(self, cmd: c.Exit) -> None:
        proc = self.need_proc(cmd.proc)
        for ref in list(self.refs.values()):
            if ref.owner == cmd.proc:
                self.release(ref, f"{cmd.proc} exits and its file descriptors close")
        # The whole page table goes with the process: each PTE is zapped where it is, with no
        # per-PTE copy of a table nobody will see again.
        why = f"{cmd.proc} exits"
        ptes = self.procs[cmd.proc].ptes
        for page in proc.vmas:
            pte = ptes.get(page)
            if pte is not None:
                self.zap_entry(cmd.proc, page, pte, why)
        del self.own_procs()[cmd.proc]
        self.emit(
            "info", f"{cmd.proc} exits and is reaped", kernel="do_exit → exit_mmap", proc=cmd.proc
        )

    def do_Munmap(self, cmd: c.Munmap) -> None:
        proc = self.need_proc(cmd.proc)
        if cmd.page not in proc.vmas:
            self.emit(
                "info",
                f"{cmd.proc} does not map {cmd.page}; munmap has nothing to do",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        self.zap(cmd.proc, cmd.page, f"{cmd.proc} munmaps {cmd.page}")
        proc = self.procs[cmd.proc]
        self.put_proc(proc._replace(vmas={k: v for k, v in proc.vmas.items() if k != cmd.page}))
        self.emit(
            "unmap",
            f"{cmd.proc}'s mapping {cmd.page} is gone",
            kernel="do_munmap",
            proc=cmd.proc,
            page=cmd.page,
        )

    def do_Dontneed(self, cmd: c.Dontneed) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        if vma.backing == "hugetlb":
            allowed = self.policy.hugetlb_dontneed()
            if allowed.outcome != "allow":
                raise self.refuse(
                    "efault",
                    f"{cmd.proc}'s MADV_DONTNEED of {cmd.page}: {allowed.why}",
                    kernel=allowed.kernel,
                    proc=cmd.proc,
                    page=cmd.page,
                )
        if cmd.page not in proc.ptes:
            self.emit(
                "info",
                f"{cmd.page} has no PTE; MADV_DONTNEED has nothing to drop",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        self.zap(cmd.proc, cmd.page, f"{cmd.proc}'s MADV_DONTNEED")

    def do_Dontfork(self, cmd: c.Dontfork) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        self.set_vma(cmd.proc, vma._replace(dontcopy=not cmd.dofork))
        self.emit(
            "info",
            f"{cmd.page} is now "
            + (
                "copied to children again (MADV_DOFORK)"
                if cmd.dofork
                else "left out of children (MADV_DONTFORK sets VM_DONTCOPY)"
            ),
            kernel="madvise_behavior",
            proc=cmd.proc,
            page=cmd.page,
        )

    def do_Mprotect(self, cmd: c.Mprotect) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        pte = proc.ptes.get(cmd.page)
        if not cmd.writable:
            self.set_vma(cmd.proc, vma._replace(write=False))
            if pte is not None and pte.writable:
                self.set_pte(cmd.proc, cmd.page, pte._replace(writable=False))
            self.emit(
                "protect",
                f"{cmd.proc} makes {cmd.page} read-only: the PTE is write-protected",
                kernel="mprotect_fixup → change_pte_range",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        if not vma.maywrite:
            raise self.refuse(
                "efault",
                f"{cmd.page} maps a file opened read-only: mprotect fails with -EACCES",
                kernel="mprotect_fixup",
                proc=cmd.proc,
                page=cmd.page,
            )
        self.set_vma(cmd.proc, vma._replace(write=True))
        vma = self.procs[cmd.proc].vmas[cmd.page]
        if pte is None or pte.pfn is None or pte.writable:
            self.emit(
                "protect",
                f"{cmd.proc} makes {cmd.page} writable again",
                kernel="mprotect_fixup",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        frame = self.frames[pte.pfn]
        if vma.backing == "hugetlb":
            decision = self.policy.hugetlb_mprotect_upgrade()
        elif pte.pmd:
            decision = self.policy.mprotect_makes_pmd_writable(pte, frame, vma)
        elif vma.shared and pte.uffd_wp and vma.uffd_wp:
            decision = self.policy.mprotect_shared_uffd_wp(pte)
        elif vma.shared:
            decision = self.policy.mprotect_shared()
        else:
            decision = self.policy.mprotect_makes_writable(pte, frame, vma)
        if decision.outcome == "allow":
            self.set_pte(cmd.proc, cmd.page, pte._replace(writable=True))
        self.emit(
            "protect",
            f"{cmd.proc} makes {cmd.page} writable again; "
            + (
                "the PTE becomes writable at once: "
                if decision.outcome == "allow"
                else "the PTE stays read-only: "
            )
            + decision.why,
            decision,
            proc=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
        )

    def do_PteMap(self, cmd: c.PteMap) -> None:
        """What the selftest's "PTE-mapped THP" does: mprotect() one subpage read-only and back,
        which splits the PMD (__split_huge_pmd) and leaves the folio whole, mapped by 512 PTEs
        with the PMD's permissions and exclusive bit."""
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        if vma.backing == "hugetlb":
            raise self.refuse(
                "efault",
                f"{cmd.page} is a hugetlb mapping, which is never mapped by small PTEs: "
                "mprotect() of one subpage fails with -EINVAL (a hugetlb VMA splits only at "
                "huge-page boundaries)",
                kernel="mprotect_fixup → split_vma → hugetlb_vm_op_split",
                proc=cmd.proc,
                page=cmd.page,
            )
        pte = proc.ptes.get(cmd.page)
        if vma.backing == "base" or pte is None or not pte.pmd:
            why = (
                "is not a transparent huge page"
                if vma.backing == "base"
                else "has no PMD mapping (not faulted in, swapped out or PTE-mapped already)"
            )
            self.emit(
                "info",
                f"{cmd.page} {why}: there is no PMD to split, nothing changes",
                proc=cmd.proc,
                page=cmd.page,
            )
            return
        assert pte.pfn is not None
        self.split_huge_pmd(cmd.proc, cmd.page)
        frame = self.frames.get(pte.pfn)
        self.emit(
            "split",
            f"{cmd.proc} mprotect()s one subpage of {cmd.page} and back: the PMD is split into "
            + (
                "PTEs of the small zero page"
                if pte.pfn == ZERO_PFN or frame is None
                else f"512 PTEs mapping folio #{pte.pfn}, which stays whole (subpage mapcounts "
                f"{frame.subpage_mapcount(0)} each, entire mapcount {frame.entire_mapcount})"
            ),
            rule="PTE-map a THP",
            kernel="change_protection → __split_huge_pmd",
            proc=cmd.proc,
            page=cmd.page,
            pfn=pte.pfn,
        )

    def do_ClearSoftdirty(self, cmd: c.ClearSoftdirty) -> None:
        proc = self.need_proc(cmd.proc)
        for page, vma in proc.vmas.items():
            self.set_vma(cmd.proc, vma._replace(softdirty_tracking=True))
            pte = self.procs[cmd.proc].ptes.get(page)
            if pte is None or pte.pfn is None:
                continue
            if vma.backing == "hugetlb":
                # clear_refs_walk_ops has no hugetlb_entry: the page walk skips hugetlb pages.
                self.emit(
                    "protect",
                    f"clear_refs leaves the hugetlb page {page} alone: its page walk has no "
                    "hugetlb handler, so the huge PTE keeps its permissions",
                    kernel="clear_refs_write → walk_page_range",
                    proc=cmd.proc,
                    page=page,
                )
                continue
            frame = self.frames[pte.pfn]
            skip = self.policy.clear_refs_skip(frame, vma)
            if skip is not None:
                self.emit(
                    "protect",
                    f"clear_refs leaves pinned {page} alone: {skip.why}",
                    skip,
                    proc=cmd.proc,
                    page=page,
                    pfn=frame.pfn,
                )
                continue
            self.set_pte(cmd.proc, page, pte._replace(writable=False, softdirty=False))
        self.emit(
            "protect",
            f"{cmd.proc} writes 4 to clear_refs: soft-dirty bits are cleared and PTEs "
            "write-protected so that the next write faults",
            kernel="clear_refs_write → clear_soft_dirty",
            proc=cmd.proc,
        )

    def do_UffdWp(self, cmd: c.UffdWp) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        pte = proc.ptes.get(cmd.page)
        if cmd.on and not vma.uffd_wp:
            refused = self.policy.uffd_wp_register(vma)
            if refused is not None:
                raise self.refuse(
                    "efault", refused.why, kernel=refused.kernel, proc=cmd.proc, page=cmd.page
                )
        if cmd.on:
            vma = vma._replace(uffd_wp=True)
        # On file-backed and hugetlb memory an empty PTE slot gets a uffd-wp marker, so the
        # page is protected before it exists; anonymous memory has no marker by default.
        marker = cmd.on and pte is None and vma.takes_uffd_wp_markers
        self.set_vma(cmd.proc, vma._replace(uffd_wp_marker=marker))
        if pte is not None and pte.pfn is not None:
            self.set_pte(
                cmd.proc,
                cmd.page,
                pte._replace(uffd_wp=cmd.on, writable=pte.writable and not cmd.on),
            )
        elif pte is not None and pte.swap_slot is not None:
            swapped = self.policy.uffd_wp_swap_entry(cmd.on)
            if swapped.outcome == "allow":
                self.set_pte(cmd.proc, cmd.page, pte._replace(uffd_wp=cmd.on))
                self.emit(
                    "protect",
                    f"{cmd.page} of {cmd.proc} is swapped out: {swapped.why}",
                    swapped,
                    proc=cmd.proc,
                    page=cmd.page,
                )
        self.emit(
            "protect",
            f"{cmd.proc} "
            + (
                "registers {0} with userfaultfd and write-protects it (UFFDIO_WRITEPROTECT): "
                "the next write fault is reported to the monitor"
                if cmd.on
                else "lifts the userfaultfd write-protection of {0}"
            ).format(cmd.page)
            + (
                ""
                if pte is not None or not cmd.on
                else " (no PTE yet: a uffd-wp PTE marker holds the protection)"
                if marker
                else " (no PTE yet, and anonymous memory gets no marker: nothing is armed)"
            ),
            self.policy.uffd_wp_marker(vma) if marker else None,
            kernel="" if marker else "userfaultfd_writeprotect → uffd_wp_range",
            proc=cmd.proc,
            page=cmd.page,
        )
