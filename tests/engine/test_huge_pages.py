"""Huge pages (issue 14, DESIGN §10): every decision per era, expectations derived by hand from
the kernel history named beside each (kernel-cow-semantics.md §2 (f), §4), never from the
engine's output.

Era groups (DESIGN §3: an era shows mainline as of the last release of its range):
- ≤ 5.7: do_huge_pmd_wp_page reuses by THP mapcount (reuse_swap_page, ba3c4ce6def4) and copies
  a THP it cannot reuse whole into a new THP;
- 5.8 (and the two proposals built on it): the same test, but a THP it cannot reuse is split
  and only the subpage written is copied (3917c80280c9); a read GUP breaks COW (17839856fd58);
- 5.9 (= 5.17): do_wp_page is page_count (09854ba94c6a) but do_huge_pmd_wp_page keeps the
  mapcount test, so the THP variant of CVE-2020-29374 is open again; fork splits a pinned THP
  (d042035eaf5f) and copies a pinned hugetlb page for the child (4eae4efa2c29, 5.12);
- 5.18: do_huge_pmd_wp_page uses the refcount too (3bff7e3f1f16);
- 5.19, 6.2: PageAnonExclusive for THP (head while PMD-mapped, per subpage once PTE-mapped);
- 6.15: as 6.2, and a PTE-mapped THP one process maps alone is reused (1da190f4d0a6);
- hugetlb, every era: hugetlb_wp reuses iff mapcount == 1 (vmsplice leaks stay open: XFAIL in
  the selftest); MADV_PAGEOUT refuses it with -EINVAL.
"""

from __future__ import annotations

import pytest

from engine.policies import POLICIES
from engine.state import State
from engine.trace import Trace, replay, state_to_json

ALL = tuple(POLICIES)
FIVE_EIGHT = ("5.8", "5.8-break-cow", "5.8-wrong-side-ok")
CLASSIC = ("4.8", "5.7")
EXCLUSIVE = ("5.19", "6.2", "6.13", "6.15")


def reads(trace: Trace) -> list[str | None]:
    return [
        s.observed.text if s.observed is not None else None
        for s in trace.steps
        if s.command is not None and type(s.command).__name__ in ("Read", "RefRead")
    ]


def verdicts(trace: Trace) -> set[str]:
    return {v.kind for v in trace.verdicts}


def events(trace: Trace, step: int) -> list[tuple[str, str]]:
    return [(e.kind, e.kernel) for e in trace.steps[step].events]


def only(eras: tuple[str, ...]) -> dict[str, bool]:
    return {pid: pid in eras for pid in ALL}


def last(trace: Trace) -> State:
    return trace.steps[-1].state


# -------------------------------------------------- CVE-2020-29374: vmsplice + unmap in child
CVE = "P write a v1; P fork C; C vmsplice a as pipe; C munmap a; P write a v2; pipe read"


@pytest.mark.parametrize(
    ("pid", "leaks"),
    only(("4.8", "5.7", "5.9")).items(),
)
def test_the_thp_variant_of_the_vmsplice_leak_reopens_in_5_9_and_closes_in_5_18(
    pid: str, leaks: bool
) -> None:
    """After the child unmaps, the parent's PMD is the only mapping (entire mapcount 1) and
    the pipe's FOLL_GET reference is not counted by reuse_swap_page: ≤ 5.7 and 5.9–5.17 reuse
    the THP and the pipe reads the parent's v2 (09854ba94c6a left do_huge_pmd_wp_page alone).
    5.8 broke COW at vmsplice time in the child; 5.18 counts the pipe's reference
    (3bff7e3f1f16: refcount 2) and splits; 5.19+ finds the THP not exclusive after fork."""
    trace = replay("P mmap a backing=thp; " + CVE, pid)
    assert reads(trace) == (["v2"] if leaks else ["v1"])
    assert ("leak" in verdicts(trace)) == leaks


@pytest.mark.parametrize(("pid", "leaks"), only(("4.8", "5.7", "5.9", "5.18", *EXCLUSIVE)).items())
def test_the_hugetlb_vmsplice_leak_is_open_in_every_era_but_5_8(pid: str, leaks: bool) -> None:
    """hugetlb_wp reuses iff mapcount == 1 in every era: the child's pipe reference is never
    counted (the selftest's XFAIL on today's kernels). Only 5.8's forced COW at GUP time
    (17839856fd58, follow_hugetlb_page too) gave the child its own copy."""
    trace = replay("P mmap a backing=hugetlb; " + CVE, pid)
    assert ("leak" in verdicts(trace)) == leaks
    # The parent keeps its page in every era (mapcount 1); in 5.8 the pipe holds C's copy.
    assert ("reuse", "hugetlb_wp") in events(trace, 6)
    assert last(trace).refs["pipe"].pfn == (2 if pid in FIVE_EIGHT else 1)


