"""A minimal io_uring ring through raw system calls, enough for one fixed buffer.

`cowlab`'s `P iouring a` is an io_uring fixed buffer: IORING_REGISTER_BUFFERS pins the page with
FOLL_WRITE|FOLL_PIN|FOLL_LONGTERM. `R read` is what the device sees: an IORING_OP_WRITE_FIXED of
the buffer into a scratch memfd, read back with pread (this is what cow.c's io_uring tests do).
`R write VALUE` is a device write into memory: an IORING_OP_READ_FIXED from a scratch memfd that
holds VALUE into the buffer — the kernel copies into the pinned page, not through any page table.

The structures follow include/uapi/linux/io_uring.h; no SQPOLL, no feature beyond 5.1's.
"""

from __future__ import annotations

import ctypes
import os

from app.probe import libc

IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000
IORING_FEAT_SINGLE_MMAP = 1 << 0
IORING_ENTER_GETEVENTS = 1 << 0
IORING_REGISTER_BUFFERS = 0
IORING_UNREGISTER_BUFFERS = 1
IORING_OP_READ_FIXED = 4
IORING_OP_WRITE_FIXED = 5


_U32 = ctypes.c_uint32
_U64 = ctypes.c_uint64


class SqringOffsets(ctypes.Structure):
    _fields_ = [
        ("head", _U32),
        ("tail", _U32),
        ("ring_mask", _U32),
        ("ring_entries", _U32),
        ("flags", _U32),
        ("dropped", _U32),
        ("array", _U32),
        ("resv1", _U32),
        ("user_addr", _U64),
    ]


class CqringOffsets(ctypes.Structure):
    _fields_ = [
        ("head", _U32),
        ("tail", _U32),
        ("ring_mask", _U32),
        ("ring_entries", _U32),
        ("overflow", _U32),
        ("cqes", _U32),
        ("flags", _U32),
        ("resv1", _U32),
        ("user_addr", _U64),
    ]


class Params(ctypes.Structure):
    _fields_ = [
        ("sq_entries", _U32),
        ("cq_entries", _U32),
        ("flags", _U32),
        ("sq_thread_cpu", _U32),
        ("sq_thread_idle", _U32),
        ("features", _U32),
        ("wq_fd", _U32),
        ("resv", _U32 * 3),
        ("sq_off", SqringOffsets),
        ("cq_off", CqringOffsets),
    ]


