"""Reaping probe processes orphaned by a killed web worker, in the `cowlab serve` supervisor.

With ``--workers N`` uvicorn's supervisor process starts the workers, and a worker starts a probe
runner per probe. When a worker is killed mid-probe, the runner kills its whole process group
(`app.probe.isolate.tie_to_caller`), but its processes are now orphans: the kernel hands them to
the nearest child subreaper, else to PID 1. In a container PID 1 is often `cowlab serve` itself,
which reaps nothing, so each would stay a zombie for the container's life. The supervisor
therefore makes itself a child subreaper and reaps the orphans that are probe processes
(recognised by their name, which every probe process inherits). It leaves every other child
alone: uvicorn reaps its workers itself and must read their exit status to replace them.
"""

from __future__ import annotations

import os
import threading
import time

from app.probe import hugetlb, libc
from app.probe.isolate import PROCESS_NAME

NOT_OURS_PAUSE = 0.2  # a worker's zombie is uvicorn's to reap; look again after this


def _name(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as comm:
            return comm.read().rstrip(b"\n")
    except OSError:
        return b""


def reap_once(block: bool) -> int | None:
    """Reap one exited probe process among this process's children; its pid, else None.

    ``waitid(WNOWAIT)`` looks at an exited child without reaping it, so a worker's exit status
    stays for uvicorn to collect.
    """
    flags = os.WEXITED | os.WNOWAIT | (0 if block else os.WNOHANG)
    try:
        info = os.waitid(os.P_ALL, 0, flags)
    except ChildProcessError:
        return None
    if info is None or _name(info.si_pid) != PROCESS_NAME:
        return None
    try:
        # WNOHANG: had uvicorn reaped this pid meanwhile and the pid been reused, never block.
        pid, _status = os.waitpid(info.si_pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if pid:
        # An orphaned runner died with its worker: the hugetlb pages it held go back.
        hugetlb.restore_abandoned()
    return pid or None


def _reap_forever() -> None:
    while True:
        if reap_once(block=True) is None:
            time.sleep(NOT_OURS_PAUSE)


def start() -> threading.Thread:
    """Make this process a child subreaper and reap orphaned probe processes in a daemon
    thread. For the supervisor of several workers only: a process that runs probes itself
    would have its own runner's exit status taken from it."""
    libc.set_child_subreaper()
    thread = threading.Thread(target=_reap_forever, name="cowlab-probe-reaper", daemon=True)
    thread.start()
    return thread
