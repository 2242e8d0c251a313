"""A short run of scripts/loadtest.py: it starts its own server, loads it, stops it, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOAD = [sys.executable, "-m", "app.bench.load"]


def test_a_short_load_test_has_no_errors_and_reports_memory_and_stops_its_server() -> None:
    done = subprocess.run(
        [*LOAD, "--duration", "2.5", "--clients", "4", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    report = json.loads(done.stdout)
    assert report["errors"] == 0
    assert report["requests"] > 20
    assert {"step", "page", "action", "compare"} <= set(report["by_kind"])
    assert report["p50_ms"] <= report["p99_ms"]
    workers = report["memory_after"]["workers_mb"]
    assert len(workers) == 2 and all(mb > 10 for mb in workers.values())
    # The server is gone: its workers no longer exist.
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
