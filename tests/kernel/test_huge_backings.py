"""The executor on huge backings, against the kernel alone (not the simulator).

`backing=thp` is a PMD-mapped 2 MiB THP, `pte-map` the selftest's mprotect() trick, and
`backing=hugetlb` a private 2 MiB hugetlb page from a pool the run raises as root. What is
asserted is what the kernel did — values read, errnos, userfaults, and (as root) what a store did
to the frame behind the page, from pagemap — each fact with the kernel function behind it, so a
bug in the executor cannot hide behind a matching one in the engine.
"""

from __future__ import annotations

import pytest

from app.probe import hugetlb
from app.probe.capabilities import detect, kernel_release, kernel_version
from app.probe.compare import ProbeResult, probe_scenario
from app.probe.executor import KernelRun, KernelStep, hugetlb_pages
from app.probe.isolate import run_isolated
from engine.syntax import parse

pytestmark = pytest.mark.kernel


def needs(*facilities: str) -> None:
    for facility in facilities:
        reason = getattr(detect(), facility)
        if reason is not None:
            pytest.skip(reason)


def run(text: str) -> dict[int, KernelStep]:
    result: KernelRun = run_isolated(parse(text), timeout=10)
    assert result.leaks == ()
    assert result.skipped is None, result.skipped
    return {s.index: s for s in result.steps}


def frames_visible() -> bool:
    """pagemap shows PFNs to CAP_SYS_ADMIN only; without them a store's frame is None."""
    s = run("P mmap a\nP write a v1")
    return s[2].frame is not None


# --------------------------------------------------------------------------------- THP
def test_a_thp_reads_zero_then_what_was_written_in_its_first_subpage() -> None:
    needs("thp")
    s = run("P mmap a backing=thp\nP read a\nP write a v1\nP read a")
    assert (s[1].outcome, s[2].value, s[4].value) == ("ok", "0", "v1")
    if frames_visible():
        # The read mapped the huge zero page; the write replaces it (do_huge_pmd_wp_page on the
        # huge zero page splits the PMD, 3917c80280c9: a small zeroed page for subpage 0).
        assert s[3].frame == "replaced"
    s = run("P mmap a backing=thp\nP write a v1\nP write a v2\nP read a")
    assert s[4].value == "v2"
    if frames_visible():
        # The first write faults the THP in (do_huge_pmd_anonymous_page), the second finds it.
        assert (s[2].frame, s[3].frame) == ("new", "kept")


def test_fork_shares_a_thp_and_the_parents_write_copies() -> None:
    needs("thp")
    s = run("P mmap a backing=thp\nP write a v1\nP fork C\nP write a p2\nC read a\nP read a")
    assert (s[5].value, s[6].value) == ("v1", "p2")
    if frames_visible():
        # do_huge_pmd_wp_page: shared (refcount 2), so the PMD is split and the subpage copied.
        assert s[4].frame == "replaced"


@pytest.mark.parametrize("pte_map", [False, True], ids=["pmd-mapped", "pte-mapped"])
def test_a_thp_shared_by_fork_and_mapped_only_by_the_parent_again_is_reused(pte_map: bool) -> None:
    """PMD-mapped: do_huge_pmd_wp_page reuses a folio whose refcount is 1 (every era since
    5.18). PTE-mapped: __wp_can_reuse_large_anon_folio reuses a large folio mapped by this MM
    alone whose references are all its mappings (1da190f4d0a6, 6.15); 6.2 – 6.14 copied it."""
    needs("thp")
    if not frames_visible():
        pytest.skip("pagemap hides frame numbers from this user (CAP_SYS_ADMIN)")
    remap = "P pte-map a\n" if pte_map else ""
    s = run(f"P mmap a backing=thp\nP write a v1\n{remap}P fork C\nC exit\nP write a v2")
    last = max(s)
    assert s[last].frame == "kept"


def test_pte_map_keeps_the_value_and_is_refused_where_there_is_no_thp() -> None:
    needs("thp")
    s = run(
        "P mmap a backing=thp\nP write a v1\nP pte-map a\nP read a\nP mmap b\nP pte-map b\n"
        "P munmap b\nP pte-map b"
    )
    assert (s[3].outcome, s[4].value) == ("ok", "v1")
    assert s[6].outcome == "ok"  # a base page has no PMD to split
    assert s[8].outcome == "error: ENOMEM"  # nothing mapped there: mprotect() finds no VMA


def test_uffd_wp_on_a_thp_traps_the_write_once() -> None:
    needs("thp", "uffd_wp")
    s = run("P mmap a backing=thp\nP write a v1\nP uffd-wp a on\nP write a v2\nP read a")
    assert (s[4].userfaults, s[5].value) == (1, "v2")


