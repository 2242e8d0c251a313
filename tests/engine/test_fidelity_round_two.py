"""Issue 14, first part: what the live kernel disagreed with. Every expectation below comes
from the kernel history named beside it, not from the engine's output."""

from __future__ import annotations

import pytest

from engine.policies import POLICIES
from engine.trace import Trace, replay

ALL = tuple(POLICIES)
# Eras whose mainline (DESIGN §3: the last release of the range) has no PageAnonExclusive.
BEFORE_EXCLUSIVE = ("4.8", "5.7", "5.8", "5.8-break-cow", "5.8-wrong-side-ok", "5.9", "5.18")
PAGE_COUNT = ("5.9", "5.18")  # 09854ba94c6a .. 5.18: reuse only if page_count == 1
MAPCOUNT = ("4.8", "5.7", "5.8", "5.8-break-cow", "5.8-wrong-side-ok")


def reads(trace: Trace) -> list[str | None]:
    return [
        s.observed.text if s.observed is not None else None
        for s in trace.steps
        if s.command is not None and type(s.command).__name__ in ("Read", "RefRead")
    ]


def userfaults(trace: Trace, step: int | None = None) -> int:
    steps = trace.steps if step is None else (trace.steps[step],)
    return sum(1 for s in steps for e in s.events if e.kind == "userfault")


def kinds(trace: Trace, step: int) -> set[str]:
    return {e.kind for e in trace.steps[step].events}


# ---------------------------------------------------------------- 1. mprotect on shared uffd-wp
MPROTECT = "file F x; P mmap a file=F shared; P write a v1; P uffd-wp a on; P mprotect a rw; "


def test_eras_before_file_uffd_wp_refuse_the_registration() -> None:
    for pid in ("4.8", "5.7", "5.9", "5.18"):
        trace = replay(MPROTECT + "P write a v2; P read a", pid)
        assert "efault" in kinds(trace, 4), pid
        assert userfaults(trace) == 0 and reads(trace) == ["v2"]


def test_mainline_6_1_drops_the_protection_on_mprotect() -> None:
    """5.19 era = mainline 6.1, released without 51d3d5eb74ff: pte_modify() makes the shmem PTE
    writable, so neither the write nor a FOLL_FORCE write faults."""
    trace = replay(MPROTECT + "P write a v2; P read a", "5.19")
    assert userfaults(trace) == 0 and reads(trace) == ["v2"]
    assert trace.steps[5].state.procs["P"].ptes["a"].writable
    forced = replay(MPROTECT + "P forcewrite a v2; P read a", "5.19")
    assert reads(forced) == ["v2"]


def test_6_2_keeps_the_protection_through_mprotect() -> None:
    """51d3d5eb74ff: uffd-wp enables writenotify, can_change_pte_writable() refuses."""
    trace = replay(MPROTECT + "P write a v2; P read a", "6.2")
    pte = trace.steps[5].state.procs["P"].ptes["a"]
    assert pte.uffd_wp and not pte.writable
    decisions = [e.commit for e in trace.steps[5].events if e.kind == "protect"]
    assert decisions == ["51d3d5eb74ff"]
    assert userfaults(trace, 6) == 1 and reads(trace) == ["v2"]


def test_6_2_forcewrite_into_the_protected_page_fails() -> None:
    """A FOLL_FORCE write has no retry to wait for the monitor: -EFAULT, the page keeps v1."""
    trace = replay(MPROTECT + "P forcewrite a v2; P read a", "6.2")
    assert "efault" in kinds(trace, 6)
    assert reads(trace) == ["v1"]


# ------------------------------------------------------------------ 2. uffd-wp on swap entries
@pytest.mark.parametrize("pid", ALL)
def test_protecting_a_swapped_out_page_takes_effect(pid: str) -> None:
    """f45ec5ff16a7 (5.7, with uffd-wp itself): change_pte_range sets the swap entry's bit."""
    trace = replay(
        "P mmap a; P write a v1; P swapout a; P uffd-wp a on; P write a v2; P read a", pid
    )
    assert trace.steps[4].state.procs["P"].ptes["a"].uffd_wp
    assert userfaults(trace, 5) == 1
    assert reads(trace) == ["v2"]


@pytest.mark.parametrize("pid", ALL)
def test_unprotecting_a_swapped_out_page_takes_effect(pid: str) -> None:
    trace = replay(
        "P mmap a; P write a v1; P uffd-wp a on; P swapout a; P uffd-wp a off; P write a v2", pid
    )
    assert not trace.steps[5].state.procs["P"].ptes["a"].uffd_wp
    assert userfaults(trace) == 0


@pytest.mark.parametrize("pid", ALL)
def test_a_protected_page_swapped_in_by_a_write_is_not_writable_at_once(pid: str) -> None:
    """do_swap_page carries the bit over and write-protects the PTE, even when it reuses."""
    trace = replay("P mmap a; P write a v1; P uffd-wp a on; P swapout a; P write a v2", pid)
    assert userfaults(trace, 5) == 1
    pte = trace.steps[5].state.procs["P"].ptes["a"]
    assert pte.writable and not pte.uffd_wp  # the monitor resolved it, then the write went on


@pytest.mark.parametrize("pid", ALL)
def test_a_protected_page_swapped_in_by_a_read_stays_protected(pid: str) -> None:
    trace = replay("P mmap a; P write a v1; P uffd-wp a on; P swapout a; P read a", pid)
    pte = trace.steps[5].state.procs["P"].ptes["a"]
    assert pte.uffd_wp and not pte.writable