@pytest.mark.parametrize(("pid", "leaks"), only(CLASSIC).items())
def test_the_pte_mapped_thp_variant_leaks_only_under_the_classic_rule(
    pid: str, leaks: bool
) -> None:
    """PTE-mapped THP: ≤ 5.7 reuse_swap_page takes the largest subpage mapcount, 1 once the
    child unmapped, and reuses. 5.8 breaks COW at vmsplice. From 5.9 do_wp_page reads the
    folio's refcount (512 subpage mappings and the pipe): the parent copies subpage 0."""
    trace = replay(
        "P mmap a backing=thp; P write a v1; P pte-map a; " + CVE[len("P write a v1; ") :], pid
    )
    assert ("leak" in verdicts(trace)) == leaks


# --------------------------------------------------------------- write faults, per era
def test_a_shared_thp_is_copied_whole_before_5_8_and_split_after() -> None:
    """3917c80280c9 (5.8, "thp: change CoW semantics for anon-THP"): before it the writer got
    a new THP with all 512 subpages copied; since, the PMD is split and subpage 0 alone is
    copied into a small page while subpages 1… stay mapped from the shared folio."""
    text = "P mmap a backing=thp; P write a v1; P fork C; C write a v2; C read a; P read a"
    for pid in ALL:
        trace = replay(text, pid)
        assert reads(trace) == ["v2", "v1"], pid
        pte = trace.steps[4].state.procs["C"].ptes["a"]
        assert pte.pfn is not None
        frame = trace.steps[4].state.frames[pte.pfn]
        if pid in CLASSIC:
            assert pte.pmd and frame.folio is not None and frame.nr_pages == 512, pid
            assert pte.rest_pfn is None
        else:
            assert not pte.pmd and frame.folio is None, pid  # a small copy of subpage 0
            assert pte.rest_pfn == 1  # the other subpages still map the parent's THP
            parent_thp = trace.steps[4].state.frames[1]
            assert parent_thp.entire_mapcount == 1 and parent_thp.subpage_mapcount(1) == 2
            assert parent_thp.subpage_mapcount(0) == 1


def test_a_write_to_the_huge_zero_page_allocates_a_thp_before_5_8_and_from_6_13() -> None:
    """A read maps the huge zero page by a PMD. A write: ≤ 5.7 allocates and clears a THP;
    since 3917c80280c9 the PMD is split into PTEs of the zero page and do_wp_page gives
    subpage 0 a zeroed small page; from 1ced09e0331f (6.13) do_huge_zero_wp_pmd allocates a
    THP again."""
    text = "P mmap a backing=thp; P read a; P write a v1; P read a"
    for pid in ALL:
        trace = replay(text, pid)
        assert reads(trace) == ["0", "v1"]
        assert trace.steps[2].state.procs["P"].ptes["a"].pmd
        pte = trace.steps[3].state.procs["P"].ptes["a"]
        thp = pid in (*CLASSIC, "6.13", "6.15")
        assert pte.pmd == thp, pid
        assert pte.pfn is not None
        assert (trace.steps[3].state.frames[pte.pfn].folio is not None) == thp


@pytest.mark.parametrize(("pid", "needless"), only(("5.9", "5.18", "5.19", "6.2", "6.13")).items())
def test_a_pte_mapped_thp_one_process_maps_is_copied_needlessly_from_5_9(
    pid: str, needless: bool
) -> None:
    """After fork and the child's exit the parent alone maps the PTE-mapped THP, write-
    protected. ≤ 5.8: the largest subpage mapcount is 1, reuse. From 5.9 page_count() of the
    subpage is the folio's refcount (512 subpage mappings): copy, with nobody to protect — a
    needless copy (5.19+: fork cleared the exclusive bits, so the refcount test decides too).
    6.15 reuses a folio exclusively mapped by one MM whose references are all its mappings
    (__wp_can_reuse_large_anon_folio, 1da190f4d0a6)."""
    text = "P mmap a backing=thp; P write a v1; P pte-map a; P fork C; C exit; P write a v2"
    trace = replay(text, pid)
    assert ("needless-copy" in verdicts(trace)) == needless
    copied = any(kind == "copy" for kind, _ in events(trace, 6))
    assert copied == needless


