"""The loop a scenario process runs: one real process, its pages real mappings.

A worker receives one request per scenario command from the coordinator, performs it on its own
address space with the real system call or a real CPU load/store, and answers what happened. It
never touches its scenario pages otherwise, so the kernel sees exactly the scenario's accesses.

Every worker is a forked child. `main` never returns into the caller's stack: it ends with
`os._exit`, so an exception in a worker can never unwind into the coordinator's code (or a test
runner's) in the child.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import signal
import socket
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from app.probe import gup_test, libc, protocol, thp
from app.probe.iouring import FixedBuffer
from app.probe.protocol import Message
from app.probe.uffd import WriteProtect

PAGE = libc.PAGE_SIZE
# The address used for a page name the process never mapped: below every scenario slot and
# never mapped, so the system call the command asks for runs and the kernel refuses it itself.
HOLE = 0x5BFFFFFFE000
VALUE_WIDTH = 33  # a value is at most 32 characters; one more NUL ends it


def encode_value(text: str) -> bytes:
    """A scenario value as the bytes stored at the start of its page (NUL-padded)."""
    return text.encode("ascii").ljust(VALUE_WIDTH, b"\0")


def decode_value(data: bytes) -> str:
    """The bytes at the start of a page as a scenario value; NUL bytes (the zero page) are "0"."""
    text = data[:VALUE_WIDTH].split(b"\0", 1)[0]
    return text.decode("ascii", "replace") if text else "0"


def vma_perms(addr: int) -> str | None:
    """The permission string ("rw-p", "r--s", …) of the VMA that contains ``addr``, or None.

    A store without VM_WRITE or a load without VM_READ would kill the process with SIGSEGV;
    asking the kernel's own VMA table first lets the probe record "segv" and keep the process
    alive, as the simulator does.
    """
    with open("/proc/self/maps", "rb") as maps:
        for line in maps:
            bounds, perms = line.split(b" ", 2)[:2]
            start, end = (int(x, 16) for x in bounds.split(b"-"))
            if start <= addr < end:
                return perms.decode()
    return None


def pagemap(addr: int) -> int:
    """The /proc/self/pagemap entry of the page at ``addr`` (bit 63 present, 62 swapped…)."""
    with open("/proc/self/pagemap", "rb") as pm:
        pm.seek((addr // PAGE) * 8)
        return int.from_bytes(pm.read(8), "little")


PFN_MASK = (1 << 55) - 1


def frame_change(before: int, after: int) -> str | None:
    """What a store did to the frame behind a page, from its pagemap entries around the store:
    "new" (nothing was mapped: a first touch or a swap-in), "kept" (the same frame: it was
    writable, or the write fault reused it), "replaced" (a copy on write). None when the PFNs
    are hidden (pagemap shows them to CAP_SYS_ADMIN only)."""
    if not after & PFN_MASK:
        return None
    if not before >> 63 & 1:
        return "new"
    return "kept" if before & PFN_MASK == after & PFN_MASK else "replaced"


def close_fds_except(keep: set[int]) -> None:
    """Close every inherited fd but stdio and ``keep``: a forked process must not keep another
    process's pipes (page references!), rings or sockets alive."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the listdir's own fd is already gone
                os.close(fd)


