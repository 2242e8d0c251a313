"""The executor against the kernel alone: each scenario command does the real thing.

These assert what the kernel observed (the executor's `KernelRun`), not the simulator, so a bug
in the executor cannot hide behind a matching bug in the engine. Facts asserted here are the
kernel's documented behaviour (DESIGN.md §2, kernel-cow-semantics.md §1.6).
"""

from __future__ import annotations

import pytest

from app.probe.capabilities import detect
from app.probe.executor import KernelRun, KernelStep
from app.probe.isolate import run_isolated
from engine.syntax import parse

pytestmark = pytest.mark.kernel


def run(text: str) -> KernelRun:
    result = run_isolated(parse(text), timeout=10)
    assert result.leaks == ()
    return result


def steps(result: KernelRun) -> dict[int, KernelStep]:
    assert result.skipped is None, result.skipped
    return {s.index: s for s in result.steps}


def needs(facility: str) -> None:
    reason = getattr(detect(), facility)
    if reason is not None:
        pytest.skip(reason)


def test_a_never_written_page_reads_zero_and_a_write_reads_back() -> None:
    s = steps(run("P mmap a\nP read a\nP write a hello\nP read a"))
    assert (s[2].value, s[4].value) == ("0", "hello")


def test_fork_gives_the_child_a_copy_on_write_view() -> None:
    s = steps(
        run("P mmap a\nP write a v1\nP fork C\nP write a p2\nC read a\nC write a c3\nP read a")
    )
    assert (s[5].value, s[7].value) == ("v1", "p2")


def test_writes_without_a_value_store_the_engines_name_for_them() -> None:
    s = steps(run("P mmap a\nP write a\nP read a"))
    assert s[3].value == "P:2"


def test_a_pipe_read_does_not_consume_the_pipe_and_sees_current_contents() -> None:
    # The pipe holds a reference to the page; reading it (through tee) copies what the page
    # holds now, and can be repeated, as the simulator's `R read`.
    s = steps(
        run("P mmap a\nP write a v1\nP vmsplice a as p\np read\nP write a v2\np read\np read")
    )
    assert (s[4].value, s[6].value, s[7].value) == ("v1", "v2", "v2")


def test_a_refused_access_is_recorded_and_the_process_lives_on() -> None:
    s = steps(run("P mmap a\nP write a v1\nP mprotect a ro\nP write a v2\nP read a"))
    assert s[4].outcome == "segv"
    assert s[5].value == "v1"


def test_a_dontfork_page_is_a_hole_in_the_child() -> None:
    s = steps(run("P mmap a\nP write a v1\nP dontfork a\nP fork C\nC read a\nP read a"))
    assert s[5].outcome == "segv"
    assert s[6].value == "v1"


def test_system_calls_on_a_page_that_is_gone_fail_with_the_kernels_errno() -> None:
    s = steps(run("P mmap a\nP munmap a\nP dontneed a\nP mprotect a ro\nP vmsplice a as p"))
    assert s[2].outcome == "ok"  # munmap of a hole succeeds
    assert s[3].outcome == "error: ENOMEM"
    assert s[4].outcome == "error: ENOMEM"
    assert s[5].outcome == "error: EFAULT"


def test_munmap_then_mmap_maps_a_fresh_zero_page() -> None:
    s = steps(run("P mmap a\nP write a v1\nP munmap a\nP mmap a\nP read a"))
    assert s[5].value == "0"


def test_a_reference_dies_with_its_owner() -> None:
    s = steps(run("P mmap a\nP write a v1\nP fork C\nC vmsplice a as p\nC exit\np read"))
    assert s[6].outcome == "error: no such reference"


def test_forcewrite_to_a_read_only_private_file_mapping_writes_a_private_copy() -> None:
    needs("forcewrite")
    s = steps(
        run(
            "file F data\nP mmap a file=F ro\nP mmap s file=F shared ro\n"
            "P forcewrite a pwned\nP read a\nP read s\nP forcewrite s x"
        )
    )
    assert (s[5].value, s[6].value) == ("pwned", "data")
    assert s[7].outcome == "error: EIO"  # FOLL_FORCE never writes a shared read-only mapping


def test_an_iouring_fixed_buffer_sees_and_writes_the_pinned_page() -> None:
    needs("iouring")
    s = steps(
        run(
            "P mmap a\nP write a v1\nP iouring a as io\nio read\nio write dev\nP read a\nio release"
        )
    )
    assert (s[4].value, s[6].value) == ("v1", "dev")


def test_a_uffd_wp_write_delivers_one_userfault_and_then_completes() -> None:
    needs("uffd_wp")
    s = steps(run("P mmap a\nP write a v1\nP uffd-wp a on\nP write a v2\nP write a v3\nP read a"))
    assert (s[4].userfaults, s[5].userfaults) == (1, 0)
    assert s[6].value == "v3"


def test_the_racy_dirty_cow_exploit_is_never_run() -> None:
    result = run("file F x\nP mmap a file=F ro\nP forcewrite a y race")
    assert result.steps == ()
    assert result.skipped is not None and "not run on a real kernel" in result.skipped