def test_an_exclusive_pte_mapped_thp_is_reused_from_5_19() -> None:
    """PageAnonExclusive per subpage (6c287605fd56): the split carries the head's bit to every
    subpage, and mprotect R/O then R/W leaves subpage 0 exclusive: reused from 5.19. 5.9–5.18
    copy it (folio refcount 512); ≤ 5.8 reuse it (mapcount 1)."""
    text = (
        "P mmap a backing=thp; P write a v1; P pte-map a; P mprotect a ro; P mprotect a rw; "
        "P write a v2; P read a"
    )
    for pid in ALL:
        trace = replay(text, pid)
        assert reads(trace) == ["v2"]
        copied = any(kind == "copy" for kind, _ in events(trace, 6))
        assert copied == (pid in ("5.9", "5.18")), pid


# ----------------------------------------------------------------------- pins and fork
IOURING_FORK = "P write a v1; P iouring a as io; P fork C; P write a v2; io read"  # selftest case 8


@pytest.mark.parametrize(("pid", "stale"), only(("4.8", "5.7", *FIVE_EIGHT)).items())
def test_fork_splits_a_pinned_thp_from_5_9(pid: str, stale: bool) -> None:
    """ "fork() with an iouring fixed buffer" on THP. ≤ 5.8 copy_huge_pmd shares the pinned
    THP; the parent's write copies away from its own pin (whole THP before 5.8, subpage 0 in
    5.8): the buffer is stale. From 5.9 (d042035eaf5f) the pinned PMD is split and the child
    gets copies; the parent keeps its folio writable, PTE-mapped."""
    trace = replay("P mmap a backing=thp; " + IOURING_FORK, pid)
    assert reads(trace) == (["v1"] if stale else ["v2"])
    assert ("stale" in verdicts(trace)) == stale
    parent = trace.steps[4].state.procs["P"].ptes["a"]
    assert parent.pmd == stale  # split by fork from 5.9
    if not stale:
        assert parent.writable and parent.rest_pfn == parent.pfn == 1
        child = trace.steps[4].state.procs["C"].ptes["a"]
        assert child.pfn != 1 and child.rest_pfn is None


@pytest.mark.parametrize(("pid", "stale"), only(("4.8", "5.7", *FIVE_EIGHT)).items())
def test_fork_copies_a_pinned_hugetlb_page_for_the_child_from_5_12(pid: str, stale: bool) -> None:
    """4eae4efa2c29 ("hugetlb: do early cow when page pinned on src mm", 5.12; the 5.9 era
    shows 5.17): the child gets a copy of the 2 MiB page and the parent keeps the pinned one.
    Before, the page is shared and the parent's write (mapcount 2) copies away from its pin."""
    trace = replay("P mmap a backing=hugetlb; " + IOURING_FORK, pid)
    assert ("stale" in verdicts(trace)) == stale
    child = trace.steps[4].state.procs["C"].ptes["a"]
    assert child.pmd and (child.pfn == 1) == stale


@pytest.mark.parametrize(("pid", "stale"), only(("5.18",)).items())
def test_5_18_makes_a_pinned_thp_worse(pid: str, stale: bool) -> None:
    """Selftest case 7 on THP ("R/O-mapping a page registered as iouring fixed buffer"):
    write-protect a pinned THP, then write. The mapcount test (≤ 5.17: one PMD) reuses it;
    5.18's refcount test (3bff7e3f1f16) sees the pin (refcount 2), splits and copies subpage 0
    away from the pin — "this series certainly makes (2) worse for THP". 5.19+ finds the THP
    exclusive and reuses it."""
    text = (
        "P mmap a backing=thp; P write a v1; P iouring a as io; P mprotect a ro; "
        "P clear-softdirty; P mprotect a rw; P write a v2; io read"
    )
    trace = replay(text, pid)
    assert ("stale" in verdicts(trace)) == stale
    assert reads(trace) == (["v1"] if stale else ["v2"])


