"""A short run of the deployment load test (`cowlab bench --load --deploy`, shortened): nginx
in front, a worker killed mid-run and replaced, then 1,100 slow sockets that fail no request."""

from __future__ import annotations

import json
import subprocess
import sys

LOAD = [sys.executable, "-m", "app.cli", "bench", "--load"]


def test_a_short_deploy_run_survives_a_killed_worker_and_slow_sockets(nginx_binary: str) -> None:
    command = [*LOAD, "--duration", "5", "--clients", "6", "--json"]
    command += ["--allowed-errors", "6"]
    command += ["--mix", "--proxy", "--kill-worker-at", "2", "--slow-sockets", "1100"]
    command += ["--slow-phase", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    report = json.loads(done.stdout)
    assert report["server"]["proxy"] is True
    assert report["requests"] > 20
    # A worker killed while it was sending an answer cuts that answer short: nginx cannot
    # replay a response it has begun to pass on. Each client has one request in flight at most.
    assert report["errors"] <= 6, report["error_kinds"]
    killed = report["killed_worker"]
    # uvicorn's supervisor replaced the killed worker: two workers again, the victim not one.
    assert len(killed["workers_after"]) == 2 and killed["pid"] not in killed["workers_after"]
    slow = report["slow_sockets"]
    assert slow["sockets"] == 1100
    # nginx let the slow sockets go after its timeouts (10 s) only: none within this short phase.
    assert slow["let_go_and_replaced"] == 0
    assert slow["errors"] == 0 and slow["requests"] > 10
    assert slow["without_sockets"]["errors"] == 0 and slow["without_sockets"]["requests"] > 10
    assert report["nginx_mb"] > 1