def test_munmap_of_a_thp_unmaps_all_of_it() -> None:
    needs("thp")
    s = run("P mmap a backing=thp\nP write a v1\nP munmap a\nP read a\nP dontneed a")
    assert s[4].outcome == "segv"
    assert s[5].outcome == "error: ENOMEM"  # madvise() over the whole 2 MiB finds no VMA


def test_vmsplice_of_a_thp_subpage_sees_the_parents_write_only_through_its_own_copy() -> None:
    """cow.c "vmsplice() + unmap in child" with THP: fixed since 5.18 (do_huge_pmd_wp_page's
    refcount rule, 3bff7e3f1f16 era); the pipe keeps the old data."""
    needs("thp")
    s = run(
        "P mmap a backing=thp\nP write a v1\nP fork C\nC vmsplice a as p\nC munmap a\n"
        "P write a v2\np read"
    )
    assert s[7].value == "v1"


# ------------------------------------------------------------------------------ hugetlb
def test_the_run_reserves_hugetlb_pages_for_each_mapping_process_and_reference() -> None:
    text = "P mmap a backing=hugetlb\nP fork C\nC fork D\nC vmsplice a as p"
    assert hugetlb_pages(parse(text)) == 1 * 3 + 1
    assert hugetlb_pages(parse("P mmap a b\nP fork C")) == 0


def test_a_hugetlb_page_is_copied_on_write_after_fork_and_the_pool_is_restored() -> None:
    needs("hugetlb")
    before = hugetlb.pool_size()
    s = run("P mmap a backing=hugetlb\nP write a v1\nP fork C\nP write a p2\nC read a\nP read a")
    assert (s[5].value, s[6].value) == ("v1", "p2")
    assert hugetlb.pool_size() == before


def test_a_hugetlb_page_cannot_be_paged_out_or_pte_mapped() -> None:
    """MADV_PAGEOUT refuses VM_HUGETLB (madvise_pageout → can_madv_lru_vma: EINVAL), with or
    without swap; mprotect() inside a huge page cannot split a hugetlb VMA (EINVAL)."""
    needs("hugetlb")
    s = run("P mmap a backing=hugetlb\nP write a v1\nP swapout a\nP pte-map a\nP read a")
    assert (s[3].outcome, s[4].outcome, s[5].value) == ("error: EINVAL", "error: EINVAL", "v1")


def test_vmsplice_then_unmap_in_child_still_leaks_on_hugetlb() -> None:
    """The selftest's XFAIL: hugetlb_wp reuses a page mapped once (mapcount == 1) whatever
    references pipes hold, so the child's pipe reads the parent's later write."""
    needs("hugetlb")
    s = run(
        "P mmap a backing=hugetlb\nP write a v1\nP fork C\nC vmsplice a as p\nC munmap a\n"
        "P write a v2\np read"
    )
    assert s[7].value == "v2"


# ------------------------------------------------------- the simulator against the kernel
def compare(text: str) -> ProbeResult:
    needs("thp")
    if not frames_visible():
        pytest.skip("pagemap hides frame numbers from this user (CAP_SYS_ADMIN)")
    result = probe_scenario(parse(text), name="t", frames=True)
    assert result.skipped is None, result.skipped
    return result


def test_this_kernel_reuses_the_pte_mapped_thp_as_its_era_says() -> None:
    """The write after the child's exit: the kernel's frame is kept (6.15+, 1da190f4d0a6), and
    the simulator under this kernel's era agrees; under 6.2 it would have copied."""
    text = "P mmap a backing=thp\nP write a v1\nP pte-map a\nP fork C\nC exit\nP write a v2"
    result = compare(text)
    if kernel_version(kernel_release()) < (6, 15):
        pytest.skip("this kernel predates 6.15: its era copies")
    assert (6, "frame kept") in {(o.step, o.value) for o in result.kernel_observed}
    assert result.agree, result


@pytest.mark.xfail(strict=True, reason="engine: two MM-id slots per folio are not modelled")
def test_a_folio_shared_by_three_processes_stays_maybe_shared_for_the_untracked_one() -> None:
    """A folio keeps two MM ids (P, C); D, forked from C, finds no free slot, so the folio is
    "maybe mapped shared" and stays so after P and C exit: no slot holds D's mappings
    (folio_sub_large_mapcount clears the bit only when a slot's mapcount is the total). The
    kernel copies D's subpage; the engine, which counts the processes mapping the folio now,
    reuses it (LargeFolioReuse's docstring)."""
    text = (
        "P mmap a backing=thp\nP write a v1\nP pte-map a\nP fork C\nC fork D\nP exit\nC exit\n"
        "D write a v2"
    )
    result = compare(text)
    assert (8, "frame replaced") in {(o.step, o.value) for o in result.kernel_observed}
    assert result.agree, result
