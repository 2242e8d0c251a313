"""A probe's processes live no longer than the web worker that asked for them.

`cowlab serve --workers 2` runs for real on a loopback port; a probe starts in one worker, a
scenario process is stopped so that the run cannot finish on its own, and the worker is
SIGKILLed. The runner and every scenario process must then be gone — not running, and not left
as zombies either — while the server goes on answering from its other worker.

The server runs under a stand-in for a container's PID 1 without an init: a child subreaper
that waits for its own child only, so an orphan handed to it would stay a zombie. Orphans go to
the nearest subreaper, so the supervisor must take them first and reap them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.probe.isolate import PROCESS_NAME

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
BOUND = 5.0  # seconds for every probe process to be gone after the worker's death
NO_INIT = """\
import ctypes, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come here
sys.exit(subprocess.Popen(sys.argv[1:]).wait())  # and are never reaped
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid``, or None when /proc has no entry for it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def name(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/comm").read_bytes().rstrip(b"\n")
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := stat(int(entry))) is not None and info[1] == pid:
            found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    every, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        every += kids
        todo += kids
    return every


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def serve() -> Iterator[tuple[int, str]]:
    """`cowlab serve --workers 2` on a free loopback port under a PID 1 that reaps nothing:
    (the supervisor's pid, base URL)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    serve = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(
        [sys.executable, "-c", NO_INIT, *serve],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not (supervisor := children(server.pid)) or not _answers(base):
            assert server.poll() is None, "cowlab serve exited"
            assert time.monotonic() < deadline, "cowlab serve did not start"
            time.sleep(0.1)
        yield supervisor[0], base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _answers(base: str) -> bool:
    try:
        return get(base + "/api/v1/probe") == 200
    except OSError:
        return False


def scenario(attempt: int) -> str:
    """Thirty forks, each child reading: long enough to catch mid-run (and new per attempt, so
    no result comes from a worker's cache)."""
    lines = ["P mmap a", f"P write a v{attempt}"]
    for i in range(30):
        lines += [f"P fork C{i}", f"C{i} read a"]
    return "\n".join(lines)


def post_probe(base: str, text: str, answers: list[int]) -> None:
    """POST a probe; its status goes to ``answers`` if one comes back."""
    request = urllib.request.Request(
        base + "/api/v1/probe",
        data=json.dumps({"scenario": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    # The worker answering it is killed: the connection breaks, as expected.
    with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=30) as response:
        answers.append(response.status)


def catch_a_probe(supervisor: int, base: str, answers: list[int]) -> tuple[int, int, int] | None:
    """Start a probe and stop one of its scenario processes: (worker, runner, stopped), or
    None if no run could be caught before it ended."""
    for attempt in range(5):
        answers.clear()
        args = (base, scenario(attempt), answers)
        thread = threading.Thread(target=post_probe, args=args, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while thread.is_alive() and time.monotonic() < deadline:
            for worker in children(supervisor):
                for runner in children(worker):
                    if name(runner) != PROCESS_NAME:
                        continue
                    for process in children(runner):
                        os.kill(process, signal.SIGSTOP)  # the run now waits for it
                        time.sleep(0.05)
                        if (stat(process) or ("gone", 0))[0] == "T":
                            return worker, runner, process
            time.sleep(0.002)
        thread.join(30)
    return None


def test_a_worker_killed_mid_probe_leaves_no_probe_process_running_or_zombie(
    serve: tuple[int, str],
) -> None:
    supervisor, base = serve
    answers: list[int] = []
    caught = catch_a_probe(supervisor, base, answers)
    assert caught is not None, "no probe could be caught mid-run"
    worker, runner, stopped = caught
    probe = [runner, *descendants(runner)]
    assert stopped in probe and len(probe) >= 2
    try:
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + BOUND
        while (left := [p for p in probe if stat(p) is not None]) and time.monotonic() < deadline:
            time.sleep(0.02)
        states = {p: stat(p) for p in left}
        assert left == [], f"probe processes left (state, parent): {states}"
    finally:
        for pid in probe:  # never leave a stopped scenario process behind a failing test
            if stat(pid) is not None and name(pid) == PROCESS_NAME:
                os.kill(pid, signal.SIGKILL)
    assert answers == [], "the probe finished before its worker was killed"
    # The supervisor replaced the worker, and the server answers.
    assert get(base + "/api/v1/probe") == 200


def test_a_runner_whose_caller_died_before_it_started_ends_at_once() -> None:
    # The caller's pid as the runner was told it, but the runner's parent is this test:
    # as if the caller had died (and the runner been reparented) before PR_SET_PDEATHSIG.
    from app.probe import isolate

    env = {**os.environ, "PYTHONPATH": str(ROOT), isolate.PARENT_ENV: str(os.getpid() + 1)}
    runner = subprocess.run(
        [sys.executable, *isolate.RUNNER],
        input=json.dumps({"scenario": "P mmap a\nP fork C", "timeout": 5}).encode(),
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=30,
        start_new_session=True,  # as run_isolated starts it: the group it kills is its own
    )
    assert runner.returncode == -signal.SIGKILL and runner.stdout == b""


def test_the_supervisor_reaps_exited_probe_processes_and_leaves_its_workers_to_uvicorn() -> None:
    from app.probe import reaper

    named = "from app.probe import libc, isolate; libc.set_name(isolate.PROCESS_NAME)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", "pass"], env=env)
    probe = subprocess.Popen([sys.executable, "-c", named], env=env, cwd=ROOT)
    deadline = time.monotonic() + 10
    while any(stat(p.pid) != ("Z", os.getpid()) for p in (worker, probe)):
        assert time.monotonic() < deadline, "the children did not exit"
        time.sleep(0.01)
    first = reaper.reap_once(block=False)
    assert stat(worker.pid) == ("Z", os.getpid())  # a worker's exit status is left to uvicorn
    assert worker.wait(timeout=5) == 0
    reaped = first if first is not None else reaper.reap_once(block=False)
    assert reaped == probe.pid and stat(probe.pid) is None
