"""What this kernel lets the probe do, each answer found by trying it on a scratch page.

Each check returns None when the facility works, or the reason a scenario that needs it is
skipped. Trying beats reading config files: a kernel may have a feature built in and still refuse
it (sysctls, rlimits, seccomp, missing debugfs mount).
"""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import dataclass

from app.probe import gup_test, hugetlb, libc, thp
from app.probe.iouring import FixedBuffer
from app.probe.uffd import WriteProtect
from engine.annotations import SwapDevice
from engine.policies import policy_for_kernel

PAGE = libc.PAGE_SIZE


@dataclass(frozen=True, slots=True)
class Capabilities:
    """None = available; a string = why not."""

    swap: str | None
    softdirty: str | None
    iouring: str | None
    uffd_wp: str | None
    gup_test: str | None
    forcewrite: str | None
    thp: str | None = None  # `backing=thp` (and `pte-map`)
    hugetlb: str | None = None  # `backing=hugetlb`


def _scratch(prot: int = libc.PROT_READ | libc.PROT_WRITE) -> int:
    return libc.mmap(0, PAGE, prot, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)


def check_swap() -> str | None:
    try:
        with open("/proc/swaps") as f:
            active = [line for line in f.read().splitlines()[1:] if line.strip()]
    except OSError:
        return "no swap configured (/proc/swaps unreadable)"
    return None if active else "no swap configured"


# Block devices whose driver sets BLK_FEAT_SYNCHRONOUS (QUEUE_FLAG_SYNCHRONOUS before 6.11), so
# that swapon gives their swap area SWP_SYNCHRONOUS_IO: zram, brd (ram*), pmem and its btt
# (pmem*s). sysfs does not show the flag, so the driver's device name tells.
_SYNCHRONOUS_DEVICES = re.compile(r"(zram|ram|pmem)\d+s?")


@dataclass(frozen=True, slots=True)
class SwapArea:
    path: str  # as /proc/swaps names it
    kind: str  # "partition" or "file"
    priority: int
    synchronous: bool

    @property
    def device(self) -> SwapDevice:
        """The scenario's `#swap` word for this area."""
        return "zram" if self.synchronous else "file"

    def describe(self) -> str:
        how = "synchronous, SWP_SYNCHRONOUS_IO" if self.synchronous else "through the swap cache"
        return f"{self.path} ({self.kind}, {how})"


def swap_areas(text: str | None = None) -> tuple[SwapArea, ...]:
    """The active swap areas of /proc/swaps (or of ``text``), the one used first (highest
    priority) first."""
    if text is None:
        try:
            with open("/proc/swaps") as f:
                text = f.read()
        except OSError:
            return ()
    areas = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        path, kind, priority = fields[0].replace("\\040", " "), fields[1], int(fields[4])
        name = os.path.basename(os.path.realpath(path)) if kind == "partition" else ""
        areas.append(SwapArea(path, kind, priority, bool(_SYNCHRONOUS_DEVICES.fullmatch(name))))
    return tuple(sorted(areas, key=lambda a: -a.priority))


def swap_device() -> SwapDevice | None:
    """The `#swap` device this machine pages out to first; None without swap."""
    areas = swap_areas()
    return areas[0].device if areas else None


def describe_swap(*, paths: bool = True, areas: tuple[SwapArea, ...] | None = None) -> str:
    """Which `#swap` device this machine's swap-outs go to (or those of ``areas``, another
    machine's); with ``paths`` every area too (the CLI's report; the web app names no path of
    the server)."""
    areas = swap_areas() if areas is None else areas
    if not areas:
        return "no swap configured"
    device = areas[0].device
    if not paths:
        return f"#swap {device}" + (" (synchronous device)" if device == "zram" else "")
    return f"#swap {device}: {'; '.join(a.describe() for a in areas)}"


