"""The policy base: the decisions every era shares, and the classic defaults later eras override.

Each era is one module of this package holding one class; a later era inherits from the one it
changed and overrides only the decisions that commit changed, so reading a module tells exactly
what that kernel did differently. The mechanics every era shares (page tables, counters, mapping,
freeing) live in `engine.machine`, which asks the policy at every point where the kernel had to
decide and gets a `Decision` back; the machine itself holds no era fact, commit id or era wording.

Every decision names the rule, the kernel function, the commit that introduced the behaviour, one
sentence of why and the counters it read, so the narration can show it. Facts and commit ids come
from `shared/kernel-cow-semantics.md`; where it is silent the docstring says which reading we
chose. Rules every era shares (and their commits) live here, in `Policy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from engine.state import Frame, Pte, Vma

Outcome = Literal["reuse", "copy", "share", "unshare", "allow", "refuse", "fault", "skip", "none"]


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    rule: str
    kernel: str
    commit: str
    why: str
    inputs: Mapping[str, int | bool | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GupRequest:
    """The FOLL_* flags of one get_user_pages call, as the policy sees them."""

    pin: bool  # FOLL_PIN (else FOLL_GET)
    write: bool  # FOLL_WRITE
    longterm: bool = False  # FOLL_LONGTERM
    fast: bool = False  # pin_user_pages_fast / get_user_pages_fast
    force: bool = False  # FOLL_FORCE (/proc/PID/mem)
    wrong_side_ok: bool = False  # the seed's READ_WRONG_SIDE_COW_OK opt-out


def counts(frame: Frame) -> dict[str, int | bool | str]:
    return {
        "refcount": frame.refcount,
        "mapcount": frame.mapcount,
        "pins": frame.pins,
        "gets": frame.gets,
        "swapcache": frame.swapcache,
        "anon_exclusive": frame.anon_exclusive,
    }


KernelVersion = tuple[int, int]


class Policy:
    """The shared rules, and the classic (≤ 5.7) answer to every decision later eras changed.

    An era module subclasses `Policy` (or the era it changed), declares its identity and the
    mainline kernel versions it covers (``since``/``until``, inclusive; ``until`` None means
    today), and overrides only what its commits changed.
    """

    id: ClassVar[str]
    label: ClassVar[str]
    kernels: ClassVar[str]  # the versions as the pages show them
    commits: ClassVar[tuple[str, ...]]
    story: ClassVar[str]
    merged: ClassVar[bool] = True  # False for a proposal that never reached mainline
    since: ClassVar[KernelVersion] = (0, 0)
    until: ClassVar[KernelVersion | None] = None
    # Whether anonymous pages carry PG_anon_exclusive (the picture shows the bit when they do);
    # the machine asks `exclusive_bit()` instead.
    has_exclusive_bit: ClassVar[bool] = False

    def covers(self, version: KernelVersion) -> bool:
        """Whether this era is what a mainline kernel of ``version`` does (proposals: never)."""
        if not self.merged:
            return False
        return self.since <= version and (self.until is None or version <= self.until)

    # ------------------------------------------------------------- shared rules, every era
    def gup_reference(self, pin: bool) -> Decision:
        """try_grab_page: FOLL_GET adds 1 to the refcount, FOLL_PIN adds GUP_PIN_COUNTING_BIAS
        (1024) on a small page (3faa52c03f44, 5.7; older pins counted as gets, the same)."""
        return _PIN_REFERENCE if pin else _GET_REFERENCE

    def private_non_anon_copy(self, frame: Frame) -> Decision:
        """do_wp_page on the zero page or a page-cache page in a private mapping: always copy."""
        what = "the shared zero page" if frame.kind == "zero" else "a page-cache page"
        return Decision(
            "copy",
            "private mapping of a non-anon page",
            "do_wp_page → wp_page_copy",
            "",
            f"the private mapping shows {what}, which must never be written, so the "
            "writer gets its own anonymous copy",
            {"frame_kind": frame.kind},
        )

    def mprotect_shared(self) -> Decision:
        """change_pte_range on a shared mapping: there is no COW to protect, map writable."""
        return _MPROTECT_SHARED

    def fork_swap_entry(self, pte: Pte) -> Decision:
        """copy_nonpresent_pte: duplicate the swap entry; a child never inherits the exclusive
        marker, and the parent's is cleared (1493a1913e34 where the marker exists)."""
        return _FORK_SWAP_EXCLUSIVE if pte.swap_exclusive else _FORK_SWAP

    def unshare_reused(self, flag: str, cause: Decision, reuse: Decision) -> Decision:
        """do_wp_page with an unsharing flag on a page it may keep: no copy, the PTE stays
        read-only. FAULT_FLAG_UNSHARE is c89357e27f20; a proposal's flag keeps its own commit."""
        return Decision(
            reuse.outcome,
            reuse.rule,
            f"do_wp_page ({flag})",
            "c89357e27f20" if flag == "FAULT_FLAG_UNSHARE" else cause.commit,
            reuse.why,
            reuse.inputs,
        )

    def uffd_wp_register(self, vma: Vma) -> Decision | None:
        """userfaultfd_register: refuse a VMA without VM_MAYWRITE (29ec90660d68, CVE-2018-18397);
        before 5.19 write-protection works on anonymous memory only (vma_can_userfault)."""
        if not vma.maywrite:
            return Decision(
                "refuse",
                "no VM_MAYWRITE",
                "userfaultfd_register",
                "29ec90660d68",
                f"{vma.page} maps a file opened read-only (no VM_MAYWRITE): UFFDIO_REGISTER "
                "fails with -EPERM (29ec90660d68, CVE-2018-18397)",
            )
        if vma.file is not None:
            return Decision(
                "refuse",
                "uffd-wp is anonymous-only",
                "userfaultfd_register → vma_can_userfault",
                "",
                f"{vma.page} is file-backed: before 5.19 userfaultfd write-protection works "
                "on anonymous memory only, UFFDIO_REGISTER fails with -EINVAL",
            )
        return None

    # ------------------------------------------------------ PageAnonExclusive (5.19+ only)
    def exclusive_bit(self) -> Decision:
        """Whether a new or reused anonymous page is marked PG_anon_exclusive: not before 5.19."""
        return _NO_EXCLUSIVE_BIT

    def swapout_exclusive(self, frame: Frame) -> Decision:
        """Whether the swap PTE remembers the page was exclusive: not before 5.19."""
        return _NO_EXCLUSIVE_BIT

    def swapin_exclusive(self, pte: Pte, frame: Frame, fresh: bool) -> Decision:
        """Whether do_swap_page maps the page exclusive at once: not before 5.19."""
        return _NO_EXCLUSIVE_BIT

    # ------------------------------------------------------------------------- swap cache
    def free_swapcache_before_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """Before 5.18 do_wp_page does not free an unused swap cache before its test."""
        return _NOTHING

    def reuse_frees_swapcache(self, frame: Frame) -> Decision:
        """reuse_swap_page (c475a8ab625d) deletes a page it lets the writer keep from the swap
        cache; from 5.18 the swap cache was already dropped before the test."""
        return _REUSE_FREES_SWAPCACHE

    def swapin_write_frees_swapcache(self, frame: Frame, swapcount: int) -> Decision:
        """Before 5.18 do_swap_page leaves the swap cache to reuse_swap_page."""
        return _NOTHING

    # ---------------------------------------------------------------------- mm->has_pinned
    def pin_marks_mm(self) -> Decision:
        """Before 5.9 no mm remembers that it ever pinned a page."""
        return _NOTHING

    # ----------------------------------------------------------------------- clear_refs
    def clear_refs_skip(self, frame: Frame, vma: Vma) -> Decision | None:
        """Before 5.11 clear_refs write-protects pinned pages like any other."""
        return None

    # ---------------------------------------------------------------- write fault (do_wp_page)
    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page → reuse_swap_page(): reuse iff mapcount + swapcount ≤ 1 (c475a8ab625d).

        ``swapcount`` is the number of swap PTEs that still reference the page's swap slot when
        the page sits in the swap cache. Extra page references (GUP, pins, pipes) are not looked
        at: that blindness is CVE-2020-29374.
        """
        count = frame.mapcount + (swapcount if frame.swapcache else 0)
        inputs = counts(frame) | {"swapcount": swapcount}
        if count <= 1:
            return Decision(
                "reuse",
                "mapcount + swapcount ≤ 1",
                "do_wp_page → reuse_swap_page",
                "c475a8ab625d",
                f"only one page table maps the page (mapcount {frame.mapcount}, swap count "
                f"{swapcount if frame.swapcache else 0}), so the writer takes it over"
                + (
                    f"; the {others} other reference(s) are not counted"
                    if (others := frame.refcount - frame.mapcount)
                    else ""
                ),
                inputs,
            )
        return Decision(
            "copy",
            "mapcount + swapcount > 1",
            "do_wp_page → wp_page_copy",
            "c475a8ab625d",
            f"{count} page-table users share the page (mapcount {frame.mapcount}), so the writer "
            "gets a private copy",
            inputs,
        )

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_swap_page on a write fault: the classic reuse_swap_page() rule.

        The kernel counts before adding our mapping and before freeing our swap entry; the
        machine asks after both, which leaves mapcount + swapcount unchanged.
        """
        count = frame.mapcount + swapcount
        inputs = counts(frame) | {"swapcount": swapcount}
        if count <= 1:
            return Decision(
                "reuse",
                "mapcount + swapcount ≤ 1 at swap-in",
                "do_swap_page → reuse_swap_page",
                "c475a8ab625d",
                f"no other page table maps the page and only this swap entry refers to it "
                f"(mapcount {frame.mapcount}, swap count {swapcount}), so it is mapped writable "
                "at once; references held by pipes or GUP are not counted",
                inputs,
            )
        return Decision(
            "copy",
            "mapcount + swapcount > 1 at swap-in",
            "do_swap_page",
            "c475a8ab625d",
            f"other users still refer to the page (mapcount {frame.mapcount}, swap count "
            f"{swapcount}), so it is mapped read-only and the write takes the COW path",
            inputs,
        )

    # ------------------------------------------------------------------------------ GUP
    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        """Whether a read GUP must break COW first (only 5.8 and its proposals say yes).

        Outcome "fault" breaks it with a real write fault (uffd-wp notified, PTE made
        writable); "unshare" without calling it a write; "skip" records a caller's opt-out."""
        return None

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """Whether a R/O pin must first unshare the page (FAULT_FLAG_UNSHARE, 5.19+)."""
        return None

    # -------------------------------------------------------------- FOLL_FORCE (/proc/PID/mem)
    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """May a FOLL_FORCE write follow this read-only PTE, i.e. is there proof COW happened?

        4.9–5.19.5 (19be0eaffa3a): only if FOLL_COW is set (this GUP did the COW) and the PTE is
        dirty — a page-cache page mapped by a read fault is clean, so a racing MADV_DONTNEED
        just makes the next round COW again.
        """
        ok = cow_done and pte.dirty
        return Decision(
            "allow" if ok else "fault",
            "FOLL_COW and PTE dirty" if ok else "no FOLL_COW or clean PTE",
            "can_follow_write_pte",
            "19be0eaffa3a",
            "the PTE is dirty and this GUP made the COW copy itself, so the R/O PTE maps the "
            "private copy"
            if ok
            else "nothing proves the R/O PTE maps a private copy, so GUP takes a write fault "
            "to break COW and tries again",
            {"foll_cow": cow_done, "pte_dirty": pte.dirty},
        )

    def after_force_cow(self) -> Decision:
        """Whether GUP drops FOLL_WRITE once a FOLL_FORCE write broke COW: only ≤ 4.8."""
        return _NOTHING

    # ----------------------------------------------------------------------------- fork
    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_one_pte: before 5.9 fork knows nothing about pins: share and write-protect."""
        return Decision(
            "share",
            "fork shares every anon page",
            "copy_one_pte",
            "",
            "fork write-protects the page in parent and child and shares it (mapcount +1); "
            "pins are not looked at, so a pinned page can end up on the wrong side of a COW",
            counts(frame),
        )

    # -------------------------------------------------------------------------- mprotect
    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """Before 6.0 mprotect(PROT_WRITE) leaves PTEs R/O until the next write fault."""
        return Decision(
            "none",
            "no write upgrade",
            "change_pte_range",
            "",
            "this kernel never maps a page writable in mprotect; the next write takes a fault",
        )

    # --------------------------------------------------------------------------- swap-out
    def swapout_blocked(self, frame: Frame) -> Decision | None:
        """Before 5.11 a pinned page is unmapped and put in the swap cache like any other."""
        return None


def holders(frame: Frame) -> str:
    parts = [f"{frame.mapcount} mapping(s)"] if frame.mapcount else []
    if frame.pins:
        parts.append(f"{frame.pins} pin(s) × 1024")
    if frame.gets:
        parts.append(f"{frame.gets} GUP/pipe reference(s)")
    if frame.swapcache:
        parts.append("the swap cache")
    if frame.file is not None:
        parts.append("the page cache")
    return " + ".join(parts) if parts else "no holders"


_NOTHING = Decision("none", "", "", "", "")
_NO_EXCLUSIVE_BIT = _NOTHING
_GET_REFERENCE = Decision("allow", "take reference", "try_grab_page", "", "FOLL_GET: refcount +1")
_PIN_REFERENCE = Decision(
    "allow",
    "take reference",
    "try_grab_page",
    "3faa52c03f44",
    "FOLL_PIN: refcount + GUP_PIN_COUNTING_BIAS (1024)",
)
_MPROTECT_SHARED = Decision(
    "allow", "shared mapping", "change_pte_range", "", "a shared mapping has no COW to protect"
)
_FORK_SWAP = Decision("share", "copy swap entry", "copy_nonpresent_pte", "", "")
_FORK_SWAP_EXCLUSIVE = Decision(
    "share",
    "copy swap entry",
    "copy_nonpresent_pte",
    "1493a1913e34",
    "the parent's exclusive marker is cleared",
)
_REUSE_FREES_SWAPCACHE = Decision(
    "allow",
    "reuse_swap_page deletes from the swap cache",
    "reuse_swap_page → delete_from_swap_cache",
    "c475a8ab625d",
    "a page the writer keeps leaves the swap cache",
)
