"""Core bookkeeping: one step's working copy of the state, refcount and mapcount accounting,
the swap cache's references, and freeing a frame exactly when nothing holds it.

The other modules of this package add the kernel paths on top (faults, GUP, fork, swap-out,
system calls); `engine.machine.apply` puts them together. Everything here is the same in every
era: wherever the kernel's behaviour depends on the era the machine asks the policy
(`engine.policies`) and records the `Decision` it got.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine import commands as c
from engine.annotations import SwapDevice
from engine.events import Event, EventKind
from engine.frame_table import FrameTableBuilder, frozen, working_copy
from engine.policies import Decision, Policy
from engine.state import (
    ZERO_PFN,
    File,
    FolioKind,
    Frame,
    Proc,
    Pte,
    Ref,
    State,
    SwapSlot,
    Value,
    Vma,
    folio_frame,
    folio_mapped,
    frame_dropped,
    frame_mapped,
)


class Abort(Exception):
    """Ends a command early after the refusal has been recorded as an event."""


def written_value(command: c.Write | c.ForceWrite | c.RefWrite, step: int) -> Value:
    """The value a write stores; `P write a` without a value writes ``P:step``."""
    if isinstance(command, c.Write):
        return Value(command.value or f"{command.proc}:{step}", command.proc, "cpu", step)
    if isinstance(command, c.ForceWrite):
        return Value(command.value, command.proc, "force", step)
    return Value(command.value, command.ref, "device", step)


class MachineCore:
    """One step's working copy of the state. Each mapping is copied on its first write only
    (`own_frames` and friends), so a step costs what it changes, not the size of the machine;
    reads go straight to the attribute."""

    def __init__(
        self,
        state: State,
        policy: Policy,
        step: int,
        ref_name: str | None,
        swap_device: SwapDevice = "file",
    ) -> None:
        self.policy = policy
        # The scenario's `#swap` device: the policy decides what an era does with it.
        self.swap_device = swap_device
        self.ref_name = ref_name
        self.k = step
        self.procs: Mapping[str, Proc] = state.procs
        self.frames: Mapping[int, Frame] = state.frames
        self.refs: Mapping[str, Ref] = state.refs
        self.swap: Mapping[int, SwapSlot] = state.swap
        self.files: Mapping[str, File] = state.files
        self.next_pfn = state.next_pfn
        self.next_slot = state.next_slot
        self._procs: dict[str, Proc] | None = None
        self._frames: dict[int, Frame] | FrameTableBuilder | None = None
        self._refs: dict[str, Ref] | None = None
        self._swap: dict[int, SwapSlot] | None = None
        self._files: dict[str, File] | None = None
        self._own_ptes: dict[str, dict[str, Pte]] = {}
        self._own_vmas: dict[str, dict[str, Vma]] = {}
        self.events: list[Event] = []
        self.observed: Value | None = None

    # ------------------------------------------------------------------ state bookkeeping
    def freeze(self) -> State:
        return State(
            procs=self.procs,
            frames=self.frames if self._frames is None else frozen(self._frames),
            refs=self.refs,
            swap=self.swap,
            files=self.files,
            next_pfn=self.next_pfn,
            next_slot=self.next_slot,
        )

    def own_procs(self) -> dict[str, Proc]:
        if self._procs is None:
            self.procs = self._procs = dict(self.procs)
        return self._procs

    def own_frames(self) -> dict[int, Frame] | FrameTableBuilder:
        # A large table copies only the buckets this step writes (`engine.frame_table`): most
        # steps touch a frame or two of thousands.
        if self._frames is None:
            self.frames = self._frames = working_copy(self.frames)
        return self._frames

    def own_refs(self) -> dict[str, Ref]:
        if self._refs is None:
            self.refs = self._refs = dict(self.refs)
        return self._refs

    def own_swap(self) -> dict[int, SwapSlot]:
        if self._swap is None:
            self.swap = self._swap = dict(self.swap)
        return self._swap

    def own_files(self) -> dict[str, File]:
        if self._files is None:
            self.files = self._files = dict(self.files)
        return self._files

    def put_frame(self, frame: Frame) -> None:
        self.own_frames()[frame.pfn] = frame

    def put_proc(self, proc: Proc) -> None:
        if proc.ptes is not self._own_ptes.get(proc.name):
            self._own_ptes.pop(proc.name, None)
        if proc.vmas is not self._own_vmas.get(proc.name):
            self._own_vmas.pop(proc.name, None)
        self.own_procs()[proc.name] = proc

    def put_slot(self, slot: SwapSlot) -> None:
        self.own_swap()[slot.slot] = slot

    def put_file(self, file: File) -> None:
        self.own_files()[file.name] = file

    def put_ref(self, ref: Ref) -> None:
        self.own_refs()[ref.name] = ref

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
        # Like `set_pte`: the VMAs copied in this step are edited in place, so an mmap of 256
        # pages copies the table once, not once per page.
        vmas = self._own_vmas.get(proc_name)
        if vmas is None:
            proc = self.procs[proc_name]
            vmas = dict(proc.vmas)
            vmas[vma.page] = vma
            self._own_vmas[proc_name] = vmas
            self.put_proc(proc._replace(vmas=vmas))
        else:
            vmas[vma.page] = vma

    def alloc(
        self, value: Value, *, mapcount: int = 0, swapcache: bool = False, exclusive: bool = False
    ) -> Frame:
        """A new small anonymous frame; ``exclusive`` asks for PG_anon_exclusive, which only
        the eras that have the bit set."""
        frame = Frame(
            pfn=self.next_pfn,
            kind="anon",
            value=value,
            mapcount=mapcount,
            swapcache=swapcache,
            anon_exclusive=exclusive and self.policy.exclusive_bit().outcome == "allow",
        )
        self.next_pfn += 1
        self.put_frame(frame)
        return frame

    def alloc_folio(self, kind: FolioKind, value: Value) -> Frame:
        """A new PMD-sized folio mapped by one PMD, exclusive where the era keeps the bit
        (do_huge_pmd_anonymous_page, hugetlb_no_page, or a whole-page COW copy)."""
        frame = folio_frame(
            self.next_pfn,
            kind,
            value,
            entire=1,
            sub0=0,
            rest=0,
            exclusive=self.policy.exclusive_bit().outcome == "allow",
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
    ) -> Abort:
        self.emit(kind, text, kernel=kernel, rule=kind, proc=proc, page=page, ref=ref)
        return Abort()

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
        frame = frame_dropped(self.frames[pfn], mapcount, gets, pins)
        self.put_frame(frame)
        self.maybe_free(frame)

    def maybe_free(self, frame: Frame) -> None:
        slot = self.slot_of(frame) if frame.swapcache else None
        # The swap cache holds one reference per subpage (a large folio's whole).
        cached = 1 if frame.folio is None else frame.nr_pages
        if (
            frame.swapcache
            and slot is not None
            and slot.swapcount == 0
            and frame.refcount == cached
        ):
            # Nothing maps it and no swap PTE needs the slot: the swap cache lets go too.
            self.drop_swapcache(frame, slot)
            frame = self.frames[frame.pfn]
        if frame.kind == "anon" and frame.refcount == 0:
            del self.own_frames()[frame.pfn]
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
            del self.own_swap()[slot.slot]
        else:
            self.put_slot(slot._replace(cache_pfn=None))

    def zap(self, proc_name: str, page: str, why: str) -> None:
        """zap_pte_range: remove one PTE (present or swap entry)."""
        pte = self.procs[proc_name].ptes.get(page)
        if pte is None:
            return
        self.set_pte(proc_name, page, None)
        vma = self.procs[proc_name].vmas[page]
        if pte.uffd_wp and vma.uffd_wp and vma.takes_uffd_wp_markers:
            # zap_install_uffd_wp_if_needed (hugetlb: __unmap_hugepage_range): the protection
            # outlives the PTE as a marker.
            self.set_vma(proc_name, vma._replace(uffd_wp_marker=True))
        self.zap_entry(proc_name, page, pte, why)

    def zap_entry(self, proc_name: str, page: str, pte: Pte, why: str) -> None:
        """What zap_pte_range does with the entry it removed: drop the mapping of a present
        page, or the swap entry's reference to its slot. Exit calls this for every PTE of a
        process whose page table goes away whole, so it leaves the table itself to the caller."""
        pfn = pte.pfn
        if pte.pmd or pte.rest_pfn is not None:
            self.zap_huge(proc_name, page, pte, why)
            return
        if pfn is not None:
            frame = None if pfn == ZERO_PFN else self.frames[pfn]
            if frame is not None and frame.folio is not None:
                self.zap_huge(proc_name, page, pte, why)
                return
            text = f"{why}: {proc_name}'s PTE for {page} goes away"
            if frame is not None and (left := frame.refcount - 1):
                text += f"; frame #{pfn} survives with refcount {left}"
            # The event built in place: exit runs this line once per page.
            self.events.append(
                Event(
                    "unmap", text, "zap_pte_range", "zap_pte_range", "", proc_name, page, None,
                    pfn, None, {},
                )
            )  # fmt: skip
            if frame is not None:  # `drop(pfn, mapcount=1)` on the frame read above
                frame = frame_dropped(frame, 1, 0, 0)
                self.own_frames()[pfn] = frame
                self.maybe_free(frame)
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

    # ------------------------------------------------------------------ huge-page mappings
    def map_huge(self, pte: Pte, delta: int) -> None:
        """Account ``delta`` (+1: fork duplicated it, -1: it was zapped) mappings of what a
        huge-page VMA's entry maps: the PMD (entire mapcount), subpage 0's page and the
        folio the other subpages map (`engine.state` module docstring). Frees nothing."""
        pfn = pte.pfn
        if pte.pmd:
            if pfn is not None and pfn != ZERO_PFN:
                self.put_frame(folio_mapped(self.frames[pfn], entire=delta))
            return
        rest = pte.rest_pfn
        if pfn is not None and pfn != ZERO_PFN:
            frame = self.frames[pfn]
            if frame.folio is None:
                self.put_frame(frame_mapped(frame, delta, frame.anon_exclusive and delta > 0))
            elif pfn == rest:
                self.put_frame(folio_mapped(frame, sub0=delta, rest=delta))
                return
            else:
                self.put_frame(folio_mapped(frame, sub0=delta))
        if rest is not None:
            self.put_frame(folio_mapped(self.frames[rest], rest=delta))

    def zap_huge(self, proc_name: str, page: str, pte: Pte, why: str) -> None:
        """zap_huge_pmd / zap_pte_range over a huge-page VMA: every mapping of it goes, and each
        folio or page is freed once nothing else holds it."""
        pfns = [p for p in (pte.pfn, pte.rest_pfn) if p is not None and p != ZERO_PFN]
        before = {p: self.frames[p].refcount for p in dict.fromkeys(pfns)}
        if pte.swap_slot is not None:  # subpage 0 swapped out, the rest still mapped
            self.zap_entry(proc_name, page, pte._replace(rest_pfn=None), why)
        self.map_huge(pte, -1)
        held = [
            f"#{p} keeps refcount {self.frames[p].refcount}"
            for p in before
            if self.frames[p].refcount
        ]
        self.emit(
            "unmap",
            f"{why}: {proc_name}'s "
            + ("PMD" if pte.pmd else "PTEs")
            + f" for {page} "
            + ("goes" if pte.pmd else "go")
            + " away"
            + (f" ({', '.join(held)})" if held else ""),
            rule="zap_huge_pmd" if pte.pmd else "zap_pte_range",
            kernel="zap_huge_pmd" if pte.pmd else "zap_pte_range",
            proc=proc_name,
            page=page,
            pfn=pte.pfn,
        )
        for p in before:
            self.maybe_free(self.frames[p])

    def split_huge_pmd(self, proc_name: str, page: str) -> Pte:
        """__split_huge_pmd: the PMD becomes 512 PTEs mapping the same folio, with the PMD's
        protection and PageAnonExclusive carried to every subpage; the huge zero page becomes
        PTEs of the small zero page (the 511 beyond subpage 0 leave the model)."""
        pte = self.procs[proc_name].ptes[page]
        assert pte.pmd and pte.pfn is not None
        rest = None if pte.pfn == ZERO_PFN else pte.pfn
        if rest is not None:
            self.put_frame(folio_mapped(self.frames[rest], entire=-1, sub0=1, rest=1))
        split = pte._replace(pmd=False, rest_pfn=rest)
        self.set_pte(proc_name, page, split)
        return split

    def split_folio(self, frame: Frame) -> Frame:
        """split_folio: a large folio becomes small pages. Subpage 0 stays a frame (same pfn,
        its own counters and bit); the other subpages leave the model, so every mapping of
        them forgets the folio (``rest_pfn``). The caller has checked can_split_folio (no
        GUP references or pins, no PMD mapping)."""
        assert frame.folio is not None and frame.folio.entire_mapcount == 0
        for proc in self.procs.values():
            for page, pte in proc.ptes.items():
                if pte.rest_pfn == frame.pfn:
                    self.set_pte(proc.name, page, pte._replace(rest_pfn=None))
        mapped = frame.folio.subpage_mapcounts[0]
        small = Frame(
            frame.pfn,
            frame.kind,
            frame.value,
            mapped,
            frame.gets,
            frame.pins,
            frame.swapcache,
            frame.file,
            frame.anon_exclusive and mapped > 0,
        )
        self.put_frame(small)
        self.maybe_free(small)
        return small

    def release_swap_entry(self, slot: SwapSlot) -> None:
        slot = slot._replace(swapcount=slot.swapcount - 1)
        if slot.cache_pfn is None:
            if slot.swapcount == 0:
                del self.own_swap()[slot.slot]
            else:
                self.put_slot(slot)
            return
        self.put_slot(slot)
        self.maybe_free(self.frames[slot.cache_pfn])

    def release(self, ref: Ref, why: str) -> None:
        del self.own_refs()[ref.name]
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

    def note_anon_vma(self, proc_name: str, page: str) -> None:
        """anon_vma_prepare: the first anonymous page of a VMA gives it an anon_vma."""
        vma = self.procs[proc_name].vmas[page]
        if not vma.anon_vma:
            self.set_vma(proc_name, vma._replace(anon_vma=True))

    def pagecache_frame(self, file_name: str) -> Frame:
        file = self.files[file_name]
        if file.cache_pfn is not None:
            return self.frames[file.cache_pfn]
        frame = Frame(pfn=self.next_pfn, kind="pagecache", value=file.value, file=file_name)
        self.next_pfn += 1
        self.put_frame(frame)
        self.put_file(file._replace(cache_pfn=frame.pfn))
        return frame
