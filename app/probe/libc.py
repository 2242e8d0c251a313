"""Thin ctypes wrappers for the memory-management system calls the probe needs.

The standard library covers fork, pipes, memfds and sockets, but not mmap at a chosen address
with the address handed back, mprotect, vmsplice, tee or raw system calls; those come from libc
through ctypes. Every wrapper raises `OSError` with the real errno, so callers can tell "the
kernel refused" from "the probe is broken".
"""

from __future__ import annotations

import ctypes
import os
import platform

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_POPULATE = 0x8000
# Fails with EEXIST instead of silently replacing whatever is mapped there (Linux 4.17).
MAP_FIXED_NOREPLACE = 0x100000

MADV_DONTNEED = 4
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_PAGEOUT = 21  # Linux 5.4

SPLICE_F_NONBLOCK = 0x02

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

# System call numbers. io_uring's are the same on every architecture (they were added after the
# tables were unified); userfaultfd's differ.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "userfaultfd": 323,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
    },
    "aarch64": {
        "userfaultfd": 282,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
    },
}


def syscall_number(name: str) -> int | None:
    """The number of system call ``name`` on this machine, None where the probe does not know it."""
    return _SYSCALLS.get(platform.machine(), {}).get(name)


_libc = ctypes.CDLL(None, use_errno=True)

_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_mprotect = _libc.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_madvise = _libc.madvise
_madvise.restype = ctypes.c_int
_madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_vmsplice = _libc.vmsplice
_vmsplice.restype = ctypes.c_ssize_t
_vmsplice.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint]
_tee = _libc.tee
_tee.restype = ctypes.c_ssize_t
_tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_ioctl = _libc.ioctl
_ioctl.restype = ctypes.c_int
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

MAP_FAILED = ctypes.c_void_p(-1).value


class IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


def mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); returns the address. With MAP_FIXED_NOREPLACE the result must be ``addr``."""
    res = _mmap(addr, length, prot, flags, fd, offset)
    if res is None or res == MAP_FAILED:
        _raise("mmap")
    assert res is not None
    if flags & MAP_FIXED_NOREPLACE and res != addr:
        # Kernels before 4.17 treat the unknown flag as a hint and may map elsewhere.
        _munmap(res, length)
        raise OSError(0, "mmap: MAP_FIXED_NOREPLACE not honoured by this kernel")
    return int(res)


def munmap(addr: int, length: int) -> None:
    if _munmap(addr, length) != 0:
        _raise("munmap")


def mprotect(addr: int, length: int, prot: int) -> None:
    if _mprotect(addr, length, prot) != 0:
        _raise("mprotect")


def madvise(addr: int, length: int, advice: int) -> None:
    if _madvise(addr, length, advice) != 0:
        _raise("madvise")


def vmsplice(pipe_w: int, addr: int, length: int) -> int:
    """vmsplice(2) of [addr, addr+length) into the pipe: the pipe takes page references."""
    iov = IOVec(addr, length)
    res = _vmsplice(pipe_w, ctypes.addressof(iov), 1, 0)
    if res < 0:
        _raise("vmsplice")
    return int(res)


def tee(pipe_r: int, pipe_w: int, length: int) -> int:
    """tee(2): duplicate pipe buffers (the same pages, no copy) without consuming them."""
    res = _tee(pipe_r, pipe_w, length, SPLICE_F_NONBLOCK)
    if res < 0:
        _raise("tee")
    return int(res)


def ioctl(fd: int, request: int, arg: int | None) -> int:
    res = _ioctl(fd, request, arg)
    if res < 0:
        _raise("ioctl")
    return int(res)


def syscall(name: str, *args: int) -> int:
    number = syscall_number(name)
    if number is None:
        raise OSError(38, f"{name}: system call number unknown on {platform.machine()}")
    res = _syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if res < 0:
        _raise(name)
    return int(res)


def set_child_subreaper() -> None:
    """Make orphaned descendants reparent to this process instead of init, so it can reap them."""
    if _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        _raise("prctl(PR_SET_CHILD_SUBREAPER)")


def set_parent_death_signal(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when the thread that forked it exits.

    Kept across execve (of a program that is not set-user-ID) and cleared in forked children.
    """
    if _prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        _raise("prctl(PR_SET_PDEATHSIG)")


def set_name(name: bytes) -> None:
    """Set this process's ``comm`` (at most 15 bytes), which forked children inherit and which
    /proc/PID/comm still shows while the process is a zombie."""
    buffer = ctypes.create_string_buffer(name[:15])
    if _prctl(PR_SET_NAME, ctypes.addressof(buffer), 0, 0, 0) != 0:
        _raise("prctl(PR_SET_NAME)")


def load(addr: int, length: int) -> bytes:
    """A real CPU load of ``length`` bytes at ``addr`` (faults like any program's read)."""
    return ctypes.string_at(addr, length)


def store(addr: int, data: bytes) -> None:
    """A real CPU store of ``data`` at ``addr`` (faults like any program's write)."""
    ctypes.memmove(addr, data, len(data))


def _ioc(direction: int, kind: int, number: int, size: int) -> int:
    """The _IOC() macro of include/uapi/asm-generic/ioctl.h (x86 and arm64 layout)."""
    return (direction << 30) | (size << 16) | (kind << 8) | number


def io(kind: int, number: int) -> int:
    return _ioc(0, kind, number, 0)


def iow(kind: int, number: int, size: int) -> int:
    return _ioc(1, kind, number, size)


def ior(kind: int, number: int, size: int) -> int:
    return _ioc(2, kind, number, size)


def iowr(kind: int, number: int, size: int) -> int:
    return _ioc(3, kind, number, size)
