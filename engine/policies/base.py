"""The policy base: the rules every era shares, and the dispatch of every knob-governed decision.

The mechanics every era shares (page tables, counters, mapping, freeing) live in
`engine.machine`, which asks the policy at every point where the kernel had to decide and gets a
`Decision` back; the machine itself holds no era fact, commit id or era wording.

A `Policy` is a point in the knob space (`engine.policies.knobs`): ``knobs`` names one choice
per knob, and each knob-governed decision is answered by that choice object, where the rule is
written once. An era module is its identity plus its knob setting; a custom point
(`engine.policies.custom`) is the same class with another setting. Rules every era shares (and
their commits) live here.

Every decision names the rule, the kernel function, the commit that introduced the behaviour, one
sentence of why and the counters it read, so the narration can show it. Facts and commit ids come
from `shared/kernel-cow-semantics.md`; where it is silent the docstring says which reading we
chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, TypeVar

from engine.policies.decision import (
    NOTHING,
    Decision,
    GupRequest,
    KernelVersion,
    Outcome,
    counts,
    holders,
)
from engine.policies.knobs import EXCLUSIVE_BIT, HAS_PINNED, Choice, needs_of, resolve
from engine.policies.knobs.fork_and_reclaim import ClearRefs, ForkPinned, SwapPinned
from engine.policies.knobs.gup import ForceWrite, GupRead, RoPin
from engine.policies.knobs.huge import HugetlbDontneed, ThpCow
from engine.policies.knobs.protection import MprotectUffdWp, MprotectUpgrade, UffdWpFile
from engine.policies.knobs.write_fault import SwapinReuse, SwapinZram, WpReuse
from engine.state import Frame, Pte, Vma

__all__ = ["Decision", "GupRequest", "KernelVersion", "Outcome", "Policy", "counts", "holders"]

C = TypeVar("C", bound=Choice)

# The classic (4.9 – 5.7) answer to every knob: what `Policy` itself decides.
CLASSIC: Mapping[str, str] = {
    "wp_reuse": "mapcount",
    "gup_read": "none",
    "ro_pin": "never",
    "fork_pinned": "share",
    "force_write": "foll-cow-dirty",
    "swapin_reuse": "mapcount",
    "swapin_zram": "skip-cache",
    "swap_pinned": "allow",
    "mprotect_upgrade": "never",
    "mprotect_uffd_wp": "drop",
    "clear_refs": "write-protect-all",
    "uffd_wp_file": "anon-only",
    "thp_cow": "copy-huge",
    "hugetlb_dontneed": "einval",
}


class Policy:
    """The shared rules, and the knob setting every era-specific decision is read from.

    An era module subclasses `Policy` (or the era it changed), declares its identity, the
    mainline kernel versions it covers (``since``/``until``, inclusive; ``until`` None means
    today) and the knobs its commits changed.
    """

    id: ClassVar[str]
    label: ClassVar[str]
    kernels: ClassVar[str]  # the versions as the pages show them
    commits: ClassVar[tuple[str, ...]]
    story: ClassVar[str]
    merged: ClassVar[bool] = True  # False for a proposal that never reached mainline
    since: ClassVar[KernelVersion] = (0, 0)
    until: ClassVar[KernelVersion | None] = None
    # One choice id per knob; an era overrides the knobs its commits changed.
    knobs: ClassVar[Mapping[str, str]] = CLASSIC

    def __init__(self) -> None:
        # Resolved once per instance (eras are singletons), refused combinations raise here.
        self.chosen: Mapping[str, Choice] = resolve(self.knobs)
        self.keeps: frozenset[str] = needs_of(self.chosen)
        # Whether anonymous pages carry PG_anon_exclusive (the picture shows the bit when they
        # do); the machine asks `exclusive_bit()` instead.
        self.has_exclusive_bit: bool = EXCLUSIVE_BIT in self.keeps
        # The sweep sets an empty dict here to learn which knobs (and which kept state,
        # "state:NAME") a replay read, in the order it first read them.
        self.consulted: dict[str, None] | None = None

    def _choice(self, knob: str, kind: type[C]) -> C:
        if self.consulted is not None:
            self.consulted.setdefault(knob)
        choice = self.chosen[knob]
        assert isinstance(choice, kind)
        return choice

    def _keeps(self, state: str) -> bool:
        if self.consulted is not None:
            self.consulted.setdefault(f"state:{state}")
        return state in self.keeps

    def covers(self, version: KernelVersion) -> bool:
        """Whether this era is what a mainline kernel of ``version`` does (proposals: never)."""
        if not self.merged:
            return False
        return self.since <= version and (self.until is None or version <= self.until)

    # ------------------------------------------------------------- shared rules, every era
    def gup_reference(self, pin: bool, large: bool = False) -> Decision:
        """try_grab_page: FOLL_GET adds 1 to the refcount, FOLL_PIN adds GUP_PIN_COUNTING_BIAS
        (1024) on a small page and 1 plus an exact _pincount on a large folio (3faa52c03f44,
        5.7; older pins counted as gets, the same)."""
        if pin and large:
            return _PIN_REFERENCE_LARGE
        return _PIN_REFERENCE if pin else _GET_REFERENCE

    def hugetlb_wp_reuse(self, frame: Frame) -> Decision:
        """hugetlb_cow (hugetlb_wp since 5.19), every era: reuse iff the page is anonymous and
        mapped once (page_mapcount == 1). hugetlb never moved to page_count: hugetlb_fault
        holds a reference of its own, and a needless COW of a scarce huge page may fail for
        want of a free one (kernel-cow-semantics.md §2.5 (f)). GUP references and pins are not
        counted, so the CVE-2020-29374 vmsplice leak stays open on hugetlb to this day (the
        selftest marks it XFAIL). Where the era keeps PG_anon_exclusive the reuse sets it
        (page_move_anon_rmap, 6c287605fd56)."""
        inputs = counts(frame)
        mapped = frame.subpage_mapcount(0)
        if mapped == 1:
            others = frame.gets + frame.pins
            return Decision(
                "reuse",
                "hugetlb: mapcount == 1",
                "hugetlb_wp",
                "",
                "only this process maps the hugetlb page (mapcount 1), so it keeps it"
                + (f"; the {others} GUP/pin/pipe reference(s) are not counted" if others else ""),
                inputs,
            )
        return Decision(
            "copy",
            "hugetlb: mapcount > 1",
            "hugetlb_wp → copy_user_huge_page",
            "",
            f"{mapped} processes map the hugetlb page, so the writer gets a new hugetlb page "
            "with a copy of all 2 MiB",
            inputs,
        )

    def hugetlb_mprotect_upgrade(self) -> Decision:
        """hugetlb_change_protection, every era: mprotect(PROT_WRITE) never maps a private
        hugetlb page writable; only change_pte_range (64fe24a3e05e) and change_huge_pmd
        (c27f479ef542) learned to, so the next write takes a fault."""
        return _HUGETLB_NO_UPGRADE

    def hugetlb_pageout(self) -> Decision:
        """madvise_pageout → can_madv_lru_vma: MADV_PAGEOUT refuses VM_HUGETLB (and VM_LOCKED,
        VM_PFNMAP) VMAs with -EINVAL in every kernel that has it (5.4, 1a4e58cce84e): hugetlb
        pages are never swapped."""
        return _HUGETLB_PAGEOUT

    def huge_zero_pageout(self) -> Decision:
        """madvise_cold_or_pageout_pte_range skips a PMD mapping the huge zero page
        (is_huge_zero_pmd) in every kernel with MADV_COLD / MADV_PAGEOUT (9c276cc65a58)."""
        return _HUGE_ZERO_PAGEOUT

    def thp_pageout_unsplittable(self, frame: Frame) -> Decision | None:
        """shrink_folio_list adds a large folio to the swap cache only if it could be split
        later: can_split_folio() (can_split_huge_page, bd4c82c22c36, 4.14) wants no reference
        beyond the mappings, the swap cache's and the isolation's. A GUP reference, a pin or a
        pipe buffer keeps a PMD-mapped THP resident (activate_locked) in every era; a pin may
        already have been refused earlier (the ``swap_pinned`` knob)."""
        held = frame.gets + frame.pins
        if not held:
            return None
        return Decision(
            "refuse",
            "keep a THP it cannot split",
            "shrink_folio_list → can_split_folio",
            "bd4c82c22c36",
            f"{held} GUP reference(s), pin(s) or pipe buffer(s) hold the huge page, so it could "
            "not be split and reclaim puts it back on the LRU, still mapped",
            {"gets": frame.gets, "pins": frame.pins},
        )

    def uffd_wp_marker(self, vma: Vma) -> Decision:
        """UFFDIO_WRITEPROTECT on an empty PTE slot of memory that takes markers: shmem and
        file memory (change_pte_range) and hugetlb — hugetlb_change_protection
        puts the marker in the none huge PTE (60dfaad65aa9, "mm/hugetlb: allow uffd wr-protect
        none ptes"). Mainline 5.19 – 6.1 skipped it when no page table covered the address
        yet, until fed15f1345dc (6.2, "mm/hugetlb: pre-allocate pgtable pages for uffd
        wr-protects", also in 5.19+ stable) allocated one; cowlab has no page-table pages, so
        every era that registers hugetlb for uffd-wp installs it. Only reached once
        `uffd_wp_register` allowed the VMA (the ``uffd_wp_file`` knob)."""
        return _UFFD_WP_MARKER_HUGETLB if vma.backing == "hugetlb" else _UFFD_WP_MARKER_FILE

    def hugetlb_marker_fault(self) -> Decision:
        """hugetlb_no_page on a uffd-wp marker maps the new page uffd-wp protected
        (c64e912c865a, "mm/hugetlb: handle pte markers in page faults"), so a read does not
        lift the protection and the next write is still a userfault."""
        return _HUGETLB_MARKER_FAULT

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

    def uffd_wp_swap_entry(self, on: bool) -> Decision:
        """UFFDIO_WRITEPROTECT on a swapped-out page: change_pte_range sets or clears the uffd-wp
        bit of the swap entry (f45ec5ff16a7, "userfaultfd: wp: support swap and page
        migration", 5.7: uffd-wp was merged with it, so every kernel that has uffd-wp has the
        swap bit; cowlab lets the ≤ 4.8 era arm uffd-wp as well and gives it the same rule)."""
        return _UFFD_WP_SWAP_ON if on else _UFFD_WP_SWAP_OFF

    def swapin_uffd_wp(self) -> Decision:
        """do_swap_page on a swap entry with the uffd-wp bit: the new PTE gets pte_mkuffd_wp and
        pte_wrprotect, so even a write fault that could reuse the page maps it read-only and the
        write reaches the monitor (f45ec5ff16a7; later kernels test userfaultfd_pte_wp before
        pte_mkwrite, the same outcome)."""
        return _SWAPIN_UFFD_WP

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
        whether a file-backed VMA may be write-protected is the ``uffd_wp_file`` knob."""
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
            return self._choice("uffd_wp_file", UffdWpFile).uffd_wp_register_file(vma)
        if vma.backing == "hugetlb":
            return self._choice("uffd_wp_file", UffdWpFile).uffd_wp_register_hugetlb(vma)
        return None

    # ------------------------------------------- state a choice brings (PageAnonExclusive)
    def exclusive_bit(self) -> Decision:
        """Whether a new or reused anonymous page is marked PG_anon_exclusive (6c287605fd56):
        only where some choice reads the bit."""
        return _EXCLUSIVE_BIT if self._keeps(EXCLUSIVE_BIT) else NOTHING

    def swapout_exclusive(self, frame: Frame) -> Decision:
        """try_to_unmap_one (1493a1913e34): the swap PTE keeps the exclusive marker."""
        if frame.anon_exclusive and self._keeps(EXCLUSIVE_BIT):
            return _SWAP_EXCLUSIVE
        return NOTHING

    def swapin_exclusive(self, pte: Pte, frame: Frame, fresh: bool) -> Decision:
        """do_swap_page (1493a1913e34): the swap PTE's exclusive marker survives swap-out."""
        if pte.swap_exclusive and self._keeps(EXCLUSIVE_BIT):
            return _SWAP_EXCLUSIVE
        return NOTHING

    def swapin_skipped_cache_exclusive(self) -> Decision:
        """do_swap_page (1493a1913e34): a fresh page that skipped the swap cache cannot be
        shared with anyone, so it is mapped exclusive, whatever the swap PTE said; only where
        some choice reads the bit (before 5.19 there was none to set)."""
        return _SKIPPED_CACHE_EXCLUSIVE if self._keeps(EXCLUSIVE_BIT) else NOTHING

    def pin_marks_mm(self) -> Decision:
        """The first FOLL_PIN sets mm->has_pinned (008cfe4418b3), where a fork rule reads it."""
        return _HAS_PINNED if self._keeps(HAS_PINNED) else NOTHING

    # ------------------------------------------------------- knob: wp_reuse (do_wp_page)
    def free_swapcache_before_reuse(self, frame: Frame, swapcount: int) -> Decision:
        return self._choice("wp_reuse", WpReuse).free_swapcache_before_reuse(frame, swapcount)

    def reuse_frees_swapcache(self, frame: Frame) -> Decision:
        return self._choice("wp_reuse", WpReuse).reuse_frees_swapcache(frame)

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        return self._choice("wp_reuse", WpReuse).wp_reuse(frame, swapcount)

    # ----------------------------------- huge pages: wp_reuse on folios, thp_cow, hugetlb
    def thp_wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_huge_pmd_wp_page: "reuse", or else what ``thp_cow`` says ("copy" or "split")."""
        decision = self._choice("wp_reuse", WpReuse).thp_wp_reuse(frame, swapcount)
        if decision.outcome == "reuse":
            return decision
        fallback = self._choice("thp_cow", ThpCow).thp_cow(frame, decision.why, decision.inputs)
        return Decision(
            fallback.outcome,
            f"{decision.rule}: {fallback.rule}",
            fallback.kernel,
            fallback.commit or decision.commit,
            fallback.why,
            fallback.inputs,
        )

    def huge_zero_wp(self) -> Decision:
        return self._choice("thp_cow", ThpCow).huge_zero_wp()

    def pte_thp_reuse(self, frame: Frame, swapcount: int, mms: int) -> Decision:
        return self._choice("wp_reuse", WpReuse).pte_thp_reuse(frame, swapcount, mms)

    def hugetlb_dontneed(self) -> Decision:
        return self._choice("hugetlb_dontneed", HugetlbDontneed).hugetlb_dontneed()

    # ----------------------------------------------------- knob: swapin_reuse (do_swap_page)
    def swapin_write_frees_swapcache(self, frame: Frame, swapcount: int) -> Decision:
        return self._choice("swapin_reuse", SwapinReuse).swapin_write_frees_swapcache(
            frame, swapcount
        )

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        return self._choice("swapin_reuse", SwapinReuse).swapin_write_reuse(frame, swapcount)

    # ------------------------------------------------------ knob: swapin_zram (do_swap_page)
    def swapin_skips_swapcache(self, device: str, swapcount: int) -> Decision:
        """Only a swap-in from a synchronous device (zram) whose entry only this PTE uses
        (__swap_count == 1) may skip the swap cache; a swap file or partition always goes
        through it, in every era, so the knob is asked only for the first kind."""
        if device != "zram" or swapcount != 1:
            return NOTHING
        return self._choice("swapin_zram", SwapinZram).swapin_skips_swapcache(device, swapcount)

    # ------------------------------------------------------------- knobs: gup_read, ro_pin
    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        return self._choice("gup_read", GupRead).gup_breaks_cow(req, vma)

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        return self._choice("ro_pin", RoPin).gup_must_unshare(req, frame, vma)

    # ------------------------------------------------- knob: force_write (/proc/PID/mem)
    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        return self._choice("force_write", ForceWrite).force_write_proof(pte, frame, vma, cow_done)

    def after_force_cow(self) -> Decision:
        return self._choice("force_write", ForceWrite).after_force_cow()

    # ------------------------------------------------ knobs: fork_pinned, swap_pinned, ...
    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        return self._choice("fork_pinned", ForkPinned).fork_anon_pte(frame, parent_has_pinned)

    def fork_pagecache_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        return self._choice("fork_pinned", ForkPinned).fork_pagecache_pte(frame, parent_has_pinned)

    def fork_huge_pmd(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        return self._choice("fork_pinned", ForkPinned).fork_huge_pmd(frame, parent_has_pinned)

    def fork_hugetlb(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        return self._choice("fork_pinned", ForkPinned).fork_hugetlb(frame, parent_has_pinned)

    def swapout_blocked(self, frame: Frame) -> Decision | None:
        return self._choice("swap_pinned", SwapPinned).swapout_blocked(frame)

    def clear_refs_skip(self, frame: Frame, vma: Vma) -> Decision | None:
        return self._choice("clear_refs", ClearRefs).clear_refs_skip(frame, vma)

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        return self._choice("mprotect_upgrade", MprotectUpgrade).mprotect_makes_writable(
            pte, frame, vma
        )

    def mprotect_makes_pmd_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        return self._choice("mprotect_upgrade", MprotectUpgrade).mprotect_makes_pmd_writable(
            pte, frame, vma
        )

    def mprotect_shared_uffd_wp(self, pte: Pte) -> Decision:
        return self._choice("mprotect_uffd_wp", MprotectUffdWp).mprotect_shared_uffd_wp(pte)


_GET_REFERENCE = Decision("allow", "take reference", "try_grab_page", "", "FOLL_GET: refcount +1")
_PIN_REFERENCE = Decision(
    "allow",
    "take reference",
    "try_grab_page",
    "3faa52c03f44",
    "FOLL_PIN: refcount + GUP_PIN_COUNTING_BIAS (1024)",
)
_PIN_REFERENCE_LARGE = Decision(
    "allow",
    "take reference",
    "try_grab_folio",
    "3faa52c03f44",
    "FOLL_PIN on a large folio: refcount +1 and the exact _pincount +1 (no 1024 bias)",
)
_HUGETLB_NO_UPGRADE = Decision(
    "none",
    "no write upgrade for hugetlb",
    "hugetlb_change_protection",
    "",
    "mprotect never maps a private hugetlb page writable: the next write takes a fault",
)
_HUGETLB_PAGEOUT = Decision(
    "refuse",
    "MADV_PAGEOUT refuses VM_HUGETLB",
    "madvise_pageout → can_madv_lru_vma",
    "1a4e58cce84e",
    "hugetlb pages cannot be paged out: madvise(MADV_PAGEOUT) on a VM_HUGETLB mapping fails "
    "with -EINVAL",
)
_HUGE_ZERO_PAGEOUT = Decision(
    "none",
    "skip the huge zero page",
    "madvise_cold_or_pageout_pte_range → is_huge_zero_pmd",
    "9c276cc65a58",
    "the PMD maps the huge zero page, which MADV_PAGEOUT never reclaims",
)
_UFFD_WP_MARKER_HUGETLB = Decision(
    "allow",
    "uffd-wp marker in a none huge PTE",
    "userfaultfd_writeprotect → hugetlb_change_protection",
    "60dfaad65aa9",
    "hugetlb is handled like a file: the empty huge PTE gets a uffd-wp PTE marker",
)
_UFFD_WP_MARKER_FILE = Decision(
    "allow",
    "uffd-wp marker in a none PTE",
    "userfaultfd_writeprotect → uffd_wp_range",
    "",
    "file memory: the empty PTE gets a uffd-wp PTE marker",
)
_HUGETLB_MARKER_FAULT = Decision(
    "allow",
    "a marker's protection survives the fault",
    "hugetlb_no_page",
    "c64e912c865a",
    "the new hugetlb page is mapped uffd-wp protected, as the marker it replaces was",
)
_MPROTECT_SHARED = Decision(
    "allow", "shared mapping", "change_pte_range", "", "a shared mapping has no COW to protect"
)
_UFFD_WP_SWAP_ON = Decision(
    "allow",
    "uffd-wp bit in the swap entry",
    "change_pte_range → pte_swp_mkuffd_wp",
    "f45ec5ff16a7",
    "the page is swapped out, so the protection is kept in its swap entry",
)
_UFFD_WP_SWAP_OFF = Decision(
    "allow",
    "uffd-wp bit in the swap entry",
    "change_pte_range → pte_swp_clear_uffd_wp",
    "f45ec5ff16a7",
    "the page is swapped out, so the protection is cleared from its swap entry",
)
_SWAPIN_UFFD_WP = Decision(
    "allow",
    "swap entry's uffd-wp bit carried over",
    "do_swap_page → pte_mkuffd_wp, pte_wrprotect",
    "f45ec5ff16a7",
    "the swap entry carried the userfaultfd write-protection, so the page is mapped "
    "write-protected and the write goes to the monitor first",
)
_FORK_SWAP = Decision("share", "copy swap entry", "copy_nonpresent_pte", "", "")
_FORK_SWAP_EXCLUSIVE = Decision(
    "share",
    "copy swap entry",
    "copy_nonpresent_pte",
    "1493a1913e34",
    "the parent's exclusive marker is cleared",
)
_EXCLUSIVE_BIT = Decision(
    "allow",
    "PageAnonExclusive",
    "__page_set_anon_rmap",
    "6c287605fd56",
    "the page is marked exclusive to the process that maps it",
)
_SKIPPED_CACHE_EXCLUSIVE = Decision(
    "allow",
    "fresh page, never in the swap cache",
    "do_swap_page",
    "1493a1913e34",
    "nobody else can hold a page that never entered the swap cache",
)
_SWAP_EXCLUSIVE = Decision(
    "allow",
    "exclusive swap entry",
    "do_swap_page",
    "1493a1913e34",
    "the swap PTE remembers that the page was exclusive",
)
_HAS_PINNED = Decision(
    "allow",
    "mm->has_pinned",
    "try_grab_page",
    "008cfe4418b3",
    "the mm remembers that it pinned a page, so fork checks its pages for pins",
)
