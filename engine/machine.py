"""The mechanics every era shares: page tables, counters, faults, fork, GUP, swap, freeing.

`apply(state, command, policy, step)` performs one command and returns the new state, the
events it produced and, for reads, the value observed. Wherever the kernel's behaviour depends
on the era the machine asks the policy (`engine.policies`) and records the decision it got;
everything else here is the same in every era and follows §1.6 and §8 of
`shared/kernel-cow-semantics.md`.

A command the kernel would refuse or punish (writing an unmapped page, `R write` through a
read-only reference, a process that does not exist) is a recorded step — SIGSEGV, -EFAULT or an
error event — and never an exception: the state stays consistent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from engine import commands as c
from engine.events import Event, EventKind
from engine.policies import Decision, GupRequest, Policy
from engine.state import (
    ZERO_PFN,
    ZERO_VALUE,
    File,
    Frame,
    Proc,
    Pte,
    Ref,
    State,
    SwapSlot,
    Value,
    Vma,
)
from engine.syntax import auto_ref_name

K = TypeVar("K")
V = TypeVar("V")

# A GUP retries follow_page after each fault; real kernels loop until the PTE is right. Every
# path here settles within three rounds, the bound only guards against a modelling mistake.
_GUP_MAX_ROUNDS = 6


class StepResult(NamedTuple):
    state: State
    events: tuple[Event, ...]
    observed: Value | None


def written_value(command: c.Write | c.ForceWrite | c.RefWrite, step: int) -> Value:
    """The value a write stores; `P write a` without a value writes ``P:step``."""
    if isinstance(command, c.Write):
        return Value(command.value or f"{command.proc}:{step}", command.proc, "cpu", step)
    if isinstance(command, c.ForceWrite):
        return Value(command.value, command.proc, "force", step)
    return Value(command.value, command.ref, "device", step)


def apply(
    state: State, command: c.Command, policy: Policy, step: int, ref_name: str | None = None
) -> StepResult:
    """Perform one command. ``ref_name`` is the name a reference take gets when the command
    has no `as R`: the parser's `reference_names`, so text and engine always agree."""
    machine = _Machine(state, policy, step, ref_name)
    machine.run(command)
    return StepResult(machine.freeze(), tuple(machine.events), machine.observed)


class _Abort(Exception):
    """Ends a command early after the refusal has been recorded as an event."""


def _cow(mapping: Mapping[K, V]) -> dict[K, V]:
    return dict(mapping)


