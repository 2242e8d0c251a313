"""The coordinator: run a scenario on the running kernel, one command at a time.

Each scenario process is a real process (a forked worker, `app.probe.worker`); `P fork C` makes
P's worker really fork, the child becoming C's worker. Each scenario page is one page-sized mmap
at an address of its own (never reused within a run, so a stale name cannot reach a new page);
each value is real bytes at the start of the page. References are real objects:

- `vmsplice` — a pipe the owner vmsplice()d the page into. The owner hands the pipe's read end to
  the coordinator (SCM_RIGHTS) and keeps nothing, so a later fork cannot duplicate the reference.
  `R read` tee()s the pipe into a scratch pipe and reads that: the pipe keeps its page references
  and the bytes read are the page's *current* contents, as the simulator's non-destructive read.
- `iouring` — an io_uring fixed buffer registered by the owner; it stays in the owner (io_uring
  fds cannot be passed over Unix sockets since Linux 6.7), which performs `R read`/`R write`.
- `pin … longterm` — a gup_test pin; the fd goes to the coordinator, which READs through it.

The engine releases a process's references when it exits ("its file descriptors close"); the
coordinator does the same with the pipes and pins it holds for that process.

Everything is bounded: every request to a worker has the run's deadline as its timeout, every
child is reaped (the coordinator is a child subreaper, so orphans of exited scenario processes
come back to it), and every fd and mapping is released on the way out — on success, on a skip, on
a timeout and on an error. The coordinator is meant to run in its own subprocess
(`app.probe.isolate`), never inside a web server.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

from app.probe import capabilities, gup_test, hugetlb, libc, protocol, thp, worker
from app.probe.capabilities import Capabilities
from app.probe.protocol import Message
from engine import commands as c
from engine.machine import written_value
from engine.syntax import format_command, reference_names

PAGE = libc.PAGE_SIZE
# Scenario pages live in their own corner of the address space: slot n at BASE + 2n pages. The
# gap page keeps two scenario pages from merging into one VMA (the engine maps each page as a
# VMA of its own); MAP_FIXED_NOREPLACE refuses to clobber anything already there.
ADDRESS_BASE = 0x5C0000000000
# Huge pages (`backing=thp|hugetlb`) are 2 MiB-aligned: slot n at HUGE_BASE + 4 MiB·n, a 2 MiB
# gap after each, in the same corner (the audit checks it too).
HUGE_BASE = ADDRESS_BASE + (1 << 39)
REAP_GRACE = 5.0


class Skip(Exception):
    """The scenario cannot be run faithfully on this kernel; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KernelStep:
    index: int
    command: str
    outcome: str  # "ok", "segv", "refused", "error: EFAULT", …
    value: str | None = None  # what a read observed
    userfaults: int = 0  # userfaultfd write-protect faults delivered during the step
    frame: str | None = None  # a store's effect on the frame (`worker.frame_change`), as root


