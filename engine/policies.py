"""Kernel policy eras: every decision that differs between eras, and nothing else.

Each era is one class; a later era inherits from the one it changed and overrides only the
decisions that commit changed, so reading a class tells exactly what that kernel did
differently. The mechanics every era shares (page tables, counters, mapping, freeing) live in
`engine.machine` and ask the policy whenever the kernel had to decide.

Every decision returns a `Decision` naming the kernel function, the commit that introduced the
behaviour and one sentence of why, so the narration can show it. Facts and commit ids come from
`shared/kernel-cow-semantics.md`; where it is silent the docstring says which reading we chose.
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


class UnknownPolicy(ValueError):
    """Raised for a policy id that is not one of `POLICIES` (nor the alias `latest`)."""


@dataclass(frozen=True, slots=True)
class GupRequest:
    """The FOLL_* flags of one get_user_pages call, as the policy sees them."""

    pin: bool  # FOLL_PIN (else FOLL_GET)
    write: bool  # FOLL_WRITE
    longterm: bool = False  # FOLL_LONGTERM
    fast: bool = False  # pin_user_pages_fast / get_user_pages_fast
    force: bool = False  # FOLL_FORCE (/proc/PID/mem)
    wrong_side_ok: bool = False  # the seed's READ_WRONG_SIDE_COW_OK opt-out


def _counts(frame: Frame) -> dict[str, int | bool | str]:
    return {
        "refcount": frame.refcount,
        "mapcount": frame.mapcount,
        "pins": frame.pins,
        "gets": frame.gets,
        "swapcache": frame.swapcache,
        "anon_exclusive": frame.anon_exclusive,
    }


class Policy:
    """E0 as of 4.9–5.7: the classic mapcount rule. Subclasses override what their era changed."""

    id: ClassVar[str] = "5.7"
    label: ClassVar[str] = "Classic mapcount rule"
    kernels: ClassVar[str] = "4.9 – 5.7"
    commits: ClassVar[tuple[str, ...]] = ("c475a8ab625d", "19be0eaffa3a", "3faa52c03f44")
    merged: ClassVar[bool] = True
    story: ClassVar[str] = (
        "A write fault on a write-protected anonymous page reuses it when no other page table "
        "maps it (mapcount plus swap count at most 1) and copies it otherwise. Extra references "
        "taken by get_user_pages, pins and pipe buffers are not counted, so a page a pipe still "
        "holds can be taken over by the other side of a fork: CVE-2020-29374. Read-GUP never "
        "breaks COW, fork knows nothing about pins, and a R/O pin may silently go stale."
    )
    has_exclusive_bit: ClassVar[bool] = False
    tracks_has_pinned: ClassVar[bool] = False
    # Pinned pages are kept out of the swap cache and clear_refs skips them (5.11: feb889fb40fa
    # and "mm: don't play games with pinned pages in clear_page_refs").
    protects_pinned_from_writeprotect: ClassVar[bool] = False
    # 5.18 (53a05ad9f21d, c145e0b47c77): before the refcount test, a swap-cache page whose
    # slot no swap PTE uses any more leaves the swap cache, so its reference does not count.
    drops_unused_swapcache: ClassVar[bool] = False
    # userfaultfd write-protection of shmem/memfd (PTE markers) arrived in 5.19 with Peter Xu's
    # "userfaultfd-wp: Support shmem and hugetlbfs" series; before, uffd-wp was anonymous-only.
    uffd_wp_file: ClassVar[bool] = False

    # ---------------------------------------------------------------- write fault (do_wp_page)
    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page → reuse_swap_page(): reuse iff mapcount + swapcount ≤ 1 (c475a8ab625d).

        ``swapcount`` is the number of swap PTEs that still reference the page's swap slot when
        the page sits in the swap cache. Extra page references (GUP, pins, pipes) are not looked
        at: that blindness is CVE-2020-29374.
        """
        count = frame.mapcount + (swapcount if frame.swapcache else 0)
        inputs = _counts(frame) | {"swapcount": swapcount}
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
        inputs = _counts(frame) | {"swapcount": swapcount}
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
        """Whether a read GUP must break COW first (only 5.8 and its proposals say yes)."""
        return None

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """Whether a R/O pin must first unshare the page (FAULT_FLAG_UNSHARE, 5.19+)."""
        return None

    def read_gup_cow_fault_is_write(self) -> bool:
        """Whether a GUP-forced COW break is a real write fault (uffd-wp notified, PTE made
        writable). True in 5.8 as merged; Peter Xu's FAULT_FLAG_BREAK_COW says no."""
        return True

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

    def force_write_drops_foll_write(self) -> bool:
        """Pre-4.9: after the COW fault GUP dropped FOLL_WRITE and retried as a read (Dirty COW)."""
        return False

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
            _counts(frame),
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

    def swapin_exclusive(self, pte: Pte, frame: Frame, fresh: bool) -> bool:
        return False