def test_the_reuse_at_swap_in_still_drops_the_swap_cache_under_uffd_wp() -> None:
    """5.9: reuse_swap_page deletes the page from the swap cache even though the uffd-wp bit
    keeps the PTE read-only, so the write after the userfault reuses (page_count 1)."""
    trace = replay("P mmap a; P write a v1; P uffd-wp a on; P swapout a; P write a v2", "5.9")
    assert "copy" not in kinds(trace, 5)
    assert "needless-copy" not in trace.verdict_kinds()


# --------------------------------------------------------------------------- 3. the swap device
DEVICE = (
    "P mmap a; P write a v1; P fork C; C exit; P swapout a; P vmsplice a as pipe; "
    "P write a v2; pipe read"
)


@pytest.mark.parametrize("pid", ALL)
def test_a_swap_file_keeps_the_swap_cache(pid: str) -> None:
    """Without SWP_SYNCHRONOUS_IO the page read back sits in the swap cache, not exclusive (the
    fork cleared the bit): 5.9+ copy on the write (page_count > 1), the pipe keeps v1; the
    mapcount eras reuse (CVE-2020-29374) and the pipe sees v2."""
    trace = replay("#swap file\n" + DEVICE, pid)
    frame = trace.steps[6].state.frames[trace.steps[6].state.procs["P"].ptes["a"].pfn or 0]
    # 5.8 and its proposals break COW at the vmsplice (17839856fd58), which may drop it.
    assert frame.swapcache or pid.startswith("5.8")
    assert not frame.anon_exclusive
    assert reads(trace) == (["v2"] if pid in MAPCOUNT else ["v1"])


@pytest.mark.parametrize("pid", ALL)
def test_zram_skips_the_swap_cache_and_is_exclusive_from_5_19(pid: str) -> None:
    """0bcac06f27d7 (4.15): a synchronous device reads past the swap cache and frees the slot;
    1493a1913e34 (5.19): that fresh page is exclusive, so the write reuses it under the pipe's
    reference and the pipe sees v2; 5.9 – 5.18 still copy (page_count 2)."""
    trace = replay("#swap zram\n" + DEVICE, pid)
    state = trace.steps[6].state
    frame = state.frames[state.procs["P"].ptes["a"].pfn or 0]
    skipped = pid != "4.8"  # 4.8 predates 0bcac06f27d7
    assert frame.swapcache is not skipped
    assert (state.swap == {}) is skipped
    assert frame.anon_exclusive is (pid not in BEFORE_EXCLUSIVE)
    expected = "v1" if pid in PAGE_COUNT else "v2"
    assert reads(trace) == [expected]


def test_the_devices_differ_exactly_where_the_kernel_history_says() -> None:
    differ = {
        pid
        for pid in ALL
        if reads(replay(DEVICE, pid)) != reads(replay("#swap zram\n" + DEVICE, pid))
    }
    assert differ == {"5.19", "6.2", "6.13", "6.15"}


@pytest.mark.parametrize("pid", PAGE_COUNT)
def test_zram_spares_5_9_the_needless_copy_of_a_swap_cache_page(pid: str) -> None:
    """5.9 – 5.18: the swap cache's reference makes page_count 2 on a swap file (5.9 copies;
    5.18 frees the unused swap cache first, 53a05ad9f21d); on zram nothing else holds it."""
    text = "P mmap a; P write a v1; P swapout a; P read a; P write a v2"
    on_zram = replay("#swap zram\n" + text, pid)
    assert "copy" not in kinds(on_zram, 5)
    on_file = replay(text, pid)
    assert ("copy" in kinds(on_file, 5)) is (pid == "5.9")


def test_the_swap_in_names_the_device_and_the_commit() -> None:
    trace = replay("#swap zram\nP mmap a; P write a v1; P swapout a; P read a", "6.2")
    skip, swapin = [e for e in trace.steps[4].events if e.kind == "swap"]
    assert "skips the swap cache" in skip.text and "zram" in skip.text
    assert (skip.commit, skip.inputs["swap_device"]) == ("0bcac06f27d7", "zram")
    assert "exclusive" in swapin.text and swapin.commit == "1493a1913e34"


# --------------------------------------------------------- 4. fork early-copies pinned page cache
FORK_PAGECACHE = (
    "file F x; P mmap a file=F; P write a v1; P dontneed a; P read a; P pin a ro as R; "
    "P fork C; Q mmap b file=F shared; Q write b y; C read a"
)


@pytest.mark.parametrize("pid", ALL)
def test_fork_of_a_pinned_page_cache_page(pid: str) -> None:
    """copy_present_page (70e806e4e645) copied any pinned page of a COW mapping for the child
    until fb3d824d1a46 (5.19) restricted it to anonymous pages: in 5.9 and 5.18 the child holds
    a private copy and misses the file's later change. 5.8 breaks COW at the pin (17839856fd58),
    so the parent pins a copy and the child shares that. Older eras share the page cache."""
    trace = replay(FORK_PAGECACHE, pid)
    copied = any(e.kind == "fork" and e.new_pfn is not None for e in trace.steps[7].events)
    assert copied is (pid in PAGE_COUNT)
    child_sees = reads(trace)[-1]
    assert child_sees == (
        "x" if pid in (*PAGE_COUNT, "5.8", "5.8-break-cow", "5.8-wrong-side-ok") else "y"
    )


def test_extending_a_zram_trace_keeps_swapping_to_zram() -> None:
    """`extend` (the web app's one-more-command path) replays on the scenario's device too."""
    from engine.syntax import parse
    from engine.trace import extend

    head = parse("#swap zram\nP mmap a; P write a v1; P swapout a")
    tail = parse("P read a; P write a v2").commands
    longer = extend(replay(head, "5.9"), tail)
    assert longer.scenario.annotations.swap == "zram"
    frame = longer.steps[4].state.frames[longer.steps[4].state.procs["P"].ptes["a"].pfn or 0]
    assert not frame.swapcache
    assert "copy" not in kinds(longer, 5)
