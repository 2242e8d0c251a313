"""The kernel's gup_test debugfs device, the only way a program can hold a FOLL_PIN of its choice.

mm/gup_test.c (CONFIG_GUP_TEST) offers PIN_LONGTERM_TEST_START (pin_user_pages(_fast) with
FOLL_LONGTERM, plus FOLL_WRITE on request), PIN_LONGTERM_TEST_READ (the kernel copies the pinned
pages' current contents to a user buffer: what a device would read) and PIN_LONGTERM_TEST_STOP
(unpin; closing the file unpins too). It has no way to write through a pin, to hold a FOLL_GET
reference, or to hold a short-term pin across calls. cow.c's R/O-pin tests use exactly this.
The ioctl layout follows mm/gup_test.h.
"""

from __future__ import annotations

import ctypes
import os

from app.probe import libc

GUP_TEST_PATH = "/sys/kernel/debug/gup_test"
FLAG_USE_WRITE = 1
FLAG_USE_FAST = 2


class PinLongtermTest(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("size", ctypes.c_uint64), ("flags", ctypes.c_uint32)]


PIN_LONGTERM_TEST_START = libc.iow(ord("g"), 7, ctypes.sizeof(PinLongtermTest))
PIN_LONGTERM_TEST_STOP = libc.io(ord("g"), 8)
PIN_LONGTERM_TEST_READ = libc.iow(ord("g"), 9, ctypes.sizeof(ctypes.c_uint64))


def available() -> str | None:
    """None when the device can be opened, else why not."""
    if not os.path.exists(GUP_TEST_PATH):
        return f"gup_test not available ({GUP_TEST_PATH} missing: CONFIG_GUP_TEST, debugfs)"
    try:
        os.close(os.open(GUP_TEST_PATH, os.O_RDWR))
    except OSError as exc:
        return f"gup_test not available ({exc.strerror})"
    return None


def pin_longterm(addr: int, length: int, *, write: bool, fast: bool) -> int:
    """Pin [addr, addr+length) of the calling process; returns the fd that holds the pin."""
    fd = os.open(GUP_TEST_PATH, os.O_RDWR | os.O_CLOEXEC)
    flags = (FLAG_USE_WRITE if write else 0) | (FLAG_USE_FAST if fast else 0)
    args = PinLongtermTest(addr, length, flags)
    try:
        libc.ioctl(fd, PIN_LONGTERM_TEST_START, ctypes.addressof(args))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_pinned(fd: int, length: int) -> bytes:
    """PIN_LONGTERM_TEST_READ: the pinned page as the kernel (a device) sees it now."""
    buf = ctypes.create_string_buffer(length)
    dest = ctypes.c_uint64(ctypes.addressof(buf))
    libc.ioctl(fd, PIN_LONGTERM_TEST_READ, ctypes.addressof(dest))
    return buf.raw


def unpin(fd: int) -> None:
    try:
        libc.ioctl(fd, PIN_LONGTERM_TEST_STOP, None)
    finally:
        os.close(fd)
