"""GUP: get_user_pages and pin_user_pages, the references they take, and /proc/PID/mem."""

from __future__ import annotations

from engine import commands as c
from engine.machine.core import written_value
from engine.machine.huge_faults import HugeFaults
from engine.policies import GupRequest
from engine.state import ZERO_PFN, Frame, Ref
from engine.syntax import auto_ref_name

# A GUP retries follow_page after each fault; real kernels loop until the PTE is right. Every
# path here settles within three rounds, the bound only guards against a modelling mistake.
_GUP_MAX_ROUNDS = 6


class Gup(HugeFaults):
    def gup(
        self,
        proc_name: str,
        page: str,
        req: GupRequest,
        *,
        race: bool = False,
    ) -> Frame:
        """__get_user_pages: fault until follow_page_pte accepts the PTE, then return the page.

        The caller takes the reference. ``race`` lets a second thread MADV_DONTNEED the page
        right after the first COW fault — the interleaving that lets a GUP which dropped
        FOLL_WRITE (``after_force_cow``) follow the page-cache page instead of the copy.
        """
        proc = self.need_proc(proc_name)
        vma = self.need_vma(proc, page, fault=False)
        kind = "pin_user_pages" if req.pin else "get_user_pages"
        if req.fast:
            kind += "_fast"
        if req.write and not vma.write and (not req.force or not vma.is_cow_mapping):
            raise self.refuse(
                "efault",
                f"{kind}(FOLL_WRITE) on {proc_name}'s read-only mapping {page}"
                + (" (a shared mapping: FOLL_FORCE may not write it)" if req.force else "")
                + ": -EFAULT",
                kernel="check_vma_flags",
                proc=proc_name,
                page=page,
            )
        forced = None if req.write else self.policy.gup_breaks_cow(req, vma)
        if forced is not None and forced.outcome == "skip":
            self.emit(
                "info", f"{proc_name}'s {kind}: {forced.why}", forced, proc=proc_name, page=page
            )
            forced = None
        write = req.write
        cow_done = False
        raced = False
        for _ in range(_GUP_MAX_ROUNDS):
            proc = self.procs[proc_name]
            pte = proc.ptes.get(page)
            if pte is None or pte.pfn is None:
                if write:
                    # do_cow_fault / do_anonymous_page do not report VM_FAULT_WRITE, so this
                    # fault sets neither FOLL_COW nor lets GUP drop FOLL_WRITE.
                    self.write_fault(
                        proc_name, page, why=f"{kind}(FOLL_WRITE)", can_retry=not req.force
                    )
                elif forced is not None and forced.outcome == "fault":
                    self.emit(
                        "info",
                        f"{proc_name}'s {kind}: {forced.why}",
                        forced,
                        proc=proc_name,
                        page=page,
                    )
                    self.write_fault(proc_name, page, why=f"read {kind} (turned into a write)")
                    cow_done = True
                else:
                    self.read_fault(proc, page, vma)
                continue
            frame = self.frames[pte.pfn]
            if write and not pte.writable:
                if not vma.write:
                    proof = self.policy.force_write_proof(pte, frame, vma, cow_done)
                    if proof.outcome == "allow":
                        self.emit(
                            "info",
                            f"{kind}(FOLL_FORCE|FOLL_WRITE) follows {proc_name}'s "
                            f"read-only PTE for {page}: {proof.why}",
                            proof,
                            proc=proc_name,
                            page=page,
                            pfn=frame.pfn,
                        )
                        break
                self.write_fault(
                    proc_name, page, why=f"{kind}(FOLL_WRITE)", can_retry=not req.force
                )
                if not vma.write:
                    cow_done = True
                    drop = self.policy.after_force_cow()
                    if drop.outcome == "allow":
                        self.emit("info", drop.why, drop, proc=proc_name, page=page)
                        write = False
                if race and not raced:
                    raced = True
                    self.zap(proc_name, page, "the racing thread's MADV_DONTNEED")
                continue
            if forced is not None and not pte.writable and not cow_done:
                if forced.outcome == "fault":
                    # The read GUP takes a real write fault (uffd-wp notified).
                    self.emit(
                        "info",
                        f"{proc_name}'s {kind}: {forced.why}",
                        forced,
                        proc=proc_name,
                        page=page,
                        pfn=frame.pfn,
                    )
                    self.write_fault(proc_name, page, why=f"read {kind} (turned into a write)")
                else:
                    self.unshare_fault(proc_name, page, forced, flag="FAULT_FLAG_BREAK_COW")
                cow_done = True
                continue
            if not pte.writable and not write:
                unshare = self.policy.gup_must_unshare(req, frame, vma)
                if unshare is not None:
                    self.unshare_fault(proc_name, page, unshare)
                    continue
            return frame
        else:  # pragma: no cover - guarded by the model, see _GUP_MAX_ROUNDS
            raise AssertionError(f"GUP on {proc_name}/{page} did not settle")
        pte = self.procs[proc_name].ptes[page]
        assert pte.pfn is not None
        return self.frames[pte.pfn]

    def do_TakeRef(self, cmd: c.TakeRef) -> None:
        taken = set(self.procs) | set(self.refs) | set(self.files)
        name = cmd.name or self.ref_name or auto_ref_name(cmd.kind, taken)
        if name in taken:
            raise self.refuse("error", f"the name {name} is already in use", proc=cmd.proc)
        pin = cmd.kind in ("pin", "iouring")
        req = GupRequest(
            pin=pin,
            write=cmd.write or cmd.kind == "iouring",
            longterm=cmd.longterm or cmd.kind == "iouring",
            fast=cmd.fast or cmd.kind == "vmsplice",
            wrong_side_ok=cmd.wrong_side_ok,
        )
        frame = self.gup(cmd.proc, cmd.page, req)
        ref = Ref(
            name=name,
            kind=cmd.kind,
            owner=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
            write=req.write,
            longterm=req.longterm,
            fast=req.fast,
            wrong_side_ok=cmd.wrong_side_ok,
            step=self.k,
        )
        if frame.pfn != ZERO_PFN:
            frame = self.frames[frame.pfn]
            self.put_frame(
                frame._replace(pins=frame.pins + 1) if pin else frame._replace(gets=frame.gets + 1)
            )
        if (
            pin
            and not self.procs[cmd.proc].has_pinned
            and self.policy.pin_marks_mm().outcome == "allow"
        ):
            self.put_proc(self.procs[cmd.proc]._replace(has_pinned=True))
        self.put_ref(ref)
        holder = {
            "vmsplice": "a pipe buffer",
            "get": "a device's DMA reference",
            "pin": "a device's DMA pin",
            "iouring": "an io_uring fixed buffer",
        }[cmd.kind]
        large = frame.folio is not None
        count = (
            ("+1 and _pincount +1 (a large folio counts pins exactly)" if large else "+1024 "
             "(GUP_PIN_COUNTING_BIAS)")
            if pin
            else "+1"
        )  # fmt: skip
        self.emit(
            "gup",
            f"{name} ({holder}) now holds frame #{frame.pfn} of {cmd.proc}'s {cmd.page} with "
            f"{'|'.join(ref.foll)}"
            + (f"; refcount {count}" if frame.pfn != ZERO_PFN else " (the zero page)"),
            rule=(took := self.policy.gup_reference(pin, large)).rule,
            commit=took.commit,
            kernel={
                "vmsplice": "vmsplice_to_pipe → iov_iter_get_pages",
                "get": "get_user_pages" + ("_fast" if cmd.fast else ""),
                "pin": "pin_user_pages" + ("_fast" if cmd.fast else ""),
                "iouring": "io_sqe_buffer_register → pin_user_pages",
            }[cmd.kind],
            proc=cmd.proc,
            page=cmd.page,
            ref=name,
            pfn=frame.pfn,
        )

    def do_ForceWrite(self, cmd: c.ForceWrite) -> None:
        self.need_proc(cmd.proc)
        req = GupRequest(pin=False, write=True, force=True)
        frame = self.gup(cmd.proc, cmd.page, req, race=cmd.race)
        proc = self.procs[cmd.proc]
        vma = proc.vmas[cmd.page]
        value = written_value(cmd, self.k)
        self.put_frame(frame._replace(value=value))
        file_write_allowed = True
        if frame.file is not None:
            self.put_file(self.files[frame.file]._replace(value=value))
            file_write_allowed = vma.shared and vma.maywrite
        pte = proc.ptes.get(cmd.page)
        if pte is not None and pte.pfn == frame.pfn:
            self.set_pte(cmd.proc, cmd.page, pte._replace(dirty=True, softdirty=True))
        self.emit(
            "write",
            f"/proc/{cmd.proc}/mem stores {value.text} in frame #{frame.pfn}"
            + (f", the page cache of file {frame.file}" if frame.file else "")
            + ("" if file_write_allowed else f" — a file {cmd.proc} may only read"),
            rule="FOLL_FORCE write",
            kernel="mem_rw → access_remote_vm",
            proc=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
            inputs={"frame_kind": frame.kind, "file_write_allowed": file_write_allowed},
        )

    def do_RefRead(self, cmd: c.RefRead) -> None:
        ref = self.need_ref(cmd.ref)
        frame = self.frames[ref.pfn]
        self.observed = frame.value
        how = {"vmsplice": "reading the pipe", "iouring": "a WRITE_FIXED from the buffer"}.get(
            ref.kind, "a DMA read through the pin" if ref.kind == "pin" else "a device read"
        )
        self.emit(
            "read",
            f"{how} ({cmd.ref}) sees frame #{frame.pfn}: {frame.value.describe()}",
            ref=cmd.ref,
            pfn=frame.pfn,
            proc=ref.owner,
            page=ref.page,
        )

    def do_RefWrite(self, cmd: c.RefWrite) -> None:
        ref = self.need_ref(cmd.ref)
        if not ref.write:
            raise self.refuse(
                "efault",
                f"{cmd.ref} is a read-only reference "
                f"({'|'.join(ref.foll)}): the device cannot write through it",
                ref=cmd.ref,
            )
        frame = self.frames[ref.pfn]
        value = written_value(cmd, self.k)
        self.put_frame(frame._replace(value=value))
        if frame.file is not None:
            self.put_file(self.files[frame.file]._replace(value=value))
        self.emit(
            "write",
            f"the device writes {value.text} into frame #{frame.pfn} through {cmd.ref}",
            rule="DMA write",
            ref=cmd.ref,
            pfn=frame.pfn,
            proc=ref.owner,
            page=ref.page,
            inputs={"frame_kind": frame.kind, "file_write_allowed": True},
        )

    def do_RefRelease(self, cmd: c.RefRelease) -> None:
        self.release(self.need_ref(cmd.ref), f"{cmd.ref} is released")
