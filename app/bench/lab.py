"""The policy lab's figures for `cowlab bench` (DESIGN.md §7): ``sweep_s``,
``custom_column_ms`` and ``lab_rss_mb``.

``sweep_s`` is `cowlab lab sweep --json` as a user runs it: a fresh process, its JSON written
(to /dev/null). ``custom_column_ms`` the median time to build one presets-grid column for a
custom point never seen before (policy built, every preset replayed, cells made; no memo).
``lab_rss_mb`` how much a web worker's resident memory grows from idle (the lab page served a
few times) to having served the sweep page, a filtered design list and the sweep's JSON — with
the sweep stored by a child process under a fresh cache directory, as on a first deployment.
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.views.lab import custom_column_cells
from app.views.lab_store import CACHE_ENV
from engine.policies import POLICIES
from engine.sweep import all_points, refused

ROOT = Path(__file__).resolve().parents[2]
# How long the served sweep may take to appear (it is computed once, in a child process).
SWEEP_WAIT_S = 300.0


def fresh_points(count: int) -> list[str]:
    """``count`` custom ids of distinct runnable points, none of them an era."""
    eras = {tuple(e.knobs.values()) for e in POLICIES.values()}
    base = POLICIES["5.9"]
    ids = []
    for settings in itertools.islice(all_points(), 0, None, 97):
        if refused(settings) or tuple(settings.values()) in eras:
            continue
        changes = [f"{k}={v}" for k, v in settings.items() if v != base.knobs[k]]
        ids.append(",".join(["custom:base=5.9", *changes]))
        if len(ids) == count:
            break
    return ids


def measure_sweep_s() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "app.cli.main", "lab", "sweep", "--json"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def measure_lab_rss_mb() -> float | None:
    """None when the bench extra (httpx) is not installed."""
    try:
        import httpx

        from app.bench.load import LOOPBACK, free_port, rss_mb, stop_server, wait_until_serving
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="cowlab-lab-bench-") as cache:
        port = free_port()
        base = f"http://{LOOPBACK}:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", LOOPBACK, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, CACHE_ENV: cache},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            wait_until_serving(server, base, 1)
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(3):
                    client.get("/lab?policy=6.2")
                idle = rss_mb(server.pid)
                deadline = time.monotonic() + SWEEP_WAIT_S
                while client.get("/lab/sweep.json").status_code == 202:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the served sweep did not appear in time")
                    time.sleep(1)
                for path in ("/lab/sweep", "/lab/sweep?gup_read=break-cow&clean=1", "/lab"):
                    client.get(path).raise_for_status()
                client.get("/lab/sweep.json").raise_for_status()
                served = rss_mb(server.pid)
        finally:
            stop_server(server)
    return max(0.0, served - idle)


def measure_lab(quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {"sweep_s": round(measure_sweep_s(), 2)}
    samples = []
    for policy_id in fresh_points(5 if quick else 25):
        start = time.perf_counter()
        custom_column_cells(policy_id)
        samples.append(time.perf_counter() - start)
    figures["custom_column_ms"] = round(statistics.median(samples) * 1000, 1)
    rss = measure_lab_rss_mb()
    if rss is not None:
        figures["lab_rss_mb"] = round(rss, 1)
    return figures