class _Machine:
    """One step's working copy of the state. Dicts are copied on first write only, so a step
    costs what it changes, not the size of the machine."""

    def __init__(self, state: State, policy: Policy, step: int, ref_name: str | None) -> None:
        self.policy = policy
        self.ref_name = ref_name
        self.k = step
        self.procs: Mapping[str, Proc] = state.procs
        self.frames: Mapping[int, Frame] = state.frames
        self.refs: Mapping[str, Ref] = state.refs
        self.swap: Mapping[int, SwapSlot] = state.swap
        self.files: Mapping[str, File] = state.files
        self.next_pfn = state.next_pfn
        self.next_slot = state.next_slot
        self._dirty: set[str] = set()
        self._own_ptes: dict[str, dict[str, Pte]] = {}
        self.events: list[Event] = []
        self.observed: Value | None = None

    # ------------------------------------------------------------------ state bookkeeping
    def freeze(self) -> State:
        return State(
            procs=self.procs,
            frames=self.frames,
            refs=self.refs,
            swap=self.swap,
            files=self.files,
            next_pfn=self.next_pfn,
            next_slot=self.next_slot,
        )

    def _w(self, name: str) -> None:
        if name not in self._dirty:
            self._dirty.add(name)
            setattr(self, name, _cow(getattr(self, name)))

    def put_frame(self, frame: Frame) -> None:
        self._w("frames")
        self.frames[frame.pfn] = frame  # type: ignore[index]

    def put_proc(self, proc: Proc) -> None:
        if proc.ptes is not self._own_ptes.get(proc.name):
            self._own_ptes.pop(proc.name, None)
        self._w("procs")
        self.procs[proc.name] = proc  # type: ignore[index]

    def put_slot(self, slot: SwapSlot) -> None:
        self._w("swap")
        self.swap[slot.slot] = slot  # type: ignore[index]

    def put_file(self, file: File) -> None:
        self._w("files")
        self.files[file.name] = file  # type: ignore[index]

    def put_ref(self, ref: Ref) -> None:
        self._w("refs")
        self.refs[ref.name] = ref  # type: ignore[index]

    def set_pte(self, proc_name: str, page: str, pte: Pte | None) -> None:
        # A page table copied in this step belongs to this step alone, so later changes in the
        # same step edit it in place: fork write-protects 256 PTEs with one copy, not 256.
        ptes = self._own_ptes.get(proc_name)
        if ptes is None:
            ptes = dict(self.procs[proc_name].ptes)
            self._own_ptes[proc_name] = ptes
            self.put_proc(self.procs[proc_name]._replace(ptes=ptes))
        if pte is None:
            ptes.pop(page, None)
        else:
            ptes[page] = pte

    def set_vma(self, proc_name: str, vma: Vma) -> None:
        proc = self.procs[proc_name]
        self.put_proc(proc._replace(vmas={**proc.vmas, vma.page: vma}))

    def alloc(self, value: Value, **counters: int | bool) -> Frame:
        exclusive = bool(counters.pop("exclusive", False)) and self.policy.has_exclusive_bit
        frame = Frame(
            pfn=self.next_pfn,
            kind="anon",
            value=value,
            anon_exclusive=exclusive,
            **counters,  # type: ignore[arg-type]
        )
        self.next_pfn += 1
        self.put_frame(frame)
        return frame

    def emit(
        self,
        kind: EventKind,
        text: str,
        decision: Decision | None = None,
        *,
        rule: str = "",
        kernel: str = "",
        commit: str = "",
        proc: str | None = None,
        page: str | None = None,
        ref: str | None = None,
        pfn: int | None = None,
        new_pfn: int | None = None,
        inputs: Mapping[str, int | bool | str] | None = None,
    ) -> None:
        if decision is not None:
            rule = rule or decision.rule
            kernel = kernel or decision.kernel
            commit = commit or decision.commit
            inputs = {**decision.inputs, **inputs} if inputs else decision.inputs
        self.events.append(
            Event(kind, text, rule, kernel, commit, proc, page, ref, pfn, new_pfn, inputs or {})
        )

    def refuse(
        self,
        kind: EventKind,
        text: str,
        *,
        kernel: str = "",
        proc: str | None = None,
        page: str | None = None,
        ref: str | None = None,
    ) -> _Abort:
        self.emit(kind, text, kernel=kernel, rule=kind, proc=proc, page=page, ref=ref)
        return _Abort()

    # --------------------------------------------------------------- lookups with refusals
    def need_proc(self, name: str) -> Proc:
        proc = self.procs.get(name)
        if proc is None:
            raise self.refuse(
                "error", f"there is no process {name} (it never existed or has exited)", proc=name
            )
        return proc

    def need_vma(self, proc: Proc, page: str, *, fault: bool) -> Vma:
        vma = proc.vmas.get(page)
        if vma is None:
            if fault:
                raise self.refuse(
                    "segv",
                    f"{proc.name} touches {page}, which it does not map: SIGSEGV (SEGV_MAPERR)",
                    kernel="do_user_addr_fault → bad_area",
                    proc=proc.name,
                    page=page,
                )
            raise self.refuse(
                "efault",
                f"{proc.name} does not map {page}: the call fails with -EFAULT",
                kernel="__get_user_pages → find_vma",
                proc=proc.name,
                page=page,
            )
        return vma

    def need_ref(self, name: str) -> Ref:
        ref = self.refs.get(name)
        if ref is None:
            raise self.refuse(
                "error", f"there is no reference {name} (never taken, or released)", ref=name
            )
        return ref

    def swapcount(self, frame: Frame) -> int:
        slot = self.slot_of(frame)
        return 0 if slot is None else slot.swapcount

    def slot_of(self, frame: Frame) -> SwapSlot | None:
        if not frame.swapcache:
            return None
        for slot in self.swap.values():
            if slot.cache_pfn == frame.pfn:
                return slot
        return None

    # ------------------------------------------------------------------ dropping references
    def drop(self, pfn: int, *, mapcount: int = 0, gets: int = 0, pins: int = 0) -> None:
        """Drop references to a frame and free it once nothing holds it."""
        if pfn == ZERO_PFN:
            return  # the zero page is never refcounted per mapping (vm_normal_page is NULL)
        frame = self.frames[pfn]
        frame = frame._replace(
            mapcount=frame.mapcount - mapcount,
            gets=frame.gets - gets,
            pins=frame.pins - pins,
            anon_exclusive=frame.anon_exclusive and frame.mapcount - mapcount > 0,
        )
        self.put_frame(frame)
        self.maybe_free(frame)

    def maybe_free(self, frame: Frame) -> None:
        slot = self.slot_of(frame) if frame.swapcache else None
        if frame.swapcache and slot is not None and slot.swapcount == 0 and frame.refcount == 1:
            # Nothing maps it and no swap PTE needs the slot: the swap cache lets go too.
            self.drop_swapcache(frame, slot)
            frame = self.frames[frame.pfn]
        if frame.kind == "anon" and frame.refcount == 0:
            self._w("frames")
            del self.frames[frame.pfn]  # type: ignore[attr-defined]
            self.emit(
                "free",
                f"frame #{frame.pfn} ({frame.value.text}) has no references left and is freed",
                rule="refcount reached 0",
                kernel="put_page → __free_pages",
                pfn=frame.pfn,
            )

    def drop_swapcache(self, frame: Frame, slot: SwapSlot) -> None:
        self.put_frame(frame._replace(swapcache=False))
        if slot.swapcount == 0:
            self._w("swap")
            del self.swap[slot.slot]  # type: ignore[attr-defined]
        else:
            self.put_slot(slot._replace(cache_pfn=None))

    def zap(self, proc_name: str, page: str, why: str) -> None:
        """zap_pte_range: remove one PTE (present or swap entry)."""
        pte = self.procs[proc_name].ptes.get(page)
        if pte is None:
            return
        self.set_pte(proc_name, page, None)
        vma = self.procs[proc_name].vmas[page]
        if pte.uffd_wp and vma.uffd_wp and vma.file is not None:
            # zap_install_uffd_wp_if_needed: the protection outlives the PTE as a marker.
            self.set_vma(proc_name, vma._replace(uffd_wp_marker=True))
        if pte.pfn is not None:
            frame = self.frames[pte.pfn]
            left = frame.refcount - 1 if pte.pfn != ZERO_PFN else 0
            self.emit(
                "unmap",
                f"{why}: {proc_name}'s PTE for {page} goes away"
                + (
                    ""
                    if pte.pfn == ZERO_PFN or left == 0
                    else f"; frame #{pte.pfn} survives with refcount {left}"
                ),
                rule="zap_pte_range",
                kernel="zap_pte_range",
                proc=proc_name,
                page=page,
                pfn=pte.pfn,
            )
            self.drop(pte.pfn, mapcount=1)
        elif pte.swap_slot is not None:
            slot = self.swap[pte.swap_slot]
            self.emit(
                "unmap",
                f"{why}: {proc_name}'s swap entry for {page} is freed",
                kernel="zap_pte_range → free_swap_and_cache",
                proc=proc_name,
                page=page,
            )
            self.release_swap_entry(slot)

    def release_swap_entry(self, slot: SwapSlot) -> None:
        slot = slot._replace(swapcount=slot.swapcount - 1)
        if slot.cache_pfn is None:
            if slot.swapcount == 0:
                self._w("swap")
                del self.swap[slot.slot]  # type: ignore[attr-defined]
            else:
                self.put_slot(slot)
            return
        self.put_slot(slot)
        self.maybe_free(self.frames[slot.cache_pfn])

    # --------------------------------------------------------------------------- faults
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

    def pagecache_frame(self, file_name: str) -> Frame:
        file = self.files[file_name]
        if file.cache_pfn is not None:
            return self.frames[file.cache_pfn]
        frame = Frame(pfn=self.next_pfn, kind="pagecache", value=file.value, file=file_name)
        self.next_pfn += 1
        self.put_frame(frame)
        self.put_file(file._replace(cache_pfn=frame.pfn))
        return frame

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

        ``notify_uffd`` is False for Peter Xu's FAULT_FLAG_BREAK_COW (a COW break for a read);
        ``keep_ro`` keeps a uffd-wp protected copy write-protected (same proposal, v3).
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
        frame = self.frames[pte.pfn]
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
            what = "the shared zero page" if frame.kind == "zero" else "a page-cache page"
            self.cow_copy(
                proc_name,
                page,
                frame,
                Decision(
                    "copy",
                    "private mapping of a non-anon page",
                    "do_wp_page → wp_page_copy",
                    "",
                    f"the private mapping shows {what}, which must never be written, so the "
                    "writer gets its own anonymous copy",
                    {"frame_kind": frame.kind},
                ),
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

    def note_anon_vma(self, proc_name: str, page: str) -> None:
        """anon_vma_prepare: the first anonymous page of a VMA gives it an anon_vma."""
        vma = self.procs[proc_name].vmas[page]
        if not vma.anon_vma:
            self.set_vma(proc_name, vma._replace(anon_vma=True))

    def is_shared_frame(self, pte: Pte) -> bool:
        return pte.pfn is not None and self.frames[pte.pfn].kind != "anon"

    def before_reuse_test(self, frame: Frame) -> Frame:
        """5.18+ (53a05ad9f21d): a swap-cache page whose slot nobody uses leaves the swap cache
        before the refcount test, so that reference does not force a copy."""
        if not (self.policy.drops_unused_swapcache and frame.swapcache):
            return frame
        slot = self.slot_of(frame)
        if slot is None or slot.swapcount != 0:
            return frame
        self.drop_swapcache(frame, slot)
        self.emit(
            "swap",
            f"frame #{frame.pfn} leaves the swap cache first: no swap entry needs it any more",
            rule="free unused swap cache before the refcount test",
            kernel="do_wp_page → folio_free_swap",
            commit="53a05ad9f21d",
            pfn=frame.pfn,
        )
        return self.frames[frame.pfn]

    def reuse(
        self, proc_name: str, page: str, frame: Frame, decision: Decision, *, writable: bool
    ) -> None:
        pte = self.procs[proc_name].ptes[page]
        if frame.swapcache and not self.policy.drops_unused_swapcache:
            # reuse_swap_page() deletes a page it lets the writer keep from the swap cache.
            slot = self.slot_of(frame)
            if slot is not None:
                self.drop_swapcache(frame, slot)
                frame = self.frames[frame.pfn]
        self.put_frame(frame._replace(anon_exclusive=self.policy.has_exclusive_bit))
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
            ),
        )
        old_left = frame.refcount - 1 if frame.kind != "zero" else 0
        only_swapcache_left = frame.swapcache and old_left == 1 and self.swapcount(frame) == 0
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
        self.drop(frame.pfn, mapcount=1)

    def unshare_fault(
        self, proc_name: str, page: str, decision: Decision, *, flag: str = "FAULT_FLAG_UNSHARE"
    ) -> None:
        """do_wp_page with FAULT_FLAG_UNSHARE (c89357e27f20): make the page exclusive, keep the
        PTE read-only and clean, never notify uffd-wp; copy if it cannot be reused.

        Peter Xu's FAULT_FLAG_BREAK_COW (Aug 2020) asked for exactly this for every read GUP on
        a COW mapping: "the page is not marked writable; dirty/soft-dirty not set for a pure
        read" (semantics §3 prose; its table's "else writable" contradicts it, and the prose
        follows the patch's intent, so we follow the prose).
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
                self.put_frame(frame._replace(anon_exclusive=self.policy.has_exclusive_bit))
                self.emit(
                    "unshare",
                    f"{flag}: {proc_name} holds the only reference to frame #{frame.pfn}, so "
                    + (
                        "it is marked exclusive without a copy"
                        if self.policy.has_exclusive_bit
                        else "nothing needs copying"
                    )
                    + "; the PTE stays read-only",
                    reuse,
                    kernel=f"do_wp_page ({flag})",
                    commit=decision.commit if flag != "FAULT_FLAG_UNSHARE" else "c89357e27f20",
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
                + (" and exclusive" if self.policy.has_exclusive_bit else ""),
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

    # ------------------------------------------------------------------------------ swap
    def swap_in(self, proc_name: str, page: str, *, write: bool) -> None:
        """do_swap_page: bring the page back (from the swap cache if it is still there)."""
        pte = self.procs[proc_name].ptes[page]
        vma = self.procs[proc_name].vmas[page]
        assert pte.swap_slot is not None
        slot = self.swap[pte.swap_slot]
        fresh = slot.cache_pfn is None
        if not fresh:
            assert slot.cache_pfn is not None
            frame = self.frames[slot.cache_pfn]
            source = f"frame #{frame.pfn} is still in the swap cache"
        else:
            frame = self.alloc(slot.value, swapcache=True)
            slot = slot._replace(cache_pfn=frame.pfn)
            source = f"it is read from swap slot {slot.slot} into new frame #{frame.pfn}"
        exclusive = self.policy.swapin_exclusive(pte, frame, fresh)
        frame = frame._replace(
            mapcount=frame.mapcount + 1,
            anon_exclusive=frame.anon_exclusive or exclusive,
        )
        self.put_frame(frame)
        slot = slot._replace(swapcount=slot.swapcount - 1)
        self.put_slot(slot)
        new_pte = Pte(pfn=frame.pfn, softdirty=pte.softdirty, uffd_wp=pte.uffd_wp)
        self.set_pte(proc_name, page, new_pte)
        self.emit(
            "swap",
            f"{proc_name} faults on its swap entry for {page}: {source}; mapped read-only"
            + (" and exclusive (the swap PTE remembered it)" if exclusive else ""),
            rule="swap-in",
            kernel="do_swap_page",
            commit="1493a1913e34" if exclusive else "",
            proc=proc_name,
            page=page,
            pfn=frame.pfn,
        )
        if not write:
            return
        if (
            self.policy.drops_unused_swapcache
            and slot.swapcount == 0
            and (frame.refcount == 2 and frame.swapcache)
        ):
            # should_try_to_free_swap(): a write fault with no other user frees the swap cache.
            self.drop_swapcache(frame, slot)
            frame = self.frames[frame.pfn]
        decision = self.policy.swapin_write_reuse(frame, self.swapcount(frame))
        if decision.outcome == "reuse":
            self.reuse(proc_name, page, frame, decision, writable=vma.write)
        else:
            self.emit(
                "info",
                f"{proc_name}'s write cannot keep the swapped-in page: {decision.why}",
                decision,
                proc=proc_name,
                page=page,
                pfn=frame.pfn,
            )

    # ------------------------------------------------------------------------ the store
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

    # ------------------------------------------------------------------------------ GUP
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
        right after the first COW fault — the interleaving Dirty COW wins with.
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
                    # fault sets neither FOLL_COW nor (pre-4.9) drops FOLL_WRITE.
                    self.write_fault(
                        proc_name, page, why=f"{kind}(FOLL_WRITE)", can_retry=not req.force
                    )
                elif forced is not None and self.policy.read_gup_cow_fault_is_write():
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
                    if self.policy.force_write_drops_foll_write():
                        self.emit(
                            "info",
                            "the COW fault is done, so get_user_pages drops FOLL_WRITE and "
                            "retries as a read — it will follow whatever the PTE maps next",
                            rule="drop FOLL_WRITE after COW",
                            kernel="faultin_page",
                            commit="f33ea7f404e5",
                            proc=proc_name,
                            page=page,
                        )
                        write = False
                if race and not raced:
                    raced = True
                    self.zap(proc_name, page, "the racing thread's MADV_DONTNEED")
                continue
            if forced is not None and not pte.writable and not cow_done:
                if self.policy.read_gup_cow_fault_is_write():
                    # 5.8 as merged: the read GUP takes a real write fault (uffd-wp notified).
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

    # -------------------------------------------------------------------------- commands
    def run(self, command: c.Command) -> None:
        handler = _HANDLERS[type(command)]
        # try/except costs nothing until something is raised; `contextlib.suppress` is a
        # context manager made and entered in Python for every command of every replay.
        try:  # noqa: SIM105
            handler(self, command)
        except _Abort:
            pass  # the refusal is already recorded as an event; the step simply ends there

    def do_FileDecl(self, cmd: c.FileDecl) -> None:
        if cmd.name in self.files or cmd.name in self.procs or cmd.name in self.refs:
            raise self.refuse("error", f"the name {cmd.name} is already in use")
        self.put_file(File(cmd.name, Value(cmd.value, cmd.name, "file", self.k)))
        self.emit(
            "info",
            f"file {cmd.name} holds {cmd.value}; its page enters the page cache when first touched",
        )

    def do_Mmap(self, cmd: c.Mmap) -> None:
        proc = self.procs.get(cmd.proc)
        if proc is None and (cmd.proc in self.refs or cmd.proc in self.files):
            raise self.refuse("error", f"{cmd.proc} names a reference or file, not a process")
        # Refused before the process starts: a refused command changes nothing, and the
        # verdicts' model of what each process should see skips refused steps.
        if cmd.file is not None and cmd.file not in self.files:
            raise self.refuse(
                "efault",
                f"there is no file {cmd.file} (declare it with `file {cmd.file} VALUE`)",
                proc=cmd.proc,
            )
        if proc is None:
            proc = Proc(cmd.proc, None, {}, {})
            self.put_proc(proc)
            self.emit("info", f"process {cmd.proc} starts", proc=cmd.proc)
        for page in cmd.pages:
            if page in proc.vmas:
                raise self.refuse(
                    "error",
                    f"{cmd.proc} already maps {page}; munmap it first",
                    proc=cmd.proc,
                    page=page,
                )
        for page in cmd.pages:
            vma = Vma(
                page=page,
                file=cmd.file,
                shared=cmd.shared,
                write=not cmd.readonly,
                maywrite=not (cmd.shared and cmd.readonly),
            )
            self.set_vma(cmd.proc, vma)
        what = (
            "private anonymous"
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
            self.emit(
                "fork",
                f"{page} is swapped out: the swap entry is duplicated (swap count "
                f"{slot.swapcount + 1})"
                + ("; the parent's exclusive marker is cleared" if pte.swap_exclusive else ""),
                rule="copy swap entry",
                kernel="copy_nonpresent_pte",
                commit="1493a1913e34" if pte.swap_exclusive else "",
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

    def do_Exit(self, cmd: c.Exit) -> None:
        proc = self.need_proc(cmd.proc)
        for ref in list(self.refs.values()):
            if ref.owner == cmd.proc:
                self.release(ref, f"{cmd.proc} exits and its file descriptors close")
        for page in proc.vmas:
            self.zap(cmd.proc, page, f"{cmd.proc} exits")
        self._w("procs")
        del self.procs[cmd.proc]  # type: ignore[attr-defined]
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
        self.need_vma(proc, cmd.page, fault=False)
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
        if vma.shared:
            decision = Decision(
                "allow",
                "shared mapping",
                "change_pte_range",
                "",
                "a shared mapping has no COW to protect",
            )
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

    def do_ClearSoftdirty(self, cmd: c.ClearSoftdirty) -> None:
        proc = self.need_proc(cmd.proc)
        for page, vma in proc.vmas.items():
            self.set_vma(cmd.proc, vma._replace(softdirty_tracking=True))
            pte = self.procs[cmd.proc].ptes.get(page)
            if pte is None or pte.pfn is None:
                continue
            frame = self.frames[pte.pfn]
            if (
                self.policy.protects_pinned_from_writeprotect
                and vma.is_cow_mapping
                and frame.maybe_dma_pinned
            ):
                self.emit(
                    "protect",
                    f"clear_refs leaves pinned {page} alone: write-protecting it would make "
                    "its owner copy away from the pin",
                    rule="skip maybe-pinned pages (5.11: mm: don't play games with pinned "
                    "pages in clear_page_refs)",
                    kernel="clear_soft_dirty",
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
        # A page still in the swap cache keeps its swap entry: shrink_folio_list calls
        # add_to_swap only for a folio not yet in the swap cache, and try_to_unmap_one installs
        # the existing entry and takes another swap count on it (swap_duplicate). The page is
        # written back to that slot, so the slot now holds its current value.
        cached = self.slot_of(frame)
        if cached is not None:
            slot = cached._replace(value=frame.value, swapcount=cached.swapcount + 1)
        else:
            slot = SwapSlot(self.next_slot, frame.value, swapcount=1, cache_pfn=frame.pfn)
            self.next_slot += 1
        self.put_slot(slot)
        exclusive = self.policy.has_exclusive_bit and frame.anon_exclusive
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
            + (" that remembers the page was exclusive" if exclusive else "")
            + (f"; {held} other reference(s) keep the page in the swap cache" if held else ""),
            rule="swap-out",
            kernel="madvise_pageout → shrink_folio_list",
            commit="1493a1913e34" if exclusive else "",
            proc=cmd.proc,
            page=cmd.page,
            pfn=frame.pfn,
        )
        if held == 0:
            self.drop_swapcache(frame, slot)
            self.maybe_free(self.frames[frame.pfn])

    def do_UffdWp(self, cmd: c.UffdWp) -> None:
        proc = self.need_proc(cmd.proc)
        vma = self.need_vma(proc, cmd.page, fault=False)
        pte = proc.ptes.get(cmd.page)
        if cmd.on and not vma.uffd_wp:
            if not vma.maywrite:
                raise self.refuse(
                    "efault",
                    f"{cmd.page} maps a file opened read-only (no VM_MAYWRITE): UFFDIO_REGISTER "
                    "fails with -EPERM (29ec90660d68, CVE-2018-18397)",
                    kernel="userfaultfd_register",
                    proc=cmd.proc,
                    page=cmd.page,
                )
            if vma.file is not None and not self.policy.uffd_wp_file:
                raise self.refuse(
                    "efault",
                    f"{cmd.page} is file-backed: before 5.19 userfaultfd write-protection works "
                    "on anonymous memory only, UFFDIO_REGISTER fails with -EINVAL",
                    kernel="userfaultfd_register → vma_can_userfault",
                    proc=cmd.proc,
                    page=cmd.page,
                )
        if cmd.on:
            vma = vma._replace(uffd_wp=True)
        # On file-backed memory an empty PTE slot gets a uffd-wp marker (5.19+), so the page
        # is protected before it exists; anonymous memory has no marker by default.
        marker = cmd.on and pte is None and vma.file is not None
        self.set_vma(cmd.proc, vma._replace(uffd_wp_marker=marker))
        if pte is not None and pte.pfn is not None:
            self.set_pte(
                cmd.proc,
                cmd.page,
                pte._replace(uffd_wp=cmd.on, writable=pte.writable and not cmd.on),
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
            kernel="userfaultfd_writeprotect → uffd_wp_range",
            proc=cmd.proc,
            page=cmd.page,
        )

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
        if pin and self.policy.tracks_has_pinned and not self.procs[cmd.proc].has_pinned:
            self.put_proc(self.procs[cmd.proc]._replace(has_pinned=True))
        self.put_ref(ref)
        holder = {
            "vmsplice": "a pipe buffer",
            "get": "a device's DMA reference",
            "pin": "a device's DMA pin",
            "iouring": "an io_uring fixed buffer",
        }[cmd.kind]
        count = "+1024 (GUP_PIN_COUNTING_BIAS)" if pin else "+1"
        self.emit(
            "gup",
            f"{name} ({holder}) now holds frame #{frame.pfn} of {cmd.proc}'s {cmd.page} with "
            f"{'|'.join(ref.foll)}"
            + (f"; refcount {count}" if frame.pfn != ZERO_PFN else " (the zero page)"),
            rule="take reference",
            kernel={
                "vmsplice": "vmsplice_to_pipe → iov_iter_get_pages",
                "get": "get_user_pages" + ("_fast" if cmd.fast else ""),
                "pin": "pin_user_pages" + ("_fast" if cmd.fast else ""),
                "iouring": "io_sqe_buffer_register → pin_user_pages",
            }[cmd.kind],
            commit="3faa52c03f44" if pin else "",
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

    def release(self, ref: Ref, why: str) -> None:
        self._w("refs")
        del self.refs[ref.name]  # type: ignore[attr-defined]
        pin = ref.kind in ("pin", "iouring")
        self.emit(
            "release",
            f"{why}: {'unpin_user_page' if pin else 'put_page'} drops its reference to frame "
            f"#{ref.pfn}",
            kernel="unpin_user_page" if pin else "put_page",
            ref=ref.name,
            pfn=ref.pfn,
        )
        self.drop(ref.pfn, pins=1 if pin else 0, gets=0 if pin else 1)


# One handler per command class, looked up once rather than by name on every step.
_HANDLERS: dict[type, Callable[[_Machine, Any], None]] = {
    cls: getattr(_Machine, "do_" + cls.__name__)
    for cls in (c.FileDecl, c.RefRead, c.RefWrite, c.RefRelease, *c.PROC_COMMANDS)
}
