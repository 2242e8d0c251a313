"""Every probe process is reaped and every fd and mapping released — after a normal run, a
timeout, a process that dies under the coordinator, and a runner that has to be killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.probe import isolate
from app.probe.executor import KernelRun
from app.probe.isolate import run_isolated
from engine.syntax import parse

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
# Many processes, a pipe, a ring, a file and a userfaultfd in flight at once.
BUSY = """\
file F f0
P mmap a b f
P mmap g file=F shared
P write a v1
P fork C
C fork D
P vmsplice a as pipe
P iouring b as ring
C uffd-wp a on
D write a d1
C write a c1
pipe read
ring read
"""


def gone(pid: int) -> bool:
    """Neither running nor a zombie: /proc has no entry left for it."""
    return not os.path.exists(f"/proc/{pid}")


def wait_gone(pids: list[int] | tuple[int, ...], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if not gone(p)]
        if not left:
            return []
        time.sleep(0.02)
    return [p for p in pids if not gone(p)]


def own_fds() -> set[str]:
    return {fd for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}")}


def session_members(sid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            members.append(int(entry))
    return members


def test_a_normal_run_reaps_every_process_and_leaves_no_fd() -> None:
    before = own_fds()
    result = run_isolated(parse(BUSY), timeout=10)
    assert result.skipped is None, result.skipped
    assert len(result.pids) == 3  # P, C, D were real processes
    assert result.leaks == ()  # the coordinator's own audit: no child, fd or mapping left
    assert wait_gone(result.pids) == []
    assert own_fds() == before  # the caller keeps no pipe of the runner either


def test_a_timeout_mid_run_still_reaps_and_releases_everything() -> None:
    # A long scenario with a deadline far too short: it stops with live processes, a pipe and
    # a ring in flight.
    # The limit of 1,000 commands takes ~0.3 s here; the deadline is a tenth of that.
    text = BUSY + "\n".join(f"D write a x{i}\nC read a" for i in range(490))
    result = run_isolated(parse(text), timeout=0.03)
    assert result.skipped is not None and result.skipped.startswith("timed out"), result.skipped
    assert len(result.steps) < len(parse(text).commands)
    assert result.leaks == ()
    assert wait_gone(result.pids) == []


def test_a_process_that_dies_under_the_coordinator_is_reaped_with_the_rest() -> None:
    # Drive the coordinator directly (in a subprocess of its own: it becomes a subreaper), kill
    # one scenario process behind its back, and carry on.
    script = textwrap.dedent(
        """
        import json, os, signal, time
        from app.probe import libc
        from app.probe.executor import Coordinator, Skip, audit
        from engine.syntax import parse, reference_names

        libc.set_child_subreaper()
        fds = set(os.listdir("/proc/self/fd"))
        scenario = parse(
            "P mmap a; P write a v1; P fork C; C fork D; P vmsplice a as p; C read a"
        )
        coord = Coordinator(deadline=time.monotonic() + 10)
        names = reference_names(scenario.commands)
        for k in range(5):
            coord.step(k + 1, scenario.commands[k], names[k])
        os.kill(coord.procs["C"].pid, signal.SIGKILL)
        try:
            coord.step(6, scenario.commands[5], None)
            outcome = "no error"
        except Skip as skip:
            outcome = skip.reason
        leftovers = coord.teardown()
        print(json.dumps({"outcome": outcome, "pids": coord.pids,
                          "leaks": leftovers + audit(fds)}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outcome"].startswith("process C died unexpectedly at step 6")
    assert "SIGKILL" in report["outcome"]
    assert report["leaks"] == []
    assert wait_gone(report["pids"]) == []


def test_a_runner_that_overstays_is_killed_with_its_whole_process_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A stand-in runner that forks a child and hangs: the caller's hard timeout must kill both.
    pids = tmp_path / "pids"
    hang = (
        "import os, time\n"
        "child = os.fork()\n"
        "if child:\n"
        f"    open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child}}')\n"
        "time.sleep(120)\n"
    )
    monkeypatch.setattr(isolate, "RUNNER", ("-c", hang))
    monkeypatch.setattr(isolate, "GRACE", 1.0)
    before = own_fds()
    started = time.monotonic()
    result: KernelRun = run_isolated(parse("P mmap a"), timeout=0.5)
    assert time.monotonic() - started < 10
    assert result.skipped is not None and result.skipped.startswith("probe killed")
    assert own_fds() == before
    runner, child = (int(x) for x in pids.read_text().split())
    # The runner led its own session: nothing of it may be left, running or zombie.
    assert wait_gone([runner, child]) == []
    assert session_members(runner) == []