class Sqe(ctypes.Structure):
    _fields_ = [
        ("opcode", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("ioprio", ctypes.c_uint16),
        ("fd", ctypes.c_int32),
        ("off", ctypes.c_uint64),
        ("addr", ctypes.c_uint64),
        ("len", ctypes.c_uint32),
        ("rw_flags", ctypes.c_uint32),
        ("user_data", ctypes.c_uint64),
        ("buf_index", ctypes.c_uint16),
        ("personality", ctypes.c_uint16),
        ("splice_fd_in", ctypes.c_int32),
        ("addr3", ctypes.c_uint64),
        ("pad", ctypes.c_uint64),
    ]


class Cqe(ctypes.Structure):
    _fields_ = [("user_data", ctypes.c_uint64), ("res", ctypes.c_int32), ("flags", ctypes.c_uint32)]


assert ctypes.sizeof(Params) == 120 and ctypes.sizeof(Sqe) == 64 and ctypes.sizeof(Cqe) == 16


def _u32(addr: int) -> ctypes.c_uint32:
    return ctypes.c_uint32.from_address(addr)


class FixedBuffer:
    """An io_uring instance with one registered fixed buffer of one page at ``addr``.

    The ring's mappings are MADV_DONTFORK: a forked scenario process must not keep the ring (and
    with it the pin) alive, since the reference belongs to the process that took it.
    """

    def __init__(self, addr: int, length: int) -> None:
        self.addr = addr
        self.length = length
        self.fd = -1
        self._maps: list[tuple[int, int]] = []
        self._scratch = -1
        self._registered = False
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        params = Params()
        self.fd = libc.syscall("io_uring_setup", 4, ctypes.addressof(params))
        sq_size = params.sq_off.array + params.sq_entries * 4
        cq_size = params.cq_off.cqes + params.cq_entries * ctypes.sizeof(Cqe)
        prot = libc.PROT_READ | libc.PROT_WRITE
        flags = libc.MAP_SHARED | libc.MAP_POPULATE
        if params.features & IORING_FEAT_SINGLE_MMAP:
            sq_size = cq_size = max(sq_size, cq_size)
            sq = libc.mmap(0, sq_size, prot, flags, self.fd, IORING_OFF_SQ_RING)
            self._maps.append((sq, sq_size))
            cq = sq
        else:
            sq = libc.mmap(0, sq_size, prot, flags, self.fd, IORING_OFF_SQ_RING)
            self._maps.append((sq, sq_size))
            cq = libc.mmap(0, cq_size, prot, flags, self.fd, IORING_OFF_CQ_RING)
            self._maps.append((cq, cq_size))
        sqes_size = params.sq_entries * ctypes.sizeof(Sqe)
        sqes = libc.mmap(0, sqes_size, prot, flags, self.fd, IORING_OFF_SQES)
        self._maps.append((sqes, sqes_size))
        for addr, size in self._maps:
            libc.madvise(addr, size, libc.MADV_DONTFORK)
        self._sq_head = sq + params.sq_off.head
        self._sq_tail = sq + params.sq_off.tail
        self._sq_mask = _u32(sq + params.sq_off.ring_mask).value
        self._sq_array = sq + params.sq_off.array
        self._sqes = sqes
        self._cq_head = cq + params.cq_off.head
        self._cq_tail = cq + params.cq_off.tail
        self._cq_mask = _u32(cq + params.cq_off.ring_mask).value
        self._cqes = cq + params.cq_off.cqes
        # IORING_REGISTER_BUFFERS: pin_user_pages(FOLL_WRITE|FOLL_LONGTERM) on the page, from
        # this process's mm. A write-protected COW page is broken (or reused) right here.
        iov = libc.IOVec(self.addr, self.length)
        libc.syscall(
            "io_uring_register", self.fd, IORING_REGISTER_BUFFERS, ctypes.addressof(iov), 1
        )
        self._registered = True
        self._scratch = os.memfd_create("cowlab-iouring", os.MFD_CLOEXEC)
        os.ftruncate(self._scratch, self.length)

    def _submit(self, opcode: int, length: int) -> int:
        tail = _u32(self._sq_tail).value
        index = tail & self._sq_mask
        sqe = Sqe.from_address(self._sqes + index * ctypes.sizeof(Sqe))
        ctypes.memset(ctypes.addressof(sqe), 0, ctypes.sizeof(Sqe))
        sqe.opcode = opcode
        sqe.fd = self._scratch
        sqe.off = 0
        sqe.addr = self.addr
        sqe.len = length
        sqe.buf_index = 0
        sqe.user_data = tail + 1
        _u32(self._sq_array + index * 4).value = index
        # The system call below is the barrier that publishes the new tail to the kernel.
        _u32(self._sq_tail).value = tail + 1
        libc.syscall("io_uring_enter", self.fd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0)
        head = _u32(self._cq_head).value
        if head == _u32(self._cq_tail).value:
            raise OSError(0, "io_uring: no completion after io_uring_enter")
        cqe = Cqe.from_address(self._cqes + (head & self._cq_mask) * ctypes.sizeof(Cqe))
        res = int(cqe.res)
        _u32(self._cq_head).value = head + 1
        if res < 0:
            raise OSError(-res, f"io_uring op {opcode}: {os.strerror(-res)}")
        return res

    def device_read(self) -> bytes:
        """What the device sees: WRITE_FIXED the whole buffer into the scratch file, pread it."""
        self._submit(IORING_OP_WRITE_FIXED, self.length)
        return os.pread(self._scratch, self.length, 0)

    def device_write(self, data: bytes) -> None:
        """The device writes ``data`` at the start of the buffer: READ_FIXED from the scratch."""
        os.pwrite(self._scratch, data, 0)
        self._submit(IORING_OP_READ_FIXED, len(data))

    def close(self) -> None:
        """Unpin the buffer, then unmap the ring and close it.

        Closing the ring alone leaves the unpin to the ring's teardown, which runs later from a
        workqueue (io_ring_exit_work): a fork right after the release would still find the page
        pinned and copy it, which the simulator's release does not. IORING_UNREGISTER_BUFFERS
        unpins before it returns, so the release is complete when reported."""
        try:
            if self.fd >= 0 and self._registered:
                self._registered = False
                libc.syscall("io_uring_register", self.fd, IORING_UNREGISTER_BUFFERS, 0, 0)
        finally:
            for addr, size in self._maps:
                libc.munmap(addr, size)
            self._maps = []
            for fd in (self._scratch, self.fd):
                if fd >= 0:
                    os.close(fd)
            self._scratch = self.fd = -1