class DirtyCow48(Policy):
    """≤ 4.8: the classic rule, and FOLL_FORCE drops FOLL_WRITE after a COW (CVE-2016-5195)."""

    id = "4.8"
    label = "Dirty COW era"
    kernels = "≤ 4.8"
    commits: ClassVar[tuple[str, ...]] = ("f33ea7f404e5", "c475a8ab625d")
    story = (
        "The classic mapcount rule, plus the bug fixed in October 2016: when a FOLL_FORCE write "
        "(ptrace, /proc/PID/mem) to a read-only private mapping had broken COW, get_user_pages "
        "dropped FOLL_WRITE and retried as a read. A concurrent MADV_DONTNEED can zap the private "
        "copy in between, so the retry maps the page-cache page and the write lands in a file the "
        "writer may only read: Dirty COW (CVE-2016-5195), exploited in the wild."
    )

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """f33ea7f404e5 (2005) – 19be0eaffa3a (2016): once faultin_page saw VM_FAULT_WRITE on a
        !VM_WRITE VMA it cleared FOLL_WRITE, so the retry follows whatever the PTE maps."""
        if cow_done:
            return Decision(
                "allow",
                "FOLL_WRITE dropped after COW",
                "faultin_page",
                "f33ea7f404e5",
                "the COW fault happened once, so get_user_pages dropped FOLL_WRITE and now "
                "follows the PTE as a read, whatever page it maps",
                {"foll_write_dropped": True},
            )
        return Decision(
            "fault",
            "write fault first",
            "faultin_page",
            "f33ea7f404e5",
            "the PTE is read-only, so GUP takes a write fault to break COW",
            {"foll_write_dropped": False},
        )

    def force_write_drops_foll_write(self) -> bool:
        return True