@dataclass(frozen=True, slots=True)
class KernelRun:
    kernel: str
    steps: tuple[KernelStep, ...]
    skipped: str | None = None
    pids: tuple[int, ...] = ()  # every process the run created, for leak checks
    leaks: tuple[str, ...] = ()  # what the coordinator still held after its teardown (bugs)

    def to_json(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "skipped": self.skipped,
            "pids": list(self.pids),
            "leaks": list(self.leaks),
            "steps": [
                {
                    "index": s.index,
                    "command": s.command,
                    "outcome": s.outcome,
                    "value": s.value,
                    "userfaults": s.userfaults,
                    "frame": s.frame,
                }
                for s in self.steps
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> KernelRun:
        raw_steps = data.get("steps")
        steps: list[KernelStep] = []
        for s in raw_steps if isinstance(raw_steps, list) else []:
            value = s.get("value")
            frame = s.get("frame")
            steps.append(
                KernelStep(
                    index=int(s["index"]),
                    command=str(s["command"]),
                    outcome=str(s["outcome"]),
                    value=None if value is None else str(value),
                    userfaults=int(s.get("userfaults", 0)),
                    frame=None if frame is None else str(frame),
                )
            )
        skipped = data.get("skipped")
        pids = data.get("pids")
        leaks = data.get("leaks")
        return cls(
            kernel=str(data.get("kernel", "")),
            steps=tuple(steps),
            skipped=None if skipped is None else str(skipped),
            pids=tuple(int(p) for p in pids) if isinstance(pids, list) else (),
            leaks=tuple(str(x) for x in leaks) if isinstance(leaks, list) else (),
        )


# ------------------------------------------------------------------------ what can't be run
def static_skip(scenario: c.Scenario, caps: Capabilities) -> str | None:
    """Why this kernel (or user space in general) cannot run the scenario, before running it."""
    names = reference_names(scenario.commands)
    takes: dict[str, c.TakeRef] = {}
    # (process, page) of each shared file mapping: MADV_PAGEOUT unmaps its page-cache page
    # without a swap device (shmem without swap is unmapped, then kept in the page cache); and of
    # each hugetlb mapping, which MADV_PAGEOUT refuses (EINVAL) with or without swap.
    no_swap_needed: set[tuple[str, str]] = set()
    for cmd, name in zip(scenario.commands, names, strict=True):
        _track_no_swap_needed(no_swap_needed, cmd)
        reason: str | None = None
        if isinstance(cmd, c.Mmap) and cmd.backing == "thp":
            reason = caps.thp
        elif isinstance(cmd, c.Mmap) and cmd.backing == "hugetlb":
            reason = caps.hugetlb
        elif isinstance(cmd, c.TakeRef):
            if name is not None:
                takes[name] = cmd
            if cmd.kind == "get":
                reason = (
                    "a FOLL_GET reference other than vmsplice cannot be held across steps from "
                    "user space (gup_test only keeps long-term pins)"
                )
            elif cmd.kind == "pin" and not cmd.longterm:
                reason = "gup_test can hold only FOLL_LONGTERM pins across steps"
            elif cmd.kind == "pin":
                reason = caps.gup_test
            elif cmd.kind == "iouring":
                reason = caps.iouring
        elif isinstance(cmd, c.RefWrite):
            taken = takes.get(cmd.ref)
            if taken is not None and taken.kind == "pin" and taken.write:
                reason = "gup_test cannot write through a pin (no device to DMA with)"
        elif isinstance(cmd, c.ForceWrite):
            reason = (
                "the racy Dirty COW exploit is not run on a real kernel"
                if cmd.race
                else caps.forcewrite
            )
        elif isinstance(cmd, c.Swapout):
            reason = None if (cmd.proc, cmd.page) in no_swap_needed else caps.swap
        elif isinstance(cmd, c.ClearSoftdirty):
            reason = caps.softdirty
        elif isinstance(cmd, c.UffdWp):
            reason = caps.uffd_wp
        if reason is not None:
            return f"{reason} (needed by `{format_command(cmd)}`)"
    return None


def _track_no_swap_needed(shared: set[tuple[str, str]], cmd: c.Command) -> None:
    if isinstance(cmd, c.Mmap):
        for page in cmd.pages:
            if (cmd.file is not None and cmd.shared) or cmd.backing == "hugetlb":
                shared.add((cmd.proc, page))
            else:
                shared.discard((cmd.proc, page))
    elif isinstance(cmd, c.Munmap):
        shared.discard((cmd.proc, cmd.page))
    elif isinstance(cmd, c.Fork):
        shared.update({(cmd.child, page) for proc, page in set(shared) if proc == cmd.proc})
    elif isinstance(cmd, c.Exit):
        shared.difference_update({key for key in shared if key[0] == cmd.proc})


# --------------------------------------------------------------------------- the coordinator
@dataclass
class _Proc:
    name: str
    pid: int
    sock: socket.socket
    reaper: int  # the pid that must waitpid() it: its parent, or us once it is orphaned


@dataclass
class _Ref:
    name: str
    kind: Literal["pipe", "gup", "iouring"]
    owner: str
    fd: int = -1  # the pipe's read end or the gup_test file (held by the coordinator)


@dataclass
class Coordinator:
    deadline: float
    procs: dict[str, _Proc] = field(default_factory=dict)
    refs: dict[str, _Ref] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)  # file name -> memfd
    pids: list[int] = field(default_factory=list)
    next_slot: int = 0
    next_huge_slot: int = 0
    me: int = field(default_factory=os.getpid)

    # -- plumbing --------------------------------------------------------------------------
    def _remaining(self, step: int) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Skip(f"timed out at step {step}")
        return remaining

    def _ask(
        self, proc: _Proc, step: int, msg: Message, fds: list[int] | None = None
    ) -> tuple[Message, list[int]]:
        proc.sock.settimeout(self._remaining(step))
        try:
            protocol.send(proc.sock, msg, fds)
            return protocol.recv(proc.sock)
        except TimeoutError:
            raise Skip(f"timed out at step {step} waiting for {proc.name}") from None
        except (protocol.ChannelClosed, ConnectionError) as exc:
            status = self._reap(proc, step)
            raise Skip(f"process {proc.name} died unexpectedly at step {step} ({status})") from exc

    def _ask_simple(self, proc: _Proc, step: int, msg: Message) -> Message:
        reply, fds = self._ask(proc, step, msg)
        for fd in fds:
            os.close(fd)
        return reply

    def _wait(self, pid: int, step: int) -> str:
        """waitpid(pid) without ever blocking past the deadline."""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return _describe_status(status)
            if time.monotonic() > self.deadline:
                raise Skip(f"timed out at step {step} reaping pid {pid}")
            time.sleep(0.001)

    def _reap(self, proc: _Proc, step: int) -> str:
        proc.sock.close()
        del self.procs[proc.name]
        for other in self.procs.values():
            if other.reaper == proc.pid:
                other.reaper = self.me  # orphans reparent to the nearest subreaper: us
        if proc.reaper == self.me:
            return self._wait(proc.pid, step)
        parent = next(p for p in self.procs.values() if p.pid == proc.reaper)
        status = self._ask_simple(parent, step, {"op": "reap", "pid": proc.pid}).get("status")
        return _describe_status(int(status)) if isinstance(status, int) else "reaped"

    def _spawn_root(self, name: str) -> _Proc:
        mine, theirs = protocol.pair()
        pid = os.fork()
        if pid == 0:  # the new scenario process: never return into the coordinator's stack
            status = 70
            try:
                mine.close()
                status = worker.main(name, theirs)
            finally:
                os._exit(status)
        theirs.close()
        self.pids.append(pid)
        proc = _Proc(name, pid, mine, self.me)
        self.procs[name] = proc
        return proc

    def _proc(self, name: str) -> _Proc | None:
        return self.procs.get(name)

    # -- running -------------------------------------------------------------------------
    def run(self, scenario: c.Scenario) -> list[KernelStep]:
        steps: list[KernelStep] = []
        names = reference_names(scenario.commands)
        try:
            for index, (cmd, ref_name) in enumerate(zip(scenario.commands, names, strict=True), 1):
                steps.append(self.step(index, cmd, ref_name))
        except Skip as skip:
            raise _Partial(skip.reason, steps) from None
        return steps

    def step(self, k: int, cmd: c.Command, ref_name: str | None) -> KernelStep:
        text = format_command(cmd)
        reply: Message
        if isinstance(cmd, c.FileDecl):
            return KernelStep(k, text, self._file(cmd))
        if isinstance(cmd, c.RefRead | c.RefWrite | c.RefRelease):
            return self._ref_command(k, text, cmd)
        proc = self._proc(cmd.proc)
        if proc is None and isinstance(cmd, c.Mmap):
            proc = self._spawn_root(cmd.proc)
        if proc is None:
            return KernelStep(k, text, "error: no such process")
        if isinstance(cmd, c.Mmap):
            return self._mmap(k, text, proc, cmd)
        if isinstance(cmd, c.Fork):
            return self._fork(k, text, proc, cmd)
        if isinstance(cmd, c.Exit):
            self._exit(k, proc)
            return KernelStep(k, text, "ok")
        if isinstance(cmd, c.TakeRef):
            assert ref_name is not None
            return self._take(k, text, proc, cmd, ref_name)
        msg = _request(cmd, k)
        reply = self._ask_simple(proc, k, msg)
        if "skip" in reply:
            raise Skip(f"{reply['skip']} (at step {k}, `{text}`)")
        if isinstance(cmd, c.Swapout) and "present" in reply:
            # What MADV_PAGEOUT did, from /proc/self/pagemap: it may decline a page (shared,
            # pinned, zero page, not on the LRU yet), and that is an observation too.
            if reply.get("swapped"):
                reply["value"] = "swapped out"
            elif reply.get("present"):
                reply["value"] = "stays resident"
            else:
                reply["value"] = "nothing to page out"
        return _step(k, text, reply)

    def _file(self, cmd: c.FileDecl) -> str:
        if cmd.name in self.files:
            return "error: name in use"
        fd = os.memfd_create(f"cowlab-{cmd.name}", os.MFD_CLOEXEC)
        os.pwrite(fd, worker.encode_value(cmd.value), 0)
        os.ftruncate(fd, PAGE)
        self.files[cmd.name] = fd
        return "ok"

    def _mmap(self, k: int, text: str, proc: _Proc, cmd: c.Mmap) -> KernelStep:
        if cmd.file is not None and cmd.file not in self.files:
            return KernelStep(k, text, "error: ENOENT")  # open() of a file that is not there
        outcomes = []
        for page in cmd.pages:
            if cmd.backing == "base":
                addr = ADDRESS_BASE + 2 * PAGE * self.next_slot
                self.next_slot += 1
            else:
                addr = HUGE_BASE + 2 * thp.HPAGE_SIZE * self.next_huge_slot
                self.next_huge_slot += 1
            msg: Message = {
                "op": "mmap",
                "page": page,
                "addr": addr,
                "shared": cmd.shared,
                "readonly": cmd.readonly,
                "backing": cmd.backing,
            }
            fds: list[int] = []
            if cmd.file is not None:
                # A read-only file is opened O_RDONLY, so a shared mapping of it lacks
                # VM_MAYWRITE (mprotect rw fails) while a private one stays a COW mapping.
                flags = os.O_RDONLY if cmd.readonly else os.O_RDWR
                fds = [os.open(f"/proc/self/fd/{self.files[cmd.file]}", flags | os.O_CLOEXEC)]
            try:
                reply, extra = self._ask(proc, k, msg, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            for fd in extra:
                os.close(fd)
            outcome = str(reply.get("outcome", "ok"))
            if "skip" in reply:
                raise Skip(f"{reply['skip']} (at step {k}, `{text}`)")
            if cmd.backing != "base" and outcome.startswith("error: E"):
                # The simulator's huge page is always there; the kernel's may not be (an empty
                # hugetlb pool, a THP the allocator could not find): another experiment.
                raise Skip(f"the kernel could not map the huge page at step {k} ({outcome})")
            outcomes.append(outcome)
        bad = [o for o in outcomes if o != "ok"]
        return KernelStep(k, text, bad[0] if bad else "ok")

    def _fork(self, k: int, text: str, proc: _Proc, cmd: c.Fork) -> KernelStep:
        if cmd.child in self.procs or cmd.child in self.refs or cmd.child in self.files:
            return KernelStep(k, text, "error: name in use")
        reply, fds = self._ask(proc, k, {"op": "fork"})
        if "pid" not in reply or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return _step(k, text, reply)
        pid = int(reply["pid"])
        self.pids.append(pid)
        self.procs[cmd.child] = _Proc(cmd.child, pid, socket.socket(fileno=fds[0]), proc.pid)
        return _step(k, text, reply)

    def _exit(self, k: int, proc: _Proc) -> None:
        self._ask_simple(proc, k, {"op": "exit"})
        for ref in [r for r in self.refs.values() if r.owner == proc.name]:
            # The engine releases a process's references at exit; a ring dies with its owner.
            self._release(ref)
        self._reap(proc, k)

    def _take(self, k: int, text: str, proc: _Proc, cmd: c.TakeRef, name: str) -> KernelStep:
        if name in self.procs or name in self.refs or name in self.files:
            return KernelStep(k, text, "error: name in use")
        if cmd.kind == "vmsplice":
            reply, fds = self._ask(proc, k, {"op": "vmsplice", "page": cmd.page})
            kind: Literal["pipe", "gup", "iouring"] = "pipe"
        elif cmd.kind == "pin":
            msg = {"op": "pin", "page": cmd.page, "write": cmd.write, "fast": cmd.fast}
            reply, fds = self._ask(proc, k, msg)
            kind = "gup"
        elif cmd.kind == "iouring":
            reply, fds = self._ask(proc, k, {"op": "iouring", "page": cmd.page, "ref": name})
            kind = "iouring"
        else:  # static_skip refuses `get` before anything runs
            raise Skip(f"`{text}` cannot be performed from user space")
        if str(reply.get("outcome", "ok")) == "ok":
            self.refs[name] = _Ref(name, kind, cmd.proc, fds[0] if fds else -1)
        else:
            for fd in fds:
                os.close(fd)
            if kind == "iouring" and str(reply["outcome"]) in ("error: EPERM", "error: ENOMEM"):
                raise Skip(f"io_uring buffer registration refused ({reply['outcome']})")
            if kind == "gup" and reply["outcome"] == "error: EINVAL":
                # Before gup_test kept its state per open file, it held one pinned range for
                # the whole system: a second START fails with EINVAL.
                raise Skip("gup_test refused the pin (it may hold only one pinned range)")
        return _step(k, text, reply)

    def _release(self, ref: _Ref) -> None:
        del self.refs[ref.name]
        if ref.kind == "gup":
            with contextlib.suppress(OSError):
                libc.ioctl(ref.fd, gup_test.PIN_LONGTERM_TEST_STOP, None)
        if ref.fd >= 0:
            os.close(ref.fd)

    def _ref_command(
        self, k: int, text: str, cmd: c.RefRead | c.RefWrite | c.RefRelease
    ) -> KernelStep:
        ref = self.refs.get(cmd.ref)
        if ref is None:
            return KernelStep(k, text, "error: no such reference")
        owner = self.procs.get(ref.owner)
        if ref.kind == "iouring":
            assert owner is not None  # the owner's exit released the ring
            op = {c.RefRead: "ref_read", c.RefWrite: "ref_write", c.RefRelease: "ref_release"}
            msg: Message = {"op": op[type(cmd)], "ref": cmd.ref}
            if isinstance(cmd, c.RefWrite):
                msg["value"] = cmd.value
            reply = self._ask_simple(owner, k, msg)
            if isinstance(cmd, c.RefRelease):
                del self.refs[cmd.ref]
            return _step(k, text, reply)
        if isinstance(cmd, c.RefRelease):
            self._release(ref)
            return KernelStep(k, text, "ok")
        if isinstance(cmd, c.RefWrite):
            # A pipe and a R/O pin are read-only references; the engine refuses with -EFAULT.
            return KernelStep(k, text, "refused")
        try:
            data = _tee_read(ref.fd) if ref.kind == "pipe" else gup_test.read_pinned(ref.fd, PAGE)
        except OSError as exc:
            return KernelStep(k, text, f"error: {errno_mod.errorcode.get(exc.errno or 0, '?')}")
        return KernelStep(k, text, "ok", worker.decode_value(data))

    # -- teardown ------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Release everything, whatever state the run is in; returns what could not be reaped."""
        for ref in list(self.refs.values()):
            with contextlib.suppress(OSError):
                self._release(ref)
        for fd in self.files.values():
            os.close(fd)
        self.files.clear()
        for proc in self.procs.values():
            proc.sock.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        self.procs.clear()
        # Reap every child, including orphaned grandchildren reparented to us (subreaper).
        give_up = time.monotonic() + REAP_GRACE
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return []
            if pid == 0:
                if time.monotonic() > give_up:
                    return [f"children still running after {REAP_GRACE}s"]
                time.sleep(0.002)


class _Partial(Exception):
    def __init__(self, reason: str, steps: list[KernelStep]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.steps = steps


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _tee_read(pipe_r: int) -> bytes:
    """Read what the pipe holds without consuming it: tee() into a scratch pipe, read that."""
    scratch_r, scratch_w = os.pipe()
    try:
        n = libc.tee(pipe_r, scratch_w, PAGE)
        data = b""
        while len(data) < n:
            chunk = os.read(scratch_r, n - len(data))
            if not chunk:
                break
            data += chunk
        return data
    finally:
        os.close(scratch_r)
        os.close(scratch_w)


def _request(cmd: c.Command, k: int) -> Message:
    """The worker request for the commands that need nothing but their worker."""
    if isinstance(cmd, c.Read):
        return {"op": "read", "page": cmd.page}
    if isinstance(cmd, c.Write):
        return {"op": "write", "page": cmd.page, "value": written_value(cmd, k).text}
    if isinstance(cmd, c.ForceWrite):
        return {"op": "forcewrite", "page": cmd.page, "value": cmd.value}
    if isinstance(cmd, c.Munmap):
        return {"op": "munmap", "page": cmd.page}
    if isinstance(cmd, c.Dontneed):
        return {"op": "madvise", "page": cmd.page, "advice": libc.MADV_DONTNEED}
    if isinstance(cmd, c.Dontfork):
        advice = libc.MADV_DOFORK if cmd.dofork else libc.MADV_DONTFORK
        return {"op": "madvise", "page": cmd.page, "advice": advice}
    if isinstance(cmd, c.Swapout):
        return {"op": "madvise", "page": cmd.page, "advice": libc.MADV_PAGEOUT}
    if isinstance(cmd, c.Mprotect):
        return {"op": "mprotect", "page": cmd.page, "writable": cmd.writable}
    if isinstance(cmd, c.ClearSoftdirty):
        return {"op": "clear_refs"}
    if isinstance(cmd, c.UffdWp):
        return {"op": "uffd_wp", "page": cmd.page, "on": cmd.on}
    if isinstance(cmd, c.PteMap):
        return {"op": "pte_map", "page": cmd.page}
    raise AssertionError(f"no worker request for {type(cmd).__name__}")


def _step(k: int, text: str, reply: Message) -> KernelStep:
    value = reply.get("value")
    frame = reply.get("frame")
    return KernelStep(
        k,
        text,
        str(reply.get("outcome", "ok")),
        None if value is None else str(value),
        int(reply.get("userfaults", 0)),
        None if frame is None else str(frame),
    )


CLEANUP_FAILED = "probe could not clean up after itself; the server's log has the details"


def execute(
    scenario: c.Scenario, timeout: float = 10.0, caps: Capabilities | None = None
) -> KernelRun:
    """Run ``scenario`` on this kernel from this process (use `app.probe.isolate` instead).

    Makes this process a child subreaper for the duration, so it can reap orphaned scenario
    processes; every process it creates is reaped before it returns.
    """
    release = capabilities.kernel_release()
    caps = caps if caps is not None else capabilities.detect()
    reason = static_skip(scenario, caps)
    if reason is not None:
        return KernelRun(release, (), reason)
    huge_pages = hugetlb_pages(scenario)
    if huge_pages:
        reason = hugetlb.reserve(huge_pages)
        if reason is not None:
            return KernelRun(release, (), reason)
    try:
        return _execute(scenario, timeout, release)
    finally:
        if huge_pages:
            hugetlb.release()


def hugetlb_pages(scenario: c.Scenario) -> int:
    """How many hugetlb pages a run may hold at once: each mapping in each process (a copy on
    write per process), plus one per reference (a pipe keeps a page after the process let it
    go); at most `hugetlb.MAX_PAGES`."""
    mappings = sum(
        len(cmd.pages)
        for cmd in scenario.commands
        if isinstance(cmd, c.Mmap) and cmd.backing == "hugetlb"
    )
    if not mappings:
        return 0
    processes = len(
        {getattr(cmd, "proc", "") for cmd in scenario.commands}
        | {cmd.child for cmd in scenario.commands if isinstance(cmd, c.Fork)}
    )
    references = sum(isinstance(cmd, c.TakeRef) for cmd in scenario.commands)
    return min(hugetlb.MAX_PAGES, mappings * processes + references)


def _execute(scenario: c.Scenario, timeout: float, release: str) -> KernelRun:
    libc.set_child_subreaper()
    fds_before = set(os.listdir("/proc/self/fd"))
    coord = Coordinator(deadline=time.monotonic() + timeout)
    steps: list[KernelStep] = []
    skipped: str | None = None
    try:
        steps = coord.run(scenario)
    except _Partial as partial:
        steps, skipped = partial.steps, partial.reason
    finally:
        leftovers = coord.teardown()
    leaks = leftovers + audit(fds_before)
    if leaks and skipped is None:
        # What was left (paths, fds, mappings) is in `leaks`, which the caller logs; the
        # reason may be shown to a web visitor, so it names no detail of the server.
        skipped = CLEANUP_FAILED
    return KernelRun(release, tuple(steps), skipped, tuple(coord.pids), tuple(leaks))


def audit(fds_before: set[str]) -> list[str]:
    """What this process still holds after a run: children, file descriptors, scenario-range
    mappings. Always empty unless the coordinator has a bug; the tests hold it to that."""
    leaks: list[str] = []
    try:
        pid, _status = os.waitpid(-1, os.WNOHANG)
        leaks.append(f"child process {pid} left unreaped" if pid else "child processes left")
    except ChildProcessError:
        pass  # no children at all: the only good answer
    listing = os.listdir("/proc/self/fd")
    extra = [fd for fd in set(listing) - fds_before if os.path.exists(f"/proc/self/fd/{fd}")]
    # listdir's own descriptor is closed by the time we look: os.path.exists filters it out.
    if extra:
        targets = sorted(os.readlink(f"/proc/self/fd/{fd}") for fd in extra)
        leaks.append(f"file descriptors left open: {', '.join(targets)}")
    with open("/proc/self/maps") as maps:
        for line in maps:
            start = int(line.split("-", 1)[0], 16)
            if ADDRESS_BASE - 2 * PAGE <= start < ADDRESS_BASE + (1 << 40):  # HUGE_BASE too
                leaks.append(f"scenario mapping left in the coordinator: {line.strip()}")
    return leaks