@dataclass
class Worker:
    name: str
    sock: socket.socket
    # page name -> address of its latest mmap; kept after munmap (and in a child that did not
    # inherit it), so every later command is still performed on that address and answered by
    # the kernel: SIGSEGV for an access, an errno for a system call.
    pages: dict[str, int] = field(default_factory=dict)
    # page name -> (length, backing) of its latest mmap: a huge page is one 2 MiB mapping, which
    # munmap, madvise, mprotect and uffd-wp act on whole; reads, writes and references touch its
    # first 4 KiB subpage (DESIGN.md §10).
    sizes: dict[str, tuple[int, str]] = field(default_factory=dict)
    uffd: WriteProtect | None = None
    rings: dict[str, FixedBuffer] = field(default_factory=dict)

    # -- helpers -------------------------------------------------------------------------
    def _addr(self, msg: Message) -> int:
        return self.pages.get(str(msg["page"]), HOLE)

    def _length(self, msg: Message) -> int:
        return self.sizes.get(str(msg["page"]), (PAGE, "base"))[0]

    def _backing(self, msg: Message) -> str:
        return self.sizes.get(str(msg["page"]), (PAGE, "base"))[1]

    def _faults(self) -> int:
        return len(self.uffd.take_faults()) if self.uffd else 0

    # -- operations ----------------------------------------------------------------------
    def op_mmap(self, msg: Message, fds: list[int]) -> Message:
        page, addr = str(msg["page"]), int(msg["addr"])
        if page in self.pages and vma_perms(self.pages[page]) is not None:
            # The scenario language's rule (one mapping per page name), not the kernel's.
            return {"outcome": "error: already mapped"}
        backing = str(msg.get("backing", "base"))
        if fds:
            prot = libc.PROT_READ if msg["readonly"] else libc.PROT_READ | libc.PROT_WRITE
            kind = libc.MAP_SHARED if msg["shared"] else libc.MAP_PRIVATE
            libc.mmap(addr, PAGE, prot, kind | libc.MAP_FIXED_NOREPLACE, fds[0], 0)
        elif backing == "thp":
            thp.map_thp(addr)
        elif backing == "hugetlb":
            thp.map_hugetlb(addr)
        else:
            flags = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_FIXED_NOREPLACE
            libc.mmap(addr, PAGE, libc.PROT_READ | libc.PROT_WRITE, flags)
        self.pages[page] = addr
        length = PAGE if fds or backing == "base" else thp.HPAGE_SIZE
        self.sizes[page] = (length, "base" if fds else backing)
        return {}

    def op_pte_map(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        perms = vma_perms(addr)
        if perms is not None and self._backing(msg) == "base":
            return {}  # a base page has no PMD to split: nothing to do, as in the simulator
        # Anything else gets the mprotect() trick, and the kernel answers for what is not a THP:
        # a page not mapped (ENOMEM), a hugetlb VMA, which cannot be split inside its huge page
        # (EINVAL).
        missing = thp.pte_map(addr, perms or "rw")
        if missing is not None:
            return {"skip": missing}
        return {}

    def op_read(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        perms = vma_perms(addr)
        if perms is None or "r" not in perms:
            return {"outcome": "segv"}
        return {"value": decode_value(libc.load(addr, VALUE_WIDTH))}

    def op_write(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        perms = vma_perms(addr)
        if perms is None or "w" not in perms:
            return {"outcome": "segv"}
        before = pagemap(addr)
        libc.store(addr, encode_value(str(msg["value"])))
        if not before >> 62 & 3 and self._backing(msg) == "thp":
            # Neither present nor swapped: this write fault brought the THP in, and the
            # simulator's is PMD-mapped.
            missing = thp.check_faulted(addr)
            if missing is not None:
                return {"skip": missing}
        frame = frame_change(before, pagemap(addr))
        return {} if frame is None else {"frame": frame}

    def op_forcewrite(self, msg: Message, fds: list[int]) -> Message:
        # /proc/self/mem: access_remote_vm() -> GUP with FOLL_FORCE|FOLL_WRITE, which may write
        # into a mapping without VM_WRITE (a private file mapping gets an anonymous COW copy).
        addr = self._addr(msg)
        fd = os.open("/proc/self/mem", os.O_RDWR)
        try:
            os.pwrite(fd, encode_value(str(msg["value"])), addr)
        finally:
            os.close(fd)
        return {}

    def op_fork(self, msg: Message, fds: list[int]) -> Message:
        mine, theirs = protocol.pair()
        pid = os.fork()
        if pid == 0:
            mine.close()
            self._become_child(theirs)
            return {"__child__": True}
        theirs.close()
        try:
            protocol.send(self.sock, {"pid": pid, "userfaults": self._faults()}, [mine.fileno()])
        finally:
            mine.close()
        return {"__sent__": True}

    def _become_child(self, sock: socket.socket) -> None:
        """Turn this forked copy into the scenario's child process.

        The parent's references are not the child's: close the inherited userfaultfd (fork drops
        VM_UFFD_WP from the child's VMAs anyway, without UFFD_FEATURE_EVENT_FORK) and io_uring
        rings (their mappings were MADV_DONTFORK). Pages under MADV_DONTFORK are holes in the
        child, which the kernel's VMA table shows at the next access.
        """
        self.sock.close()
        self.sock = sock
        if self.uffd is not None:
            for fd in (self.uffd.fd, self.uffd._stop_r, self.uffd._stop_w):
                os.close(fd)
            self.uffd = None
        for ring in self.rings.values():
            for fd in (ring.fd, ring._scratch):
                os.close(fd)
        self.rings = {}
        close_fds_except({sock.fileno()})

    def op_exit(self, msg: Message, fds: list[int]) -> Message:
        return {"__exit__": True}

    def op_reap(self, msg: Message, fds: list[int]) -> Message:
        _pid, status = os.waitpid(int(msg["pid"]), 0)
        return {"status": status}

    def op_munmap(self, msg: Message, fds: list[int]) -> Message:
        # Unmapping a hole succeeds, as it does in the kernel.
        libc.munmap(self._addr(msg), self._length(msg))
        return {}

    def op_madvise(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        before = pagemap(addr)
        libc.madvise(addr, self._length(msg), int(msg["advice"]))
        if int(msg["advice"]) != libc.MADV_PAGEOUT or (before >> 63 & 1 and before >> 61 & 1):
            # A page-cache page (pagemap bit 61) leaves the page table when it is paged out,
            # exactly as when it is dropped: pagemap cannot tell which happened, so say nothing.
            return {}
        entry = pagemap(addr)
        return {"present": bool(entry >> 63 & 1), "swapped": bool(entry >> 62 & 1)}

    def op_mprotect(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        prot = libc.PROT_READ | (libc.PROT_WRITE if msg["writable"] else 0)
        libc.mprotect(addr, self._length(msg), prot)
        return {}

    def op_clear_refs(self, msg: Message, fds: list[int]) -> Message:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("4")
        return {}

    def op_uffd_wp(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        if self.uffd is None:
            self.uffd = WriteProtect()
        mapped = vma_perms(addr) is not None
        self.uffd.protect(addr, self._length(msg), bool(msg["on"]), mapped=mapped)
        return {}

    def op_vmsplice(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        r, w = os.pipe()
        try:
            libc.vmsplice(w, addr, PAGE)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        try:
            protocol.send(self.sock, {"userfaults": self._faults()}, [r])
        finally:
            os.close(r)
        return {"__sent__": True}

    def op_iouring(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        self.rings[str(msg["ref"])] = FixedBuffer(addr, PAGE)
        return {}

    def op_pin(self, msg: Message, fds: list[int]) -> Message:
        addr = self._addr(msg)
        fd = gup_test.pin_longterm(addr, PAGE, write=bool(msg["write"]), fast=bool(msg["fast"]))
        try:
            protocol.send(self.sock, {"userfaults": self._faults()}, [fd])
        finally:
            os.close(fd)
        return {"__sent__": True}

    def op_ref_read(self, msg: Message, fds: list[int]) -> Message:
        return {"value": decode_value(self.rings[str(msg["ref"])].device_read())}

    def op_ref_write(self, msg: Message, fds: list[int]) -> Message:
        self.rings[str(msg["ref"])].device_write(encode_value(str(msg["value"])))
        return {}

    def op_ref_release(self, msg: Message, fds: list[int]) -> Message:
        self.rings.pop(str(msg["ref"])).close()
        return {}

    # -- the loop ------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                msg, fds = protocol.recv(self.sock)
            except protocol.ChannelClosed:
                return  # the coordinator is gone: nothing left to do
            handler = getattr(self, f"op_{msg.get('op')}", None)
            reply: dict[str, Any]
            try:
                if handler is None:
                    raise ValueError(f"unknown op {msg.get('op')!r}")
                reply = handler(msg, fds)
            except OSError as exc:
                code = errno_mod.errorcode.get(exc.errno or 0, str(exc.errno))
                reply = {"outcome": f"error: {code}", "detail": str(exc)}
            finally:
                for fd in fds:
                    os.close(fd)
            if reply.pop("__child__", False) or reply.pop("__sent__", False):
                # A forked child serves the coordinator on its new channel; other operations
                # that pass an fd have answered already.
                continue
            leaving = reply.pop("__exit__", False)
            reply.setdefault("userfaults", self._faults())
            protocol.send(self.sock, reply)
            if leaving:
                return


def main(name: str, sock: socket.socket) -> int:
    """Run a root worker (a fresh fork of the coordinator); returns its exit status."""
    try:
        # The runner's SIGTERM handler kills the probe's whole group (`isolate.tie_to_caller`);
        # a scenario process is a plain process, which SIGTERM ends alone.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # the coordinator's stdout carries its result: never write to it
        os.close(devnull)
        close_fds_except({sock.fileno()})
        Worker(name, sock).serve()
        return 0
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        return 70
