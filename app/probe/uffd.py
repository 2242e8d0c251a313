"""userfaultfd write-protect for `P uffd-wp a on|off`, with a handler that records each fault.

A write to a write-protected page blocks the writing thread until someone resolves the fault. The
worker therefore runs a handler thread that reads each fault message, records it (the probe's
observation "a userfault was delivered at this step") and resolves it the way a real
write-protect user (a snapshotter, a live migrator) does: by removing the protection from that
page, which wakes the writer. The structures follow include/uapi/linux/userfaultfd.h.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading

from app.probe import libc

UFFD_API = 0xAA
UFFDIO_REGISTER_MODE_WP = 1 << 1
UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0
UFFD_EVENT_PAGEFAULT = 0x12
UFFD_PAGEFAULT_FLAG_WP = 1 << 1
UFFD_FEATURE_WP_HUGETLBFS_SHMEM = 1 << 12
O_CLOEXEC = 0o2000000
O_NONBLOCK = 0o4000


class UffdioApi(ctypes.Structure):
    _fields_ = [
        ("api", ctypes.c_uint64),
        ("features", ctypes.c_uint64),
        ("ioctls", ctypes.c_uint64),
    ]


class UffdioRange(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class UffdioRegister(ctypes.Structure):
    _fields_ = [("range", UffdioRange), ("mode", ctypes.c_uint64), ("ioctls", ctypes.c_uint64)]


class UffdioWriteprotect(ctypes.Structure):
    _fields_ = [("range", UffdioRange), ("mode", ctypes.c_uint64)]


class UffdMsg(ctypes.Structure):
    # struct uffd_msg with the pagefault member of its union spelled out (32 bytes in all).
    _fields_ = [
        ("event", ctypes.c_uint8),
        ("reserved1", ctypes.c_uint8),
        ("reserved2", ctypes.c_uint16),
        ("reserved3", ctypes.c_uint32),
        ("flags", ctypes.c_uint64),
        ("address", ctypes.c_uint64),
        ("ptid", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
    ]


assert ctypes.sizeof(UffdMsg) == 32

UFFDIO_API = libc.iowr(UFFD_API, 0x3F, ctypes.sizeof(UffdioApi))
UFFDIO_REGISTER = libc.iowr(UFFD_API, 0x00, ctypes.sizeof(UffdioRegister))
UFFDIO_WRITEPROTECT = libc.iowr(UFFD_API, 0x06, ctypes.sizeof(UffdioWriteprotect))


def open_uffd() -> int:
    """A userfaultfd with the API handshake done. Raises OSError when the kernel refuses.

    No UFFD_USER_MODE_ONLY: the faults that matter here are also raised by the kernel itself
    (GUP for io_uring registration, /proc/PID/mem writes), and those must be delivered too.
    Shared-memory (memfd) pages need UFFD_FEATURE_WP_HUGETLBFS_SHMEM; ask for it when offered.
    """
    fd = libc.syscall("userfaultfd", O_CLOEXEC | O_NONBLOCK)
    try:
        probe = UffdioApi(UFFD_API, 0, 0)
        libc.ioctl(fd, UFFDIO_API, ctypes.addressof(probe))
        offered = int(probe.features)
        os.close(fd)
        fd = libc.syscall("userfaultfd", O_CLOEXEC | O_NONBLOCK)
        api = UffdioApi(UFFD_API, offered & UFFD_FEATURE_WP_HUGETLBFS_SHMEM, 0)
        libc.ioctl(fd, UFFDIO_API, ctypes.addressof(api))
    except BaseException:
        os.close(fd)
        raise
    return fd


class WriteProtect:
    """One userfaultfd per scenario process, a handler thread, and the faults it has seen."""

    def __init__(self) -> None:
        self.fd = open_uffd()
        self._registered: dict[int, int] = {}  # start -> length of each registered range
        self._faults: list[int] = []
        self._lock = threading.Lock()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._handle, name="uffd-wp", daemon=True)
        self._thread.start()

    def protect(self, addr: int, length: int, on: bool, *, mapped: bool = True) -> None:
        """Register (once) and write-protect, or lift the protection.

        Lifting the protection of a mapped page that was never registered has nothing to do (a
        monitor would not ask); for an unmapped page the ioctl is issued and the kernel refuses.
        """
        if on and (addr not in self._registered or not mapped):
            reg = UffdioRegister(UffdioRange(addr, length), UFFDIO_REGISTER_MODE_WP, 0)
            libc.ioctl(self.fd, UFFDIO_REGISTER, ctypes.addressof(reg))
            self._registered[addr] = length
        if addr in self._registered or not mapped:
            self._writeprotect(addr, length, on)

    def _writeprotect(self, addr: int, length: int, on: bool) -> None:
        mode = UFFDIO_WRITEPROTECT_MODE_WP if on else 0
        wp = UffdioWriteprotect(UffdioRange(addr, length), mode)
        libc.ioctl(self.fd, UFFDIO_WRITEPROTECT, ctypes.addressof(wp))

    def take_faults(self) -> list[int]:
        """The page addresses of the faults delivered since the last call."""
        with self._lock:
            faults, self._faults = self._faults, []
        return faults

    def _handle(self) -> None:
        msg = UffdMsg()
        while True:
            ready, _, _ = select.select([self.fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self.fd, ctypes.sizeof(UffdMsg))
            except BlockingIOError:
                continue
            ctypes.memmove(ctypes.addressof(msg), data, len(data))
            if msg.event != UFFD_EVENT_PAGEFAULT or not msg.flags & UFFD_PAGEFAULT_FLAG_WP:
                continue
            page = int(msg.address) & ~(libc.PAGE_SIZE - 1)
            with self._lock:
                self._faults.append(page)
            # Resolve as a real user does: drop the protection of the scenario page the fault
            # hit, which wakes the writer. A huge page is protected and released whole: lifting
            # 4 KiB of a PMD-mapped THP would split its PMD, and a hugetlb range must be
            # aligned to its huge page.
            start, length = page, libc.PAGE_SIZE
            for begin, size in list(self._registered.items()):
                if begin <= page < begin + size:
                    start, length = begin, size
            self._writeprotect(start, length, False)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._stop_r, self._stop_w, self.fd):
            os.close(fd)
