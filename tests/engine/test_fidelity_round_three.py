"""Issue 22: what the third live-kernel audit found the engine disagreeing on. Every expectation
comes from the kernel source and history named beside it (and, where this machine could run it,
from the kernel's own answer: tests/kernel/test_probe_regressions.py), not from the engine."""

from __future__ import annotations

import pytest

from app.probe.compare import sim_observations
from engine.policies import POLICIES
from engine.state import ZERO_PFN
from engine.trace import Trace, replay

ALL = tuple(POLICIES)
# hugetlbfs uffd-wp came with shmem's in 5.19 (b1f9e876862d's series); before, UFFDIO_REGISTER
# in write-protect mode refuses a hugetlb VMA.
HUGETLB_UFFD_WP = tuple(p for p, pol in POLICIES.items() if pol.since >= (5, 19))
NO_HUGETLB_UFFD_WP = tuple(p for p in ALL if p not in HUGETLB_UFFD_WP)


def userfault_steps(trace: Trace) -> list[int]:
    return [s.index for s in trace.steps for e in s.events if e.kind == "userfault"]


def reads(trace: Trace) -> list[str | None]:
    return [
        s.observed.text if s.observed is not None else None
        for s in trace.steps
        if s.command is not None and type(s.command).__name__ in ("Read", "RefRead")
    ]


# ------------------------------------------------- 1. uffd-wp on a hugetlb page not yet faulted
UNPOPULATED = "P mmap b backing=hugetlb; P uffd-wp b on; "


def test_the_eras_are_split_where_the_kernel_split_them() -> None:
    assert set(HUGETLB_UFFD_WP) >= {"5.19", "6.2", "6.15"}
    assert set(NO_HUGETLB_UFFD_WP) >= {"4.8", "5.7", "5.9", "5.18"}


@pytest.mark.parametrize("pid", HUGETLB_UFFD_WP)
def test_the_first_write_to_an_unpopulated_protected_hugetlb_page_is_a_userfault(pid: str) -> None:
    """hugetlb_change_protection puts a uffd-wp marker in the none huge PTE (60dfaad65aa9); the
    write fault meets it in hugetlb_fault → handle_userfault."""
    trace = replay(UNPOPULATED + "P write b v1; P read b", pid)
    assert userfault_steps(trace) == [3]
    assert reads(trace) == ["v1"]
    protect = [e for e in trace.steps[2].events if e.kind == "protect"]
    assert [(e.kernel, e.commit) for e in protect] == [
        ("userfaultfd_writeprotect → hugetlb_change_protection", "60dfaad65aa9")
    ]
    assert trace.steps[2].state.procs["P"].vmas["b"].uffd_wp_marker


@pytest.mark.parametrize("pid", HUGETLB_UFFD_WP)
def test_a_read_keeps_the_marker_protection_so_the_next_write_is_a_userfault(pid: str) -> None:
    """hugetlb_no_page maps the page uffd-wp protected when it replaces a marker
    (c64e912c865a): the read is silent, the write after it traps."""
    trace = replay(UNPOPULATED + "P read b; P write b v1", pid)
    assert userfault_steps(trace) == [4]
    pte = trace.steps[3].state.procs["P"].ptes["b"]
    assert pte.uffd_wp and not pte.writable
    assert "c64e912c865a" in {e.commit for e in trace.steps[3].events}


@pytest.mark.parametrize("pid", HUGETLB_UFFD_WP)
def test_an_io_uring_registration_is_a_userfault(pid: str) -> None:
    """io_uring registers with FOLL_WRITE|FOLL_LONGTERM: GUP faults for write on the marker."""
    trace = replay(UNPOPULATED + "P iouring b as R", pid)
    assert userfault_steps(trace) == [3]


@pytest.mark.parametrize("pid", HUGETLB_UFFD_WP)
def test_madv_dontneed_of_a_protected_hugetlb_page_leaves_a_marker(pid: str) -> None:
    """__unmap_hugepage_range keeps the protection as a marker (05e90bd05eea); hugetlb
    MADV_DONTNEED works from 5.18 (90e7e7f5ef3f)."""
    trace = replay(
        "P mmap b backing=hugetlb; P write b v0; P uffd-wp b on; P dontneed b; P write b v1", pid
    )
    assert userfault_steps(trace) == [5]


