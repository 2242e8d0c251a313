"""Run the coordinator in a subprocess of its own, with a hard timeout.

The CLI and the web server never fork scenario processes themselves: a web server has threads
(fork would copy their locks mid-use) and must not inherit a probe's children. Instead the caller
starts `python -m app.probe.isolate` in a new session, writes the canonical scenario text to its
stdin and reads a `KernelRun` as JSON from its stdout. The runner enforces the run's deadline and
reaps everything it created; if the runner itself ever overstays (``timeout`` plus a grace), the
caller kills its whole process group and reaps the runner, so no probe can outlive its request.

The runner's life is also tied to its caller's: if the caller dies without killing it (a web
worker killed mid-probe), the kernel tells the runner (``PR_SET_PDEATHSIG``) and the runner kills
its own process group — itself and every scenario process — at once, instead of finishing a run
nobody will read. Its processes are named ``cowlab-probe`` (``PR_SET_NAME``, inherited by every
fork), so the `cowlab serve` supervisor, a child subreaper, recognises and reaps them when they
are orphaned (`app.probe.reaper`); under a PID 1 that reaps nothing they would stay zombies.

The runner's stderr is its own diagnostics: it goes to the caller's log, never into a result
that the web server would show a visitor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.probe import hugetlb, libc
from app.probe.executor import KernelRun, execute
from engine import commands as c
from engine.syntax import format_scenario, parse

GRACE = 10.0  # for the runner's own start-up (imports) and its teardown
RUNNER = ("-m", "app.probe.isolate")  # the interpreter's arguments that start the runner
PROCESS_NAME = b"cowlab-probe"  # the comm of the runner and every scenario process it forks
PARENT_ENV = "COWLAB_PROBE_PARENT"  # the caller's pid, for the runner to check it is still there
RUNNER_FAILED = "probe runner failed (exit {code}); the server's log has the details"
log = logging.getLogger("cowlab.probe")
_ROOT = Path(__file__).resolve().parents[2]


def run_isolated(scenario: c.Scenario, timeout: float = 10.0) -> KernelRun:
    """Run ``scenario`` on this kernel in a fresh subprocess; never raises for probe failures."""
    from app.probe.capabilities import kernel_release

    request = json.dumps({"scenario": format_scenario(scenario), "timeout": timeout})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
        # The runner dies with this process (`tie_to_caller`). The kernel's parent-death signal
        # fires when the *thread* that started it exits: this thread waits for the runner below,
        # so it outlives it.
        PARENT_ENV: str(os.getpid()),
    }
    proc = subprocess.Popen(
        [sys.executable, *RUNNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: one killpg reaches every worker
        env=env,
        cwd=str(_ROOT),
    )
    try:
        out, err = proc.communicate(request.encode(), timeout=timeout + GRACE)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        return KernelRun(kernel_release(), (), f"probe killed after {timeout + GRACE:.0f}s")
    except BaseException:
        _kill_group(proc.pid)
        proc.communicate()
        raise
    finally:
        # If anything above left the runner running, it must not outlive this call.
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait()
        # A runner killed (or crashed) while it held hugetlb pages could not give them back:
        # it is reaped now, so the pool goes back to the size it had without it.
        hugetlb.restore_abandoned()
    if proc.returncode != 0:
        # The runner's stderr (a traceback, paths, the kernel's words) is for whoever runs the
        # server; the result, which a web visitor sees, says only that the runner failed.
        log.error(
            "probe runner failed (exit %d): %s",
            proc.returncode,
            err.decode(errors="replace").strip() or "no message",
        )
        return KernelRun(kernel_release(), (), RUNNER_FAILED.format(code=proc.returncode))
    run = KernelRun.from_json(json.loads(out))
    if run.leaks:
        log.error("probe could not clean up: %s", "; ".join(run.leaks))
    return run


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _die_with_group(signum: int, frame: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def tie_to_caller(caller: int) -> None:
    """Kill this process group — the runner and every scenario process — when ``caller`` dies.

    SIGKILL as the parent-death signal would kill the runner alone and leave scenario processes
    behind (a fork does not inherit it, and a scenario child must outlive its scenario parent);
    so the signal is SIGTERM, whose handler kills the whole group. The runner was started in a
    session of its own, so the group is exactly the probe's processes.
    """
    libc.set_name(PROCESS_NAME)
    signal.signal(signal.SIGTERM, _die_with_group)
    libc.set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != caller:
        # The caller died before the signal was armed: nothing will ever read this run.
        _die_with_group(signal.SIGTERM, None)


def main() -> int:
    caller = os.environ.get(PARENT_ENV)
    if caller is not None:
        tie_to_caller(int(caller))
    request = json.loads(sys.stdin.read())
    scenario = parse(str(request["scenario"]))
    run = execute(scenario, float(request["timeout"]))
    sys.stdout.write(json.dumps(run.to_json()))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
