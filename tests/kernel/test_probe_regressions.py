"""Cases where the probe caught the engine disagreeing with the kernel, kept as regressions.

Each was an engine bug, found by running the scenario on the real kernel and checked against the
kernel source: /proc/PID/mem writes cannot wait for a userfault (no FAULT_FLAG_ALLOW_RETRY);
uffd-wp on unpopulated file-backed memory installs a PTE marker; fork copies no PTEs of a VMA
without an anon_vma (vma_needs_copy); UFFDIO_REGISTER refuses a VMA without VM_MAYWRITE
(29ec90660d68). A new disagreement goes here first, as xfail(strict=True) with the evidence.
"""

from __future__ import annotations

import pytest

from app.probe.capabilities import detect, kernel_release, kernel_version
from app.probe.compare import ProbeResult, probe_scenario
from engine.syntax import parse

pytestmark = pytest.mark.kernel


def probe(text: str) -> ProbeResult:
    caps = detect()
    for reason in (caps.uffd_wp, caps.forcewrite):
        if reason is not None:
            pytest.skip(reason)
    result = probe_scenario(parse(text), name="t")
    assert result.skipped is None, result.skipped
    return result


def test_forcewrite_into_a_uffd_wp_protected_page_fails_without_a_userfault() -> None:
    result = probe("P mmap a\nP write a v1\nP uffd-wp a on\nP forcewrite a f2\nP read a")
    kernel = {o.step: o.value for o in result.kernel_observed}
    assert kernel == {4: "call fails", 5: "v1"}  # the kernel's answer, every run
    assert result.agree


def test_uffd_wp_on_an_unpopulated_file_page_still_traps_the_first_write() -> None:
    result = probe("file F f0\nP mmap f file=F\nP uffd-wp f on\nP write f x\nP read f")
    kernel = {o.step: o.value for o in result.kernel_observed}
    assert kernel == {4: "userfault ×1", 5: "x"}
    assert result.agree


def test_uffd_wp_on_an_unpopulated_anonymous_page_does_not_trap_on_either_side() -> None:
    result = probe("P mmap a\nP uffd-wp a on\nP write a x\nP read a")
    assert result.agree
    assert {o.step: o.value for o in result.kernel_observed} == {4: "x"}


def test_a_child_does_not_inherit_zero_page_ptes_of_a_vma_without_anon_vma() -> None:
    result = probe("P mmap a\nP read a\nP fork C\nC uffd-wp a on\nC write a x\nC read a")
    assert {o.step: o.value for o in result.kernel_observed} == {2: "0", 6: "x"}
    assert result.agree


def test_once_the_vma_has_an_anon_vma_the_zero_page_pte_is_inherited_on_both_sides() -> None:
    # The same scenario after a write (which gives the VMA its anon_vma): fork copies the PTE,
    # and the kernel and the simulator both deliver the userfault.
    result = probe(
        "P mmap a\nP write a v\nP dontneed a\nP read a\nP fork C\nC uffd-wp a on\n"
        "C write a x\nC read a"
    )
    assert result.agree
    assert {o.step: o.value for o in result.kernel_observed} == {
        4: "0",
        7: "userfault ×1",
        8: "x",
    }


def test_uffd_wp_cannot_register_a_shared_read_only_file_mapping() -> None:
    result = probe("file F f0\nP mmap f file=F shared ro\nP uffd-wp f on\nP read f")
    assert {o.step: o.value for o in result.kernel_observed} == {3: "call fails", 4: "f0"}
    assert result.agree


# Issue 14, first part: what 3,450 random scenarios through the probe found.
MPROTECT_SHARED = (
    "file F x\nP mmap a file=F shared\nP write a v1\nP uffd-wp a on\nP mprotect a rw\n"
)


def test_mprotect_rw_keeps_uffd_wp_on_a_shared_mapping() -> None:
    """51d3d5eb74ff (6.2): uffd-wp makes the VMA want writenotify, so the write still faults."""
    result = probe(MPROTECT_SHARED + "P write a v2\nP read a")
    assert {o.step: o.value for o in result.kernel_observed} == {6: "userfault ×1", 7: "v2"}
    assert result.agree, result


def test_forcewrite_after_mprotect_rw_still_fails_on_a_uffd_wp_shared_page() -> None:
    result = probe(MPROTECT_SHARED + "P forcewrite a v2\nP read a")
    assert {o.step: o.value for o in result.kernel_observed} == {6: "call fails", 7: "v1"}
    assert result.agree, result