@pytest.mark.parametrize(("pid", "stale"), only(("4.8", "5.7", "5.9", "5.18")).items())
def test_a_r_o_pin_unshares_a_shared_thp_from_5_19(pid: str, stale: bool) -> None:
    """Selftest case 9 on THP: fork (THP shared), R/O longterm pin, parent writes. 5.19+
    (a7f226604170): the THP is not exclusive, so the pin triggers FAULT_FLAG_UNSHARE —
    do_huge_pmd_wp_page finds refcount 2, splits, and subpage 0 is unshared into an exclusive
    copy the parent's write then reuses: the pin sees v2. 5.8 breaks COW at pin time. The
    others pin the shared folio and the parent's write copies away from it."""
    text = (
        "P mmap a backing=thp; P write a v1; P fork C; P pin a ro longterm as d; P write a v2; "
        "d read"
    )
    trace = replay(text, pid)
    assert ("stale" in verdicts(trace)) == stale
    if pid in EXCLUSIVE:
        assert ("split", "do_huge_pmd_wp_page → __split_huge_pmd") in events(trace, 4)


def test_a_pin_on_a_thp_counts_exactly_not_by_1024() -> None:
    """A large folio counts a FOLL_PIN as refcount +1 and _pincount +1 (3faa52c03f44)."""
    trace = replay("P mmap a backing=thp; P write a v1; P pin a rw as d", "6.2")
    frame = last(trace).frames[1]
    assert frame.refcount == 2 and frame.pins == 1 and frame.maybe_dma_pinned
    folio = next(f for f in state_to_json(last(trace))["frames"] if f["pfn"] == 1)["folio"]
    assert folio["pincount"] == 1 and folio["entire_mapcount"] == 1
    assert "_pincount" in trace.steps[3].events[-1].text


# ---------------------------------------------------------------------- hugetlb refusals
def test_hugetlb_cannot_be_paged_out_in_any_era() -> None:
    """madvise_pageout → can_madv_lru_vma refuses VM_HUGETLB with -EINVAL (1a4e58cce84e)."""
    for pid in ALL:
        trace = replay("P mmap a backing=hugetlb; P write a v1; P swapout a; P read a", pid)
        assert events(trace, 3) == [("efault", "madvise_pageout → can_madv_lru_vma")]
        assert "-EINVAL" in trace.steps[3].events[0].text
        assert trace.steps[3].state == trace.steps[2].state
        assert reads(trace) == ["v1"]


@pytest.mark.parametrize(("pid", "refused"), only(("4.8", "5.7", *FIVE_EIGHT, "5.9")).items())
def test_madv_dontneed_on_hugetlb_works_from_5_18(pid: str, refused: bool) -> None:
    """90e7e7f5ef3f ("mm: enable MADV_DONTNEED for hugetlb mappings", 5.18): -EINVAL before."""
    trace = replay("P mmap a backing=hugetlb; P write a v1; P dontneed a; P read a", pid)
    assert reads(trace) == (["v1"] if refused else ["0"])


def test_a_hugetlb_page_cannot_be_pte_mapped() -> None:
    trace = replay("P mmap a backing=hugetlb; P write a v1; P pte-map a", "6.2")
    assert events(trace, 3)[0][0] == "efault" and "-EINVAL" in trace.steps[3].events[0].text


@pytest.mark.parametrize(("pid", "faults"), only(EXCLUSIVE).items())
def test_uffd_wp_on_hugetlb_from_5_19(pid: str, faults: bool) -> None:
    """Before 5.19 vma_can_userfault allows VM_UFFD_WP on anonymous VMAs only (-EINVAL on
    hugetlbfs); the 5.19 series that brought shmem brought hugetlbfs too."""
    trace = replay("P mmap a backing=hugetlb; P write a v1; P uffd-wp a on; P write a v2", pid)
    assert ("userfault" in verdicts(trace)) == faults


def test_mprotect_never_upgrades_a_hugetlb_page() -> None:
    """hugetlb_change_protection has no can_change_pte_writable: the next write faults."""
    text = "P mmap a backing=hugetlb; P write a v1; P mprotect a ro; P mprotect a rw"
    trace = replay(text, "6.2")
    assert not last(trace).procs["P"].ptes["a"].writable


@pytest.mark.parametrize(("pid", "upgraded"), only(("6.2", "6.13", "6.15")).items())
def test_mprotect_upgrades_an_exclusive_thp_pmd_only_from_6_2(pid: str, upgraded: bool) -> None:
    """64fe24a3e05e (6.0) upgrades PTEs only ("applying the same logic to PMDs … probably not
    worth the trouble"); c27f479ef542 (6.2) adds can_change_pmd_writable."""
    text = "P mmap a backing=thp; P write a v1; P mprotect a ro; P mprotect a rw"
    trace = replay(text, pid)
    assert last(trace).procs["P"].ptes["a"].writable == upgraded