def check_softdirty() -> str | None:
    """Without CONFIG_MEM_SOFT_DIRTY, writing 4 to clear_refs succeeds and does nothing: the PTEs
    stay writable, so the scenario would run a different experiment than the simulator's.
    A freshly written page carries the soft-dirty bit (pagemap bit 55) only where it is built in."""
    addr = _scratch()
    try:
        libc.store(addr, b"x")
        with open("/proc/self/pagemap", "rb") as pm:
            pm.seek((addr // PAGE) * 8)
            entry = int.from_bytes(pm.read(8), "little")
    except OSError as exc:
        return f"soft-dirty tracking cannot be checked ({exc.strerror})"
    finally:
        libc.munmap(addr, PAGE)
    if not entry >> 55 & 1:
        return "soft-dirty tracking not built into this kernel (CONFIG_MEM_SOFT_DIRTY)"
    return None


def check_iouring() -> str | None:
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            if f.read().strip() == "2":
                return "io_uring disabled (kernel.io_uring_disabled=2)"
    except OSError:
        pass  # older kernels have no such sysctl
    addr = _scratch()
    try:
        FixedBuffer(addr, PAGE).close()
    except OSError as exc:
        return f"io_uring fixed buffers not available ({exc.strerror or exc})"
    finally:
        libc.munmap(addr, PAGE)
    return None


def check_uffd_wp() -> str | None:
    addr = _scratch()
    try:
        wp = WriteProtect()
        try:
            wp.protect(addr, PAGE, True)
            wp.protect(addr, PAGE, False)
        finally:
            wp.close()
    except OSError as exc:
        hint = ""
        if exc.errno == 1:
            hint = " (vm.unprivileged_userfaultfd=0 and no CAP_SYS_PTRACE)"
        return f"userfaultfd write-protect not available: {exc.strerror or exc}{hint}"
    finally:
        libc.munmap(addr, PAGE)
    return None


def check_forcewrite() -> str | None:
    """/proc/PID/mem must write through a read-only mapping (FOLL_FORCE); kernels built with
    CONFIG_PROC_MEM_NO_FORCE or booted with proc_mem.force_override=never refuse."""
    addr = _scratch(libc.PROT_READ)
    try:
        fd = os.open("/proc/self/mem", os.O_RDWR)
        try:
            os.pwrite(fd, b"x", addr)
        finally:
            os.close(fd)
    except OSError as exc:
        return f"/proc/self/mem does not force writes on this kernel ({exc.strerror})"
    finally:
        libc.munmap(addr, PAGE)
    return None


def check_thp() -> str | None:
    """Whether MADV_HUGEPAGE gives a PMD-mapped 2 MiB THP, tried on a scratch mapping: the
    sysfs switches may allow it and the kernel still decline (PR_SET_THP_DISABLE, a memory
    cgroup, fragmentation)."""
    missing = thp.unavailable()
    if missing is not None:
        return missing
    span = 2 * thp.HPAGE_SIZE  # room for one aligned huge page wherever the kernel puts it
    area = libc.mmap(0, span, libc.PROT_NONE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS)
    try:
        aligned = (area + thp.HPAGE_SIZE - 1) & ~(thp.HPAGE_SIZE - 1)
        libc.munmap(aligned, thp.HPAGE_SIZE)  # map_thp maps there with MAP_FIXED_NOREPLACE
        thp.map_thp(aligned)
        libc.store(aligned, b"x")
        missing = thp.check_faulted(aligned)
    except OSError as exc:
        missing = f"THP could not be tried ({exc.strerror or exc})"
    finally:
        libc.munmap(area, span)
    return None if missing is None else f"THP not available: {missing}"


@functools.lru_cache(maxsize=1)
def detect() -> Capabilities:
    return Capabilities(
        swap=check_swap(),
        softdirty=check_softdirty(),
        iouring=check_iouring(),
        uffd_wp=check_uffd_wp(),
        gup_test=gup_test.available(),
        forcewrite=check_forcewrite(),
        thp=check_thp(),
        hugetlb=hugetlb.unavailable(),
    )


def kernel_release() -> str:
    return platform.release()


def kernel_version(release: str) -> tuple[int, int]:
    """(major, minor) of a `uname -r` string such as "6.18.44-fc-v657"."""
    match = re.match(r"(\d+)\.(\d+)", release)
    if not match:
        raise ValueError(f"cannot read a kernel version from {release!r}")
    return int(match.group(1)), int(match.group(2))


def policy_for(release: str) -> str:
    """The cowlab policy id of a mainline kernel version, from the eras' declared ranges.

    Distribution and stable kernels may carry backports of another era (e.g. 4.19 stable got
    5.8's enforced COW in 2021); the probe goes by the mainline version and says so.
    """
    return policy_for_kernel(kernel_version(release)).id