def test_a_released_io_uring_buffer_is_unpinned_before_the_next_command() -> None:
    """Closing a ring leaves the unpin to a workqueue: a fork right after found the page still
    pinned and copied it for the child, so the parent's write reused the page under the pipe
    (v2). IORING_UNREGISTER_BUFFERS unpins at once: the fork shares, the write copies (v1)."""
    missing = detect().iouring
    if missing is not None:
        pytest.skip(missing)
    text = (
        "P mmap a\nP write a v1\nP vmsplice a as pipe\nP iouring a as R\nR release\nP fork C\n"
        "P write a v2\npipe read"
    )
    for _ in range(5):  # the workqueue usually lost the race; it must never win
        result = probe(text)
        assert {o.step: o.value for o in result.kernel_observed} == {8: "v1"}
        assert result.agree, result


def test_a_second_pageout_of_a_file_page_agrees() -> None:
    """The first MADV_PAGEOUT unmaps the page-cache page, so the second finds no PTE; neither
    is compared (the simulator keeps the page mapped), the reads around them are."""
    result = probe("file F x\nP mmap a file=F shared\nP read a\nP swapout a\nP swapout a\nP read a")
    assert {o.step: o.value for o in result.kernel_observed} == {3: "x", 6: "x"}
    assert result.agree, result


# Issue 22 (third audit). The kernel's answers below were seen on 6.18 (era 6.15); the engine's
# side of each is derived in tests/engine/test_fidelity_round_three.py.
def probe_with(text: str, *facilities: str) -> ProbeResult:
    caps = detect()
    for facility in facilities:
        reason = getattr(caps, facility)
        if reason is not None:
            pytest.skip(reason)
    result = probe_scenario(parse(text), name="t")
    assert result.skipped is None, result.skipped
    return result


@pytest.mark.parametrize(
    ("text", "kernel"),
    [
        ("P mmap b backing=hugetlb\nP uffd-wp b on\nP write b v1", {3: "userfault ×1"}),
        (
            "P mmap b backing=hugetlb\nP uffd-wp b on\nP read b\nP write b v1",
            {3: "0", 4: "userfault ×1"},
        ),
        ("P mmap b backing=hugetlb\nP uffd-wp b on\nP iouring b as R", {3: "userfault ×1"}),
    ],
)
def test_uffd_wp_on_an_unpopulated_hugetlb_page_installs_a_marker(
    text: str, kernel: dict[int, str]
) -> None:
    """hugetlb_change_protection (60dfaad65aa9) protects the none huge PTE."""
    facilities = ("hugetlb", "uffd_wp") + (("iouring",) if "iouring" in text else ())
    result = probe_with(text, *facilities)
    assert {o.step: o.value for o in result.kernel_observed} == kernel
    assert result.agree, result


def test_pageout_of_a_thp_a_pipe_holds_leaves_it_resident() -> None:
    """shrink_folio_list → can_split_folio refuses the folio (bd4c82c22c36)."""
    result = probe_with(
        "P mmap a backing=thp\nP write a v1\nP vmsplice a as pipe\nP swapout a\npipe read\n"
        "P read a",
        "thp",
        "swap",
    )
    assert {o.step: o.value for o in result.kernel_observed} == {
        4: "stays resident",
        5: "v1",
        6: "v1",
    }
    assert result.agree, result


def test_pageout_of_the_huge_zero_page_is_compared_on_neither_side() -> None:
    """pagemap flags the huge zero page PM_FILE: the kernel side says nothing of the pageout."""
    result = probe_with("P mmap a backing=thp\nP read a\nP swapout a\nP read a", "thp", "swap")
    assert {o.step: o.value for o in result.kernel_observed} == {2: "0", 4: "0"}
    assert result.agree, result


def test_a_thp_from_a_huge_zero_page_write_is_copied_again_by_the_child() -> None:
    """1ced09e0331f (6.13): the write maps a new THP, which fork shares by its PMD; after the
    parent's write the child's write copies (the parent still maps subpages 1…511). Era 6.2
    split the huge zero page instead and let the child keep its small page: on a 6.13+ kernel
    the frames show which happened."""
    caps = detect()
    if caps.thp is not None:
        pytest.skip(caps.thp)
    result = probe_scenario(
        parse(
            "P mmap a backing=thp\nP read a\nP write a v1\nP fork C\nP write a p2\n"
            "C write a c2\nC read a\nP read a"
        ),
        name="t",
        frames=True,
    )
    assert result.skipped is None, result.skipped
    frames = {o.step: o.value for o in result.kernel_observed if o.value.startswith("frame")}
    if not frames:
        pytest.skip("pagemap shows no PFNs to this user")
    assert result.agree, result
    if kernel_version(kernel_release()) >= (6, 13):
        assert frames[6] == "frame replaced"
