"""Faults: read, write, unshare and swap-in (handle_mm_fault, do_wp_page, do_swap_page)."""

from __future__ import annotations

from engine.machine.core import MachineCore
from engine.policies import Decision
from engine.state import ZERO_PFN, ZERO_VALUE, Frame, Proc, Pte, Value, Vma, folio_mapped


class Faults(MachineCore):
    def read_fault(self, proc: Proc, page: str, vma: Vma) -> None:
        """Fault in a page for reading: zero page, page cache, or swap-in."""
        pte = proc.ptes.get(page)
        if pte is not None and pte.swap_slot is not None:
            self.swap_in(proc.name, page, write=False)
            return
        if vma.file is None:
            self.set_pte(proc.name, page, Pte(pfn=ZERO_PFN))
            self.emit(
                "map",
                f"{proc.name} reads {page} for the first time: the shared zero page is mapped "
                "read-only",
                rule="first read maps the zero page",
                kernel="do_anonymous_page",
                proc=proc.name,
                page=page,
                pfn=ZERO_PFN,
            )
            return
        frame = self.pagecache_frame(vma.file)
        # A uffd-wp marker turns into a write-protected PTE (pte_marker_handle_uffd_wp).
        marked = vma.uffd_wp_marker and vma.uffd_wp
        writable = vma.shared and vma.write and not marked
        self.put_frame(frame._replace(mapcount=frame.mapcount + 1))
        self.set_pte(proc.name, page, Pte(pfn=frame.pfn, writable=writable, uffd_wp=marked))
        if vma.uffd_wp_marker:
            self.set_vma(proc.name, vma._replace(uffd_wp_marker=False))
        self.emit(
            "map",
            f"{proc.name} reads {page}: the page-cache page of file {vma.file} is mapped "
            + ("writable (shared mapping)" if writable else "read-only"),
            rule="read fault on a file mapping",
            kernel="do_read_fault" if not vma.shared else "do_shared_fault",
            proc=proc.name,
            page=page,
            pfn=frame.pfn,
        )

    def write_fault(
        self,
        proc_name: str,
        page: str,
        *,
        notify_uffd: bool = True,
        why: str = "write",
        keep_ro: bool = False,
        can_retry: bool = True,
    ) -> None:
        """handle_mm_fault with FAULT_FLAG_WRITE: allocate, COW, reuse or swap in.

        ``notify_uffd`` is False for a COW break that is not a write (a policy's
        FAULT_FLAG_BREAK_COW); ``keep_ro`` then keeps a uffd-wp protected copy write-protected.
        ``can_retry`` is False for a GUP without a ``locked`` pointer (/proc/PID/mem): such a
        fault lacks FAULT_FLAG_ALLOW_RETRY, so handle_userfault() cannot wait for the monitor
        and returns VM_FAULT_SIGBUS instead of delivering the fault.
        """
        proc = self.procs[proc_name]
        vma = proc.vmas[page]
        pte = proc.ptes.get(page)
        if pte is not None and pte.swap_slot is not None:
            self.swap_in(proc_name, page, write=True)
            pte = self.procs[proc_name].ptes[page]
            if pte.writable or (not vma.write and pte.dirty and not self.is_shared_frame(pte)):
                return
        if pte is None:
            if vma.uffd_wp_marker and vma.uffd_wp and notify_uffd:
                self.userfault(proc_name, page, why, can_retry, marker=True)
                vma = vma._replace(uffd_wp_marker=False)
                self.set_vma(proc_name, vma)
            self.fault_missing_for_write(self.procs[proc_name], page, vma)
            return
        if pte.writable:
            return
        assert pte.pfn is not None
        if pte.uffd_wp and vma.uffd_wp:
            if notify_uffd:
                self.userfault(proc_name, page, why, can_retry, marker=False)
                pte = pte._replace(uffd_wp=False)
                self.set_pte(proc_name, page, pte)
            else:
                keep_ro = True
        assert pte.pfn is not None
        self.wp_fault(proc_name, page, pte, self.frames[pte.pfn], vma, keep_ro)

    def wp_fault(
        self, proc_name: str, page: str, pte: Pte, frame: Frame, vma: Vma, keep_ro: bool
    ) -> None:
        """do_wp_page on a present, write-protected PTE (after userfaultfd had its say)."""
        if vma.shared:
            self.set_pte(proc_name, page, pte._replace(writable=vma.write, dirty=True))
            self.emit(
                "map",
                f"{proc_name} writes the shared mapping {page}: the page-cache page is made "
                "writable in place (no COW in a shared mapping)",
                rule="shared mapping",
                kernel="do_wp_page → wp_page_shared",
                proc=proc_name,
                page=page,
                pfn=frame.pfn,
            )
            return
        if frame.kind != "anon":
            self.cow_copy(
                proc_name,
                page,
                frame,
                self.policy.private_non_anon_copy(frame),
                writable=vma.write and not keep_ro,
                carry_uffd=keep_ro,
            )
            return
        frame = self.before_reuse_test(frame)
        decision = self.policy.wp_reuse(frame, self.swapcount(frame))
        if decision.outcome == "reuse":
            self.reuse(proc_name, page, frame, decision, writable=vma.write and not keep_ro)
        else:
            self.cow_copy(
                proc_name,
                page,
                frame,
                decision,
                writable=vma.write and not keep_ro,
                carry_uffd=keep_ro,
            )

    def userfault(
        self, proc_name: str, page: str, why: str, can_retry: bool, *, marker: bool
    ) -> None:
        """handle_userfault for a write-protect fault: deliver it, or fail the access."""
        where = (
            "a uffd-wp PTE marker (no page yet)" if marker else "a userfaultfd write-protected PTE"
        )
        if not can_retry:
            raise self.refuse(
                "efault",
                f"{proc_name}'s {why} hits {where}, but this GUP cannot wait for the monitor (no "
                "FAULT_FLAG_ALLOW_RETRY): handle_userfault returns VM_FAULT_SIGBUS and the "
                "write fails with -EIO; nothing is written",
                kernel="__access_remote_vm → handle_userfault",
                proc=proc_name,
                page=page,
            )
        self.emit(
            "userfault",
            f"{proc_name}'s {why} hits {where}: a VM_UFFD_WP fault is delivered to the "
            "monitor, which must resolve it (UFFDIO_WRITEPROTECT off) before the fault can retry",
            rule="uffd-wp marker on write fault" if marker else "uffd-wp PTE on write fault",
            kernel="handle_pte_marker → handle_userfault"
            if marker
            else "do_wp_page → handle_userfault",
            proc=proc_name,
            page=page,
        )

    def is_shared_frame(self, pte: Pte) -> bool:
        return pte.pfn is not None and self.frames[pte.pfn].kind != "anon"

    def before_reuse_test(self, frame: Frame) -> Frame:
        """Ask whether the swap cache lets go of the page before the reuse test."""
        if not frame.swapcache:
            return frame
        slot = self.slot_of(frame)
        if slot is None:
            return frame
        decision = self.policy.free_swapcache_before_reuse(frame, slot.swapcount)
        if decision.outcome != "allow":
            return frame
        self.drop_swapcache(frame, slot)
        self.emit(
            "swap",
            f"frame #{frame.pfn} leaves the swap cache first: no swap entry needs it any more",
            decision,
            pfn=frame.pfn,
        )
        return self.frames[frame.pfn]

    def reuse(
        self, proc_name: str, page: str, frame: Frame, decision: Decision, *, writable: bool
    ) -> None:
        pte = self.procs[proc_name].ptes[page]
        if frame.swapcache and self.policy.reuse_frees_swapcache(frame).outcome == "allow":
            slot = self.slot_of(frame)
            if slot is not None:
                self.drop_swapcache(frame, slot)
                frame = self.frames[frame.pfn]
        exclusive = self.policy.exclusive_bit().outcome == "allow"
        if frame.folio is None:
            self.put_frame(frame._replace(anon_exclusive=exclusive))
        else:  # a subpage of a PTE-mapped THP: its own bit
            self.put_frame(folio_mapped(frame, exclusive0=exclusive))
        # wp_page_reuse: pte_mkdirty, which on x86 also sets the soft-dirty bit.
        self.set_pte(proc_name, page, pte._replace(writable=writable, dirty=True, softdirty=True))
        self.emit(
            "reuse",
            f"{proc_name} keeps frame #{frame.pfn}: {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )

    def cow_copy(
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
        """wp_page_copy: a new exclusive anon page with the old contents (zero page: zeroed)."""
        pte = self.procs[proc_name].ptes[page]
        new = self.alloc(frame.value, mapcount=1, exclusive=True)
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
                # A subpage copied out of a PTE-mapped THP: the other subpages stay mapped.
                rest_pfn=pte.rest_pfn,
            ),
        )
        old_left = frame.refcount - 1 if frame.kind != "zero" else 0
        only_swapcache_left = frame.swapcache and old_left == 1 and self.swapcount(frame) == 0
        if frame.folio is not None:
            # What is left of the folio is this process's own mappings of its other subpages:
            # nobody else could have seen the write, so the copy was not needed.
            own_rest = frame.nr_pages - 1 if pte.rest_pfn == frame.pfn else 0
            needless = old_left == own_rest
        else:
            needless = frame.kind == "anon" and (old_left == 0 or only_swapcache_left)
        verb = "unshares" if unshare else "copies"
        self.emit(
            "copy",
            f"{proc_name} {verb} frame #{frame.pfn} into new frame #{new.pfn}"
            + (" (kept read-only)" if not writable else "")
            + f": {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
            new_pfn=new.pfn,
            inputs={"needless": needless, "unshare": unshare, "frame_kind": frame.kind},
        )
        if frame.folio is None:
            self.drop(frame.pfn, mapcount=1)
        else:
            self.put_frame(folio_mapped(self.frames[frame.pfn], sub0=-1))
            self.maybe_free(self.frames[frame.pfn])

    def unshare_fault(
        self, proc_name: str, page: str, decision: Decision, *, flag: str = "FAULT_FLAG_UNSHARE"
    ) -> None:
        """do_wp_page with FAULT_FLAG_UNSHARE: make the page exclusive, keep the PTE read-only
        and clean, never notify uffd-wp; copy if it cannot be reused. A policy whose read GUP
        breaks COW without a write (``gup_breaks_cow`` answering "unshare") comes here too,
        with its own ``flag``; why that keeps the PTE read-only is in that policy's docstring.
        """
        pte = self.procs[proc_name].ptes[page]
        assert pte.pfn is not None
        frame = self.frames[pte.pfn]
        self.emit(
            "info",
            f"{proc_name}'s GUP must break COW for a read first ({flag}): {decision.why}",
            decision,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )
        if frame.kind == "anon":
            frame = self.before_reuse_test(frame)
            reuse = self.policy.wp_reuse(frame, self.swapcount(frame))
            if reuse.outcome == "reuse":
                exclusive = self.policy.exclusive_bit().outcome == "allow"
                self.put_frame(frame._replace(anon_exclusive=exclusive))
                self.emit(
                    "unshare",
                    f"{flag}: {proc_name} holds the only reference to frame #{frame.pfn}, so "
                    + (
                        "it is marked exclusive without a copy"
                        if exclusive
                        else "nothing needs copying"
                    )
                    + "; the PTE stays read-only",
                    self.policy.unshare_reused(flag, decision, reuse),
                    proc=proc_name,
                    page=page,
                    pfn=frame.pfn,
                )
                return
            decision = reuse
        self.cow_copy(proc_name, page, frame, decision, writable=False, unshare=True)

    def fault_missing_for_write(self, proc: Proc, page: str, vma: Vma) -> None:
        if vma.file is None:
            frame = self.alloc(ZERO_VALUE, mapcount=1, exclusive=True)
            self.note_anon_vma(proc.name, page)
            self.set_pte(proc.name, page, Pte(pfn=frame.pfn, writable=vma.write, dirty=True))
            self.emit(
                "map",
                f"{proc.name} writes {page} for the first time: a fresh zeroed page "
                f"#{frame.pfn} is mapped writable"
                + (" and exclusive" if frame.anon_exclusive else ""),
                rule="first write allocates",
                kernel="do_anonymous_page",
                proc=proc.name,
                page=page,
                new_pfn=frame.pfn,
            )
            return
        cache = self.pagecache_frame(vma.file)
        if vma.shared:
            self.put_frame(cache._replace(mapcount=cache.mapcount + 1))
            self.set_pte(proc.name, page, Pte(pfn=cache.pfn, writable=vma.write, dirty=True))
            self.emit(
                "map",
                f"{proc.name} writes the shared mapping {page}: the page-cache page of file "
                f"{vma.file} is mapped writable",
                kernel="do_shared_fault",
                proc=proc.name,
                page=page,
                pfn=cache.pfn,
            )
            return
        frame = self.alloc(cache.value, mapcount=1, exclusive=True)
        self.note_anon_vma(proc.name, page)
        self.set_pte(proc.name, page, Pte(pfn=frame.pfn, writable=vma.write, dirty=True))
        self.emit(
            "copy",
            f"{proc.name} writes its private mapping of file {vma.file}: the page-cache page is "
            f"copied into anonymous frame #{frame.pfn}"
            + ("" if vma.write else " (mapped read-only: the VMA is not writable)"),
            rule="private file write fault",
            kernel="do_cow_fault",
            proc=proc.name,
            page=page,
            pfn=cache.pfn,
            new_pfn=frame.pfn,
            inputs={"needless": False, "frame_kind": "pagecache", "unshare": False},
        )

    def swap_in(self, proc_name: str, page: str, *, write: bool) -> None:
        """do_swap_page: bring the page back (from the swap cache if it is still there)."""
        pte = self.procs[proc_name].ptes[page]
        vma = self.procs[proc_name].vmas[page]
        assert pte.swap_slot is not None
        slot = self.swap[pte.swap_slot]
        fresh = slot.cache_pfn is None
        skip = self.policy.swapin_skips_swapcache(self.swap_device, slot.swapcount)
        skipped = fresh and skip.outcome == "allow"
        if not fresh:
            assert slot.cache_pfn is not None
            frame = self.frames[slot.cache_pfn]
            source = f"frame #{frame.pfn} is still in the swap cache"
        elif skipped:
            frame = self.alloc(slot.value)
            source = f"it is read from swap slot {slot.slot} into new frame #{frame.pfn}"
            self.emit(
                "swap",
                f"#swap {self.swap_device}: {skip.why}",
                skip,
                proc=proc_name,
                page=page,
                new_pfn=frame.pfn,
            )
        else:
            frame = self.alloc(slot.value, swapcache=True)
            slot = slot._replace(cache_pfn=frame.pfn)
            source = f"it is read from swap slot {slot.slot} into new frame #{frame.pfn}"
        marker = (
            self.policy.swapin_skipped_cache_exclusive()
            if skipped
            else self.policy.swapin_exclusive(pte, frame, fresh)
        )
        exclusive = marker.outcome == "allow"
        if frame.folio is None:
            frame = frame._replace(
                mapcount=frame.mapcount + 1,
                anon_exclusive=frame.anon_exclusive or exclusive,
            )
        else:
            # A THP paged out whole and still held in the swap cache: subpage 0 comes back
            # PTE-mapped from the large folio (do_swap_page maps the page it found there).
            frame = folio_mapped(frame, sub0=1, exclusive0=frame.anon_exclusive or exclusive)
        self.put_frame(frame)
        slot = slot._replace(swapcount=slot.swapcount - 1)
        if skipped:
            # swap_free: nothing else uses the slot and no page caches it.
            del self.own_swap()[slot.slot]
        else:
            self.put_slot(slot)
        new_pte = Pte(
            pfn=frame.pfn, softdirty=pte.softdirty, uffd_wp=pte.uffd_wp, rest_pfn=pte.rest_pfn
        )
        self.set_pte(proc_name, page, new_pte)
        self.emit(
            "swap",
            f"{proc_name} faults on its swap entry for {page}: {source}; mapped read-only"
            + (
                ""
                if not exclusive
                else f" and exclusive ({marker.why})"
                if skipped
                else " and exclusive (the swap PTE remembered it)"
            ),
            rule="swap-in",
            kernel="do_swap_page",
            commit=marker.commit,
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )
        if not write:
            return
        if self.policy.swapin_write_frees_swapcache(frame, slot.swapcount).outcome == "allow":
            self.drop_swapcache(frame, slot)
            frame = self.frames[frame.pfn]
        decision = self.policy.swapin_write_reuse(frame, self.swapcount(frame))
        if decision.outcome == "reuse":
            # The reuse happens (swap cache dropped, page exclusive), but a uffd-wp bit carried
            # over from the swap entry keeps the PTE write-protected, so the write faults again.
            kept = self.policy.swapin_uffd_wp() if pte.uffd_wp and vma.uffd_wp else None
            protect = kept is not None and kept.outcome == "allow"
            self.reuse(proc_name, page, frame, decision, writable=vma.write and not protect)
            if protect:
                assert kept is not None
                self.emit(
                    "protect",
                    f"yet {proc_name}'s PTE for {page} is mapped read-only after all: {kept.why}",
                    kept,
                    proc=proc_name,
                    page=page,
                    pfn=frame.pfn,
                )
        else:
            self.emit(
                "info",
                f"{proc_name}'s write cannot keep the swapped-in page: {decision.why}",
                decision,
                proc=proc_name,
                page=page,
                pfn=frame.pfn,
            )

    def store(self, proc_name: str, page: str, value: Value, *, vma: Vma) -> None:
        pte = self.procs[proc_name].ptes[page]
        assert pte.pfn is not None and pte.pfn != ZERO_PFN
        frame = self.frames[pte.pfn]
        self.put_frame(frame._replace(value=value))
        self.set_pte(proc_name, page, pte._replace(dirty=True, softdirty=True))
        file_write_allowed = True
        if frame.file is not None:
            file = self.files[frame.file]
            self.put_file(file._replace(value=value))
            file_write_allowed = vma.shared and vma.maywrite
        self.emit(
            "write",
            f"{value.text} is stored in frame #{frame.pfn}"
            + (f", the page cache of file {frame.file}" if frame.file else "")
            + ("" if file_write_allowed else f" — which {proc_name} may only read"),
            rule="store",
            kernel="",
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
            inputs={"frame_kind": frame.kind, "file_write_allowed": file_write_allowed},
        )
