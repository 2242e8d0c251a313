"""Reserving 2 MiB hugetlb pages for a probe run, and always giving them back.

A `MAP_HUGETLB` mapping takes its pages from a pool the administrator sizes with
``vm.nr_hugepages`` (0 unless someone raised it). A run that maps hugetlb pages raises the pool
by what it may need, as root, and lowers it again when it is done. Runs may overlap (a web
server's workers, the CLI) and any of them may die at any moment (a timeout's SIGKILL, a web
worker killed mid-probe), so the pool's size is never restored from a value one run remembered:

- the pool's size before any run raised it (``original``) and every run holding pages (pid, its
  start time, how many) are kept in a state file, changed only under an exclusive ``flock``;
- the pool is always set to ``original`` plus the pages of the holders still alive, and to
  ``original`` exactly (the state file removed) when none is left;
- a holder whose process is gone (its pid absent, or reused by a process that started at another
  time) is dropped by whoever looks next: the run's caller once the runner has ended on any path
  (`app.probe.isolate.run_isolated`), and the `cowlab serve` supervisor after it reaps a probe
  process (`app.probe.reaper`).

Lowering ``nr_hugepages`` below the pages in use is safe: the kernel frees the free ones now and
the others (surplus pages) when they are released.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
STATE_ENV = "COWLAB_HUGETLB_STATE"  # where the state file lives (a test's own, say)
HUGE_KB = 2048
# Upper bound of the pages one run may add to the pool (256 MiB): a scenario of many processes
# that each copy a hugetlb page gets this many, and a copy the pool cannot serve fails in the
# kernel (SIGBUS), which the probe reports as a process that died — never a guess.
MAX_PAGES = 128
log = logging.getLogger("cowlab.probe")


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    start: int  # the process's start time (field 22 of /proc/PID/stat): pids are reused
    pages: int

    def alive(self) -> bool:
        return start_time(self.pid) == self.start


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None  # a zombie holds no memory any more: its pages are back in the pool
    return int(fields[19])


def state_path() -> Path:
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    run = Path("/run")
    base = run if os.access(run, os.W_OK) else Path(tempfile.gettempdir())
    return base / "cowlab-probe-hugetlb.json"


def unavailable() -> str | None:
    """Why this machine cannot give a run 2 MiB hugetlb pages, or None."""
    if not NR_HUGEPAGES.exists():
        return "hugetlb not available (no /proc/sys/vm/nr_hugepages: CONFIG_HUGETLBFS)"
    size = default_size_kb()
    if size != HUGE_KB:
        return f"the default hugetlb page size is {size} kB, not 2048 kB"
    if os.geteuid() != 0 or not os.access(NR_HUGEPAGES, os.W_OK):
        return "reserving hugetlb pages needs root (vm.nr_hugepages)"
    return None


def default_size_kb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("Hugepagesize:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def pool_size() -> int:
    return int(NR_HUGEPAGES.read_text())


def free_pages() -> int:
    path = Path(f"/sys/kernel/mm/hugepages/hugepages-{HUGE_KB}kB/free_hugepages")
    return int(path.read_text())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)  # closing drops the flock


def _load(path: Path) -> tuple[int, list[Holder]] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        # A state file cut short (the machine lost power mid-write): what it held is lost,
        # and the pool stays as it is rather than be set from a guess.
        path.unlink()
        return None
    holders = [Holder(int(h[0]), int(h[1]), int(h[2])) for h in data["holders"]]
    return int(data["original"]), holders


def _apply(path: Path, original: int, holders: list[Holder]) -> int:
    """Set the pool to what the live holders need; returns the size the kernel settled on."""
    live = [h for h in holders if h.alive()]
    target = original + sum(h.pages for h in live)
    if live:
        tmp = path.with_name(path.name + ".tmp")
        payload = {"original": original, "holders": [[h.pid, h.start, h.pages] for h in live]}
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)  # the state is never half-written
    NR_HUGEPAGES.write_text(str(target))
    if not live:
        path.unlink(missing_ok=True)
    return pool_size()


def reserve(pages: int, *, path: Path | None = None) -> str | None:
    """Add ``pages`` huge pages to the pool for this process; None when they are there, else
    why not (and nothing is held). `release` or the death of this process gives them back."""
    path = path or state_path()
    me = start_time(os.getpid())
    assert me is not None
    with _locked(path):
        state = _load(path)
        original, holders = state if state is not None else (pool_size(), [])
        holders = [h for h in holders if h.pid != os.getpid()]
        needed = original + sum(h.pages for h in holders if h.alive()) + pages
        try:
            settled = _apply(path, original, [*holders, Holder(os.getpid(), me, pages)])
        except OSError as exc:
            _apply(path, original, holders)
            return f"could not raise vm.nr_hugepages ({exc.strerror})"
        if settled < needed:
            _apply(path, original, holders)
            return (
                f"the kernel could allocate only {pages - (needed - settled)} of the {pages} "
                "hugetlb pages the scenario may need (memory too fragmented)"
            )
    return None


def release(*, path: Path | None = None) -> None:
    """Give back what this process reserved (and what dead holders left)."""
    path = path or state_path()
    with _locked(path):
        state = _load(path)
        if state is not None:
            original, holders = state
            _apply(path, original, [h for h in holders if h.pid != os.getpid()])


def restore_abandoned(*, path: Path | None = None) -> None:
    """Drop the holders that died without releasing, and size the pool for the rest (back to
    its original size when none is left). Cheap when no run holds anything."""
    path = path or state_path()
    if not path.exists():
        return
    try:
        with _locked(path):
            state = _load(path)
            if state is not None:
                original, holders = state
                if not all(h.alive() for h in holders):
                    _apply(path, original, holders)
    except OSError as exc:
        # Called on cleanup paths, which must go on; a caller without root cannot resize the
        # pool (and never reserved in it), the next root caller will.
        log.warning("could not restore vm.nr_hugepages: %s", exc)