class EnforcedCow58(Policy):
    """5.8: any GUP that takes a reference on a COW mapping breaks COW as if it wrote."""

    id = "5.8"
    label = "GUP always breaks COW"
    kernels = "5.8 (and stable backports)"
    commits: ClassVar[tuple[str, ...]] = ("17839856fd58",)
    story = (
        "Jann Horn's CVE-2020-29374 report led Linus to 'gup: document and work around \"COW can "
        "break either way\" issue': every get_user_pages that takes a reference (FOLL_GET or "
        "FOLL_PIN) on a COW mapping is turned into a write, so the caller owns a private copy at "
        "GUP time. It closed the vmsplice leak, but a read now looks like a write: a "
        "userfaultfd write-protected page raises a userfault on a mere read (Peter Xu's umap "
        "deadlock), and later COW events can still go the wrong way."
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        """should_force_cow_break(): COW mapping and FOLL_GET|FOLL_PIN ⇒ OR in FOLL_WRITE."""
        if req.write or not vma.is_cow_mapping:
            return None
        return Decision(
            "fault",
            "should_force_cow_break",
            "should_force_cow_break → faultin_page(FOLL_WRITE)",
            "17839856fd58",
            "a reference-taking GUP on a COW mapping is treated as a write, so COW is broken "
            "now and the caller cannot end up on the wrong side of it later",
            {"cow_mapping": vma.is_cow_mapping, "foll_pin": req.pin},
        )


class BreakCowProposal(EnforcedCow58):
    """Peter Xu, Aug 2020 (never merged): FAULT_FLAG_BREAK_COW breaks COW for a read GUP
    without calling it a write: no userfault, uffd-wp bit kept, the copy stays write-protected.
    """

    id = "5.8-break-cow"
    label = "Proposal: FAULT_FLAG_BREAK_COW"
    kernels = "proposal (Aug 2020), never merged"
    commits: ClassVar[tuple[str, ...]] = ("17839856fd58",)
    merged = False
    story = (
        "Peter Xu's '[PATCH v2] mm/gup: Allow real explicit breaking of COW' (10 Aug 2020) kept "
        "5.8's COW break for read GUPs but marked it FAULT_FLAG_BREAK_COW instead of a write: no "
        "userfaultfd write-protect notification for a read, the uffd-wp bit carried over to the "
        "copy and the PTE left write-protected. Linus liked the idea but wanted the flag "
        "inverted and asked why a silent COW was right for uffd-wp; it was never merged."
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        decision = super().gup_breaks_cow(req, vma)
        if decision is None:
            return None
        return Decision(
            "fault",
            "FOLL_BREAK_COW",
            "should_force_cow_break → faultin_page(FAULT_FLAG_BREAK_COW)",
            "20200810145701.129228-1-peterx@redhat.com",
            "the GUP breaks COW for a read with FAULT_FLAG_BREAK_COW: a copy if shared, but not "
            "a write, so no userfault is raised and a write-protected PTE stays write-protected",
            decision.inputs,
        )

    def read_gup_cow_fault_is_write(self) -> bool:
        return False


class WrongSideOkProposal(EnforcedCow58):
    """Linus' inversion (10 Aug 2020, never merged): breaking COW stays the default and callers
    that can live with the wrong side opt out with READ_WRONG_SIDE_COW_OK."""

    id = "5.8-wrong-side-ok"
    label = "Proposal: READ_WRONG_SIDE_COW_OK"
    kernels = "proposal (Aug 2020), never merged"
    commits: ClassVar[tuple[str, ...]] = ("17839856fd58",)
    merged = False
    story = (
        "Linus' answer to Peter Xu (CAHk-=wiSF+aKhDOewxQGCGUPyGnA=K7OtAczL5M7aisA5mgFzg): keep "
        "breaking COW as the safe default and make the special case the one that must be "
        "justified — a caller that can tolerate getting 'the wrong side' of a COW says so with "
        "FOLL_READ_WRONG_SIDE_COW_OK, and only that caller skips the COW break. In cowlab, "
        "`wrong-side-ok` on a get or pin is that flag; the flag says *why* the COW is skipped."
    )

    def gup_breaks_cow(self, req: GupRequest, vma: Vma) -> Decision | None:
        decision = super().gup_breaks_cow(req, vma)
        if decision is None or not req.wrong_side_ok:
            return decision
        return Decision(
            "skip",
            "READ_WRONG_SIDE_COW_OK",
            "should_force_cow_break",
            "CAHk-=wiSF+aKhDOewxQGCGUPyGnA=K7OtAczL5M7aisA5mgFzg",
            "the caller passed READ_WRONG_SIDE_COW_OK: it accepts seeing the wrong side of a "
            "later COW, so no COW is broken for this read",
            dict(decision.inputs) | {"wrong_side_ok": True},
        )


class PageCount59(Policy):
    """5.9 – 5.17: reuse only if page_count == 1; fork copies pinned pages for the child."""

    id = "5.9"
    label = "page_count reuse"
    kernels = "5.9 – 5.17"
    commits: ClassVar[tuple[str, ...]] = (
        "09854ba94c6a",
        "a308c71bf1e6",
        "70e806e4e645",
        "008cfe4418b3",
        "feb889fb40fa",
    )
    story = (
        "Linus' 'mm: do_wp_page() simplification' (09854ba94c6a): reuse a page only if nobody "
        "else holds any reference (page_count == 1) — copying is always safe. The forced COW of "
        "5.8 was removed (a308c71bf1e6), and after the RDMA regression fork copies a pinned page "
        "for the child at once (70e806e4e645). The price: a process that pinned or vmspliced its "
        "own page copies away from it on its next write, so R/O pins go stale; swap-in still "
        "uses the old mapcount rule. Modelled with 5.11's changes: pinned pages stay out of the "
        "swap cache and clear_refs leaves them alone."
    )
    tracks_has_pinned = True
    protects_pinned_from_writeprotect = True

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (09854ba94c6a): refcount != 1 ⇒ copy; under the page lock mapcount and
        refcount must both be 1. The swap cache's own reference counts, so a page still in the
        swap cache is copied needlessly."""
        inputs = _counts(frame) | {"swapcount": swapcount}
        if frame.refcount == 1 and frame.mapcount == 1:
            return Decision(
                "reuse",
                "page_count == 1",
                "do_wp_page",
                "09854ba94c6a",
                "the faulting page table holds the only reference to the page, so nobody can "
                "see a write to it: reuse",
                inputs,
            )
        return Decision(
            "copy",
            "page_count != 1",
            "do_wp_page → wp_page_copy",
            "09854ba94c6a",
            f"page_count is {frame.refcount}, not 1 ({_holders(frame)}), so the writer "
            "cannot prove it is the only user and copies",
            inputs,
        )

    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_present_pte → copy_present_page (70e806e4e645): a page that may be DMA-pinned in
        an mm that ever pinned is copied for the child at once; the parent keeps its page."""
        inputs = _counts(frame) | {"has_pinned": parent_has_pinned}
        if parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "page_maybe_dma_pinned at fork",
                "copy_present_pte → copy_present_page",
                "70e806e4e645",
                "the parent has pinned this page (refcount ≥ 1024), so the child gets its own "
                "copy now and the parent keeps the pinned page writable",
                inputs,
            )
        return Decision(
            "share",
            "fork shares unpinned anon page",
            "copy_present_pte",
            "70e806e4e645",
            "the page is not pinned, so fork write-protects it in both and shares it",
            inputs,
        )

    def swapout_blocked(self, frame: Frame) -> Decision | None:
        if not frame.maybe_dma_pinned:
            return None
        return Decision(
            "refuse",
            "pinned pages stay out of the swap cache",
            "shrink_page_list",
            "feb889fb40fa",
            "the page may be DMA-pinned, so reclaim leaves it mapped instead of putting it in "
            "the swap cache",
            _counts(frame),
        )


class PageCount518(PageCount59):
    """5.18: COW fixes part 1 — the page_count rule on swap-in and THP too."""

    id = "5.18"
    label = "page_count everywhere"
    kernels = "5.18"
    commits: ClassVar[tuple[str, ...]] = (
        "c145e0b47c77",
        "3bff7e3f1f16",
        "53a05ad9f21d",
        "d4c470970d45",
        "03104c2c5db8",
    )
    story = (
        "David Hildenbrand's COW fixes part 1 close the swap and THP variants of CVE-2020-29374: "
        "do_swap_page and the huge-PMD write fault use the same page_count rule as do_wp_page, "
        "and reuse_swap_page() is gone. Before the count is checked the swap cache's reference "
        "is dropped when no swap entry needs it any more, so a swapped-in page is not copied "
        "needlessly. Pins still make their owner copy away from them (wrong COW)."
    )
    drops_unused_swapcache = True

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (53a05ad9f21d): a page in the swap cache whose slot no swap PTE uses any
        more is removed from the swap cache first, then refcount == 1 decides. The machine
        drops that swap-cache reference before asking; here we only read the counters."""
        decision = super().wp_reuse(frame, swapcount)
        return Decision(
            decision.outcome,
            decision.rule,
            decision.kernel,
            "53a05ad9f21d" if decision.outcome == "reuse" else "09854ba94c6a",
            decision.why,
            decision.inputs,
        )

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_swap_page (c145e0b47c77): after freeing our swap entry (and the swap cache when no
        entry is left), map writable only if we hold the only reference."""
        inputs = _counts(frame) | {"swapcount": swapcount}
        if frame.refcount == 1 and frame.mapcount == 1:
            return Decision(
                "reuse",
                "page_count == 1 at swap-in",
                "do_swap_page",
                "c145e0b47c77",
                "after the swap entry and the swap cache let go, this mapping is the page's only "
                "reference, so it is mapped writable at once",
                inputs,
            )
        return Decision(
            "copy",
            "page_count != 1 at swap-in",
            "do_swap_page",
            "c145e0b47c77",
            f"page_count is {frame.refcount} ({_holders(frame)}), so the page is mapped "
            "read-only and the write takes the COW path",
            inputs,
        )


class Exclusive519(PageCount518):
    """5.19 – 6.1: PageAnonExclusive, and FAULT_FLAG_UNSHARE for R/O pins."""

    id = "5.19"
    label = "PageAnonExclusive + FAULT_FLAG_UNSHARE"
    kernels = "5.19 – 6.1"
    commits: ClassVar[tuple[str, ...]] = (
        "6c287605fd56",
        "78fbe906cc90",
        "c89357e27f20",
        "a7f226604170",
        "1493a1913e34",
        "5535be309971",
        "64fe24a3e05e",
    )
    story = (
        "COW fixes part 2: every mapped anonymous page carries an exclusive bit. An exclusive "
        "page is always reused on a write fault, pins or not; fork refuses to share a pinned "
        "exclusive page and copies it for the child instead. A R/O pin of a possibly shared "
        "page first triggers FAULT_FLAG_UNSHARE, which gives the pinner an exclusive page while "
        "keeping the PTE read-only — Peter Xu's 2020 idea, scoped to FOLL_PIN. vmsplice still "
        "takes plain FOLL_GET references, which are left as the 'wrong side OK' class. Modelled "
        "with 6.0's FOLL_FORCE fix (5535be309971) and mprotect upgrade of dirty exclusive pages."
    )
    has_exclusive_bit = True
    uffd_wp_file = True

    def wp_reuse(self, frame: Frame, swapcount: int) -> Decision:
        """do_wp_page (6c287605fd56): PageAnonExclusive ⇒ reuse without looking at refcounts;
        otherwise the 5.18 refcount test, and a successful reuse marks the page exclusive."""
        if frame.anon_exclusive:
            return Decision(
                "reuse",
                "PageAnonExclusive",
                "do_wp_page",
                "6c287605fd56",
                "the page is marked exclusive to this process, so it is reused whatever other "
                "references (pins) exist",
                _counts(frame) | {"swapcount": swapcount},
            )
        decision = super().wp_reuse(frame, swapcount)
        if decision.outcome == "reuse":
            return Decision(
                "reuse",
                "page_count == 1, set exclusive",
                "do_wp_page → wp_can_reuse_anon_folio",
                "6c287605fd56",
                decision.why + " and marks it exclusive",
                decision.inputs,
            )
        return decision

    def swapin_write_reuse(self, frame: Frame, swapcount: int) -> Decision:
        if frame.anon_exclusive:
            return Decision(
                "reuse",
                "exclusive swap entry",
                "do_swap_page",
                "1493a1913e34",
                "the swap PTE remembered that the page was exclusive, so it is mapped writable "
                "at once",
                _counts(frame) | {"swapcount": swapcount},
            )
        return super().swapin_write_reuse(frame, swapcount)

    def swapin_exclusive(self, pte: Pte, frame: Frame, fresh: bool) -> bool:
        """do_swap_page (1493a1913e34): the swap PTE's exclusive marker survives swap-out."""
        return pte.swap_exclusive

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """gup_must_unshare (a7f226604170): a R/O FOLL_PIN of an anon page that is not marked
        exclusive must unshare first; FOLL_GET readers are left alone."""
        if req.write or not req.pin or frame.kind != "anon" or frame.anon_exclusive:
            return None
        return Decision(
            "unshare",
            "R/O pin of a possibly shared anon page",
            "gup_must_unshare → FAULT_FLAG_UNSHARE",
            "a7f226604170",
            "a read-only pin of an anon page that is not exclusive could end up on the wrong "
            "side of a later COW, so GUP first unshares it",
            _counts(frame) | {"foll_pin": True, "foll_write": False},
        )

    def force_write_proof(self, pte: Pte, frame: Frame, vma: Vma, cow_done: bool) -> Decision:
        """can_follow_write_pte (5535be309971): FOLL_COW is gone; proof is an exclusive anon page
        whose PTE needs no fault for soft-dirty or uffd-wp tracking."""
        needs_fault = (vma.softdirty_tracking and not pte.softdirty) or pte.uffd_wp
        ok = frame.kind == "anon" and frame.anon_exclusive and not needs_fault
        return Decision(
            "allow" if ok else "fault",
            "anon exclusive page" if ok else "not an exclusive anon page",
            "can_follow_write_pte",
            "5535be309971",
            "the R/O PTE maps an exclusive anonymous page, so writing it cannot reach anyone else"
            if ok
            else "the R/O PTE does not map an exclusive anonymous page, so GUP breaks COW with "
            "a write fault first",
            {"anon": frame.kind == "anon", "anon_exclusive": frame.anon_exclusive},
        )

    def fork_anon_pte(self, frame: Frame, parent_has_pinned: bool) -> Decision:
        """copy_present_pte → page_try_dup_anon_rmap (fb3d824d1a46, 6c287605fd56): a shared page
        is shared again; an exclusive one can be shared only if it may not be pinned."""
        inputs = _counts(frame) | {"has_pinned": parent_has_pinned}
        if not frame.anon_exclusive:
            return Decision(
                "share",
                "not exclusive: share",
                "copy_present_pte",
                "6c287605fd56",
                "the page is already shared, so fork simply shares it once more",
                inputs,
            )
        if parent_has_pinned and frame.maybe_dma_pinned:
            return Decision(
                "copy",
                "exclusive and maybe pinned: copy for child",
                "copy_present_pte → page_try_dup_anon_rmap fails",
                "fb3d824d1a46",
                "the exclusive page may be pinned, so its exclusive bit cannot be cleared: the "
                "child gets a copy and the parent keeps the page writable",
                inputs,
            )
        return Decision(
            "share",
            "exclusive, not pinned: clear exclusive and share",
            "copy_present_pte → page_try_dup_anon_rmap",
            "6c287605fd56",
            "the page is not pinned, so fork clears its exclusive bit, write-protects it in both "
            "and shares it",
            inputs,
        )

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """can_change_pte_writable (64fe24a3e05e, 6.0): an exclusive *dirty* anon page may be
        mapped writable at once, unless soft-dirty or uffd-wp tracking needs the fault."""
        return self._mprotect_upgrade(pte, frame, vma, need_dirty=True, commit="64fe24a3e05e")

    def _mprotect_upgrade(
        self, pte: Pte, frame: Frame, vma: Vma, *, need_dirty: bool, commit: str
    ) -> Decision:
        inputs: dict[str, int | bool | str] = {
            "anon_exclusive": frame.anon_exclusive,
            "pte_dirty": pte.dirty,
            "softdirty_tracking": vma.softdirty_tracking,
            "pte_softdirty": pte.softdirty,
            "uffd_wp": pte.uffd_wp,
        }
        if vma.softdirty_tracking and not pte.softdirty:
            why = "soft-dirty tracking wants to see the next write, so the PTE stays read-only"
            return Decision(
                "none",
                "soft-dirty needs a fault",
                "can_change_pte_writable",
                "76aefad628aa",
                why,
                inputs,
            )
        if pte.uffd_wp:
            why = "the PTE is userfaultfd write-protected, so it stays read-only"
            return Decision(
                "none", "uffd-wp needs a fault", "can_change_pte_writable", commit, why, inputs
            )
        if frame.kind != "anon" or not frame.anon_exclusive:
            why = "the page is not an exclusive anonymous page, so the next write must fault"
            return Decision("none", "not exclusive", "can_change_pte_writable", commit, why, inputs)
        if need_dirty and not pte.dirty:
            why = "the exclusive page is clean; this kernel upgrades only dirty ones"
            return Decision("none", "clean page", "can_change_pte_writable", commit, why, inputs)
        why = "the page is exclusive to this process, so mprotect maps it writable at once"
        return Decision(
            "allow", "exclusive anon page", "can_change_pte_writable", commit, why, inputs
        )

    def swapout_blocked(self, frame: Frame) -> Decision | None:
        if not frame.maybe_dma_pinned:
            return None
        return Decision(
            "refuse",
            "cannot unmap a pinned exclusive page",
            "try_to_unmap_one → page_try_share_anon_rmap",
            "6c287605fd56",
            "the page may be pinned, so its exclusive bit cannot be dropped and reclaim leaves "
            "it mapped",
            _counts(frame),
        )


class LongtermUnshare62(Exclusive519):
    """6.2 – today: R/O long-term pins also unshare the zero page and page-cache pages."""

    id = "6.2"
    label = "Reliable R/O long-term pins"
    kernels = "6.2 – today"
    commits: ClassVar[tuple[str, ...]] = Exclusive519.commits + ("8d6a0ac09a16", "84209e87c696")
    story = (
        "'mm/gup: reliable R/O long-term pinning in COW mappings' (84209e87c696) extends "
        "FAULT_FLAG_UNSHARE to anything in a private mapping: a R/O FOLL_LONGTERM pin of the "
        "shared zero page or of a file's page-cache page first gets an exclusive anonymous copy, "
        "so the pin keeps seeing what the process writes. Drivers stop abusing FOLL_FORCE to get "
        "the same effect, and mprotect may map clean exclusive pages writable too."
    )

    def gup_must_unshare(self, req: GupRequest, frame: Frame, vma: Vma) -> Decision | None:
        """gup_must_unshare (84209e87c696): for FOLL_LONGTERM R/O pins in a COW mapping, every
        page that is not an exclusive anon page must be unshared, zero page and page cache too."""
        decision = super().gup_must_unshare(req, frame, vma)
        if decision is not None:
            return decision
        if (
            req.write
            or not req.pin
            or not req.longterm
            or frame.kind == "anon"
            or not vma.is_cow_mapping
        ):
            return None
        what = "shared zero page" if frame.kind == "zero" else "page-cache page"
        return Decision(
            "unshare",
            "R/O long-term pin of a non-anon page in a COW mapping",
            "gup_must_unshare → FAULT_FLAG_UNSHARE",
            "84209e87c696",
            f"a long-term read-only pin of the {what} in a private mapping would miss the "
            "process's later writes, so GUP first replaces it with an exclusive anonymous copy",
            {"frame_kind": frame.kind, "foll_longterm": True, "cow_mapping": True},
        )

    def mprotect_makes_writable(self, pte: Pte, frame: Frame, vma: Vma) -> Decision:
        """6.2 (Nadav Amit, 'mm/mprotect: allow clean exclusive anon pages to be writable')."""
        return self._mprotect_upgrade(pte, frame, vma, need_dirty=False, commit="64fe24a3e05e")


def _holders(frame: Frame) -> str:
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


POLICIES: Mapping[str, Policy] = {
    p.id: p
    for p in (
        DirtyCow48(),
        Policy(),
        EnforcedCow58(),
        BreakCowProposal(),
        WrongSideOkProposal(),
        PageCount59(),
        PageCount518(),
        Exclusive519(),
        LongtermUnshare62(),
    )
}
LATEST = "6.2"


def get_policy(policy_id: str) -> Policy:
    if policy_id == "latest":
        policy_id = LATEST
    try:
        return POLICIES[policy_id]
    except KeyError:
        raise UnknownPolicy(
            f"unknown policy {policy_id!r}; expected one of: {', '.join(POLICIES)}, latest"
        ) from None