@pytest.mark.parametrize("pid", HUGETLB_UFFD_WP)
def test_lifting_the_protection_drops_the_marker(pid: str) -> None:
    trace = replay(UNPOPULATED + "P uffd-wp b off; P write b v1", pid)
    assert userfault_steps(trace) == []


@pytest.mark.parametrize("pid", NO_HUGETLB_UFFD_WP)
def test_eras_before_5_19_refuse_to_register_hugetlb_for_write_protection(pid: str) -> None:
    trace = replay(UNPOPULATED + "P write b v1", pid)
    assert "efault" in {e.kind for e in trace.steps[2].events}
    assert userfault_steps(trace) == []


def test_anonymous_memory_still_gets_no_marker() -> None:
    """Without UFFD_FEATURE_WP_UNPOPULATED (not modelled) an empty anonymous PTE stays none."""
    for backing in ("", " backing=thp"):
        trace = replay(f"P mmap b{backing}; P uffd-wp b on; P write b v1", "6.15")
        assert userfault_steps(trace) == []


# ------------------------------------ 2. MADV_PAGEOUT of a PMD-mapped THP something else holds
@pytest.mark.parametrize("pid", ALL)
@pytest.mark.parametrize("hold", ["P vmsplice a as R", "P get a ro as R", "P get a rw as R"])
def test_a_thp_held_by_a_pipe_or_gup_reference_is_never_paged_out(pid: str, hold: str) -> None:
    """shrink_folio_list refuses a large folio can_split_folio() cannot split — any reference
    beyond its mappings (bd4c82c22c36, can_split_huge_page) — and puts it back, PMD-mapped."""
    trace = replay(f"P mmap a backing=thp; P write a v1; {hold}; P swapout a; P read a", pid)
    pte = trace.steps[4].state.procs["P"].ptes["a"]
    assert pte.pmd and pte.swap_slot is None
    kept = [e for e in trace.steps[4].events if e.rule == "keep a THP it cannot split"]
    assert [(e.kernel, e.commit) for e in kept] == [
        ("shrink_folio_list → can_split_folio", "bd4c82c22c36")
    ]
    assert reads(trace) == ["v1"]
    assert [o.value for o in sim_observations(trace) if o.step == 4] == ["stays resident"]


@pytest.mark.parametrize("pid", ALL)
def test_once_the_reference_is_released_the_thp_is_paged_out(pid: str) -> None:
    trace = replay(
        "P mmap a backing=thp; P write a v1; P vmsplice a as R; R release; P swapout a", pid
    )
    assert trace.steps[5].state.procs["P"].ptes["a"].swap_slot is not None


# -------------------------------------------------------- 3. MADV_PAGEOUT of the huge zero page
@pytest.mark.parametrize("pid", ALL)
def test_pageout_skips_the_huge_zero_page_and_the_probe_compares_nothing_there(pid: str) -> None:
    """madvise_cold_or_pageout_pte_range skips a huge zero PMD (is_huge_zero_pmd, 9c276cc65a58);
    pagemap flags the huge zero page PM_FILE, so the kernel side of the probe says nothing of
    this pageout, and the simulator's side must not either."""
    trace = replay("P mmap a backing=thp; P read a; P swapout a; P read a", pid)
    pte = trace.steps[3].state.procs["P"].ptes["a"]
    assert pte.pmd and pte.pfn == ZERO_PFN
    assert [e.commit for e in trace.steps[3].events] == ["9c276cc65a58"]
    assert [o.step for o in sim_observations(trace)] == [2, 4]


def test_a_small_zero_page_pageout_is_still_compared() -> None:
    """The small zero page is no normal page (vm_normal_page), so pagemap shows it present
    and not PM_FILE: the kernel reports it stays resident, and so does the simulator."""
    trace = replay("P mmap a; P read a; P swapout a", "6.15")
    assert [o.value for o in sim_observations(trace) if o.step == 3] == ["stays resident"]
