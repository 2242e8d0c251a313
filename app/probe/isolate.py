"""Run the coordinator in a subprocess of its own, with a hard timeout.

The CLI and the web server never fork scenario processes themselves: a web server has threads
(fork would copy their locks mid-use) and must not inherit a probe's children. Instead the caller
starts `python -m app.probe.isolate` in a new session, writes the canonical scenario text to its
stdin and reads a `KernelRun` as JSON from its stdout. The runner enforces the run's deadline and
reaps everything it created; if the runner itself ever overstays (``timeout`` plus a grace), the
caller kills its whole process group and reaps the runner, so no probe can outlive its request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.probe.executor import KernelRun, execute
from engine import commands as c
from engine.syntax import format_scenario, parse

GRACE = 10.0  # for the runner's own start-up (imports) and its teardown
RUNNER = ("-m", "app.probe.isolate")  # the interpreter's arguments that start the runner
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
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        return KernelRun(
            kernel_release(), (), f"probe runner failed (exit {proc.returncode}): {tail[0]}"
        )
    return KernelRun.from_json(json.loads(out))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def main() -> int:
    request = json.loads(sys.stdin.read())
    scenario = parse(str(request["scenario"]))
    run = execute(scenario, float(request["timeout"]))
    sys.stdout.write(json.dumps(run.to_json()))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
