"""vm.nr_hugepages goes back to the value it had before a probe raised it, on every path.

A run that maps hugetlb pages raises the pool (`app.probe.hugetlb`); these tests raise it for
real (as root) and check the value the kernel reports afterwards: after a release, after a
holder killed with SIGKILL, with two holders overlapping, after a runner the caller had to kill,
and after the `cowlab serve` supervisor reaped an orphaned probe process. Each test keeps its
own state file, so a probe running elsewhere on the machine is not counted as one of its holders.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.probe import hugetlb, isolate, reaper
from app.probe.isolate import run_isolated
from engine.syntax import parse

ROOT = Path(__file__).resolve().parents[2]
missing = hugetlb.unavailable()
pytestmark = [pytest.mark.kernel, pytest.mark.skipif(missing is not None, reason=str(missing))]

# A process that reserves N pages, says so on stdout, then waits (stdin) or dies as told.
HOLDER = """\
import os, signal, sys
from app.probe import hugetlb, libc, isolate
libc.set_name(isolate.PROCESS_NAME)
reason = hugetlb.reserve(int(sys.argv[1]))
print(reason or "held", flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[2] == "exit":
    os._exit(0)
sys.stdin.read()
"""


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "hugetlb.json"
    monkeypatch.setenv(hugetlb.STATE_ENV, str(path))
    before = hugetlb.pool_size()
    yield path
    # Whatever a failing test left, the machine gets its pool back.
    hugetlb.restore_abandoned(path=path)
    if hugetlb.pool_size() != before:
        hugetlb.NR_HUGEPAGES.write_text(str(before))


def holder(pages: int, how: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(pages), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_reservation_raises_the_pool_and_its_release_restores_it(state: Path) -> None:
    before = hugetlb.pool_size()
    assert hugetlb.reserve(3) is None
    assert hugetlb.pool_size() == before + 3
    assert hugetlb.free_pages() >= 3
    hugetlb.release()
    assert hugetlb.pool_size() == before
    assert not state.exists()


def test_a_holder_killed_without_releasing_is_undone_by_the_next_look(state: Path) -> None:
    before = hugetlb.pool_size()
    proc = holder(2, "kill")
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert hugetlb.pool_size() == before + 2  # nobody released: the pool is still raised
    hugetlb.restore_abandoned()
    assert hugetlb.pool_size() == before
    assert not state.exists()


def test_overlapping_holders_restore_the_value_from_before_the_first(state: Path) -> None:
    before = hugetlb.pool_size()
    first = holder(2, "wait")
    try:
        assert hugetlb.reserve(1) is None
        assert hugetlb.pool_size() == before + 3
        first.kill()
        first.wait(timeout=10)
        hugetlb.release()  # the first holder is dead: both reservations go
        assert hugetlb.pool_size() == before
    finally:
        first.kill()
        first.wait(timeout=10)


def test_a_runner_the_caller_must_kill_leaves_the_pool_as_it_found_it(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = hugetlb.pool_size()
    hang = HOLDER.replace("sys.argv[1]", "'2'").replace("sys.argv[2]", "'wait'")
    hang = hang.replace("sys.stdin.read()", "import time; time.sleep(120)")
    monkeypatch.setattr(isolate, "RUNNER", ("-c", hang))
    monkeypatch.setattr(isolate, "GRACE", 2.0)
    result = run_isolated(parse("P mmap a"), timeout=0.5)
    assert result.skipped is not None and result.skipped.startswith("probe killed")
    assert hugetlb.pool_size() == before


def test_the_supervisor_restores_the_pool_after_reaping_an_orphaned_runner(state: Path) -> None:
    before = hugetlb.pool_size()
    proc = holder(2, "exit")
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the holder did not exit"
        time.sleep(0.01)
    assert reaper.reap_once(block=False) == proc.pid
    assert hugetlb.pool_size() == before


def test_a_reservation_the_kernel_cannot_serve_holds_nothing(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for the sysctl that, like the kernel, settles on fewer pages than asked
    # (asking the real kernel for more than it has would take the machine's memory first).
    pool = tmp_path / "nr_hugepages"
    pool.write_text("4")
    monkeypatch.setattr(hugetlb, "NR_HUGEPAGES", pool)
    real_write = Path.write_text

    def capped(self: Path, data: str, *args: object, **kwargs: object) -> int:
        if self == pool:
            data = str(min(int(data), 5))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_text", capped)
    reason = hugetlb.reserve(3)
    assert reason is not None and "could allocate only 1 of the 3" in reason
    assert pool.read_text() == "4"
    assert not state.exists()
