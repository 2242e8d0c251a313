"""`cowlab bench --load`: a short run starts its own server, loads it, stops it, reports; and
options that cannot run are refused before any server starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.main import main

# A smoke test of `cowlab bench`: scripts/test runs it in the bench lane.
pytestmark = pytest.mark.bench

LOAD = [sys.executable, "-m", "app.cli", "bench", "--load"]


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--clients", "4"], "--clients is an option of the load test: add --load"),
        (["bench", "--quick", "--proxy"], "--proxy is an option of the load test: add --load"),
        (["bench", "--load", "--quick"], "--quick is for the figures"),
        (["bench", "--load", "--clients", "0"], "--clients in 1..1000"),
        (["bench", "--load", "--kill-worker-at", "5", "--workers", "1"], "two workers or more"),
    ],
)
def test_bench_refuses_options_that_cannot_run_before_starting_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