# ------------------------------------------------------------------------- swap
def test_a_swapped_out_thp_comes_back_as_a_small_page() -> None:
    """MADV_PAGEOUT of a THP one process maps: swapped whole (THP_SWAP), the folio freed once
    written; no modelled era swaps a large folio back in, so subpage 0 returns small."""
    trace = replay("P mmap a backing=thp; P write a v1; P swapout a; P read a", "6.2")
    assert 1 not in trace.steps[3].state.frames
    pte = last(trace).procs["P"].ptes["a"]
    assert pte.pfn is not None and not pte.pmd
    assert last(trace).frames[pte.pfn].folio is None
    assert reads(trace) == ["v1"]


def test_pageout_of_a_pte_mapped_thp_splits_it_first() -> None:
    """madvise_cold_or_pageout_pte_range splits a large folio one process maps (split_folio)
    before paging it out; a folio a GUP reference holds cannot be split and stays."""
    trace = replay("P mmap a backing=thp; P write a v1; P pte-map a; P swapout a", "6.2")
    assert ("split", "madvise_cold_or_pageout_pte_range → split_folio") in events(trace, 4)
    held = replay(
        "P mmap a backing=thp; P write a v1; P pte-map a; P get a ro as g; P swapout a", "6.2"
    )
    assert held.steps[5].state == held.steps[4].state


# ------------------------------------------------------------------ the model's accounting
def test_pte_map_keeps_the_folio_whole() -> None:
    trace = replay("P mmap a backing=thp; P write a v1; P pte-map a", "5.19")
    frame = last(trace).frames[1]
    assert frame.entire_mapcount == 0 and frame.mapcount == 512 and frame.refcount == 512
    assert all(frame.subpage_anon_exclusive(i) for i in (0, 1, 511))
    page = state_to_json(last(trace))["processes"][0]["pages"][0]
    assert page["level"] == "pte" and page["vma"]["backing"] == "thp"


def test_the_folio_json_lists_only_the_subpages_that_differ() -> None:
    trace = replay("P mmap a backing=thp; P write a v1; P fork C; C pte-map a; C write a v2", "6.2")
    folio = next(f for f in state_to_json(last(trace))["frames"] if f["pfn"] == 1)["folio"]
    # C copied subpage 0 away: it is mapped once (P's PMD), the rest twice (PMD + C's PTEs)
    assert folio["subpages"] == [{"index": 0, "mapcount": 1, "anon_exclusive": False}]
    assert folio["rest"] == {"count": 511, "mapcount": 2, "anon_exclusive": False}
    assert folio["kind"] == "thp" and folio["nr_pages"] == 512 and folio["order"] == 9


def test_each_huge_page_decision_names_its_counters_function_and_commit() -> None:
    """The narration of a THP decision shows what the kernel read: entire mapcount,
    page_mapcount of subpage 0 and of the rest, their exclusive bits, the exact pincount."""
    trace = replay("P mmap a backing=thp; P write a v1; P fork C; P write a v2", "5.18")
    split = next(e for e in trace.steps[4].events if e.kind == "split")
    assert (split.kernel, split.commit) == (
        "do_huge_pmd_wp_page → __split_huge_pmd",
        "3917c80280c9",
    )
    assert split.inputs["entire_mapcount"] == 2 and split.inputs["refcount"] == 2
    assert {"subpage0_mapcount", "rest_mapcount", "subpage0_exclusive", "pincount"} <= set(
        split.inputs
    )
    copy = next(e for e in trace.steps[4].events if e.kind == "copy")
    assert copy.commit == "09854ba94c6a" and copy.inputs["refcount"] == 1 + 512
    hugetlb = replay("P mmap a backing=hugetlb; P write a v1; P fork C; P write a v2", "6.2")
    wp = next(e for e in hugetlb.steps[4].events if e.kind == "copy")
    assert wp.kernel == "hugetlb_wp → copy_user_huge_page" and wp.inputs["entire_mapcount"] == 2


def test_the_thp_cow_knob_moves_alone_in_a_custom_point() -> None:
    """A 5.9 point that copies a THP whole, as kernels before 3917c80280c9 did."""
    text = "P mmap a backing=thp; P write a v1; P fork C; C write a v2"
    whole = replay(text, "custom:base=5.9,thp_cow=copy-huge")
    assert whole.policy.id == "custom:base=5.9,thp_cow=copy-huge"
    child = last(whole).procs["C"].ptes["a"]
    assert child.pmd and child.pfn != 1
    split = last(replay(text, "5.9")).procs["C"].ptes["a"]
    assert not split.pmd and split.rest_pfn == 1
